//! Components rendered the same way on the server and inside islands.

mod attention;
mod effect;
mod island_prop;
mod live_controls;
mod server_form;
mod session_state_badge;

pub use attention::{attention_marker, coarse, since_label};
pub use effect::effect;
pub use island_prop::IslandProp;
pub use live_controls::{LiveIndicator, NotifyToggle};
pub use server_form::{form_error, Reply, ServerCall};
pub use session_state_badge::{shorten_for_tooltip, SessionStateBadge, TOOLTIP_MAX_CHARS};
