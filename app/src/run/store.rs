//! Run and message persistence. Each function is one transaction that pairs
//! a state transition (through the single writer) with the rows it implies.

use super::{Message, Outcome, Role, Run, SessionDetail};
use crate::{
    db::{
        now_millis,
        schema::{messages, runs, sessions},
        Db,
    },
    error::AppError,
    project::{store::find as find_project, Project},
    session::{store::find as find_session, Session},
    session_state::SessionState,
    transition::{
        writer::{self, Applied},
        Transition, TransitionEvent, INTERRUPTED_MESSAGE,
    },
};
use diesel::prelude::*;

/// A session's page data.
pub async fn detail(db: &Db, session_id: &str) -> Result<SessionDetail, AppError> {
    let id = session_id.to_owned();
    db.run(move |conn| {
        conn.transaction(|conn| {
            let session = find_session(conn, &id)?;
            let project = find_project(conn, session.project_id)?;
            let messages = messages::table
                .filter(messages::session_id.eq(&id))
                .order(messages::id.asc())
                .select(Message::as_select())
                .load(conn)?;
            let runs = runs::table
                .filter(runs::session_id.eq(&id))
                .order((runs::started_at.asc(), runs::id.asc()))
                .select(Run::as_select())
                .load(conn)?;
            let transitions = writer::history(conn, &id)?;
            let seq = writer::high_water(conn)?;
            Ok(SessionDetail {
                project,
                session,
                messages,
                runs,
                transitions,
                seq,
            })
        })
    })
    .await
}

/// A run that has been recorded as started.
#[derive(Debug, Clone)]
pub struct Started {
    pub run_id: String,
    pub session: Session,
    pub project: Project,
    pub message: String,
    pub transition: Transition,
}

/// Starts a run: `idle|error → working`, the run row and the user's message,
/// all in one transaction. A session already working is refused with 409.
pub fn start(
    conn: &mut SqliteConnection,
    session_id: &str,
    message: &str,
) -> Result<Started, AppError> {
    conn.immediate_transaction(|conn| {
        let transition = match writer::apply(conn, session_id, &TransitionEvent::Send)? {
            Applied::Changed(transition) => transition,
            Applied::Refused { .. } => {
                return Err(AppError::Conflict(
                    "session is busy: a run is in progress; wait for it to finish or cancel it"
                        .into(),
                ))
            }
            Applied::NotFound => {
                return Err(AppError::NotFound(format!(
                    "session {session_id} does not exist"
                )))
            }
        };
        let run_id = uuid::Uuid::new_v4().to_string();
        let now = now_millis();
        diesel::insert_into(runs::table)
            .values((
                runs::id.eq(&run_id),
                runs::session_id.eq(session_id),
                runs::started_at.eq(now),
            ))
            .execute(conn)?;
        diesel::insert_into(messages::table)
            .values((
                messages::session_id.eq(session_id),
                messages::run_id.eq(&run_id),
                messages::role.eq(Role::User),
                messages::content.eq(message),
                messages::created_at.eq(now),
            ))
            .execute(conn)?;
        let session = find_session(conn, session_id)?;
        let project = find_project(conn, session.project_id)?;
        Ok(Started {
            run_id,
            session,
            project,
            message: message.to_owned(),
            transition,
        })
    })
}

/// Records the agent process id, so an operator (and the tests) can find it.
pub fn set_pid(conn: &mut SqliteConnection, run_id: &str, pid: u32) -> Result<(), AppError> {
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
}

/// Ends a run: the session's transition, the run row, the agent's answer,
/// and the agent's conversation id — in one transaction. Returns the
/// transition, or `None` when the session had already left `working`
/// (e.g. it was interrupted by a restart meanwhile).
pub fn finish(
    conn: &mut SqliteConnection,
    started: &Started,
    event: &TransitionEvent,
    ending: Ending,
) -> Result<Option<Transition>, AppError> {
    let session_id = started.session.id.as_str();
    conn.immediate_transaction(|conn| {
        let applied = writer::apply(conn, session_id, event)?;
        let transition = match applied {
            Applied::Changed(transition) => Some(transition),
            Applied::Refused { .. } | Applied::NotFound => None,
        };
        let outcome = match event {
            TransitionEvent::Succeed => Outcome::Succeeded,
            TransitionEvent::Cancel => Outcome::Cancelled,
            TransitionEvent::Interrupt => Outcome::Interrupted,
            _ => Outcome::Failed,
        };
        let error_message = transition.as_ref().and_then(|t| t.error_message.clone());
        let now = now_millis();
        diesel::update(
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
        ))
        .execute(conn)?;
        if let Some(answer) = ending.answer.filter(|a| !a.trim().is_empty()) {
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
            diesel::update(
                sessions::table
                    .find(session_id)
                    .filter(sessions::external_id.is_null()),
            )
            .set(sessions::external_id.eq(external_id))
            .execute(conn)?;
        }
        Ok(transition)
    })
}

/// Marks every session left `working` by a stopped server as interrupted,
/// and closes its open runs. Returns the transitions made.
pub fn interrupt_orphans(conn: &mut SqliteConnection) -> Result<Vec<Transition>, AppError> {
    conn.immediate_transaction(|conn| {
        let working: Vec<String> = sessions::table
            .filter(sessions::state.eq(SessionState::Working))
            .select(sessions::id)
            .load(conn)?;
        let mut transitions = Vec::new();
        for id in working {
            if let Applied::Changed(t) = writer::apply(conn, &id, &TransitionEvent::Interrupt)? {
                transitions.push(t);
            }
        }
        diesel::update(runs::table.filter(runs::ended_at.is_null()))
            .set((
                runs::ended_at.eq(now_millis()),
                runs::outcome.eq(Outcome::Interrupted),
                runs::error_message.eq(INTERRUPTED_MESSAGE),
            ))
            .execute(conn)?;
        Ok(transitions)
    })
}

/// Cancels a `working` session that no process here is running (its run
/// belonged to a server that stopped): `working → idle`, open runs closed.
pub fn cancel_orphan(conn: &mut SqliteConnection, session_id: &str) -> Result<Applied, AppError> {
    conn.immediate_transaction(|conn| {
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
