//! Projects: directories on disk that agent sessions run in.

#[cfg(feature = "ssr")]
pub mod store;

use crate::error::AppError;
use leptos::prelude::*;
use serde::Serialize;

/// A project as stored and shown.
///
/// The browser does not decode the decoder's `skipped` fields (they stay at
/// their defaults there): no page reads them, and each decoded field costs
/// the bundle about 0.4 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(serde::Deserialize))]
#[cfg_attr(
    feature = "ssr",
    derive(diesel::Queryable, diesel::Selectable, diesel::Identifiable)
)]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::projects))]
pub struct Project {
    pub id: i32,
    pub name: String,
    /// Canonical absolute path of the project directory.
    pub path: String,
    pub created_at: i64,
    /// Whether a terminal Claude session's approval requests wait for an
    /// answer from the dashboard (else the terminal asks, as usual).
    pub approve_from_dashboard: bool,
    /// How long such a request waits before the terminal asks instead.
    pub approval_wait_secs: i32,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(Project {
    required: [id, name, path],
    optional: [],
    skipped: [created_at, approve_from_dashboard, approval_wait_secs],
});

impl Project {
    /// Where the project's sessions are listed.
    pub fn sessions_url(&self) -> String {
        format!("/projects/{}/sessions", self.id)
    }
}

/// All projects, by name.
#[server(prefix = "/rpc", endpoint = "list_projects")]
pub async fn list_projects() -> Result<Vec<Project>, AppError> {
    crate::error::with_status(store::list(&expect_context()).await)
}

/// Adds a project for an existing directory. `name` defaults to the
/// directory's own name.
#[server(prefix = "/rpc", endpoint = "add_project")]
pub async fn add_project(path: String, name: Option<String>) -> Result<Project, AppError> {
    let added = store::add(&expect_context(), &path, name.as_deref()).await;
    if let (Ok(project), Some(syncer)) = (
        &added,
        use_context::<std::sync::Arc<crate::sync::scan::Syncer>>(),
    ) {
        syncer.sync_in_background(project.clone());
    }
    crate::error::with_status(added)
}

/// Renames a project.
#[server(prefix = "/rpc", endpoint = "rename_project")]
pub async fn rename_project(project_id: i32, name: String) -> Result<Project, AppError> {
    crate::error::with_status(store::rename(&expect_context(), project_id, &name).await)
}

/// Removes a project and its sessions (runs in progress there are
/// cancelled first; the directory stays); returns its id.
#[server(prefix = "/rpc", endpoint = "remove_project")]
pub async fn remove_project(project_id: i32) -> Result<i32, AppError> {
    let runner = expect_context::<std::sync::Arc<crate::run::runner::Runner>>();
    crate::error::with_status(runner.remove_project(project_id).await)
}

/// "Approve from agentdeck" for the project's terminal Claude sessions:
/// `enabled` is a checkbox ("on" when ticked), `wait_minutes` how long a
/// request waits for an answer here before the terminal asks.
#[server(prefix = "/rpc", endpoint = "set_project_approvals")]
pub async fn set_project_approvals(
    project_id: i32,
    enabled: Option<String>,
    wait_minutes: i32,
) -> Result<Project, AppError> {
    let enabled = enabled.is_some_and(|v| v == "on" || v == "true");
    let wait_secs = wait_minutes.saturating_mul(60);
    crate::error::with_status(
        store::set_approvals(&expect_context(), project_id, enabled, wait_secs).await,
    )
}
