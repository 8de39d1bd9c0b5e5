//! The JSON API for scripts: the same domain calls as the server functions,
//! with REST paths, JSON bodies, and errors as `{ "error": "..." }` with the
//! status a client expects.

use app::{
    agent::AgentKind,
    approval::{self, Answer, Approval},
    db::Db,
    error::AppError,
    hook::{self, HookReport, Sender},
    notify::{self, outbox::Outbox, Events, Target},
    permission::PermissionMode,
    project::{self, Project},
    run::{runner::Runner, store as runs, Before, SessionDetail},
    session::{self, Session},
    sync::{scan::Syncer, SyncSummary},
    SessionState,
};
use axum::{
    body::Bytes,
    extract::{
        rejection::{BytesRejection, JsonRejection, QueryRejection},
        Path, Query, State,
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
    Json, Router,
};
use serde::Deserialize;
use std::sync::Arc;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub db: Db,
    pub runner: Arc<Runner>,
    pub outbox: Outbox,
    pub syncer: Arc<Syncer>,
}

/// The `/api` routes, ready to nest into a router of any state.
pub fn router<S>(state: ApiState) -> Router<S> {
    Router::new()
        .route("/projects", get(list_projects).post(add_project))
        .route(
            "/projects/{project_id}",
            patch(rename_project).delete(remove_project),
        )
        .route("/projects/{project_id}/sync", post(sync_project))
        .route(
            "/projects/{project_id}/sessions",
            get(list_sessions).post(create_session),
        )
        .route(
            "/sessions/{session_id}",
            get(session_detail)
                .patch(rename_session)
                .delete(delete_session),
        )
        .route("/sessions/{session_id}/messages", post(send_message))
        .route("/sessions/{session_id}/cancel", post(cancel_run))
        .route("/sessions/{session_id}/approvals", get(session_approvals))
        .route(
            "/sessions/{session_id}/permission-mode",
            axum::routing::put(set_permission_mode),
        )
        .route("/approvals", get(pending_approvals))
        .route(
            "/projects/{project_id}/approvals",
            axum::routing::put(set_project_approvals),
        )
        .route("/approvals/{approval_id}", post(answer_approval))
        .route("/hooks/{agent}", post(receive_hook))
        .route("/hooks", get(hook_reports))
        .route(
            "/notify-targets",
            get(list_notify_targets).post(add_notify_target),
        )
        .route(
            "/notify-targets/{id}",
            patch(update_notify_target).delete(remove_notify_target),
        )
        .route("/notify-targets/{id}/test", post(test_notify_target))
        .with_state(state)
}

/// An error as JSON with its status.
pub struct ApiError(StatusCode, String);

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        Self(
            StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            err.to_string(),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
            other => other,
        };
        Self(status, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self(StatusCode::UNPROCESSABLE_ENTITY, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn project_id(raw: &str) -> Result<i32, ApiError> {
    raw.parse()
        .map_err(|_| AppError::NotFound(format!("project {raw} does not exist")).into())
}

async fn list_projects(State(api): State<ApiState>) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(project::store::list(&api.db).await?))
}

#[derive(Deserialize)]
struct SessionFilter {
    state: Option<String>,
}

async fn list_sessions(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
    Query(filter): Query<SessionFilter>,
) -> ApiResult<Json<Vec<Session>>> {
    let state = filter
        .state
        .map(|s| s.parse::<SessionState>())
        .transpose()
        .map_err(|err| AppError::Invalid(err.to_string()))?;
    let page = session::store::list_for_project(&api.db, project_id(&raw_id)?, state).await?;
    Ok(Json(page.sessions))
}

/// Unknown fields are refused (422 naming the field) rather than ignored:
/// a misspelt field would otherwise silently fall back to its default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    name: String,
    #[serde(default)]
    agent: AgentKind,
    /// The agent's default when absent.
    #[serde(default)]
    permission_mode: Option<PermissionMode>,
}

async fn create_session(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
    body: Result<Json<NewSession>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let Json(new) = body?;
    let created = session::store::create_with_mode(
        &api.db,
        project_id(&raw_id)?,
        &new.name,
        new.agent,
        new.permission_mode,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Which page of a session's history: `?before=MESSAGE_ID` and
/// `?transitions_before=SEQ`, each the first id (or seq) of the page shown.
#[derive(Deserialize)]
struct HistoryQuery {
    before: Option<i32>,
    transitions_before: Option<i32>,
}

/// The session with the newest page of its history (or the page before the
/// cursors); `has_earlier` / `has_earlier_transitions` say whether more exist.
async fn session_detail(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<SessionDetail>> {
    let Query(query) = query.map_err(|err| AppError::Invalid(err.body_text()))?;
    let before = Before {
        message: query.before,
        transition: query.transitions_before,
    };
    Ok(Json(runs::history(&api.db, &session_id, before).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    message: String,
}

async fn send_message(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
    body: Result<Json<SendMessage>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let Json(send) = body?;
    let session = api.runner.send(&session_id, &send.message).await?;
    Ok((StatusCode::ACCEPTED, Json(session)))
}

async fn cancel_run(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(api.runner.cancel(&session_id).await?))
}

/// A hook from Claude Code or Codex (`POST /api/hooks/claude|codex`): the
/// agent's own JSON body (Claude's `type: "http"` hooks post exactly that;
/// `agentdeck hook` forwards it with the agent's process in headers).
/// 200 when it reached a session, 202 when set aside (a directory in no
/// project, an event not tracked, a run agentdeck runs itself), 422 for a
/// body that is not a hook, 413 beyond the request body limit (the
/// router's, which [`hook::MAX_HOOK_BYTES`] matches).
async fn receive_hook(
    State(api): State<ApiState>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let agent = match agent.parse::<AgentKind>() {
        Ok(agent @ (AgentKind::Claude | AgentKind::Codex)) => agent,
        _ => {
            return Err(AppError::NotFound(format!(
                "no hooks for {agent}: use /api/hooks/claude or /api/hooks/codex"
            ))
            .into())
        }
    };
    let body = body.map_err(|rejection| ApiError(rejection.status(), rejection.body_text()))?;
    let report = hook::parse(agent, &body).map_err(|err| AppError::Invalid(err.to_string()))?;
    let asks = agent == AgentKind::Claude && report.event == "PermissionRequest";
    let ingested = hook::store::ingest(&api.db, report, sender(&headers)?).await?;
    let status = if ingested.outcome.reached_a_session() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    if let (true, Some(session_id)) = (asks, ingested.session_id.clone()) {
        if let Some(decision) = dashboard_decision(&api, session_id, &body).await? {
            return Ok((StatusCode::OK, Json(decision)).into_response());
        }
    }
    Ok((status, Json(ingested)).into_response())
}

/// A terminal's `PermissionRequest`, answered from the dashboard when the
/// project lets it: the hook's decision, or `None` (the terminal asks).
async fn dashboard_decision(
    api: &ApiState,
    session_id: String,
    body: &[u8],
) -> Result<Option<serde_json::Value>, ApiError> {
    let id = session_id.clone();
    let Some(wait) = api
        .db
        .run(move |conn| approval::store::terminal_wait(conn, &id))
        .await?
    else {
        return Ok(None);
    };
    let event: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| event.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let new = approval::store::NewApproval {
        session_id,
        run_id: None,
        // Hooks carry no request id of their own.
        request_id: crate::access::random_hex::<16>()
            .map_err(|err| AppError::Internal(format!("no randomness for a request id: {err}")))?,
        tool: text("tool_name").unwrap_or_else(|| "a tool".to_owned()),
        input: event
            .get("tool_input")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
        reason: None,
        suggestions: event.get("permission_suggestions").cloned(),
    };
    let answered =
        approval::store::await_terminal_answer(&api.db, api.runner.broker(), new, wait).await?;
    Ok(answered.map(|approval| {
        serde_json::json!({
            "hookSpecificOutput": {
                "hookEventName": "PermissionRequest",
                "decision": approval::store::agent_decision(&approval),
            }
        })
    }))
}

/// The agent process `agentdeck hook` found, from its headers.
fn sender(headers: &HeaderMap) -> Result<Sender, ApiError> {
    fn header<T: std::str::FromStr>(
        headers: &HeaderMap,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(value) = headers.get(name) else {
            return Ok(None);
        };
        value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| AppError::Invalid(format!("header {name} is not valid")).into())
    }
    Ok(Sender {
        pid: header::<i32>(headers, hook::PID_HEADER)?.filter(|&pid| pid > 1),
        started: header(headers, hook::STARTED_HEADER)?,
        host: header::<String>(headers, hook::HOST_HEADER)?.filter(|h| !h.is_empty()),
        own_run: header::<String>(headers, hook::RUN_HEADER)?.filter(|r| !r.is_empty()),
    })
}

/// The last hook each agent sent (`GET /api/hooks`).
async fn hook_reports(State(api): State<ApiState>) -> ApiResult<Json<Vec<HookReport>>> {
    Ok(Json(hook::store::reports(&api.db).await?))
}

/// A session's latest approval requests (pending and answered), oldest first.
async fn session_approvals(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
) -> ApiResult<Json<Vec<Approval>>> {
    let approvals = api
        .db
        .run(move |conn| {
            session::store::find(conn, &session_id)?;
            approval::store::for_session(conn, &session_id)
        })
        .await?;
    Ok(Json(approvals))
}

/// Every request waiting for an answer, across sessions, oldest first.
async fn pending_approvals(State(api): State<ApiState>) -> ApiResult<Json<Vec<Approval>>> {
    Ok(Json(api.db.run(approval::store::pending).await?))
}

/// Answers a request: `{"decision": "allow", "always": false}` or
/// `{"decision": "deny", "message": "why"}`. 409 once it is answered.
async fn answer_approval(
    State(api): State<ApiState>,
    Path(approval_id): Path<String>,
    body: Result<Json<Answer>, JsonRejection>,
) -> ApiResult<Json<Approval>> {
    let Json(answer) = body?;
    let broker = api.runner.broker();
    Ok(Json(
        approval::store::answer(&api.db, broker, &approval_id, answer).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeChange {
    mode: PermissionMode,
}

/// Changes a session's permission mode; 409 while it is working.
async fn set_permission_mode(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
    body: Result<Json<ModeChange>, JsonRejection>,
) -> ApiResult<Json<Session>> {
    let Json(change) = body?;
    Ok(Json(
        session::store::set_permission_mode(&api.db, &session_id, change.mode).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectApprovals {
    /// Whether terminal sessions wait for an answer from the dashboard.
    enabled: bool,
    /// How long they wait (10 to 3600 s; 600 when absent).
    #[serde(default = "default_wait_secs")]
    wait_secs: i32,
}

fn default_wait_secs() -> i32 {
    600
}

/// "Approve from agentdeck" for a project's terminal Claude sessions.
async fn set_project_approvals(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
    body: Result<Json<ProjectApprovals>, JsonRejection>,
) -> ApiResult<Json<Project>> {
    let Json(change) = body?;
    Ok(Json(
        project::store::set_approvals(
            &api.db,
            project_id(&raw_id)?,
            change.enabled,
            change.wait_secs,
        )
        .await?,
    ))
}

fn target_id(raw: &str) -> Result<i32, ApiError> {
    raw.parse()
        .map_err(|_| AppError::NotFound(format!("notification target {raw} does not exist")).into())
}

/// Every notification target, URLs masked (`GET /api/notify-targets`).
async fn list_notify_targets(State(api): State<ApiState>) -> ApiResult<Json<Vec<Target>>> {
    let targets = notify::store::list(&api.db).await?;
    Ok(Json(targets.into_iter().map(Target::masked).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTarget {
    kind: Option<String>,
    url: String,
    on_failed: Option<bool>,
    on_needs_you: Option<bool>,
    on_finished: Option<bool>,
}

/// Adds a target (201, with its whole URL: this caller sent it).
async fn add_notify_target(
    State(api): State<ApiState>,
    body: Result<Json<NewTarget>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Target>)> {
    let Json(new) = body?;
    let kind = notify::store::parse_kind(new.kind.as_deref())?;
    let all = Events::default();
    let events = Events {
        on_failed: new.on_failed.unwrap_or(all.on_failed),
        on_needs_you: new.on_needs_you.unwrap_or(all.on_needs_you),
        on_finished: new.on_finished.unwrap_or(all.on_finished),
    };
    let target = notify::store::add(&api.db, kind, &new.url, events).await?;
    Ok((StatusCode::CREATED, Json(target)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEvents {
    on_failed: Option<bool>,
    on_needs_you: Option<bool>,
    on_finished: Option<bool>,
}

/// Turns a target's events on or off; fields left out keep their value.
async fn update_notify_target(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
    body: Result<Json<TargetEvents>, JsonRejection>,
) -> ApiResult<Json<Target>> {
    let Json(change) = body?;
    let id = target_id(&raw_id)?;
    let now = notify::store::get(&api.db, id).await?;
    let events = Events {
        on_failed: change.on_failed.unwrap_or(now.on_failed),
        on_needs_you: change.on_needs_you.unwrap_or(now.on_needs_you),
        on_finished: change.on_finished.unwrap_or(now.on_finished),
    };
    let target = notify::store::set_events(&api.db, id, events).await?;
    Ok(Json(target.masked()))
}

/// Removes a dashboard target (204); a `--notify` one is a 409.
async fn remove_notify_target(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
) -> ApiResult<StatusCode> {
    notify::store::remove(&api.db, target_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a test notification (202); the result shows as its last delivery.
async fn test_notify_target(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
) -> ApiResult<StatusCode> {
    api.outbox.send_test(&api.db, target_id(&raw_id)?).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    /// An existing directory: absolute, or starting with `~`.
    path: String,
    /// The directory's own name when absent.
    #[serde(default)]
    name: Option<String>,
}

/// Adds a project (201), then imports its transcripts in the background,
/// as the dashboard does.
async fn add_project(
    State(api): State<ApiState>,
    body: Result<Json<NewProject>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let Json(new) = body?;
    let project = project::store::add(&api.db, &new.path, new.name.as_deref()).await?;
    api.syncer.sync_in_background(project.clone());
    Ok((StatusCode::CREATED, Json(project)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename_project(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
    body: Result<Json<Rename>, JsonRejection>,
) -> ApiResult<Json<Project>> {
    let Json(rename) = body?;
    Ok(Json(
        project::store::rename(&api.db, project_id(&raw_id)?, &rename.name).await?,
    ))
}

/// Removes the project and its sessions (runs in progress there are
/// cancelled first): `{"id": ID}`.
async fn remove_project(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = api.runner.remove_project(project_id(&raw_id)?).await?;
    Ok(Json(serde_json::json!({ "id": id })))
}

/// Imports the project's sessions from transcripts and says what changed.
async fn sync_project(
    State(api): State<ApiState>,
    Path(raw_id): Path<String>,
) -> ApiResult<Json<SyncSummary>> {
    let project = project::store::get(&api.db, project_id(&raw_id)?).await?;
    Ok(Json(api.syncer.sync(&project).await?))
}

async fn rename_session(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
    body: Result<Json<Rename>, JsonRejection>,
) -> ApiResult<Json<Session>> {
    let Json(rename) = body?;
    Ok(Json(
        session::store::rename(&api.db, &session_id, &rename.name).await?,
    ))
}

/// Deletes the session (a working one's run is cancelled first): `{"id": ID}`.
async fn delete_session(
    State(api): State<ApiState>,
    Path(session_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = api.runner.delete(&session_id).await?;
    Ok(Json(serde_json::json!({ "id": id })))
}
