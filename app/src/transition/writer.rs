//! The one writer of session state. Every change goes through [`apply`] (or
//! [`apply_fenced`], for the start and end of a run): a
//! conditional UPDATE (`WHERE id = ? AND state = <from>`) plus a history
//! row, in the caller's transaction. Nothing reads the state and then
//! writes it; a change that no longer applies is refused, not forced.

use super::{next_state, Reason, Transition, TransitionEvent};
use crate::db::DbConn;
use crate::{
    db::{
        now_millis,
        schema::{agent_processes, session_transitions, sessions, unseen_ends},
    },
    error::AppError,
    session::Session,
    session_state::{Attention, SessionState},
};
use diesel::{prelude::*, sql_types::Bool};

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The state changed; the recorded transition.
    Changed(Transition),
    /// The event does not apply to the session's current state.
    Refused { current: SessionState },
    /// No such session.
    NotFound,
}

/// Which run a transition belongs to. Ends of runs are fenced by the run
/// id, so they can only end the run they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFence<'a> {
    /// Not tied to a run: a sync clearing an error, or recovery after a
    /// restart ending whatever run a session was left in.
    Any,
    /// A send starting this run: it becomes the session's current run.
    Start(&'a str),
    /// This run ended: applies only while it is the session's current run.
    End(&'a str),
    /// A terminal session's hook: applies only while no run of agentdeck's
    /// own is in progress (the runner is the authority for its runs).
    Terminal,
    /// A terminal session's agent process is gone: applies only while no
    /// run of agentdeck's own is in progress and the turn is still this
    /// process's (a new prompt from a new process is not ended by it).
    Process(i32),
}

/// The rows of `sessions` a fenced change may touch.
type FenceFilter<'a> =
    Box<dyn BoxableExpression<sessions::table, crate::db::Backend, SqlType = Bool> + 'a>;

impl<'a> RunFence<'a> {
    fn filter(self, session_id: &'a str) -> FenceFilter<'a> {
        match self {
            // Always true: only the session itself.
            Self::Any | Self::Start(_) => Box::new(sessions::id.eq(session_id)),
            Self::End(run_id) => Box::new(sessions::current_run_id.eq(run_id).assume_not_null()),
            Self::Terminal => Box::new(sessions::current_run_id.is_null()),
            Self::Process(pid) => Box::new(
                sessions::current_run_id.is_null().and(
                    sessions::id.eq_any(
                        agent_processes::table
                            .filter(agent_processes::pid.eq(pid))
                            .select(agent_processes::session_id),
                    ),
                ),
            ),
        }
    }
}

/// Applies `event` to the session, recording the transition. Call it inside
/// a transaction that also holds the event's other writes (the message, the
/// run row), so they commit or fail together.
pub fn apply(
    conn: &mut DbConn,
    session_id: &str,
    event: &TransitionEvent,
) -> Result<Applied, AppError> {
    apply_fenced(conn, session_id, event, RunFence::Any)
}

/// [`apply`] for an event that starts or ends a run: the session's
/// `current_run_id` is set by a start, required by an end, and cleared by
/// every transition that leaves `working`.
pub fn apply_fenced(
    conn: &mut DbConn,
    session_id: &str,
    event: &TransitionEvent,
    fence: RunFence<'_>,
) -> Result<Applied, AppError> {
    let now = now_millis();
    for from in SessionState::ALL {
        let Some((to, error_message)) = next_state(from, event) else {
            continue;
        };
        let current_run = match fence {
            RunFence::Start(run_id) if to == SessionState::Working => Some(run_id),
            _ => None,
        };
        let values = (
            sessions::state.eq(to),
            sessions::error_message.eq(error_message.clone()),
            sessions::current_run_id.eq(current_run),
            sessions::attention.eq(None::<Attention>),
            sessions::state_changed_at.eq(now),
            sessions::updated_at.eq(now),
        );
        let in_state = sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::state.eq(from))
            .filter(fence.filter(session_id));
        let changed: Option<i32> = diesel::update(in_state)
            .set(values)
            .returning(sessions::project_id)
            .get_result(conn)
            .optional()?;
        if let Some(project_id) = changed {
            let transition = diesel::insert_into(session_transitions::table)
                .values((
                    session_transitions::session_id.eq(session_id),
                    session_transitions::project_id.eq(project_id),
                    session_transitions::from_state.eq(from),
                    session_transitions::to_state.eq(to),
                    session_transitions::error_message.eq(&error_message),
                    session_transitions::reason.eq(event.reason()),
                    session_transitions::at.eq(now),
                    session_transitions::attention.eq(None::<Attention>),
                ))
                .returning(crate::db::columns_of::<Transition>())
                .get_result(conn)?;
            // A run (or a terminal turn) ended by itself: "done, not seen"
            // until the session is opened. A cancel was the person's own doing.
            if from == SessionState::Working
                && to != SessionState::Working
                && *event != TransitionEvent::Cancel
            {
                crate::db::on_backend!(conn, |inner| diesel::insert_into(unseen_ends::table)
                    .values((
                        unseen_ends::session_id.eq(session_id),
                        unseen_ends::ended_at.eq(now),
                    ))
                    .on_conflict(unseen_ends::session_id)
                    .do_update()
                    .set(unseen_ends::ended_at.eq(now))
                    .execute(inner))?;
            }
            return Ok(Applied::Changed(transition));
        }
    }
    let current = sessions::table
        .find(session_id)
        .select(sessions::state)
        .first::<SessionState>(conn)
        .optional()?;
    Ok(current.map_or(Applied::NotFound, |current| Applied::Refused { current }))
}

/// Records that `session` was created, renamed or deleted, in the caller's
/// transaction, so live views learn of it in commit order.
pub fn record_lifecycle(
    conn: &mut DbConn,
    session: &Session,
    reason: Reason,
) -> Result<Transition, AppError> {
    debug_assert!(!reason.is_state_change());
    Ok(diesel::insert_into(session_transitions::table)
        .values((
            session_transitions::session_id.eq(&session.id),
            session_transitions::project_id.eq(session.project_id),
            session_transitions::from_state.eq(session.state),
            session_transitions::to_state.eq(session.state),
            session_transitions::error_message.eq(&session.error_message),
            session_transitions::reason.eq(reason),
            session_transitions::at.eq(now_millis()),
            session_transitions::attention.eq(session.attention),
        ))
        .returning(crate::db::columns_of::<Transition>())
        .get_result(conn)?)
}

/// Marks a working session as waiting for the person (or no longer
/// waiting, with `None`), recording the change in the log. Only a
/// `working` session under `fence` whose attention differs is changed;
/// returns the entry, or `None` when nothing changed.
pub fn set_attention(
    conn: &mut DbConn,
    session_id: &str,
    attention: Option<Attention>,
    fence: RunFence<'_>,
) -> Result<Option<Transition>, AppError> {
    attention_entry(conn, session_id, attention, fence, true)
}

/// [`set_attention`], recording an entry even when the attention stays
/// the same: what the session waits for changed (one of two approval
/// requests was answered), and pages following the log must learn it.
pub fn record_attention(
    conn: &mut DbConn,
    session_id: &str,
    attention: Option<Attention>,
    fence: RunFence<'_>,
) -> Result<Option<Transition>, AppError> {
    attention_entry(conn, session_id, attention, fence, false)
}

fn attention_entry(
    conn: &mut DbConn,
    session_id: &str,
    attention: Option<Attention>,
    fence: RunFence<'_>,
    only_if_changed: bool,
) -> Result<Option<Transition>, AppError> {
    let now = now_millis();
    let differs: Box<dyn BoxableExpression<sessions::table, crate::db::Backend, SqlType = Bool>> =
        match (only_if_changed, attention) {
            (false, _) => Box::new(sessions::id.eq(session_id)),
            (true, Some(wanted)) => Box::new(
                sessions::attention
                    .is_null()
                    .or(sessions::attention.ne(wanted).assume_not_null()),
            ),
            (true, None) => Box::new(sessions::attention.is_not_null()),
        };
    let changed: Option<i32> = diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::state.eq(SessionState::Working))
            .filter(fence.filter(session_id))
            .filter(differs),
    )
    .set((
        sessions::attention.eq(attention),
        sessions::updated_at.eq(now),
    ))
    .returning(sessions::project_id)
    .get_result(conn)
    .optional()?;
    let Some(project_id) = changed else {
        return Ok(None);
    };
    let transition = diesel::insert_into(session_transitions::table)
        .values((
            session_transitions::session_id.eq(session_id),
            session_transitions::project_id.eq(project_id),
            session_transitions::from_state.eq(SessionState::Working),
            session_transitions::to_state.eq(SessionState::Working),
            session_transitions::reason.eq(Reason::Attention),
            session_transitions::at.eq(now),
            session_transitions::attention.eq(attention),
        ))
        .returning(crate::db::columns_of::<Transition>())
        .get_result(conn)?;
    Ok(Some(transition))
}

/// The latest position in the change log (0 when empty): the high-water
/// mark a snapshot read in the same transaction is consistent with.
pub fn high_water(conn: &mut DbConn) -> Result<i32, AppError> {
    Ok(session_transitions::table
        .select(diesel::dsl::max(session_transitions::seq))
        .first::<Option<i32>>(conn)?
        .unwrap_or(0))
}

/// The entries of the change log that are not state changes.
pub const LIFECYCLE: [Reason; 4] = [
    Reason::Created,
    Reason::Renamed,
    Reason::Deleted,
    Reason::Attention,
];

/// A session's state transitions (not its creation or renames), oldest first.
pub fn history(conn: &mut DbConn, session_id: &str) -> Result<Vec<Transition>, AppError> {
    Ok(session_transitions::table
        .filter(session_transitions::session_id.eq(session_id))
        .filter(session_transitions::reason.ne_all(LIFECYCLE))
        .order(session_transitions::seq.asc())
        .select(Transition::as_select())
        .load(conn)?)
}
