//! Approvals in the database, and the broker that hands each answer to the
//! run (or hook) waiting for it. A request opens with a change-log entry
//! marking the session "Needs approval"; every answer or close adds one
//! too, so every page following the log sees it resolved.

use super::{Answer, Approval, Status, DEFAULT_DENY_MESSAGE, MAX_DENY_MESSAGE_CHARS};
use crate::db::DbConn;
use crate::{
    db::{now_millis, schema::approvals, Db},
    error::AppError,
    live::LiveEvent,
    session_state::Attention,
    transition::{
        writer::{self, RunFence},
        Transition,
    },
};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::mpsc;

/// What closes requests left pending when the server stopped.
pub const RESTART_MESSAGE: &str = "The server restarted before an answer; the run was interrupted";
/// What closes a run's requests when the run ends before they are answered.
pub const RUN_ENDED_MESSAGE: &str = "The run ended before an answer";

/// A request the agent made, before it is stored.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub session_id: String,
    pub run_id: Option<String>,
    pub request_id: String,
    pub tool: String,
    pub input: Value,
    pub reason: Option<String>,
    pub suggestions: Option<Value>,
}

/// The fence a request's changes apply under: its run must still be the
/// session's current one; a terminal session's, that no run of ours is.
fn fence(run_id: Option<&str>) -> RunFence<'_> {
    match run_id {
        Some(run_id) => RunFence::End(run_id),
        None => RunFence::Terminal,
    }
}

/// Stores a request and marks the session "Needs approval", in one
/// transaction. `None` when the session is no longer in that run (or not
/// working): then nothing is stored and the agent should be denied.
pub fn open(
    conn: &mut DbConn,
    new: &NewApproval,
) -> Result<Option<(Approval, Transition)>, AppError> {
    crate::db::write_tx(conn, |conn| {
        let Some(entry) = writer::record_attention(
            conn,
            &new.session_id,
            Some(Attention::Approval),
            fence(new.run_id.as_deref()),
        )?
        else {
            return Ok(None);
        };
        let (summary, detail) = super::describe(&new.tool, &new.input);
        let suggestions = new
            .suggestions
            .as_ref()
            .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
            .map(Value::to_string);
        let approval = diesel::insert_into(approvals::table)
            .values((
                approvals::id.eq(uuid::Uuid::new_v4().to_string()),
                approvals::session_id.eq(&new.session_id),
                approvals::run_id.eq(&new.run_id),
                approvals::request_id.eq(&new.request_id),
                approvals::tool.eq(&new.tool),
                approvals::input.eq(new.input.to_string()),
                approvals::summary.eq(summary),
                approvals::detail.eq(detail),
                approvals::reason.eq(&new.reason),
                approvals::suggestions.eq(suggestions),
                approvals::created_at.eq(entry.at),
            ))
            .returning(crate::db::columns_of::<Approval>())
            .get_result(conn)?;
        Ok(Some((approval, entry)))
    })
}

/// The attention a session is left with: approval while any request of
/// it is pending.
fn remaining_attention(conn: &mut DbConn, session_id: &str) -> Result<Option<Attention>, AppError> {
    let pending: i64 = approvals::table
        .filter(approvals::session_id.eq(session_id))
        .filter(approvals::status.eq(Status::Pending))
        .count()
        .get_result(conn)?;
    Ok((pending > 0).then_some(Attention::Approval))
}

/// Records the person's answer: the first one wins. 404 for an unknown
/// request, 409 for one already answered or closed.
pub fn decide(
    conn: &mut DbConn,
    approval_id: &str,
    answer: &Answer,
) -> Result<(Approval, Option<Transition>), AppError> {
    let (status, always, message) = match answer {
        Answer::Allow { always } => (Status::Allowed, *always, None),
        Answer::Deny { message } => {
            let message = message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| m.chars().take(MAX_DENY_MESSAGE_CHARS).collect::<String>());
            (Status::Denied, false, message)
        }
    };
    crate::db::write_tx(conn, |conn| {
        let decided = diesel::update(
            approvals::table
                .find(approval_id)
                .filter(approvals::status.eq(Status::Pending)),
        )
        .set((
            approvals::status.eq(status),
            approvals::always.eq(always),
            approvals::message.eq(&message),
            approvals::decided_at.eq(now_millis()),
        ))
        .returning(crate::db::columns_of::<Approval>())
        .get_result::<Approval>(conn)
        .optional()?;
        let Some(approval) = decided else {
            let known = approvals::table
                .find(approval_id)
                .select(Approval::as_select())
                .first(conn)
                .optional()?;
            return Err(match known {
                None => {
                    AppError::NotFound(format!("approval request {approval_id} does not exist"))
                }
                Some(known) => AppError::Conflict(format!(
                    "this request was already answered ({})",
                    known.outcome()
                )),
            });
        };
        if always && approval.suggestions.is_none() {
            return Err(AppError::Invalid(
                "this request offers no rule to allow always: allow it once".into(),
            ));
        }
        let entry = after_change(conn, &approval)?;
        Ok((approval, entry))
    })
}

/// The change-log entry after one of a session's requests changed.
fn after_change(conn: &mut DbConn, approval: &Approval) -> Result<Option<Transition>, AppError> {
    let attention = remaining_attention(conn, &approval.session_id)?;
    writer::record_attention(
        conn,
        &approval.session_id,
        attention,
        fence(approval.run_id.as_deref()),
    )
}

/// Closes one pending request without an answer (the agent withdrew it,
/// the terminal answered, no answer came in time). `None` if it was not
/// pending any more.
/// With `keep_attention`, the session still needs the person (a terminal
/// asks instead).
pub fn close(
    conn: &mut DbConn,
    approval_id: &str,
    message: &str,
    keep_attention: bool,
) -> Result<Option<(Approval, Option<Transition>)>, AppError> {
    crate::db::write_tx(conn, |conn| {
        let closed = close_where(conn, Box::new(approvals::id.eq(approval_id)), message)?;
        let Some(approval) = closed.into_iter().next() else {
            return Ok(None);
        };
        let entry = if keep_attention {
            writer::record_attention(
                conn,
                &approval.session_id,
                Some(Attention::Approval),
                fence(approval.run_id.as_deref()),
            )?
        } else {
            after_change(conn, &approval)?
        };
        Ok(Some((approval, entry)))
    })
}

/// Closes every pending request of a terminal session (its agent moved on:
/// the terminal answered). Returns the change-log entry, if any.
pub fn close_terminal_requests(
    conn: &mut DbConn,
    session_id: &str,
    message: &str,
) -> Result<Vec<Approval>, AppError> {
    let which = approvals::session_id
        .eq(session_id)
        .and(approvals::run_id.is_null());
    close_where(conn, Box::new(which), message)
}

/// Closes a run's pending requests, in the transaction recording its end
/// (which clears the session's attention itself).
pub fn close_for_run(
    conn: &mut DbConn,
    run_id: &str,
    message: &str,
) -> Result<Vec<Approval>, AppError> {
    close_where(
        conn,
        Box::new(approvals::run_id.eq(run_id).assume_not_null()),
        message,
    )
}

/// Closes every request left pending by a server that stopped: nothing
/// waits for their answers any more.
pub fn close_orphans(conn: &mut DbConn) -> Result<Vec<Approval>, AppError> {
    close_where(
        conn,
        Box::new(approvals::status.eq(Status::Pending)),
        RESTART_MESSAGE,
    )
}

/// Which requests a close applies to.
type Which<'a> = Box<
    dyn BoxableExpression<approvals::table, crate::db::Backend, SqlType = diesel::sql_types::Bool>
        + 'a,
>;

fn close_where(
    conn: &mut DbConn,
    which: Which<'_>,
    message: &str,
) -> Result<Vec<Approval>, AppError> {
    Ok(diesel::update(
        approvals::table
            .filter(which)
            .filter(approvals::status.eq(Status::Pending)),
    )
    .set((
        approvals::status.eq(Status::Closed),
        approvals::message.eq(message),
        approvals::decided_at.eq(now_millis()),
    ))
    .returning(crate::db::columns_of::<Approval>())
    .get_results(conn)?)
}

/// Every pending request, oldest first.
pub fn pending(conn: &mut DbConn) -> Result<Vec<Approval>, AppError> {
    Ok(approvals::table
        .filter(approvals::status.eq(Status::Pending))
        .order(approvals::created_at.asc())
        .select(Approval::as_select())
        .load(conn)?)
}

/// How many of a session's latest requests its page shows.
pub const SHOWN_PER_SESSION: i64 = 20;

/// A session's requests: the pending ones and the latest answered, oldest first.
pub fn for_session(conn: &mut DbConn, session_id: &str) -> Result<Vec<Approval>, AppError> {
    let mut shown: Vec<Approval> = approvals::table
        .filter(approvals::session_id.eq(session_id))
        .order((approvals::created_at.desc(), approvals::id.desc()))
        .limit(SHOWN_PER_SESSION)
        .select(Approval::as_select())
        .load(conn)?;
    shown.reverse();
    Ok(shown)
}

/// One request.
pub fn get(conn: &mut DbConn, approval_id: &str) -> Result<Approval, AppError> {
    approvals::table
        .find(approval_id)
        .select(Approval::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("approval request {approval_id} does not exist")))
}

/// What the agent is told: Claude's permission result (`allow` with the
/// input to use, or `deny` with the person's message). The same object is
/// the `control_response` payload and a `PermissionRequest` hook's decision.
pub fn agent_decision(approval: &Approval) -> Value {
    match approval.status {
        Status::Allowed => {
            let input: Value = serde_json::from_str(&approval.input).unwrap_or(json!({}));
            let mut decision = json!({ "behavior": "allow", "updatedInput": input });
            if approval.always {
                if let Some(rules) = approval
                    .suggestions
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                {
                    decision["updatedPermissions"] = rules;
                }
            }
            decision
        }
        Status::Denied | Status::Closed | Status::Pending => json!({
            "behavior": "deny",
            "message": approval.message.as_deref().unwrap_or(DEFAULT_DENY_MESSAGE),
            "interrupt": false,
        }),
    }
}

/// Hands each answer to whoever waits for it in this process: the run
/// driving the agent, or a terminal's hook request.
#[derive(Default)]
pub struct Broker {
    waiting: Mutex<HashMap<String, mpsc::UnboundedSender<Approval>>>,
}

impl Broker {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Approval>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends request `approval_id`'s answer to `to` once it is given.
    pub fn wait_for(&self, approval_id: &str, to: mpsc::UnboundedSender<Approval>) {
        self.waiting().insert(approval_id.to_owned(), to);
    }

    /// Stops waiting for the request (it was closed, or its run ended).
    pub fn forget(&self, approval_id: &str) {
        self.waiting().remove(approval_id);
    }

    /// Hands over a committed answer. Whether someone here was waiting.
    pub fn deliver(&self, approval: &Approval) -> bool {
        match self.waiting().remove(&approval.id) {
            Some(to) => to.send(approval.clone()).is_ok(),
            None => false,
        }
    }
}

fn published(entry: Option<Transition>) -> Vec<LiveEvent> {
    entry.into_iter().map(LiveEvent::change).collect()
}

/// Answers a request: commits the decision (first answer wins), publishes
/// the change, then hands it to the waiting run or hook.
pub async fn answer(
    db: &Db,
    broker: &Broker,
    approval_id: &str,
    answer: Answer,
) -> Result<Approval, AppError> {
    let id = approval_id.to_owned();
    let approval = db
        .write(move |conn| {
            let (approval, entry) = decide(conn, &id, &answer)?;
            Ok((approval, published(entry)))
        })
        .await?;
    if !broker.deliver(&approval) {
        tracing::warn!(approval_id = %approval.id, "answered a request nothing here waits for");
    }
    tracing::info!(approval_id = %approval.id, status = %approval.status, "approval answered");
    Ok(approval)
}

/// Opens a request through the writer, publishing its entry. `None` when
/// the session is no longer in that run.
pub async fn open_published(db: &Db, new: NewApproval) -> Result<Option<Approval>, AppError> {
    db.write(move |conn| {
        let opened = open(conn, &new)?;
        Ok(match opened {
            Some((approval, entry)) => (Some(approval), vec![LiveEvent::change(entry)]),
            None => (None, Vec::new()),
        })
    })
    .await
}

/// Closes a request through the writer, publishing its entry.
pub async fn close_published(
    db: &Db,
    approval_id: &str,
    message: &str,
    keep_attention: bool,
) -> Result<Option<Approval>, AppError> {
    let (id, message) = (approval_id.to_owned(), message.to_owned());
    db.write(move |conn| {
        Ok(match close(conn, &id, &message, keep_attention)? {
            Some((approval, entry)) => (Some(approval), published(entry)),
            None => (None, Vec::new()),
        })
    })
    .await
}

/// How long a terminal session's `PermissionRequest` waits for the
/// dashboard, if its project lets the dashboard answer (and no run of
/// ours is in the session).
pub fn terminal_wait(
    conn: &mut DbConn,
    session_id: &str,
) -> Result<Option<std::time::Duration>, AppError> {
    use crate::db::schema::{projects, sessions};
    let setting: Option<(bool, i32)> = sessions::table
        .inner_join(projects::table)
        .filter(sessions::id.eq(session_id))
        .filter(sessions::current_run_id.is_null())
        .select((
            projects::approve_from_dashboard,
            projects::approval_wait_secs,
        ))
        .first(conn)
        .optional()?;
    Ok(setting
        .filter(|(on, _)| *on)
        .map(|(_, secs)| std::time::Duration::from_secs(secs.max(1).unsigned_abs().into())))
}

/// A terminal session's request, waiting for an answer from the
/// dashboard for up to `wait`. The answer, or `None` when none came (the
/// request is then closed and the terminal asks as usual). If the hook
/// goes away first (the terminal answered), the request is closed.
pub async fn await_terminal_answer(
    db: &Db,
    broker: &Arc<Broker>,
    new: NewApproval,
    wait: std::time::Duration,
) -> Result<Option<Approval>, AppError> {
    let Some(approval) = open_published(db, new).await? else {
        return Ok(None);
    };
    let (to, mut answered) = mpsc::unbounded_channel();
    broker.wait_for(&approval.id, to);
    let mut guard = CloseOnDrop {
        db: db.clone(),
        broker: Arc::clone(broker),
        approval_id: Some(approval.id.clone()),
    };
    match tokio::time::timeout(wait, answered.recv()).await {
        Ok(Some(answer)) => {
            guard.approval_id = None;
            Ok(Some(answer))
        }
        _ => {
            guard.approval_id = None;
            broker.forget(&approval.id);
            let message = format!(
                "No answer in agentdeck within {} s: the terminal asks",
                wait.as_secs()
            );
            close_published(db, &approval.id, &message, true).await?;
            Ok(None)
        }
    }
}

/// Closes a terminal's request whose hook went away unanswered.
struct CloseOnDrop {
    db: Db,
    broker: Arc<Broker>,
    approval_id: Option<String>,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.approval_id.take() else {
            return;
        };
        self.broker.forget(&id);
        let db = self.db.clone();
        tokio::spawn(async move {
            let closed = close_published(&db, &id, "Answered in the terminal", false).await;
            if let Err(err) = closed {
                tracing::warn!(approval_id = %id, error = %err, "could not close a request the terminal answered");
            }
        });
    }
}
