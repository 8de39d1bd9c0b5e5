//! Session state transitions: the rules (a pure function, tested as a
//! table), the recorded history, and — on the server — the one writer that
//! applies them.

#[cfg(feature = "ssr")]
pub mod writer;

use crate::{
    session_state::{Attention, SessionState},
    text_enum::text_enum,
};
use serde::Serialize;

/// Longest stored error message, in characters (seed implementation note 1).
pub const MAX_ERROR_CHARS: usize = 1000;

/// The error message of a run that a server stop cut short.
pub const INTERRUPTED_MESSAGE: &str =
    "Interrupted: the server stopped while this run was in progress";

/// The error message of a run whose instance stopped, seen from another
/// instance (its host when known).
pub fn orphaned_message(host: Option<&str>) -> String {
    match host {
        Some(host) => format!("Interrupted: the instance on {host} stopped"),
        None => INTERRUPTED_MESSAGE.to_owned(),
    }
}

/// Something that happened to a session and may change its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionEvent {
    /// A message was sent: a run starts.
    Send,
    /// The run finished successfully.
    Succeed,
    /// The run failed, with the best error message available.
    Fail(String),
    /// Someone cancelled the run.
    Cancel,
    /// The server stopped (or crashed) during the run.
    Interrupt,
    /// The instance running the run stopped (or went silent), seen from
    /// another one; its host when known.
    Orphan(Option<String>),
    /// A transcript sync cleared a stale error.
    Sync,
    /// The agent ended the session (a terminal session's `SessionEnd`).
    End,
}

impl TransitionEvent {
    /// Why the state changed, as recorded in the history.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Send => Reason::Sent,
            Self::Succeed => Reason::Succeeded,
            Self::Fail(_) => Reason::Failed,
            Self::Cancel => Reason::Cancelled,
            Self::Interrupt | Self::Orphan(_) => Reason::Interrupted,
            Self::Sync => Reason::Synced,
            Self::End => Reason::Ended,
        }
    }
}

text_enum! {
    /// The recorded cause of a transition.
    pub enum Reason ("transition reason") {
        Sent = "sent",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Interrupted = "interrupted",
        Synced = "synced",
        Ended = "ended",
        /// Not a state change: the session was created.
        Created = "created",
        /// Not a state change: the session was renamed.
        Renamed = "renamed",
        /// Not a state change: the session was deleted.
        Deleted = "deleted",
        /// Not a state change: the session started or stopped waiting for
        /// the person (its `attention`).
        Attention = "attention",
    }
}

impl Reason {
    /// Whether the entry records a change of state (as opposed to a session
    /// being created, renamed or deleted).
    pub const fn is_state_change(self) -> bool {
        !matches!(
            self,
            Self::Created | Self::Renamed | Self::Deleted | Self::Attention
        )
    }
}

/// One entry of the change log: a state change, or a session created,
/// renamed or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(serde::Deserialize))]
#[cfg_attr(feature = "ssr", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::session_transitions))]
pub struct Transition {
    /// Global commit order of state changes.
    pub seq: i32,
    pub session_id: String,
    pub project_id: i32,
    pub from_state: SessionState,
    pub to_state: SessionState,
    pub error_message: Option<String>,
    pub reason: Reason,
    pub at: i64,
    /// The session's attention after this entry: a page applying the log
    /// keeps it from here (every state change clears it).
    pub attention: Option<Attention>,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(Transition {
    required: [seq, session_id, project_id, from_state, to_state, reason, at],
    optional: [error_message, attention],
    skipped: [],
});

/// The state (and error message) `event` leads to from `current`, or `None`
/// when the event does not apply in that state — e.g. a second send while
/// working, or a late "succeeded" for a run that was already cancelled.
pub fn next_state(
    current: SessionState,
    event: &TransitionEvent,
) -> Option<(SessionState, Option<String>)> {
    use SessionState::{Error, Idle, Working};
    use TransitionEvent as E;
    match (current, event) {
        (Idle | Error, E::Send) => Some((Working, None)),
        (Working, E::Succeed | E::Cancel | E::End) => Some((Idle, None)),
        (Working, E::Fail(message)) => Some((Error, Some(truncate_error(message)))),
        (Working, E::Interrupt) => Some((Error, Some(INTERRUPTED_MESSAGE.to_owned()))),
        (Working, E::Orphan(host)) => Some((Error, Some(orphaned_message(host.as_deref())))),
        (Error, E::Sync) => Some((Idle, None)),
        _ => None,
    }
}

/// Bounds an error message to [`MAX_ERROR_CHARS`] characters, cutting on a
/// character boundary and marking the cut. Never returns an empty message.
pub fn truncate_error(message: &str) -> String {
    const CUT_MARK: &str = " […]";
    let message = message.trim();
    if message.is_empty() {
        return "the run failed without an error message".to_owned();
    }
    if message.chars().count() <= MAX_ERROR_CHARS {
        return message.to_owned();
    }
    let keep = MAX_ERROR_CHARS - CUT_MARK.chars().count();
    let cut = message
        .char_indices()
        .nth(keep)
        .map_or(message.len(), |(at, _)| at);
    format!("{}{CUT_MARK}", &message[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::{Error, Idle, Working};

    /// Every (state, event) pair and where it leads.
    #[test]
    fn transition_table() {
        let fail = TransitionEvent::Fail("exited with status 3".into());
        let orphan = TransitionEvent::Orphan(Some("build-box".into()));
        let table: [(SessionState, TransitionEvent, Option<SessionState>); 24] = [
            (Idle, TransitionEvent::Send, Some(Working)),
            (Working, TransitionEvent::Send, None),
            (Error, TransitionEvent::Send, Some(Working)),
            (Idle, TransitionEvent::Succeed, None),
            (Working, TransitionEvent::Succeed, Some(Idle)),
            (Error, TransitionEvent::Succeed, None),
            (Idle, fail.clone(), None),
            (Working, fail.clone(), Some(Error)),
            (Error, fail.clone(), None),
            (Idle, TransitionEvent::Cancel, None),
            (Working, TransitionEvent::Cancel, Some(Idle)),
            (Error, TransitionEvent::Cancel, None),
            (Idle, TransitionEvent::Interrupt, None),
            (Working, TransitionEvent::Interrupt, Some(Error)),
            (Error, TransitionEvent::Interrupt, None),
            (Idle, orphan.clone(), None),
            (Working, orphan.clone(), Some(Error)),
            (Error, orphan.clone(), None),
            (Idle, TransitionEvent::Sync, None),
            (Working, TransitionEvent::Sync, None),
            (Error, TransitionEvent::Sync, Some(Idle)),
            (Idle, TransitionEvent::End, None),
            (Working, TransitionEvent::End, Some(Idle)),
            (Error, TransitionEvent::End, None),
        ];
        for (from, event, expected) in table {
            let got = next_state(from, &event);
            assert_eq!(
                got.as_ref().map(|(s, _)| *s),
                expected,
                "{from} + {event:?}"
            );
            if let Some((to, message)) = got {
                // The seed's invariant: a message exactly in the error state.
                assert_eq!(message.is_some(), to == Error, "{from} + {event:?}");
            }
        }
        assert_eq!(
            next_state(Working, &fail),
            Some((Error, Some("exited with status 3".into())))
        );
        assert_eq!(
            next_state(Working, &TransitionEvent::Interrupt)
                .unwrap()
                .1
                .unwrap(),
            INTERRUPTED_MESSAGE
        );
        assert_eq!(
            next_state(Working, &orphan).unwrap().1.unwrap(),
            "Interrupted: the instance on build-box stopped"
        );
        assert_eq!(orphan.reason(), Reason::Interrupted);
    }

    #[test]
    fn every_event_has_its_reason() {
        let reasons: Vec<_> = [
            TransitionEvent::Send,
            TransitionEvent::Succeed,
            TransitionEvent::Fail(String::new()),
            TransitionEvent::Cancel,
            TransitionEvent::Interrupt,
            TransitionEvent::Sync,
            TransitionEvent::End,
        ]
        .iter()
        .map(TransitionEvent::reason)
        .collect();
        assert_eq!(reasons, Reason::ALL[..7]);
        assert!(reasons.iter().all(|r| r.is_state_change()));
        assert!(!Reason::Created.is_state_change() && !Reason::Deleted.is_state_change());
        assert!(!Reason::Attention.is_state_change());
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
        }
    }

    #[test]
    fn error_messages_are_bounded_on_char_boundaries_and_never_empty() {
        assert_eq!(truncate_error("  boom \n"), "boom");
        assert!(!truncate_error("   ").is_empty());
        let exact = "x".repeat(MAX_ERROR_CHARS);
        assert_eq!(truncate_error(&exact), exact);
        for unit in ["é", "日", "🦀", "a"] {
            let long = unit.repeat(MAX_ERROR_CHARS * 5);
            let cut = truncate_error(&long);
            assert_eq!(cut.chars().count(), MAX_ERROR_CHARS, "{unit}");
            assert!(cut.ends_with("[…]"), "{unit}");
        }
    }
}
