//! Agent sessions: a named conversation with one agent in one project.

#[cfg(feature = "ssr")]
pub mod store;

use crate::{agent::AgentKind, error::AppError, project::Project, session_state::SessionState};
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
}

impl Session {
    /// The session's own page.
    pub fn url(&self) -> String {
        format!("/projects/{}/sessions/{}", self.project_id, self.id)
    }
}

/// A project with its sessions, newest first: what the sessions page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectWithSessions {
    pub project: Project,
    pub sessions: Vec<Session>,
}

/// The project and its sessions, newest first.
#[server(prefix = "/rpc", endpoint = "project_sessions")]
pub async fn project_sessions(project_id: i32) -> Result<ProjectWithSessions, AppError> {
    crate::error::with_status(store::list_for_project(&expect_context(), project_id, None).await)
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

/// Deletes a session; returns its id.
#[server(prefix = "/rpc", endpoint = "delete_session")]
pub async fn delete_session(session_id: String) -> Result<String, AppError> {
    crate::error::with_status(store::delete(&expect_context(), &session_id).await)
}
