//! The in-process hub: committed changes and agent output fan out to every
//! open stream. Publishers call it only after their transaction commits, so
//! a client that re-reads the database never sees less than it was told.

use super::LiveEvent;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// Changes buffered for slow subscribers before they must catch up from the database.
const CHANGE_CAPACITY: usize = 1024;
/// Output lines buffered; a subscriber that falls behind simply skips some.
const OUTPUT_CAPACITY: usize = 256;

/// Fans events out to subscribers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventHub {
    changes: broadcast::Sender<Arc<LiveEvent>>,
    output: broadcast::Sender<Arc<LiveEvent>>,
    closing: watch::Sender<bool>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            changes: broadcast::channel(CHANGE_CAPACITY).0,
            output: broadcast::channel(OUTPUT_CAPACITY).0,
            closing: watch::channel(false).0,
        }
    }
}

impl EventHub {
    /// Publishes committed change-log entries, in order. Only
    /// [`crate::db::Db::write`] calls this, which keeps commit order.
    pub(crate) fn publish(&self, changes: Vec<LiveEvent>) {
        for change in changes {
            let _ = self.changes.send(Arc::new(change));
        }
    }

    /// Publishes a line of a running agent's output.
    pub fn publish_output(&self, session_id: &str, line: &str) {
        if self.output.receiver_count() > 0 {
            let event = LiveEvent::Output {
                session_id: session_id.to_owned(),
                line: line.to_owned(),
            };
            let _ = self.output.send(Arc::new(event));
        }
    }

    /// Subscribes to committed changes. Subscribe *before* reading the
    /// database, then skip what the read already covered.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.changes.subscribe()
    }

    /// Publishes how far a sync has got.
    pub fn publish_sync_progress(&self, project_id: i32, scanned: usize, total: usize) {
        if self.output.receiver_count() > 0 {
            let _ = self.output.send(Arc::new(LiveEvent::SyncProgress {
                project_id,
                scanned,
                total,
            }));
        }
    }

    /// Ends every stream (on shutdown), so open pages do not hold the server up.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes `true` when [`EventHub::close`] is called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Subscribes to agent output.
    pub fn subscribe_output(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.output.subscribe()
    }
}
