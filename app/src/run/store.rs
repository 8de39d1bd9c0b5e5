//! Run and message persistence. Each function is one transaction that pairs
//! a state transition (through the single writer) with the rows it implies.

use super::{
    Before, Conversation, Message, Outcome, Role, Run, SessionDetail, TimelinePage,
    MESSAGES_PER_PAGE, TRANSITIONS_PER_PAGE,
};
use crate::db::DbConn;
use crate::instance::{store as instance_store, Instance};
use crate::{
    agent::AgentKind,
    db::{
        now_millis,
        schema::{messages, runs, session_transitions, sessions},
        Db,
    },
    error::AppError,
    project::{store::find as find_project, Project},
    session::{store::find as find_session, Session},
    session_state::SessionState,
    transition::{
        orphaned_message,
        writer::{self, Applied, RunFence},
        Transition, TransitionEvent,
    },
};
use diesel::prelude::*;
use std::time::Duration;

/// A session's page data: the newest page of its history.
pub async fn detail(db: &Db, session_id: &str) -> Result<SessionDetail, AppError> {
    history(db, session_id, Before::default()).await
}

/// A run that has been recorded as started.
#[derive(Debug, Clone)]
pub struct Started {
    pub run_id: String,
    /// The agent conversation id chosen for a new Claude conversation
    /// (passed as `--session-id`), recorded on the run before it starts.
    pub new_agent_session_id: Option<String>,
    pub session: Session,
    pub project: Project,
    pub message: String,
    pub transition: Transition,
    /// The instance whose process runs it (`None` only in tests that
    /// record runs by hand): only it may record the run's end.
    pub owner: Option<String>,
}

/// Starts run `run_id`: `idle|error → working` (it becomes the session's
/// current run), the run row and the user's message, all in one
/// transaction. A session already working is refused with 409.
/// `new_agent_session_id` is the conversation id a new Claude conversation
/// will get; it is recorded on the run row, so a sync while the run goes
/// on knows that transcript is this session's. `owner` is the instance
/// that runs its process.
pub fn start(
    conn: &mut DbConn,
    session_id: &str,
    run_id: &str,
    message: &str,
    new_agent_session_id: Option<&str>,
    owner: Option<&str>,
) -> Result<Started, AppError> {
    crate::db::write_tx(conn, |conn| {
        let send = writer::apply_fenced(
            conn,
            session_id,
            &TransitionEvent::Send,
            RunFence::Start(run_id),
        )?;
        let transition = match send {
            Applied::Changed(transition) => transition,
            Applied::Refused { .. } => return Err(busy()),
            Applied::NotFound => {
                return Err(AppError::NotFound(format!(
                    "session {session_id} does not exist"
                )))
            }
        };
        let now = now_millis();
        diesel::insert_into(runs::table)
            .values((
                runs::id.eq(run_id),
                runs::session_id.eq(session_id),
                runs::started_at.eq(now),
                runs::agent_session_id.eq(new_agent_session_id),
                runs::owner_instance.eq(owner),
            ))
            .execute(conn)?;
        add_message(conn, session_id, Some(run_id), Role::User, message, now)?;
        let session = find_session(conn, session_id)?;
        let project = find_project(conn, session.project_id)?;
        Ok(Started {
            run_id: run_id.to_owned(),
            new_agent_session_id: new_agent_session_id.map(str::to_owned),
            session,
            project,
            message: message.to_owned(),
            transition,
            owner: owner.map(str::to_owned),
        })
    })
}

/// Adds a message to the session's conversation (of run `run_id`, or of
/// none: a terminal session's prompt or answer reported by a hook).
pub(crate) fn add_message(
    conn: &mut DbConn,
    session_id: &str,
    run_id: Option<&str>,
    role: Role,
    content: &str,
    now: i64,
) -> Result<(), AppError> {
    diesel::insert_into(messages::table)
        .values((
            messages::session_id.eq(session_id),
            messages::run_id.eq(run_id),
            messages::role.eq(role),
            messages::content.eq(content),
            messages::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The 409 for a message sent while a run is in progress.
pub(crate) fn busy() -> AppError {
    AppError::Conflict(
        "session is busy: a run is in progress; wait for it to finish or cancel it".into(),
    )
}

/// Records the agent process id, so an operator (and the tests) can find it.
pub fn set_pid(conn: &mut DbConn, run_id: &str, pid: u32) -> Result<(), AppError> {
    diesel::update(runs::table.find(run_id))
        .set(runs::pid.eq(i32::try_from(pid).ok()))
        .execute(conn)?;
    Ok(())
}

/// What a finished run produced.
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub answer: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: i64,
    pub agent_session_id: Option<String>,
    pub cost_usd: Option<f64>,
    /// Tools the agent was refused, comma-separated.
    pub denied_tools: Option<String>,
}

/// Ends a run: the session's transition, the run row, the agent's answer,
/// and the agent's conversation id — in one transaction. Returns the
/// transition, or `None` when this run is no longer the session's current
/// one (it was cancelled or interrupted meanwhile, or a newer run started),
/// or when the run is no longer open and owned by `started.owner` (another
/// instance took it for orphaned while this one could not reach the database).
pub fn finish(
    conn: &mut DbConn,
    started: &Started,
    event: &TransitionEvent,
    ending: &Ending,
) -> Result<Option<Transition>, AppError> {
    let session_id = started.session.id.as_str();
    crate::db::write_tx(conn, |conn| {
        // Every writer holds the write lock, so this check stays true until commit.
        if !is_open_and_owned(conn, &started.run_id, started.owner.as_deref())? {
            return Ok(None);
        }
        let applied =
            writer::apply_fenced(conn, session_id, event, RunFence::End(&started.run_id))?;
        let transition = match applied {
            Applied::Changed(transition) => Some(transition),
            Applied::Refused { .. } | Applied::NotFound => None,
        };
        let outcome = Outcome::of(event);
        let error_message = transition.as_ref().and_then(|t| t.error_message.clone());
        let now = now_millis();
        let ended = diesel::update(
            runs::table
                .find(&started.run_id)
                .filter(runs::ended_at.is_null()),
        )
        .set((
            runs::ended_at.eq(now),
            runs::outcome.eq(outcome),
            runs::exit_code.eq(ending.exit_code),
            runs::duration_ms.eq(ending.duration_ms),
            runs::agent_session_id.eq(&ending.agent_session_id),
            runs::cost_usd.eq(ending.cost_usd),
            runs::error_message.eq(&error_message),
            runs::denied_tools.eq(&ending.denied_tools),
        ))
        .execute(conn)?;
        // Nothing waits for an answer to its requests any more.
        crate::approval::store::close_for_run(
            conn,
            &started.run_id,
            crate::approval::store::RUN_ENDED_MESSAGE,
        )?;
        // A run already closed (cancelled, interrupted) or deleted with its
        // session keeps no late answer.
        let answer = ending.answer.as_deref().filter(|a| !a.trim().is_empty());
        if let Some(answer) = answer.filter(|_| ended == 1) {
            diesel::insert_into(messages::table)
                .values((
                    messages::session_id.eq(session_id),
                    messages::run_id.eq(&started.run_id),
                    messages::role.eq(Role::Agent),
                    messages::content.eq(answer),
                    messages::created_at.eq(now),
                ))
                .execute(conn)?;
        }
        if let Some(external_id) = &ending.agent_session_id {
            link_external_id(conn, session_id, started.session.agent, external_id)?;
        }
        Ok(transition)
    })
}

/// Gives the session the agent's conversation id, unless it has one or
/// another session already holds it (then the id stays on the run only:
/// a clash must never make recording a run's end fail).
fn link_external_id(
    conn: &mut DbConn,
    session_id: &str,
    agent: AgentKind,
    external_id: &str,
) -> Result<(), AppError> {
    let taken = sessions::table
        .filter(sessions::agent.eq(agent))
        .filter(sessions::external_id.eq(external_id))
        .filter(sessions::id.ne(session_id))
        .select(sessions::id)
        .first::<String>(conn)
        .optional()?;
    if let Some(other) = taken {
        tracing::warn!(%session_id, %other, "agent conversation id already belongs to another session; not linked");
        return Ok(());
    }
    diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::external_id.is_null()),
    )
    .set(sessions::external_id.eq(external_id))
    .execute(conn)?;
    Ok(())
}

/// Ends run `run_id` of the session as failed with `message`, if it is still
/// the session's current run: the transition and the run row, nothing else.
/// The smallest write that takes a session out of `working` (when a run's
/// full outcome could not be saved, or its process is gone).
pub fn end_run_as_failed(
    conn: &mut DbConn,
    session_id: &str,
    run_id: &str,
    message: &str,
) -> Result<Option<Transition>, AppError> {
    crate::db::write_tx(conn, |conn| {
        let event = TransitionEvent::Fail(message.to_owned());
        let applied = writer::apply_fenced(conn, session_id, &event, RunFence::End(run_id))?;
        let Applied::Changed(transition) = applied else {
            return Ok(None);
        };
        diesel::update(runs::table.find(run_id).filter(runs::ended_at.is_null()))
            .set((
                runs::ended_at.eq(now_millis()),
                runs::outcome.eq(Outcome::Failed),
                runs::error_message.eq(&transition.error_message),
            ))
            .execute(conn)?;
        crate::approval::store::close_for_run(
            conn,
            run_id,
            crate::approval::store::RUN_ENDED_MESSAGE,
        )?;
        Ok(Some(transition))
    })
}

/// The run the session is in, while it is working on one of agentdeck's own.
pub fn current_run(conn: &mut DbConn, session_id: &str) -> Result<Option<String>, AppError> {
    Ok(sessions::table
        .find(session_id)
        .select(sessions::current_run_id)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Whether run `run_id` is open and owned by `owner` (`None`: recorded
/// with no owner, by a test).
fn is_open_and_owned(
    conn: &mut DbConn,
    run_id: &str,
    owner: Option<&str>,
) -> Result<bool, AppError> {
    let recorded = instance_store::open_run_owner(conn, run_id)?;
    Ok(recorded.is_some_and(|recorded| recorded.as_deref() == owner))
}

/// Working sessions and the run each is in, for runs `owner` started (or
/// that record no owner: a test's, or one from before instances).
/// Agentdeck's own runs only: a terminal session has no run.
pub fn working_runs(conn: &mut DbConn, owner: &str) -> Result<Vec<(String, String)>, AppError> {
    let rows: Vec<(String, Option<String>)> = sessions::table
        .filter(sessions::state.eq(SessionState::Working))
        .filter(sessions::current_run_id.is_not_null())
        .select((sessions::id, sessions::current_run_id))
        .load(conn)?;
    let others: std::collections::HashSet<String> = runs::table
        .filter(runs::id.eq_any(rows.iter().filter_map(|(_, run)| run.clone())))
        .filter(runs::owner_instance.ne(owner))
        .select(runs::id)
        .load(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|(session, run)| Some((session, run?)))
        .filter(|(_, run)| !others.contains(run))
        .collect())
}

/// Interrupts the open runs whose owner is gone (seen from `me`), and their
/// sessions if still on them: "Interrupted: the instance on HOST stopped".
/// With no other live instance, requests nothing answers any more (of a
/// terminal's hook held by a stopped server) are closed too. Returns the
/// transitions made.
pub fn interrupt_orphans(
    conn: &mut DbConn,
    me: &Instance,
    lease: Duration,
) -> Result<Vec<Transition>, AppError> {
    crate::db::write_tx(conn, |conn| {
        let orphans = instance_store::orphaned_runs(conn, me, lease)?;
        let mut transitions = Vec::new();
        for orphan in &orphans {
            let event = TransitionEvent::Orphan(orphan.host.clone());
            let applied = writer::apply_fenced(
                conn,
                &orphan.session_id,
                &event,
                RunFence::End(&orphan.run_id),
            )?;
            if let Applied::Changed(t) = applied {
                transitions.push(t);
            }
            diesel::update(
                runs::table
                    .find(&orphan.run_id)
                    .filter(runs::ended_at.is_null()),
            )
            .set((
                runs::ended_at.eq(now_millis()),
                runs::outcome.eq(Outcome::Interrupted),
                runs::error_message.eq(orphaned_message(orphan.host.as_deref())),
            ))
            .execute(conn)?;
            crate::approval::store::close_for_run(
                conn,
                &orphan.run_id,
                crate::approval::store::RESTART_MESSAGE,
            )?;
        }
        if instance_store::others_alive(conn, me, lease)? == 0 {
            crate::approval::store::close_orphans(conn)?;
        }
        Ok(transitions)
    })
}

/// Cancels a `working` session that no process here is running (its run
/// belonged to a server that stopped): `working → idle`, open runs closed.
pub fn cancel_orphan(conn: &mut DbConn, session_id: &str) -> Result<Applied, AppError> {
    crate::db::write_tx(conn, |conn| {
        let applied = writer::apply(conn, session_id, &TransitionEvent::Cancel)?;
        if matches!(applied, Applied::Changed(_)) {
            diesel::update(
                runs::table
                    .filter(runs::session_id.eq(session_id))
                    .filter(runs::ended_at.is_null()),
            )
            .set((
                runs::ended_at.eq(now_millis()),
                runs::outcome.eq(Outcome::Cancelled),
            ))
            .execute(conn)?;
        }
        Ok(applied)
    })
}

/// A session with one page of its history: the messages before
/// `before.message` and the timeline before `before.transition` (the newest
/// of each when `None`), read in one transaction with the `seq` they match.
pub async fn history(db: &Db, session_id: &str, before: Before) -> Result<SessionDetail, AppError> {
    let id = session_id.to_owned();
    let mut detail = db
        .run(move |conn| {
            crate::db::read_tx(conn, |conn| {
                let session = find_session(conn, &id)?;
                let project = find_project(conn, session.project_id)?;
                let (messages, runs, has_earlier) = messages_page(conn, &id, before.message)?;
                let (transitions, has_earlier_transitions) =
                    transitions_page(conn, &id, before.transition)?;
                let seq = writer::high_water(conn)?;
                let approvals = crate::approval::store::for_session(conn, &id)?;
                Ok::<_, AppError>(SessionDetail {
                    project,
                    session,
                    messages,
                    runs,
                    transitions,
                    approvals,
                    has_earlier,
                    has_earlier_transitions,
                    seq,
                    output: None,
                })
            })
        })
        .await?;
    // Read after the snapshot: lines of a run it does not show yet are
    // hidden until its start arrives, and the page's stream repeats them.
    detail.output = db.hub().output_backlog(session_id);
    Ok(detail)
}

/// The session's state and the page of its conversation before `before`
/// (the newest without it): what the session page reloads after a change.
pub async fn conversation(
    db: &Db,
    session_id: &str,
    before: Option<i32>,
) -> Result<Conversation, AppError> {
    let id = session_id.to_owned();
    db.run(move |conn| {
        crate::db::read_tx(conn, |conn| {
            let session = find_session(conn, &id)?;
            let (messages, runs, has_earlier) = messages_page(conn, &id, before)?;
            let seq = writer::high_water(conn)?;
            let approvals = crate::approval::store::for_session(conn, &id)?;
            Ok(
                Conversation::new(&session, &messages, &runs, has_earlier, seq)
                    .with_approvals(approvals),
            )
        })
    })
    .await
}

/// The page of the session's timeline before `before` (the newest without it).
pub async fn timeline(
    db: &Db,
    session_id: &str,
    before: Option<i32>,
) -> Result<TimelinePage, AppError> {
    let id = session_id.to_owned();
    db.run(move |conn| {
        crate::db::read_tx(conn, |conn| {
            find_session(conn, &id)?;
            let (transitions, has_earlier) = transitions_page(conn, &id, before)?;
            Ok(TimelinePage {
                transitions,
                has_earlier,
            })
        })
    })
    .await
}

/// Up to [`MESSAGES_PER_PAGE`] of the session's messages before `before`,
/// oldest first, with the runs their user messages started, and whether
/// older messages exist. Reads one row past the page to know.
fn messages_page(
    conn: &mut DbConn,
    session_id: &str,
    before: Option<i32>,
) -> Result<(Vec<Message>, Vec<Run>, bool), AppError> {
    let mut query = messages::table
        .filter(messages::session_id.eq(session_id))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(messages::id.lt(before));
    }
    let mut messages = query
        .order(messages::id.desc())
        .limit(MESSAGES_PER_PAGE as i64 + 1)
        .select(Message::as_select())
        .load(conn)?;
    let has_earlier = messages.len() > MESSAGES_PER_PAGE;
    messages.truncate(MESSAGES_PER_PAGE);
    messages.reverse();
    // Each run has one user message, so each run is on exactly one page.
    let run_ids: Vec<&str> = messages
        .iter()
        .filter(|message| message.role == Role::User)
        .filter_map(|message| message.run_id.as_deref())
        .collect();
    let runs = runs::table
        .filter(runs::id.eq_any(run_ids))
        .order((runs::started_at.asc(), runs::id.asc()))
        .select(Run::as_select())
        .load(conn)?;
    Ok((messages, runs, has_earlier))
}

/// Up to [`TRANSITIONS_PER_PAGE`] of the session's state changes (not its
/// creation or renames) before `before`, oldest first, and whether older ones exist.
fn transitions_page(
    conn: &mut DbConn,
    session_id: &str,
    before: Option<i32>,
) -> Result<(Vec<Transition>, bool), AppError> {
    let mut query = session_transitions::table
        .filter(session_transitions::session_id.eq(session_id))
        .filter(session_transitions::reason.ne_all(writer::LIFECYCLE))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(session_transitions::seq.lt(before));
    }
    let mut transitions = query
        .order(session_transitions::seq.desc())
        .limit(TRANSITIONS_PER_PAGE as i64 + 1)
        .select(Transition::as_select())
        .load(conn)?;
    let has_earlier = transitions.len() > TRANSITIONS_PER_PAGE;
    transitions.truncate(TRANSITIONS_PER_PAGE);
    transitions.reverse();
    Ok((transitions, has_earlier))
}
