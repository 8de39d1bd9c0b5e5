//! The in-process hub: committed changes and agent output fan out to every
//! open stream. Publishers call it only after their transaction commits, so
//! a client that re-reads the database never sees less than it was told.

use super::LiveEvent;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// Changes buffered for slow subscribers before they must catch up from the database.
const CHANGE_CAPACITY: usize = 1024;
/// Output events buffered; a subscriber that falls behind simply skips some.
const OUTPUT_CAPACITY: usize = 256;
/// Longest output line published, in bytes; longer lines are cut and end in
/// "…". With [`OUTPUT_CAPACITY`] this bounds what the output ring holds:
/// see [`OUTPUT_BYTE_BOUND`].
pub const MAX_OUTPUT_LINE_BYTES: usize = 4096;
/// The most line text the output ring keeps alive at once (1 MiB): a slot
/// holds one event until it is overwritten, however many pages read it, and
/// no event holds more than [`MAX_OUTPUT_LINE_BYTES`] of text. Agents may
/// print lines of any length; this stays the same.
pub const OUTPUT_BYTE_BOUND: usize = OUTPUT_CAPACITY * MAX_OUTPUT_LINE_BYTES;
const _: () = assert!(
    OUTPUT_BYTE_BOUND <= 4 << 20,
    "keep the output ring to a few MiB"
);

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

    /// Publishes a line of a running agent's output, cut to
    /// [`MAX_OUTPUT_LINE_BYTES`] (the page shows output as it comes; the
    /// stored answer keeps the whole text).
    pub fn publish_output(&self, session_id: &str, line: &str) {
        if self.output.receiver_count() > 0 {
            let event = LiveEvent::Output {
                session_id: session_id.to_owned(),
                line: clip_line(line),
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

/// `line` if it fits in [`MAX_OUTPUT_LINE_BYTES`]; otherwise its longest
/// prefix that does (cut on a character boundary) followed by "…".
fn clip_line(line: &str) -> String {
    const MARK: &str = "…";
    if line.len() <= MAX_OUTPUT_LINE_BYTES {
        return line.to_owned();
    }
    let mut cut = MAX_OUTPUT_LINE_BYTES - MARK.len();
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{MARK}", &line[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received_line(hub: &EventHub, line: &str) -> String {
        let mut output = hub.subscribe_output();
        hub.publish_output("s", line);
        match &*output.try_recv().expect("the line was published") {
            LiveEvent::Output { line, .. } => line.clone(),
            other => panic!("expected an output line, got {other:?}"),
        }
    }

    #[test]
    fn short_lines_pass_unchanged() {
        let hub = EventHub::default();
        assert_eq!(received_line(&hub, "hello"), "hello");
        let exact = "x".repeat(MAX_OUTPUT_LINE_BYTES);
        assert_eq!(received_line(&hub, &exact), exact);
    }

    #[test]
    fn a_huge_line_is_cut_to_the_cap_on_a_char_boundary_and_marked() {
        let hub = EventHub::default();
        // 3-byte characters, so the cap falls inside one unless cut with care.
        let huge = "€".repeat(1 << 20);
        let line = received_line(&hub, &huge);
        assert!(line.len() <= MAX_OUTPUT_LINE_BYTES, "{} bytes", line.len());
        assert!(line.len() > MAX_OUTPUT_LINE_BYTES - 8, "cut far too short");
        assert!(line.ends_with('…'));
        assert!(line.trim_end_matches('…').chars().all(|c| c == '€'));
    }

    #[test]
    fn the_output_ring_holds_at_most_its_byte_bound() {
        let hub = EventHub::default();
        let mut output = hub.subscribe_output();
        // Twice the ring's slots, each line 1 MiB as an agent may print.
        let huge = "y".repeat(1 << 20);
        for _ in 0..2 * OUTPUT_CAPACITY {
            hub.publish_output("s", &huge);
        }
        let mut held = 0;
        loop {
            match output.try_recv() {
                Ok(event) => match &*event {
                    LiveEvent::Output { line, .. } => held += line.len(),
                    other => panic!("unexpected {other:?}"),
                },
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        assert!(held > 0);
        assert!(held <= OUTPUT_BYTE_BOUND, "{held} bytes held");
    }
}
