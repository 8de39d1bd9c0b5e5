//! The one writer of session state. Every change goes through [`apply`]: a
//! conditional UPDATE (`WHERE id = ? AND state = <from>`) plus a history
//! row, in the caller's transaction. Nothing reads the state and then
//! writes it; a change that no longer applies is refused, not forced.

use super::{next_state, Transition, TransitionEvent};
use crate::{
    db::{
        now_millis,
        schema::{session_transitions, sessions},
    },
    error::AppError,
    session_state::SessionState,
};
use diesel::prelude::*;

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

/// Applies `event` to the session, recording the transition. Call it inside
/// a transaction that also holds the event's other writes (the message, the
/// run row), so they commit or fail together.
pub fn apply(
    conn: &mut SqliteConnection,
    session_id: &str,
    event: &TransitionEvent,
) -> Result<Applied, AppError> {
    let now = now_millis();
    for from in SessionState::ALL {
        let Some((to, error_message)) = next_state(from, event) else {
            continue;
        };
        let changed = diesel::update(
            sessions::table
                .filter(sessions::id.eq(session_id))
                .filter(sessions::state.eq(from)),
        )
        .set((
            sessions::state.eq(to),
            sessions::error_message.eq(&error_message),
            sessions::state_changed_at.eq(now),
            sessions::updated_at.eq(now),
        ))
        .execute(conn)?;
        if changed == 1 {
            let transition = diesel::insert_into(session_transitions::table)
                .values((
                    session_transitions::session_id.eq(session_id),
                    session_transitions::from_state.eq(from),
                    session_transitions::to_state.eq(to),
                    session_transitions::error_message.eq(&error_message),
                    session_transitions::reason.eq(event.reason()),
                    session_transitions::at.eq(now),
                ))
                .returning(Transition::as_returning())
                .get_result(conn)?;
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

/// A session's recorded transitions, oldest first.
pub fn history(conn: &mut SqliteConnection, session_id: &str) -> Result<Vec<Transition>, AppError> {
    Ok(session_transitions::table
        .filter(session_transitions::session_id.eq(session_id))
        .order(session_transitions::seq.asc())
        .select(Transition::as_select())
        .load(conn)?)
}
