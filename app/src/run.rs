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
    error::AppError, project::Project, session::Session, session_state::SessionState,
    text_enum::text_enum, transition::Transition,
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
            E::Succeed => Self::Succeeded,
            E::Cancel => Self::Cancelled,
            E::Interrupt => Self::Interrupted,
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

/// Everything the session page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub project: Project,
    pub session: Session,
    pub messages: Vec<Message>,
    pub runs: Vec<Run>,
    pub transitions: Vec<Transition>,
    /// The change-log position this snapshot is consistent with.
    pub seq: i32,
}

/// What the session page's island shows: the state and the conversation,
/// each user message with a one-line summary of its run. Kept small because
/// it is what the browser downloads and decodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The change-log position this snapshot reflects: the page applies it
    /// only if it is not older than the changes it has already shown.
    pub seq: i32,
    pub state: SessionState,
    pub error_message: Option<String>,
    pub entries: Vec<ConversationEntry>,
}

/// One message in a [`Conversation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEntry {
    pub role: Role,
    pub content: String,
    /// For a user message: "succeeded · 1.2 s", "failed · 3 ms", "running".
    pub run_summary: Option<String>,
}

impl SessionDetail {
    /// The island's view of this session.
    pub fn conversation(&self) -> Conversation {
        let summary = |run: &Run| {
            let outcome = run.outcome.map_or("running", Outcome::as_str);
            match run.duration_ms {
                Some(ms) => format!("{outcome} · {}", format_duration(ms)),
                None => outcome.to_owned(),
            }
        };
        let entries = self
            .messages
            .iter()
            .map(|message| ConversationEntry {
                role: message.role,
                content: message.content.clone(),
                run_summary: (message.role == Role::User)
                    .then_some(message.run_id.as_ref())
                    .flatten()
                    .and_then(|id| self.runs.iter().find(|run| &run.id == id))
                    .map(summary),
            })
            .collect();
        Conversation {
            seq: self.seq,
            state: self.session.state,
            error_message: self.session.error_message.clone(),
            entries,
        }
    }
}

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

/// The session page island's data.
#[server(prefix = "/rpc", endpoint = "load_conversation")]
pub async fn load_conversation(session_id: String) -> Result<Conversation, AppError> {
    crate::error::with_status(
        store::detail(&expect_context(), &session_id)
            .await
            .map(|d| d.conversation()),
    )
}

/// A session with its conversation, runs and state history.
#[server(prefix = "/rpc", endpoint = "load_session_detail")]
pub async fn load_session_detail(session_id: String) -> Result<SessionDetail, AppError> {
    crate::error::with_status(store::detail(&expect_context(), &session_id).await)
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
    use super::format_duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(2_450), "2.4 s");
        assert_eq!(format_duration(72_000), "1m 12s");
        assert_eq!(format_duration(7_500_000), "2h 5m");
        assert_eq!(format_duration(-5), "0 ms");
    }
}
