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
            ..StateCounts::default()
        };
        assert_eq!(counts.title_prefix(), "");
        counts.add(SessionState::Idle, -1);
        counts.add(SessionState::Working, 1);
        assert_eq!(counts.title_prefix(), "(1 working) ");
        counts.add(SessionState::Error, 1);
        counts.add(SessionState::Working, 1);
        assert_eq!(counts.title_prefix(), "(2 working · 1 error) ");
        assert_eq!((counts.get(SessionState::Idle), counts.total()), (1, 4));
        counts.needs_you = 1;
        assert_eq!(
            counts.title_prefix(),
            "(2 working · 1 error · 1 needs you) "
        );
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
///
/// The browser does not decode the decoder's `skipped` fields (they stay at
/// their defaults there): no page reads them, and each decoded field costs
/// the bundle about 0.4 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
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
    /// What the agent may do without asking.
    pub permission_mode: crate::permission::PermissionMode,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(Session {
    required: [
        id,
        project_id,
        name,
        agent,
        state,
        updated_at,
        state_changed_at,
        permission_mode
    ],
    optional: [error_message, attention, last_hook_at],
    skipped: [created_at, external_id, message_count, ended_at],
});

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
            permission_mode: crate::permission::PermissionMode::default_for(agent),
        }
    }

    /// Whether it runs in a terminal and reports through hooks.
    pub fn is_terminal(&self) -> bool {
        self.last_hook_at.is_some()
    }
}

/// A project with its sessions, newest first: what the sessions page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct ProjectWithSessions {
    pub project: Project,
    /// All sessions, or those in the filtered state.
    pub sessions: Vec<Session>,
    /// How many of the project's sessions are in each state (unfiltered).
    pub counts: StateCounts,
    /// The change-log position this snapshot is consistent with: a live
    /// view follows from here.
    pub seq: i32,
    /// Sessions whose run ended since they were last opened ("done, not seen").
    pub unseen: Vec<String>,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(ProjectWithSessions {
    required: [project, sessions, counts, seq, unseen],
    optional: [],
    skipped: [],
});

/// Sessions per state, and how many wait for the person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct StateCounts {
    pub idle: i64,
    pub working: i64,
    pub error: i64,
    /// Working sessions that need approval or input (counted in `working` too).
    pub needs_you: i64,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(StateCounts {
    required: [idle, working, error, needs_you],
    optional: [],
    skipped: [],
});

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

    /// Adds `other`'s counts to these.
    pub fn add_all(&mut self, other: &Self) {
        self.idle += other.idle;
        self.working += other.working;
        self.error += other.error;
        self.needs_you += other.needs_you;
    }

    /// Labels of the non-zero counts worth a look: "2 working", "1 error",
    /// "1 needs you", with the state each stands for (`None`: needs you).
    pub fn highlights(&self) -> Vec<(Option<SessionState>, String)> {
        [
            (Some(SessionState::Working), self.working, "working"),
            (Some(SessionState::Error), self.error, "error"),
            (None, self.needs_you, "needs you"),
        ]
        .into_iter()
        .filter(|(_, n, _)| *n > 0)
        .map(|(state, n, what)| (state, format!("{n} {what}")))
        .collect()
    }

    /// "(2 working · 1 error · 1 needs you) " for the tab title; empty when
    /// nothing is working, failed or waiting.
    pub fn title_prefix(&self) -> String {
        let parts: Vec<String> = [
            (self.working, "working"),
            (self.error, "error"),
            (self.needs_you, "needs you"),
        ]
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

/// A project with its live counts, for the projects page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct ProjectSummary {
    pub project: Project,
    pub counts: StateCounts,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(ProjectSummary {
    required: [project, counts],
    optional: [],
    skipped: [],
});

/// A session worth a look (working, failed, or waiting for the person),
/// with the name of its project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct ActiveSession {
    pub session: Session,
    pub project_name: String,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(ActiveSession {
    required: [session, project_name],
    optional: [],
    skipped: [],
});

/// Which active sessions the overview lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActiveFilter {
    Working,
    Failed,
    NeedsYou,
}

impl ActiveFilter {
    pub const ALL: [Self; 3] = [Self::Working, Self::Failed, Self::NeedsYou];

    /// The `?active=` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::Failed => "error",
            Self::NeedsYou => "attention",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    pub const fn label(self) -> &'static str {
        match self {
            Self::Working => "Working",
            Self::Failed => "Failed",
            Self::NeedsYou => "Needs you",
        }
    }

    pub fn matches(self, session: &Session) -> bool {
        match self {
            Self::Working => session.state == SessionState::Working,
            Self::Failed => session.state == SessionState::Error,
            Self::NeedsYou => session.attention.is_some(),
        }
    }
}

/// Whether a session belongs in the overview's active list.
pub fn is_active(session: &Session) -> bool {
    session.state != SessionState::Idle || session.attention.is_some()
}

/// Every project with its counts, and the active sessions across them,
/// newest change first: the projects page, consistent with `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
pub struct Overview {
    pub projects: Vec<ProjectSummary>,
    pub active: Vec<ActiveSession>,
    pub seq: i32,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(Overview {
    required: [projects, active, seq],
    optional: [],
    skipped: [],
});

impl Overview {
    /// The counts over every project.
    pub fn totals(&self) -> StateCounts {
        let mut totals = StateCounts::default();
        for summary in &self.projects {
            totals.add_all(&summary.counts);
        }
        totals
    }
}

/// The projects page's data.
#[server(prefix = "/rpc", endpoint = "load_overview")]
pub async fn load_overview() -> Result<Overview, AppError> {
    crate::error::with_status(store::overview(&expect_context()).await)
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
    permission_mode: Option<String>,
) -> Result<Session, AppError> {
    let created = match parse_mode(permission_mode.as_deref()) {
        Ok(mode) => {
            store::create_with_mode(&expect_context(), project_id, &name, agent, mode).await
        }
        Err(err) => Err(err),
    };
    crate::error::with_status(created)
}

/// A permission mode from a form field: empty means the agent's default.
pub fn parse_mode(
    text: Option<&str>,
) -> Result<Option<crate::permission::PermissionMode>, AppError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|err: crate::text_enum::UnknownValue| AppError::Invalid(err.0)),
    }
}

/// Changes the session's permission mode (only while it is not working).
#[server(prefix = "/rpc", endpoint = "set_permission_mode")]
pub async fn set_permission_mode(session_id: String, mode: String) -> Result<Session, AppError> {
    let changed = match parse_mode(Some(&mode)) {
        Ok(Some(mode)) => store::set_permission_mode(&expect_context(), &session_id, mode).await,
        Ok(None) => Err(AppError::Invalid("choose a permission mode".into())),
        Err(err) => Err(err),
    };
    crate::error::with_status(changed)
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

/// Marks the session as seen: its "done, not seen" marker goes.
#[server(prefix = "/rpc", endpoint = "mark_seen")]
pub async fn mark_seen(session_id: String) -> Result<(), AppError> {
    crate::error::with_status(store::mark_seen(&expect_context(), &session_id).await)
}
