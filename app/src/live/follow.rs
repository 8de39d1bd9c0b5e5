//! Following the change log: what one open page receives. Subscribe to the
//! hub first, then replay from the database everything after the page's
//! `since`, then forward live events, skipping any `seq` already sent. A
//! subscriber that lags is caught up from the database, never skipped.

use super::{LiveEvent, Scope};
use crate::{
    db::Db,
    error::AppError,
    session::store::find as find_session,
    transition::{writer, Reason},
};
use diesel::SqliteConnection;
use std::sync::Arc;
use tokio::sync::{broadcast::error::RecvError, mpsc};

/// Events queued for one client before its stream applies backpressure.
const CLIENT_QUEUE: usize = 64;

/// Starts following `scope` from just after `since`. The receiver yields
/// changes in `seq` order, each exactly once, then live output lines (for a
/// session scope). Dropping the receiver stops the follower.
pub fn follow(db: Db, scope: Scope, since: i32) -> mpsc::Receiver<Arc<LiveEvent>> {
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    tokio::spawn(forward(db, scope, since, tx));
    rx
}

async fn forward(db: Db, scope: Scope, mut sent: i32, tx: mpsc::Sender<Arc<LiveEvent>>) {
    let mut changes = db.hub().subscribe_changes();
    let mut output = match &scope {
        Scope::Session(_) | Scope::Project(_) => Some(db.hub().subscribe_output()),
        Scope::All => None,
    };
    if catch_up(&db, &scope, &mut sent, &tx).await.is_err() {
        return;
    }
    let hub = db.hub().clone();
    let closed = hub.closed();
    tokio::pin!(closed);
    loop {
        // Biased: a change published before an output line (a run's `sent`
        // before its first line) must reach the client first, or the page
        // would clear that line when it applies `sent`.
        tokio::select! {
            biased;
            () = &mut closed => return,
            received = changes.recv() => match received {
                Ok(event) => {
                    let Some(seq) = event.seq() else { continue };
                    let LiveEvent::Change { change, .. } = &*event else { continue };
                    if seq <= sent || !scope.contains(change) {
                        continue;
                    }
                    sent = seq;
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "live subscriber lagged; catching up from the database");
                    if catch_up(&db, &scope, &mut sent, &tx).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            received = next_output(&mut output) => match received {
                Some(event) => {
                    let wanted = match (&*event, &scope) {
                        (LiveEvent::Output { session_id, .. }, Scope::Session(id)) => session_id == id,
                        (LiveEvent::SyncProgress { project_id, .. }, Scope::Project(id)) => project_id == id,
                        _ => false,
                    };
                    if wanted && tx.send(event).await.is_err() {
                        return;
                    }
                }
                None => output = None,
            },
            () = tx.closed() => return,
        }
    }
}

/// The next output line, skipping over any lost to lag; `None` once closed.
async fn next_output(
    output: &mut Option<tokio::sync::broadcast::Receiver<Arc<LiveEvent>>>,
) -> Option<Arc<LiveEvent>> {
    let Some(receiver) = output else {
        return std::future::pending().await;
    };
    loop {
        match receiver.recv().await {
            Ok(event) => return Some(event),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return None,
        }
    }
}

/// Sends everything in scope after `sent` from the database.
async fn catch_up(
    db: &Db,
    scope: &Scope,
    sent: &mut i32,
    tx: &mpsc::Sender<Arc<LiveEvent>>,
) -> Result<(), ()> {
    let (scope_owned, since) = (scope.clone(), *sent);
    let missed = db
        .run(move |conn| missed(conn, since, &scope_owned))
        .await
        .map_err(|_| ())?;
    for event in missed {
        *sent = event.seq().unwrap_or(*sent);
        tx.send(Arc::new(event)).await.map_err(|_| ())?;
    }
    Ok(())
}

/// The change-log entries in `scope` after `since`, as events; created and
/// renamed entries carry the session as it is now (if it still exists).
pub fn missed(
    conn: &mut SqliteConnection,
    since: i32,
    scope: &Scope,
) -> Result<Vec<LiveEvent>, AppError> {
    writer::since(conn, since, scope)?
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
