//! Feeding the hub in commit order, whoever committed. An instance's own
//! writes are published as they commit (the hot path); what other writers
//! committed — another instance on the same PostgreSQL, or `agentdeck sync`
//! on the same SQLite file — is read from the change log and published in
//! `seq` order before anything after it. The database is the truth: a
//! PostgreSQL notification only wakes the tailer up, and a lost one (or a
//! listener reconnecting) costs at most one poll interval, never a change.
//!
//! Everything here runs on the writer's connection, under its lock: the one
//! place changes are published from, so the hub never sees them out of order.

use super::{follow::missed, hub::EventHub, LiveEvent, Scope};
use crate::{db::DbConn, error::AppError};
use diesel::{pg::PgConnection, Connection};
use std::{
    sync::{
        atomic::{AtomicI32, Ordering},
        Arc, Weak,
    },
    time::{Duration, Instant},
};
use tokio::sync::Notify;

/// How often the tailer reads the change log with no wake-up: the bound on
/// how late another writer's change can be when every notification is lost
/// (and how late `agentdeck sync`'s changes reach a SQLite server's pages).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Changes read at a time while catching up.
const CHUNK: i64 = 500;

/// The channel every change-log insert notifies (a trigger in
/// `migrations/postgres`): an empty wake-up, the rows are read from the table.
pub const CHANGES_CHANNEL: &str = "agentdeck_changes";
/// The channel a cancel for a run owned by another instance is sent on.
pub const CANCEL_CHANNEL: &str = "agentdeck_cancel";

/// The listener's `application_name`, to find it in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "agentdeck-listen";

/// How often the listener drains its connection: libpq exposes no socket to
/// wait on, so it polls (a non-blocking read each time).
const LISTEN_POLL: Duration = Duration::from_millis(5);
/// How often an idle listener checks its connection is alive.
const LISTEN_KEEPALIVE: Duration = Duration::from_secs(10);
/// How long the listener waits before connecting again after a failure.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The wake-ups the listener hands on: the tailer's, and the runner's for
/// cancels of its runs requested elsewhere.
#[derive(Debug, Default)]
pub struct Wakeups {
    pub changes: Notify,
    pub cancels: Notify,
}

/// Publishes `changes`, just committed on `conn`, after everything
/// committed before them. `published` is the last `seq` the hub has seen.
/// When their `seq`s follow it without a gap, they are published as they
/// are; otherwise another writer committed in between (or a rolled-back
/// PostgreSQL transaction left a gap), and the change log is read instead.
pub(crate) fn publish_committed(
    conn: &mut DbConn,
    hub: &EventHub,
    published: &AtomicI32,
    changes: Vec<LiveEvent>,
) -> Result<(), AppError> {
    let last = published.load(Ordering::Acquire);
    let mut expected = last;
    let follows = changes.iter().filter_map(LiveEvent::seq).all(|seq| {
        expected += 1;
        seq == expected
    });
    if follows {
        published.store(expected, Ordering::Release);
        hub.publish(changes);
        Ok(())
    } else {
        catch_up(conn, hub, published).map(drop)
    }
}

/// Publishes every change committed after `published`, oldest first, and
/// returns how many. Seq order is commit order on both backends (SQLite has
/// one writer; PostgreSQL writers draw seqs under one advisory lock), so
/// what is visible now is a prefix of the log: nothing can appear later
/// below the newest seq read.
pub(crate) fn catch_up(
    conn: &mut DbConn,
    hub: &EventHub,
    published: &AtomicI32,
) -> Result<usize, AppError> {
    let mut total = 0;
    loop {
        let since = published.load(Ordering::Acquire);
        let changes = missed(conn, since, &Scope::All, CHUNK)?;
        let Some(newest) = changes.iter().filter_map(LiveEvent::seq).max() else {
            return Ok(total);
        };
        total += changes.len();
        let full = changes.len() == CHUNK as usize;
        published.store(newest, Ordering::Release);
        hub.publish(changes);
        if !full {
            return Ok(total);
        }
    }
}

/// Listens for PostgreSQL notifications on a thread of its own (with its
/// own connection, outside the pool) and hands them on as wake-ups, until
/// every `Db` handle holding `wakeups` is gone. A broken connection is
/// opened again; each (re)connection wakes the tailer, which reads what
/// was committed while nobody listened.
pub(crate) fn spawn_listener(url: String, wakeups: &Arc<Wakeups>) {
    let wakeups = Arc::downgrade(wakeups);
    let spawned = std::thread::Builder::new()
        .name("agentdeck-listen".into())
        .spawn(move || listen(&url, &wakeups));
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the PostgreSQL listener; changes of other instances arrive by polling");
    }
}

fn listen(url: &str, wakeups: &Weak<Wakeups>) {
    let mut failures = 0u32;
    while wakeups.strong_count() > 0 {
        match listen_once(url, wakeups) {
            Ok(()) => return,
            Err(err) => {
                failures += 1;
                // Every failure is logged at first, then one in a hundred.
                if failures <= 3 || failures % 100 == 0 {
                    tracing::warn!(error = %crate::db::one_line(&err), failures, "PostgreSQL listener lost its connection; reconnecting");
                }
                std::thread::sleep(LISTEN_RETRY);
            }
        }
    }
}

/// One connection's life: LISTEN, then drain notifications until the
/// handles are gone (`Ok`) or the connection fails (`Err`).
fn listen_once(url: &str, wakeups: &Weak<Wakeups>) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let mut conn = PgConnection::establish(url).map_err(|err| err.to_string())?;
    conn.batch_execute(&format!(
        "SET application_name = '{LISTENER_NAME}'; LISTEN {CHANGES_CHANNEL}; LISTEN {CANCEL_CHANNEL};"
    ))
        .map_err(|err| err.to_string())?;
    tracing::debug!("PostgreSQL listener connected");
    let Some(first) = wakeups.upgrade() else {
        return Ok(());
    };
    // Whatever was committed while nobody listened.
    first.changes.notify_one();
    first.cancels.notify_one();
    drop(first);
    let mut checked = Instant::now();
    loop {
        let Some(wakeups) = wakeups.upgrade() else {
            return Ok(());
        };
        let (mut changes, mut cancels) = (false, false);
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|err| err.to_string())?;
            match notification.channel.as_str() {
                CANCEL_CHANNEL => cancels = true,
                _ => changes = true,
            }
        }
        if changes {
            wakeups.changes.notify_one();
        }
        if cancels {
            wakeups.cancels.notify_one();
        }
        drop(wakeups);
        if checked.elapsed() >= LISTEN_KEEPALIVE {
            conn.batch_execute("SELECT 1")
                .map_err(|err| err.to_string())?;
            checked = Instant::now();
        }
        std::thread::sleep(LISTEN_POLL);
    }
}
