//! Live updates: what the change stream carries, which part of it a page
//! wants, and (on the server) the in-process hub every committed change is
//! published to. The stream itself is SSE: one-way server→browser is all a
//! page needs, it reconnects over plain HTTP, and costs less per client and
//! less bundle than a websocket.

#[cfg(feature = "hydrate")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod follow;
#[cfg(feature = "ssr")]
pub mod hub;
#[cfg(feature = "ssr")]
pub mod tail;

use crate::{
    session::Session,
    transition::{Reason, Transition},
};
use serde::{Deserialize, Serialize};

/// The state of a page's stream, shown as a small indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Reconnecting,
}

impl Connection {
    /// The indicator's `data-state`, for styles and tests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Live => "Live",
            Self::Reconnecting => "Reconnecting…",
        }
    }
}

/// Follows `scope` from `since` in the browser (a no-op on the server),
/// calling `on_event` for each change once; returns the connection state.
pub fn use_live(
    scope: Scope,
    since: i32,
    on_event: impl Fn(LiveEvent) + 'static,
) -> leptos::prelude::ReadSignal<Connection> {
    let (status, set_status) = leptos::prelude::signal(Connection::Connecting);
    #[cfg(feature = "hydrate")]
    client::follow(scope, since, on_event, set_status);
    #[cfg(not(feature = "hydrate"))]
    let _ = (scope, since, on_event, set_status);
    status
}

/// Shows a browser notification when a run ends or starts waiting for the
/// person, if they opted in.
/// The tag is the change's `seq`, so several open tabs show it once.
pub fn notify_run_end(session_name: &str, change: &Transition) {
    let title = match change.reason {
        Reason::Succeeded => format!("{session_name} finished"),
        Reason::Failed => format!("{session_name} failed"),
        Reason::Interrupted => format!("{session_name} was interrupted"),
        Reason::Attention => match change.attention {
            Some(attention) => format!("{session_name}: {}", attention.lowercase_label()),
            None => return,
        },
        _ => return,
    };
    #[cfg(feature = "hydrate")]
    {
        use web_sys::{Notification, NotificationOptions, NotificationPermission};
        if Notification::permission() == NotificationPermission::Granted {
            let options = NotificationOptions::new();
            let body = match change.reason {
                Reason::Attention => "The agent is waiting for you.",
                _ => change
                    .error_message
                    .as_deref()
                    .unwrap_or("The run succeeded."),
            };
            options.set_body(body);
            // One notification per session and kind; a click opens the session.
            options.set_tag(&format!("{}:{}", change.session_id, change.reason));
            if let Ok(notification) = Notification::new_with_options(&title, &options) {
                let url = format!(
                    "/projects/{}/sessions/{}",
                    change.project_id, change.session_id
                );
                let open = wasm_bindgen::closure::Closure::once_into_js(move || {
                    if let Some(window) = web_sys::window() {
                        let _ = window.focus();
                        let _ = window.location().assign(&url);
                    }
                });
                use wasm_bindgen::JsCast;
                notification.set_onclick(Some(open.unchecked_ref()));
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = title;
}

/// The part of the change log a page follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    All,
    Project(i32),
    Session(String),
}

impl Scope {
    /// Whether `change` belongs to this scope.
    pub fn contains(&self, change: &Transition) -> bool {
        match self {
            Self::All => true,
            Self::Project(id) => change.project_id == *id,
            Self::Session(id) => change.session_id == *id,
        }
    }

    /// The query string that selects this scope on `/api/events`.
    pub fn query(&self) -> String {
        match self {
            Self::All => String::new(),
            Self::Project(id) => format!("project={id}"),
            Self::Session(id) => format!("session={id}"),
        }
    }
}

/// One message on the stream, as `{"change": {...}}`, `{"output": {...}}`,
/// `{"sync_progress": {...}}` or `{"reset": {...}}`. Externally tagged: an internal `"type"` tag
/// makes serde buffer each event and decode it twice over, which costs the
/// WASM bundle a second decoder for every type inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveEvent {
    /// A committed entry of the change log; `session` is the session as
    /// created or renamed (absent for state changes and deletions).
    Change {
        change: Transition,
        session: Option<Session>,
    },
    /// Line `n` (from 1, per run) of run `run_id`'s output. A session's
    /// stream starts with the running run's backlog ([`OutputBacklog`]),
    /// also on reconnects, so a page skips numbers it has shown.
    Output {
        session_id: String,
        run_id: String,
        n: u64,
        line: String,
    },
    /// How far a transcript sync has got (not replayed).
    SyncProgress {
        project_id: i32,
        scanned: usize,
        total: usize,
    },
    /// The page was too far behind to replay what it missed (more than
    /// `follow::MAX_REPLAY` changes): it must reload its snapshot. The
    /// stream goes on live after `seq`, the change log's end at the time.
    Reset { seq: i32 },
}

/// Lines of a run's output kept for pages that open while it goes on (the
/// hub keeps no more; a session page shows no more).
pub const BACKLOG_LINES: usize = 500;

/// The newest output lines of a running run: what a session page opened
/// mid-run is rendered with, and what it shows as lines arrive. The page's
/// snapshot and every (re)connection of its stream repeat lines already
/// shown; [`OutputBacklog::push`] takes each once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct OutputBacklog {
    pub run_id: String,
    /// The number of the last of `lines` (0 when there are none).
    pub last: u64,
    /// Oldest first.
    pub lines: Vec<String>,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(OutputBacklog {
    required: [run_id, last, lines],
    optional: [],
    skipped: [],
});

impl OutputBacklog {
    /// Adds line `n` of run `run_id` unless it is shown already; a line of
    /// another run replaces what is shown. Keeps the newest [`BACKLOG_LINES`].
    pub fn push(&mut self, run_id: String, n: u64, line: String) {
        if self.run_id != run_id {
            *self = Self {
                run_id,
                ..Self::default()
            };
        } else if n <= self.last {
            return;
        }
        self.last = n;
        self.lines.push(line);
        let excess = self.lines.len().saturating_sub(BACKLOG_LINES);
        self.lines.drain(..excess);
    }
}

impl LiveEvent {
    /// A state change, to publish.
    pub fn change(change: Transition) -> Self {
        Self::Change {
            change,
            session: None,
        }
    }

    /// A session created or renamed, to publish with the session.
    pub fn lifecycle(change: Transition, session: Session) -> Self {
        Self::Change {
            change,
            session: Some(session),
        }
    }

    /// The change-log position, for changes and resets.
    pub fn seq(&self) -> Option<i32> {
        match self {
            Self::Change { change, .. } => Some(change.seq),
            Self::Reset { seq } => Some(*seq),
            Self::Output { .. } | Self::SyncProgress { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_all(shown: &mut OutputBacklog, run: &str, numbers: impl IntoIterator<Item = u64>) {
        for n in numbers {
            shown.push(run.into(), n, format!("{run}-{n}"));
        }
    }

    #[test]
    fn repeated_lines_are_shown_once_and_a_new_run_starts_over() {
        let mut shown = OutputBacklog::default();
        // The page's snapshot, then the stream's backlog overlapping it, then live.
        push_all(&mut shown, "r1", 1..=3);
        push_all(&mut shown, "r1", 2..=5);
        push_all(&mut shown, "r1", [4, 6]);
        assert_eq!(
            shown.lines,
            ["r1-1", "r1-2", "r1-3", "r1-4", "r1-5", "r1-6"]
        );
        assert_eq!(shown.last, 6);
        push_all(&mut shown, "r2", [1]);
        assert_eq!((shown.run_id.as_str(), shown.last), ("r2", 1));
        assert_eq!(shown.lines, ["r2-1"]);
    }

    #[test]
    fn at_most_the_backlog_bound_is_shown() {
        let mut shown = OutputBacklog::default();
        let total = BACKLOG_LINES as u64 + 20;
        push_all(&mut shown, "r", 1..=total);
        assert_eq!(shown.lines.len(), BACKLOG_LINES);
        assert_eq!(shown.lines[0], "r-21");
        assert_eq!(shown.last, total);
    }
}
