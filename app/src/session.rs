//! Agent sessions: a named conversation with one agent in one project.

#[cfg(feature = "ssr")]
pub mod store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_changes_and_make_the_title() {
        let mut counts = StateCounts {
            idle: 2,
            working: 0,
            error: 0,
        };
        assert_eq!(counts.title_prefix(), "");
        counts.add(SessionState::Idle, -1);
        counts.add(SessionState::Working, 1);
        assert_eq!(counts.title_prefix(), "(1 working) ");
        counts.add(SessionState::Error, 1);
        counts.add(SessionState::Working, 1);
        assert_eq!(counts.title_prefix(), "(2 working · 1 error) ");
        assert_eq!((counts.get(SessionState::Idle), counts.total()), (1, 4));
    }
}

use crate::{
    agent::AgentKind,
    error::AppError,
    project::Project,
    session_state::{Attention, SessionState},
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A session as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(diesel::Queryable, diesel::Selectable, diesel::Insertable)
)]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::sessions))]
pub struct Session {
    /// A UUID, as text.
    pub id: String,
    pub project_id: i32,
    pub name: String,
    pub agent: AgentKind,
    pub state: SessionState,
    /// Set exactly when `state` is `Error`.
    pub error_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_changed_at: i64,
    /// The agent's own conversation id, once a run reported it: later
    /// messages continue that conversation.
    pub external_id: Option<String>,
    /// Messages in the agent's transcript at the last sync (imported sessions).
    pub message_count: i32,
    /// What the working session waits for from the person, if anything.
    pub attention: Option<Attention>,
    /// When a hook last reported for it: set for terminal sessions only.
    pub last_hook_at: Option<i64>,
    /// When the agent ended the session (it may be resumed later).
    pub ended_at: Option<i64>,
}

impl Session {
    /// The session's own page.
    pub fn url(&self) -> String {
        format!("/projects/{}/sessions/{}", self.project_id, self.id)
    }

    /// A new session: `idle`, no error, nothing reported yet.
    #[cfg(feature = "ssr")]
    pub fn new(project_id: i32, name: String, agent: AgentKind, now: i64) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            name,
            agent,
            state: SessionState::Idle,
            error_message: None,
            created_at: now,
            updated_at: now,
            state_changed_at: now,
            external_id: None,
            message_count: 0,
            attention: None,
            last_hook_at: None,
            ended_at: None,
        }
    }

    /// Whether it runs in a terminal and reports through hooks.
    pub fn is_terminal(&self) -> bool {
        self.last_hook_at.is_some()
    }
}

/// A project with its sessions, newest first: what the sessions page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectWithSessions {
    pub project: Project,
    /// All sessions, or those in the filtered state.
    pub sessions: Vec<Session>,
    /// How many of the project's sessions are in each state (unfiltered).
    pub counts: StateCounts,
    /// The change-log position this snapshot is consistent with: a live
    /// view follows from here.
    pub seq: i32,
}

/// Sessions per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub idle: i64,
    pub working: i64,
    pub error: i64,
}

impl StateCounts {
    pub fn get(&self, state: SessionState) -> i64 {
        match state {
            SessionState::Idle => self.idle,
            SessionState::Working => self.working,
            SessionState::Error => self.error,
        }
    }

    pub fn add(&mut self, state: SessionState, delta: i64) {
        let count = match state {
            SessionState::Idle => &mut self.idle,
            SessionState::Working => &mut self.working,
            SessionState::Error => &mut self.error,
        };
        *count = (*count + delta).max(0);
    }

    pub fn total(&self) -> i64 {
        self.idle + self.working + self.error
    }

    /// "(2 working · 1 error) " for the tab title; empty when nothing is
    /// working or failed.
    pub fn title_prefix(&self) -> String {
        let parts: Vec<String> = [(self.working, "working"), (self.error, "error")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("({}) ", parts.join(" · "))
        }
    }
}

/// The project and its sessions (all, or those in `state`), newest first.
#[server(prefix = "/rpc", endpoint = "project_sessions")]
pub async fn project_sessions(
    project_id: i32,
    state: Option<SessionState>,
) -> Result<ProjectWithSessions, AppError> {
    crate::error::with_status(store::list_for_project(&expect_context(), project_id, state).await)
}

/// Creates a session in a project: `idle`, no error message.
#[server(prefix = "/rpc", endpoint = "create_session")]
pub async fn create_session(
    project_id: i32,
    name: String,
    agent: AgentKind,
) -> Result<Session, AppError> {
    crate::error::with_status(store::create(&expect_context(), project_id, &name, agent).await)
}

/// Renames a session.
#[server(prefix = "/rpc", endpoint = "rename_session")]
pub async fn rename_session(session_id: String, name: String) -> Result<Session, AppError> {
    crate::error::with_status(store::rename(&expect_context(), &session_id, &name).await)
}

/// Deletes a session (a working one's run is cancelled first); returns its id.
#[server(prefix = "/rpc", endpoint = "delete_session")]
pub async fn delete_session(session_id: String) -> Result<String, AppError> {
    let runner = expect_context::<std::sync::Arc<crate::run::runner::Runner>>();
    crate::error::with_status(runner.delete(&session_id).await)
}
