//! The routes' page components. Pages render on the server only; the parts
//! that react to input are `#[island]`s hydrated in the browser.

mod not_found;
mod projects;
mod sessions;

pub use not_found::{ErrorPage, NotFound};
pub use projects::ProjectsPage;
pub use sessions::SessionsPage;
