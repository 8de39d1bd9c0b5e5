//! The badge beside a session's name (seed section 4): nothing when idle, a
//! blue "Processing" status while working, a red "Error" with the message in
//! a tooltip when the last run failed.

use crate::session_state::SessionState;
use leptos::{either::EitherOf3, prelude::*};

/// Longest error text shown in the tooltip; longer messages end in "…".
pub const TOOLTIP_MAX_CHARS: usize = 300;

/// Renders a session's state from `(state, error_message)` alone.
#[component]
pub fn SessionStateBadge(
    state: SessionState,
    #[prop(optional_no_strip)] error_message: Option<String>,
) -> impl IntoView {
    match state {
        // EitherOf3 rather than `into_any`: no type-erased view in the bundle.
        SessionState::Idle => EitherOf3::A(()),
        SessionState::Working => EitherOf3::B(view! {
            <span class="badge badge-working" role="status">
                <span class="spinner" aria-hidden="true"></span>
                "Processing"
            </span>
        }),
        SessionState::Error => {
            let message = error_message.unwrap_or_default();
            let tooltip_id = tooltip_id(&message);
            let tooltip_text = shorten_for_tooltip(&message);
            EitherOf3::C(view! {
                <span class="badge-error-wrap">
                    <span class="badge badge-error" tabindex="0" aria-describedby=tooltip_id.clone()>
                        "Error"
                    </span>
                    <span class="tooltip" role="tooltip" id=tooltip_id>
                        {tooltip_text}
                    </span>
                </span>
            })
        }
    }
}

/// Cuts `message` to at most [`TOOLTIP_MAX_CHARS`] characters, ending in an
/// ellipsis when anything was cut.
pub fn shorten_for_tooltip(message: &str) -> String {
    let message = message.trim();
    match message.char_indices().nth(TOOLTIP_MAX_CHARS) {
        None => message.to_owned(),
        Some(_) => {
            let cut = message
                .char_indices()
                .nth(TOOLTIP_MAX_CHARS - 1)
                .map_or(message.len(), |(at, _)| at);
            format!("{}…", &message[..cut])
        }
    }
}

/// A stable element id derived from the message, so the server and the
/// browser agree on it without a shared counter.
fn tooltip_id(message: &str) -> String {
    let hash = message.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("session-error-{hash:016x}")
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn render(state: SessionState, error_message: Option<&str>) -> String {
        let error_message = error_message.map(str::to_owned);
        Owner::new().with(|| view! { <SessionStateBadge state error_message /> }.to_html())
    }

    #[test]
    fn idle_renders_nothing() {
        let html = render(SessionState::Idle, None);
        assert!(!html.contains("badge"), "{html}");
        assert!(
            !html.contains("Processing") && !html.contains("Error"),
            "{html}"
        );
    }

    #[test]
    fn working_renders_a_spinner_and_processing_status() {
        let html = render(SessionState::Working, None);
        assert!(html.contains(r#"role="status""#), "{html}");
        assert!(html.contains("Processing"), "{html}");
        assert!(html.contains(r#"class="spinner""#), "{html}");
        assert!(html.contains("badge-working"), "{html}");
        assert!(!html.contains("tooltip"), "{html}");
    }

    #[test]
    fn error_renders_a_focusable_badge_with_a_linked_tooltip() {
        let html = render(SessionState::Error, Some("exited with status 3"));
        assert!(html.contains(">Error<"), "{html}");
        assert!(html.contains(r#"tabindex="0""#), "{html}");
        assert!(html.contains(r#"role="tooltip""#), "{html}");
        assert!(html.contains("exited with status 3"), "{html}");
        let id = tooltip_id("exited with status 3");
        assert!(
            html.contains(&format!(r#"aria-describedby="{id}""#)),
            "{html}"
        );
        assert!(html.contains(&format!(r#"id="{id}""#)), "{html}");
        assert!(!html.contains("Processing"), "{html}");
    }

    #[test]
    fn error_message_is_escaped_text_not_html() {
        let html = render(
            SessionState::Error,
            Some("<script>alert('x')</script> & more"),
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&amp; more"), "{html}");
    }

    #[test]
    fn long_messages_are_shortened_with_an_ellipsis() {
        let long = "é".repeat(TOOLTIP_MAX_CHARS * 3);
        let html = render(SessionState::Error, Some(&long));
        assert!(html.contains('…'), "tooltip not shortened");
        assert!(!html.contains(&long));
    }

    #[test]
    fn shortening_keeps_short_messages_and_cuts_on_char_boundaries() {
        assert_eq!(shorten_for_tooltip("  short  "), "short");
        let exact = "a".repeat(TOOLTIP_MAX_CHARS);
        assert_eq!(shorten_for_tooltip(&exact), exact);
        let cut = shorten_for_tooltip(&"日本".repeat(TOOLTIP_MAX_CHARS));
        assert_eq!(cut.chars().count(), TOOLTIP_MAX_CHARS);
        assert!(cut.ends_with('…'));
    }
}
