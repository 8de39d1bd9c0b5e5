//! The in-process hub: committed changes and agent output fan out to every
//! open stream. Publishers call it only after their transaction commits, so
//! a client that re-reads the database never sees less than it was told.
//! It also keeps each running run's latest output (its backlog), so a page
//! opened mid-run starts from what was printed before it opened.

use super::{LiveEvent, OutputBacklog, BACKLOG_LINES};
use std::{
    collections::{HashMap, VecDeque},
    ops::Deref,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};
use tokio::sync::{broadcast, watch};

/// Changes buffered for slow subscribers before they must catch up from the database.
const CHANGE_CAPACITY: usize = 1024;
/// Output events buffered; a session's follower that falls behind catches
/// up from the backlog, others simply skip some.
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
/// The most line text one run's backlog keeps (besides at most
/// [`BACKLOG_LINES`] lines): 500 long lines would be 2 MiB. There is one
/// backlog per running run, and runs at once are bounded (`--max-runs`).
pub const BACKLOG_BYTES: usize = 256 << 10;

/// An event as the streams send it. Its JSON is made once, by the first
/// stream that sends it, and shared by every other page that receives it:
/// a change reaching a thousand pages is serialised once, not a thousand times.
#[derive(Debug)]
pub struct Published {
    event: LiveEvent,
    json: OnceLock<String>,
}

impl Published {
    pub fn new(event: LiveEvent) -> Self {
        Self {
            event,
            json: OnceLock::new(),
        }
    }

    /// The event's wire form (`LiveEvent` as JSON).
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }
}

impl Deref for Published {
    type Target = LiveEvent;

    fn deref(&self) -> &LiveEvent {
        &self.event
    }
}

/// Fans events out to subscribers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventHub {
    changes: broadcast::Sender<Arc<Published>>,
    output: broadcast::Sender<Arc<Published>>,
    closing: watch::Sender<bool>,
    /// Per session, its running run's backlog. A line is stored and sent
    /// under this lock, and a follower subscribes and copies under it: so
    /// it gets each line once, from the backlog or live.
    backlogs: Arc<Mutex<HashMap<String, Backlog>>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            changes: broadcast::channel(CHANGE_CAPACITY).0,
            output: broadcast::channel(OUTPUT_CAPACITY).0,
            closing: watch::channel(false).0,
            backlogs: Arc::default(),
        }
    }
}

/// One run's newest output lines, as the events they were sent as.
#[derive(Debug)]
struct Backlog {
    run_id: String,
    /// The number of the run's last line (lines count from 1).
    last: u64,
    lines: VecDeque<Arc<Published>>,
    /// Line text held in `lines`.
    bytes: usize,
}

impl Backlog {
    fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            last: 0,
            lines: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Keeps `event`, dropping the oldest lines beyond the bounds.
    fn push(&mut self, event: Arc<Published>) {
        self.bytes += line_len(&event);
        self.lines.push_back(event);
        while self.lines.len() > BACKLOG_LINES || self.bytes > BACKLOG_BYTES {
            let Some(oldest) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= line_len(&oldest);
        }
    }
}

/// The text length of an output event (0 for others).
fn line_len(event: &LiveEvent) -> usize {
    match event {
        LiveEvent::Output { line, .. } => line.len(),
        _ => 0,
    }
}

impl EventHub {
    /// Publishes committed change-log entries, in order. Only
    /// [`crate::db::Db::write`] calls this, which keeps commit order.
    pub(crate) fn publish(&self, changes: Vec<LiveEvent>) {
        for change in changes {
            let _ = self.changes.send(Arc::new(Published::new(change)));
        }
    }

    /// Publishes the next line of run `run_id`'s output, cut to
    /// [`MAX_OUTPUT_LINE_BYTES`] (the page shows output as it comes; the
    /// stored answer keeps the whole text), and keeps it in the session's
    /// backlog. The first line of another run replaces the backlog.
    pub fn publish_output(&self, session_id: &str, run_id: &str, line: &str) {
        let mut backlogs = self.backlogs();
        if backlogs
            .get(session_id)
            .is_none_or(|backlog| backlog.run_id != run_id)
        {
            backlogs.insert(session_id.to_owned(), Backlog::new(run_id));
        }
        let Some(backlog) = backlogs.get_mut(session_id) else {
            return;
        };
        backlog.last += 1;
        let event = Arc::new(Published::new(LiveEvent::Output {
            session_id: session_id.to_owned(),
            run_id: run_id.to_owned(),
            n: backlog.last,
            line: clip_line(line),
        }));
        backlog.push(Arc::clone(&event));
        if self.output.receiver_count() > 0 {
            let _ = self.output.send(event);
        }
    }

    /// Drops the session's backlog once run `run_id` has ended (a newer
    /// run's backlog stays).
    pub fn end_output(&self, session_id: &str, run_id: &str) {
        let mut backlogs = self.backlogs();
        if backlogs
            .get(session_id)
            .is_some_and(|backlog| backlog.run_id == run_id)
        {
            backlogs.remove(session_id);
        }
    }

    /// The session's backlog, for a page's snapshot; `None` when no run of
    /// it has printed anything.
    pub fn output_backlog(&self, session_id: &str) -> Option<OutputBacklog> {
        let backlogs = self.backlogs();
        let backlog = backlogs.get(session_id)?;
        let lines = backlog
            .lines
            .iter()
            .filter_map(|event| match &***event {
                LiveEvent::Output { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect();
        Some(OutputBacklog {
            run_id: backlog.run_id.clone(),
            last: backlog.last,
            lines,
        })
    }

    /// Subscribes to agent output and copies the session's backlog at the
    /// same instant: every line after the copy arrives on the receiver, and
    /// none before it.
    pub fn subscribe_session_output(
        &self,
        session_id: &str,
    ) -> (broadcast::Receiver<Arc<Published>>, Vec<Arc<Published>>) {
        let backlogs = self.backlogs();
        let receiver = self.output.subscribe();
        let lines = backlogs
            .get(session_id)
            .map(|backlog| backlog.lines.iter().cloned().collect())
            .unwrap_or_default();
        (receiver, lines)
    }

    /// Subscribes to committed changes. Subscribe *before* reading the
    /// database, then skip what the read already covered.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<Published>> {
        self.changes.subscribe()
    }

    /// Publishes how far a sync has got.
    pub fn publish_sync_progress(&self, project_id: i32, scanned: usize, total: usize) {
        if self.output.receiver_count() > 0 {
            let _ = self
                .output
                .send(Arc::new(Published::new(LiveEvent::SyncProgress {
                    project_id,
                    scanned,
                    total,
                })));
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

    /// Subscribes to agent output (every session's) and sync progress.
    pub fn subscribe_output(&self) -> broadcast::Receiver<Arc<Published>> {
        self.output.subscribe()
    }

    fn backlogs(&self) -> MutexGuard<'_, HashMap<String, Backlog>> {
        self.backlogs.lock().unwrap_or_else(PoisonError::into_inner)
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
        hub.publish_output("s", "r", line);
        match &**output.try_recv().expect("the line was published") {
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
            hub.publish_output("s", "r", &huge);
        }
        let mut held = 0;
        loop {
            match output.try_recv() {
                Ok(event) => match &**event {
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

    #[test]
    fn the_backlog_is_bounded_in_lines_and_bytes() {
        let hub = EventHub::default();
        for i in 1..=BACKLOG_LINES + 100 {
            hub.publish_output("s", "r", &i.to_string());
        }
        let backlog = hub.output_backlog("s").expect("a backlog");
        assert_eq!(backlog.lines.len(), BACKLOG_LINES);
        assert_eq!(backlog.lines[0], "101");
        assert_eq!(backlog.last, (BACKLOG_LINES + 100) as u64);

        let huge = "z".repeat(1 << 20);
        for _ in 0..BACKLOG_LINES {
            hub.publish_output("s", "r", &huge);
        }
        let held: usize = hub
            .output_backlog("s")
            .unwrap()
            .lines
            .iter()
            .map(String::len)
            .sum();
        assert!(held <= BACKLOG_BYTES, "{held} bytes held");
        assert!(
            held > BACKLOG_BYTES - MAX_OUTPUT_LINE_BYTES,
            "{held} bytes held"
        );
    }

    #[test]
    fn a_new_run_replaces_the_backlog_and_only_its_own_end_clears_it() {
        let hub = EventHub::default();
        hub.publish_output("s", "r1", "a");
        hub.publish_output("s", "r1", "b");
        hub.publish_output("other", "r9", "x");
        hub.publish_output("s", "r2", "c");
        let backlog = hub.output_backlog("s").expect("a backlog");
        assert_eq!((backlog.run_id.as_str(), backlog.last), ("r2", 1));
        assert_eq!(backlog.lines, ["c"]);
        hub.end_output("s", "r1");
        assert!(
            hub.output_backlog("s").is_some(),
            "an older run's end kept r2's lines"
        );
        hub.end_output("s", "r2");
        assert_eq!(hub.output_backlog("s"), None);
        assert_eq!(hub.output_backlog("other").unwrap().lines, ["x"]);
    }
}
