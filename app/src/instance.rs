//! The agentdeck server processes sharing one database. Each registers
//! itself (id, host, pid) and keeps a heartbeat while it serves; each run
//! records the instance that started its process, and only that instance
//! ends it. A run whose owner is gone — stopped, heartbeat older than the
//! lease, or a process no longer alive on this very host — is interrupted
//! by whichever instance notices first (at its start, and by its reaper).

pub mod store;

use std::time::Duration;

/// How long an instance's heartbeat stays good: a run whose owner has not
/// beaten for this long is taken to be orphaned.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often an instance beats. Several beats fit in a lease, so one slow
/// write never makes a live instance look dead.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How often an instance looks for orphaned runs.
pub const REAP_INTERVAL: Duration = Duration::from_secs(10);
/// How often an instance looks for cancels of its runs requested on
/// another instance, when no notification said so sooner.
pub const CANCEL_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Timings of one instance; [`Timings::default`] is what servers use,
/// tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub lease: Duration,
    pub heartbeat: Duration,
    pub reap: Duration,
    pub cancel_poll: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            lease: LEASE,
            heartbeat: HEARTBEAT_INTERVAL,
            reap: REAP_INTERVAL,
            cancel_poll: CANCEL_POLL_INTERVAL,
        }
    }
}

impl Timings {
    /// Timings for a lease of `lease`, the intervals scaled to keep their
    /// proportions (a sixth of the lease between beats, a third between reaps).
    pub fn with_lease(lease: Duration) -> Self {
        Self {
            lease,
            heartbeat: (lease / 6).max(Duration::from_millis(100)),
            reap: (lease / 3).max(Duration::from_millis(200)),
            cancel_poll: CANCEL_POLL_INTERVAL
                .min(lease / 6)
                .max(Duration::from_millis(100)),
        }
    }
}

/// This process, as other instances see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// New for every process (and every `Runner` in tests).
    pub id: String,
    pub host: String,
    pub pid: u32,
}

impl Instance {
    /// A new identity for this process.
    pub fn new() -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            host: host_name(),
            pid: std::process::id(),
        }
    }
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

/// The machine's host name, as the kernel knows it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
