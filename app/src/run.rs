//! Agent runs: one agent process per sent message, its outcome, and the
//! conversation it adds to. The server functions here back the session page.

#[cfg(feature = "ssr")]
pub mod adapter;
#[cfg(feature = "ssr")]
pub mod process;
#[cfg(feature = "ssr")]
pub mod runner;
#[cfg(feature = "ssr")]
pub mod store;

use crate::{
    error::AppError, live::OutputBacklog, project::Project, session::Session,
    session_state::SessionState, text_enum::text_enum, transition::Transition,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Largest message accepted, in bytes (larger ones get HTTP 413).
pub const MAX_MESSAGE_BYTES: usize = 100_000;

text_enum! {
    /// How a run ended.
    pub enum Outcome ("run outcome") {
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Interrupted = "interrupted",
    }
}

impl Outcome {
    /// The outcome a run-ending event records.
    pub fn of(event: &crate::transition::TransitionEvent) -> Self {
        use crate::transition::TransitionEvent as E;
        match event {
            E::Succeed | E::End => Self::Succeeded,
            E::Cancel => Self::Cancelled,
            E::Interrupt | E::Orphan(_) => Self::Interrupted,
            E::Fail(_) | E::Send | E::Sync => Self::Failed,
        }
    }
}

text_enum! {
    /// Who wrote a message.
    pub enum Role ("message role") {
        User = "user",
        Agent = "agent",
    }
}

/// One agent process started by a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::runs))]
pub struct Run {
    pub id: String,
    pub session_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<Outcome>,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<i64>,
    pub pid: Option<i32>,
    /// The agent's own conversation id (Claude session id, Codex thread id).
    pub agent_session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub error_message: Option<String>,
    /// Tools the agent was refused during the run, comma-separated.
    pub denied_tools: Option<String>,
}

/// A message in a session's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::messages))]
pub struct Message {
    pub id: i32,
    pub session_id: String,
    pub run_id: Option<String>,
    pub role: Role,
    pub content: String,
    pub created_at: i64,
}

/// Messages in one page of a session's history (with the runs they started).
pub const MESSAGES_PER_PAGE: usize = 100;
/// Timeline entries in one page of a session's history.
pub const TRANSITIONS_PER_PAGE: usize = 200;

/// Where a page of a session's history ends: the newest messages and
/// timeline entries before these positions, or the newest of all when
/// `None`. Each page's first id or seq is the next page's cursor, so paging
/// back neither skips nor repeats anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Before {
    /// Messages (and their runs) with a smaller id than this.
    pub message: Option<i32>,
    /// Timeline entries with a smaller `seq` than this.
    pub transition: Option<i32>,
}

/// What the session page shows: the session and one page of its history
/// (a long-running session has far more than a page should carry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub project: Project,
    pub session: Session,
    /// At most [`MESSAGES_PER_PAGE`], oldest first.
    pub messages: Vec<Message>,
    /// The runs started by the user messages among `messages`, oldest first.
    pub runs: Vec<Run>,
    /// At most [`TRANSITIONS_PER_PAGE`] state changes, oldest first.
    pub transitions: Vec<Transition>,
    /// The session's latest approval requests, oldest first.
    pub approvals: Vec<crate::approval::Approval>,
    /// Whether older messages exist (page back with `before` = the first id).
    pub has_earlier: bool,
    /// Whether older timeline entries exist (page back with the first seq).
    pub has_earlier_transitions: bool,
    /// The change-log position this snapshot is consistent with.
    pub seq: i32,
    /// The running run's output so far (its newest lines), read just after
    /// the rest: what a page opened mid-run shows before its stream sends more.
    pub output: Option<OutputBacklog>,
}

/// What the session page's island shows: the state and a page of the
/// conversation, each user message with a one-line summary of its run.
/// Kept small because it is what the browser downloads and decodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct Conversation {
    /// The change-log position this snapshot reflects: the page applies it
    /// only if it is not older than the changes it has already shown.
    pub seq: i32,
    pub state: SessionState,
    pub error_message: Option<String>,
    /// What the session waits for from the person, if anything.
    pub attention: Option<crate::session_state::Attention>,
    /// When a hook last reported (terminal sessions).
    pub last_hook_at: Option<i64>,
    /// When the agent ended the session, if it did.
    pub ended_at: Option<i64>,
    pub agent: crate::agent::AgentKind,
    pub permission_mode: crate::permission::PermissionMode,
    /// The session's latest approval requests, oldest first.
    pub approvals: Vec<crate::approval::Approval>,
    /// Oldest first.
    pub entries: Vec<ConversationEntry>,
    /// Whether the session has messages before the first entry.
    pub has_earlier: bool,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(Conversation {
    required: [
        seq,
        state,
        agent,
        permission_mode,
        approvals,
        entries,
        has_earlier
    ],
    optional: [error_message, attention, last_hook_at, ended_at],
    skipped: [],
});

/// One message in a [`Conversation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct ConversationEntry {
    /// The message's id: its place in the conversation and the paging cursor.
    pub id: i32,
    pub role: Role,
    pub content: String,
    /// For a user message: "succeeded · 1.2 s", "failed · 3 ms", "running".
    pub run_summary: Option<String>,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(ConversationEntry {
    required: [id, role, content],
    optional: [run_summary],
    skipped: [],
});

impl SessionDetail {
    /// The island's view of this session.
    pub fn conversation(&self) -> Conversation {
        Conversation::new(
            &self.session,
            &self.messages,
            &self.runs,
            self.has_earlier,
            self.seq,
        )
        .with_approvals(self.approvals.clone())
    }
}

impl Conversation {
    /// A page of `session`'s messages, each user message with its run's summary.
    pub fn new(
        session: &Session,
        messages: &[Message],
        runs: &[Run],
        has_earlier: bool,
        seq: i32,
    ) -> Self {
        let summary = |run: &Run| {
            let outcome = run.outcome.map_or("running", Outcome::as_str);
            let mut summary = match run.duration_ms {
                Some(ms) => format!("{outcome} · {}", format_duration(ms)),
                None => outcome.to_owned(),
            };
            if let Some(tools) = &run.denied_tools {
                summary.push_str(&format!(" · denied: {tools}"));
            }
            summary
        };
        let entries = messages
            .iter()
            .map(|message| ConversationEntry {
                id: message.id,
                role: message.role,
                content: message.content.clone(),
                run_summary: (message.role == Role::User)
                    .then_some(message.run_id.as_ref())
                    .flatten()
                    .and_then(|id| runs.iter().find(|run| &run.id == id))
                    .map(summary),
            })
            .collect();
        Self {
            seq,
            state: session.state,
            error_message: session.error_message.clone(),
            attention: session.attention,
            last_hook_at: session.last_hook_at,
            ended_at: session.ended_at,
            agent: session.agent,
            permission_mode: session.permission_mode,
            approvals: Vec::new(),
            entries,
            has_earlier,
        }
    }

    /// This page with the session's approval requests.
    pub fn with_approvals(self, approvals: Vec<crate::approval::Approval>) -> Self {
        Self { approvals, ..self }
    }

    /// Whether a request waits for an answer.
    pub fn has_pending_approval(&self) -> bool {
        self.approvals
            .iter()
            .any(crate::approval::Approval::is_pending)
    }

    /// The cursor of the page before this one, if there is one.
    pub fn earlier_cursor(&self) -> Option<i32> {
        self.has_earlier
            .then(|| self.entries.first().map(|entry| entry.id))
            .flatten()
    }

    /// Applies a reloaded newest page, unless it is older than what is
    /// shown. Earlier pages already loaded stay when the new page joins
    /// onto them; if it does not (more arrived than a page holds), they go.
    pub fn apply_reload(&mut self, fresh: Self) {
        if fresh.seq < self.seq {
            return;
        }
        let joins = match (fresh.entries.first(), self.entries.last()) {
            (Some(first), Some(last)) => first.id <= last.id,
            _ => false,
        };
        let mut entries = Vec::new();
        let mut has_earlier = fresh.has_earlier;
        if joins && fresh.has_earlier {
            let first = fresh.entries[0].id;
            entries = std::mem::take(&mut self.entries);
            entries.retain(|entry| entry.id < first);
            if !entries.is_empty() {
                has_earlier = self.has_earlier;
            }
        }
        entries.extend(fresh.entries);
        *self = Self {
            entries,
            has_earlier,
            ..fresh
        };
    }

    /// Puts an earlier page in front of what is shown (its state is not
    /// applied: the newest page carries that).
    pub fn prepend(&mut self, earlier: Self) {
        let first = self.entries.first().map_or(i32::MAX, |entry| entry.id);
        let mut entries: Vec<_> = earlier
            .entries
            .into_iter()
            .filter(|entry| entry.id < first)
            .collect();
        if entries.is_empty() {
            return;
        }
        entries.append(&mut self.entries);
        self.entries = entries;
        self.has_earlier = earlier.has_earlier;
    }
}

/// A page of a session's timeline (its state changes), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct TimelinePage {
    pub transitions: Vec<Transition>,
    /// Whether older entries exist (page back with the first entry's `seq`).
    pub has_earlier: bool,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(TimelinePage {
    required: [transitions, has_earlier],
    optional: [],
    skipped: [],
});

/// "850 ms", "2.4 s", "1m 12s", "2h 5m" (integer maths: float formatting
/// would add kilobytes to the browser bundle).
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms} ms"),
        1..60 => format!("{secs}.{} s", (ms % 1000) / 100),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// The session page island's data: the session's state and the page of
/// messages before `before` (the newest page without it).
#[server(prefix = "/rpc", endpoint = "load_conversation")]
pub async fn load_conversation(
    session_id: String,
    before: Option<i32>,
) -> Result<Conversation, AppError> {
    crate::error::with_status(store::conversation(&expect_context(), &session_id, before).await)
}

/// The page of a session's timeline before `before` (the newest without it).
#[server(prefix = "/rpc", endpoint = "load_timeline")]
pub async fn load_timeline(
    session_id: String,
    before: Option<i32>,
) -> Result<TimelinePage, AppError> {
    crate::error::with_status(store::timeline(&expect_context(), &session_id, before).await)
}

/// A session with a page of its conversation, runs and state history.
#[server(prefix = "/rpc", endpoint = "load_session_detail")]
pub async fn load_session_detail(
    session_id: String,
    before: Option<i32>,
    transitions_before: Option<i32>,
) -> Result<SessionDetail, AppError> {
    let before = Before {
        message: before,
        transition: transitions_before,
    };
    crate::error::with_status(store::history(&expect_context(), &session_id, before).await)
}

/// Sends a message: the session becomes `working` and its agent starts.
/// Fails with 409 while a run is in progress.
#[server(prefix = "/rpc", endpoint = "send_message")]
pub async fn send_message(session_id: String, message: String) -> Result<Session, AppError> {
    let runner = expect_context::<std::sync::Arc<runner::Runner>>();
    crate::error::with_status(runner.send(&session_id, &message).await)
}

/// Cancels the session's run: its processes are stopped and the session
/// returns to `idle`.
#[server(prefix = "/rpc", endpoint = "cancel_run")]
pub async fn cancel_run(session_id: String) -> Result<Session, AppError> {
    let runner = expect_context::<std::sync::Arc<runner::Runner>>();
    crate::error::with_status(runner.cancel(&session_id).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seq: i32, ids: std::ops::RangeInclusive<i32>, has_earlier: bool) -> Conversation {
        Conversation {
            seq,
            state: SessionState::Idle,
            error_message: None,
            attention: None,
            last_hook_at: None,
            ended_at: None,
            agent: crate::agent::AgentKind::Shell,
            permission_mode: crate::permission::PermissionMode::Ask,
            approvals: Vec::new(),
            entries: ids
                .map(|id| ConversationEntry {
                    id,
                    role: Role::User,
                    content: id.to_string(),
                    run_summary: None,
                })
                .collect(),
            has_earlier,
        }
    }

    fn ids(conversation: &Conversation) -> Vec<i32> {
        conversation.entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn an_earlier_page_goes_in_front_once() {
        let mut shown = page(5, 11..=20, true);
        assert_eq!(shown.earlier_cursor(), Some(11));
        shown.prepend(page(1, 1..=10, false));
        assert_eq!(ids(&shown), (1..=20).collect::<Vec<_>>());
        assert_eq!((shown.earlier_cursor(), shown.seq), (None, 5));
        // The same page again (a double click) changes nothing.
        shown.prepend(page(1, 1..=10, false));
        assert_eq!(ids(&shown), (1..=20).collect::<Vec<_>>());
    }

    #[test]
    fn a_reload_keeps_earlier_pages_it_joins_and_never_goes_back_in_time() {
        let mut shown = page(5, 11..=20, true);
        shown.prepend(page(5, 1..=10, false));
        // Two more messages: the newest page now starts at 13.
        shown.apply_reload(page(7, 13..=22, true));
        assert_eq!(ids(&shown), (1..=22).collect::<Vec<_>>());
        assert_eq!((shown.has_earlier, shown.seq), (false, 7));
        // An answer read before the last applied change is ignored.
        shown.apply_reload(page(6, 14..=23, true));
        assert_eq!(ids(&shown), (1..=22).collect::<Vec<_>>());
        // A page that does not join on would leave a gap: start over from it.
        shown.apply_reload(page(9, 40..=49, true));
        assert_eq!(ids(&shown), (40..=49).collect::<Vec<_>>());
        assert_eq!(shown.earlier_cursor(), Some(40));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(2_450), "2.4 s");
        assert_eq!(format_duration(72_000), "1m 12s");
        assert_eq!(format_duration(7_500_000), "2h 5m");
        assert_eq!(format_duration(-5), "0 ms");
    }
}
