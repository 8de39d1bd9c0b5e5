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
use diesel::{pg::PgConnection, Connection, RunQueryDsl};
use serde::{Deserialize, Serialize};
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
/// The channel live output lines are forwarded on, best effort: a line a
/// notification loses is missing from other instances' pages only (the
/// run's end and its answer are in the database).
pub const OUTPUT_CHANNEL: &str = "agentdeck_output";

/// Output lines waiting to be forwarded; beyond it lines are dropped, so
/// a slow database never holds an agent's output back.
const FORWARD_QUEUE: usize = 4096;
/// Longest forwarded line, in bytes: a notification payload must stay
/// under 8000 bytes, with room for the ids.
const MAX_FORWARDED_LINE: usize = 7000;

/// An output line (or the end of a run's output) forwarded to the other
/// instances; `origin` tells an instance its own lines apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedOutput {
    #[serde(rename = "o")]
    pub origin: String,
    #[serde(rename = "s")]
    pub session_id: String,
    #[serde(rename = "r")]
    pub run_id: String,
    /// `None` marks the end of the run's output.
    #[serde(rename = "l")]
    pub line: Option<String>,
}

impl ForwardedOutput {
    /// Applies a line another instance forwarded to this instance's hub.
    fn apply(self, hub: &EventHub) {
        match &self.line {
            Some(line) => hub.publish_output(&self.session_id, &self.run_id, line),
            None => hub.end_output(&self.session_id, &self.run_id),
        }
    }
}

/// Sends output lines to the other instances from a thread of its own
/// (with its own connection), until the returned sender is dropped.
pub(crate) fn spawn_forwarder(url: String) -> Option<std::sync::mpsc::SyncSender<ForwardedOutput>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<ForwardedOutput>(FORWARD_QUEUE);
    let spawned = std::thread::Builder::new()
        .name("agentdeck-forward".into())
        .spawn(move || forward(&url, &rx));
    match spawned {
        Ok(_) => Some(tx),
        Err(err) => {
            tracing::error!(error = %err, "cannot start the output forwarder; other instances show no live output");
            None
        }
    }
}

fn forward(url: &str, lines: &std::sync::mpsc::Receiver<ForwardedOutput>) {
    let mut conn: Option<PgConnection> = None;
    while let Ok(mut line) = lines.recv() {
        if let Some(text) = &mut line.line {
            if text.len() > MAX_FORWARDED_LINE {
                let mut cut = MAX_FORWARDED_LINE;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
        }
        let Ok(payload) = serde_json::to_string(&line) else {
            continue;
        };
        if conn.is_none() {
            conn = PgConnection::establish(url)
                .inspect_err(|err| tracing::debug!(error = %err, "output forwarder cannot connect; dropping a line"))
                .ok();
        }
        let Some(active) = &mut conn else { continue };
        let sent = diesel::sql_query(format!("SELECT pg_notify('{OUTPUT_CHANNEL}', $1)"))
            .bind::<diesel::sql_types::Text, _>(payload)
            .execute(active);
        if let Err(err) = sent {
            tracing::debug!(error = %err, "output forwarder lost its connection; dropping a line");
            conn = None;
        }
    }
}

/// The listener's `application_name`, to find it in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "agentdeck-listen";

/// How often the listener drains its connection: libpq exposes no socket to
/// wait on, so it polls (a non-blocking read each time).
const LISTEN_POLL: Duration = Duration::from_millis(1);
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
pub(crate) fn spawn_listener(url: String, wakeups: &Arc<Wakeups>, hub: EventHub, origin: String) {
    let wakeups = Arc::downgrade(wakeups);
    let spawned = std::thread::Builder::new()
        .name("agentdeck-listen".into())
        .spawn(move || listen(&url, &wakeups, &hub, &origin));
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start the PostgreSQL listener; changes of other instances arrive by polling");
    }
}

fn listen(url: &str, wakeups: &Weak<Wakeups>, hub: &EventHub, origin: &str) {
    let mut failures = 0u32;
    while wakeups.strong_count() > 0 {
        match listen_once(url, wakeups, hub, origin) {
            Ok(()) => return,
            Err(err) => {
                failures += 1;
                // Every failure is logged at first, then one in a hundred.
                if failures <= 3 || failures.is_multiple_of(100) {
                    tracing::warn!(error = %crate::db::one_line(&err), failures, "PostgreSQL listener lost its connection; reconnecting");
                }
                std::thread::sleep(LISTEN_RETRY);
            }
        }
    }
}

/// One connection's life: LISTEN, then drain notifications until the
/// handles are gone (`Ok`) or the connection fails (`Err`).
fn listen_once(
    url: &str,
    wakeups: &Weak<Wakeups>,
    hub: &EventHub,
    origin: &str,
) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let mut conn = PgConnection::establish(url).map_err(|err| err.to_string())?;
    conn.batch_execute(&format!(
        "SET application_name = '{LISTENER_NAME}'; \
         LISTEN {CHANGES_CHANNEL}; LISTEN {CANCEL_CHANNEL}; LISTEN {OUTPUT_CHANNEL};"
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
                OUTPUT_CHANNEL => {
                    match serde_json::from_str::<ForwardedOutput>(&notification.payload) {
                        Ok(line) if line.origin != origin => line.apply(hub),
                        Ok(_) => {}
                        Err(err) => {
                            tracing::debug!(error = %err, "ignoring an unreadable output notification")
                        }
                    }
                }
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
