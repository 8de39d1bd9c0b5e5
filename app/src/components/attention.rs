//! "Needs you" beside the badge, and how long a session has been in its state.

use crate::{run::format_duration, session_state::Attention, SessionState};
use leptos::prelude::*;

/// "Needs approval" / "Needs input" beside the badge; nothing otherwise.
pub fn attention_marker(attention: Option<Attention>) -> impl IntoView {
    attention.map(|attention| {
        view! {
            <span class="attention" data-attention=attention.as_str()>
                {attention.label()}
            </span>
        }
    })
}

/// Since when a session is in its state, ticking with `now` (ms; 0 on the
/// server, which then names the state only): "working 3m 12s",
/// "failed 2h ago", "idle 5m ago".
pub fn since_label(state: SessionState, now: f64, since: i64) -> String {
    let word = match state {
        SessionState::Working => "working",
        SessionState::Error => "failed",
        SessionState::Idle => "idle",
    };
    if now <= 0.0 {
        return word.to_owned();
    }
    let elapsed = (now as i64 - since).max(0);
    match state {
        SessionState::Working => format!("{word} {}", format_duration(elapsed)),
        _ => format!("{word} {} ago", coarse(elapsed)),
    }
}

/// "12s", "3m", "2h", "4d": ages need no more precision.
pub fn coarse(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_labels_say_the_state_and_its_age() {
        let now = 10_000_000.0;
        assert_eq!(
            since_label(SessionState::Working, now, 10_000_000 - 72_000),
            "working 1m 12s"
        );
        assert_eq!(
            since_label(SessionState::Error, now, 10_000_000 - 7_300_000),
            "failed 2h ago"
        );
        assert_eq!(
            since_label(SessionState::Idle, now, 10_000_000 - 5_000),
            "idle 5s ago"
        );
        assert_eq!(since_label(SessionState::Error, 0.0, 5), "failed");
        assert_eq!(coarse(3 * 86_400_000), "3d");
    }
}
