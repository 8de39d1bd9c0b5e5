//! The routes' page components. Pages render on the server only; the parts
//! that react to input are `#[island]`s hydrated in the browser.

mod not_found;
mod notifications;
mod projects;
mod session;
mod sessions;

pub use not_found::{ErrorPage, NotFound};
pub use notifications::NotificationsPage;
pub use projects::ProjectsPage;
pub use session::SessionPage;
pub use sessions::SessionsPage;

use crate::components::effect;
use leptos::prelude::*;

/// `"true"` once the surrounding island has hydrated (effects run only in
/// the browser): lets tests and scripts wait for interactivity.
fn hydrated_marker() -> impl Fn() -> Option<&'static str> + Copy {
    let hydrated = RwSignal::new(false);
    effect(move || hydrated.set(true));
    move || hydrated.get().then_some("true")
}
