//! Following the change log: what one open page receives. Subscribe to the
//! hub first, then replay from the database everything after the page's
//! `since`, then forward live events, skipping any `seq` already sent. A
//! subscriber that lags is caught up from the database, never skipped —
//! unless it is more than [`MAX_REPLAY`] changes behind: then it is told to
//! reload its snapshot ([`LiveEvent::Reset`]) and goes on live from there.
//! A session's follower also sends the running run's output: its backlog
//! first, then live lines, each line once.

use super::{hub::Published, LiveEvent, Scope};
use crate::db::DbConn;
use crate::{
    db::{schema::session_transitions, Db},
    error::AppError,
    session::store::find as find_session,
    transition::{writer, Reason, Transition},
};
use diesel::prelude::*;
use std::{collections::VecDeque, sync::Arc};
use tokio::sync::{
    broadcast::{self, error::RecvError},
    watch,
};

/// The most changes one catch-up replays. A follower further behind (a page
/// asleep for a day, or following from 0) gets one [`LiveEvent::Reset`]
/// and reloads its snapshot, instead of the server reading the backlog.
pub const MAX_REPLAY: i64 = 10_000;
/// Changes read from the database at a time while catching up, so a
/// follower never holds more than this many in memory.
const REPLAY_CHUNK: i64 = 500;

/// One page's view of the change stream. Pull-based: it does its work
/// inside the page's response stream, with no task or queue of its own, so
/// an open page costs the server little memory (see `sse-memory.mjs`).
pub struct Follower {
    db: Db,
    scope: Scope,
    /// The last change handed out (or queued in `backlog`); `None` until
    /// the first catch-up when following from now.
    sent: Option<i32>,
    changes: broadcast::Receiver<Arc<Published>>,
    /// Agent output and sync progress, for project and session pages.
    output: Option<broadcast::Receiver<Arc<Published>>>,
    /// Output lines from the session's backlog, not handed out yet: sent
    /// once the changes before them are (a run's `sent` before its lines).
    lines: VecDeque<Arc<Published>>,
    /// The run and number of the last output line handed out.
    last_line: Option<(String, u64)>,
    closing: watch::Receiver<bool>,
    /// Changes read from the database, not handed out yet.
    backlog: VecDeque<LiveEvent>,
    /// Whether the database must be read before the next live change: at
    /// the start, and after the hub dropped changes for this follower.
    must_catch_up: bool,
}

/// Starts following `scope` from just after `since`, or from the current
/// end of the change log when `since` is `None` (never a replay of all
/// history). [`Follower::next`] yields changes in `seq` order, each exactly
/// once, interleaved with output lines (for a session scope: the running
/// run's backlog, then live lines, each once); where more than
/// [`MAX_REPLAY`] changes wait, one [`LiveEvent::Reset`] stands in for
/// them. It subscribes to the hub here, before anything is read from the
/// database, so no change falls in between.
pub fn follow(db: Db, scope: Scope, since: Option<i32>) -> Follower {
    let changes = db.hub().subscribe_changes();
    let (output, lines) = match &scope {
        Scope::Session(id) => {
            let (output, lines) = db.hub().subscribe_session_output(id);
            (Some(output), lines.into())
        }
        Scope::Project(_) => (Some(db.hub().subscribe_output()), VecDeque::new()),
        Scope::All => (None, VecDeque::new()),
    };
    let closing = db.hub().closing();
    Follower {
        db,
        scope,
        sent: since,
        changes,
        output,
        lines,
        last_line: None,
        closing,
        backlog: VecDeque::new(),
        must_catch_up: true,
    }
}

impl Follower {
    /// The next event; `None` once the server is shutting down or the
    /// database cannot be read.
    pub async fn next(&mut self) -> Option<Arc<Published>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(Arc::new(Published::new(event)));
            }
            if self.must_catch_up {
                self.catch_up().await.ok()?;
                continue;
            }
            while let Some(line) = self.lines.pop_front() {
                if self.is_new_line(&line) {
                    return Some(line);
                }
            }
            if *self.closing.borrow() {
                return None;
            }
            // Biased: a change published before an output line (a run's
            // `sent` before its first line) must reach the client first, or
            // the page would clear that line when it applies `sent`.
            tokio::select! {
                biased;
                _ = self.closing.changed() => return None,
                received = self.changes.recv() => match received {
                    Ok(event) => {
                        let Some(seq) = event.seq() else { continue };
                        let LiveEvent::Change { change, .. } = &**event else { continue };
                        if self.sent.is_some_and(|sent| seq <= sent) || !self.scope.contains(change) {
                            continue;
                        }
                        self.sent = Some(seq);
                        return Some(event);
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "live subscriber lagged; catching up from the database");
                        self.must_catch_up = true;
                    }
                    Err(RecvError::Closed) => return None,
                },
                received = next_output(&mut self.output) => match received {
                    Ok(event) => {
                        let wanted = match (&**event, &self.scope) {
                            (LiveEvent::Output { .. }, Scope::Session(_)) => self.is_new_line(&event),
                            (LiveEvent::SyncProgress { project_id, .. }, Scope::Project(id)) => project_id == id,
                            _ => false,
                        };
                        if wanted {
                            return Some(event);
                        }
                    }
                    // The lines it missed are in the backlog (unless it is
                    // far behind): start over from it, as on connecting. The
                    // ring's older events are dropped, or a line of the run
                    // before could follow the backlog's; the changes are read
                    // again, so a run's `sent` still goes before its lines.
                    Err(RecvError::Lagged(missed)) => {
                        if let Scope::Session(id) = &self.scope {
                            tracing::debug!(missed, session_id = %id, "output subscriber lagged; resending the backlog");
                            let (output, lines) = self.db.hub().subscribe_session_output(id);
                            self.output = Some(output);
                            self.lines = lines.into();
                            self.must_catch_up = true;
                        }
                    }
                    Err(RecvError::Closed) => self.output = None,
                },
            }
        }
    }

    /// Whether `event` is an output line of this follower's session not
    /// handed out yet (lines of one run come in order, so one number
    /// tells); if so, it is noted as handed out.
    fn is_new_line(&mut self, event: &LiveEvent) -> bool {
        let (
            LiveEvent::Output {
                session_id,
                run_id,
                n,
                ..
            },
            Scope::Session(id),
        ) = (event, &self.scope)
        else {
            return false;
        };
        if session_id != id {
            return false;
        }
        match &mut self.last_line {
            Some((run, last)) if run == run_id => {
                if *n <= *last {
                    return false;
                }
                *last = *n;
            }
            last_line => *last_line = Some((run_id.clone(), *n)),
        }
        true
    }

    /// Queues the next part of what is in scope after `sent` from the
    /// database, at most [`REPLAY_CHUNK`] changes at a time; or, when more
    /// than [`MAX_REPLAY`] are waiting, one [`LiveEvent::Reset`] instead.
    async fn catch_up(&mut self) -> Result<(), AppError> {
        let (scope, since) = (self.scope.clone(), self.sent);
        let (replay, high_water) = self
            .db
            .run(move |conn| {
                let high_water = writer::high_water(conn)?;
                let replay = match since {
                    None => Replay::Changes(Vec::new()),
                    // Seqs only grow, so a short distance to the mark needs no query.
                    Some(since)
                        if i64::from(high_water) - i64::from(since) > MAX_REPLAY
                            && waiting_more_than(conn, since, &scope, MAX_REPLAY)? =>
                    {
                        Replay::Reset
                    }
                    Some(since) => Replay::Changes(missed(conn, since, &scope, REPLAY_CHUNK)?),
                };
                Ok::<_, AppError>((replay, high_water))
            })
            .await?;
        match replay {
            Replay::Reset => {
                tracing::debug!(
                    since,
                    high_water,
                    "live follower too far behind; resetting it"
                );
                self.sent = Some(high_water);
                self.backlog.push_back(LiveEvent::Reset { seq: high_water });
                self.must_catch_up = false;
            }
            Replay::Changes(missed) => {
                // A full chunk may have more behind it: read again once it is sent.
                self.must_catch_up = missed.len() == REPLAY_CHUNK as usize;
                self.sent = Some(
                    missed
                        .last()
                        .and_then(LiveEvent::seq)
                        .unwrap_or(since.map_or(high_water, |since| since.min(high_water))),
                );
                self.backlog.extend(missed);
            }
        }
        Ok(())
    }
}

/// What one catch-up hands out.
enum Replay {
    Changes(Vec<LiveEvent>),
    Reset,
}

/// The next output event (or that some were lost to lag, or that the hub
/// is gone); never, without a receiver.
async fn next_output(
    output: &mut Option<broadcast::Receiver<Arc<Published>>>,
) -> Result<Arc<Published>, RecvError> {
    match output {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// The change-log entries in `scope` after `since`, oldest first.
fn after(
    since: i32,
    scope: &Scope,
) -> session_transitions::BoxedQuery<'static, crate::db::Backend> {
    let query = session_transitions::table
        .filter(session_transitions::seq.gt(since))
        .into_boxed();
    match scope {
        Scope::All => query,
        Scope::Project(id) => query.filter(session_transitions::project_id.eq(*id)),
        Scope::Session(id) => query.filter(session_transitions::session_id.eq(id.clone())),
    }
    .order(session_transitions::seq.asc())
}

/// Whether more than `bound` entries in `scope` follow `since`: one index
/// step past the bound, never a count of the whole backlog.
fn waiting_more_than(
    conn: &mut DbConn,
    since: i32,
    scope: &Scope,
    bound: i64,
) -> Result<bool, AppError> {
    Ok(after(since, scope)
        .select(session_transitions::seq)
        .offset(bound)
        .first::<i32>(conn)
        .optional()?
        .is_some())
}

/// The first `limit` change-log entries in `scope` after `since`, as events;
/// created and renamed entries carry the session as it is now (if it still exists).
pub fn missed(
    conn: &mut DbConn,
    since: i32,
    scope: &Scope,
    limit: i64,
) -> Result<Vec<LiveEvent>, AppError> {
    after(since, scope)
        .limit(limit)
        .select(Transition::as_select())
        .load(conn)?
        .into_iter()
        .map(|change| {
            let session = match change.reason {
                Reason::Created | Reason::Renamed => find_session(conn, &change.session_id).ok(),
                _ => None,
            };
            Ok(LiveEvent::Change { change, session })
        })
        .collect()
}
