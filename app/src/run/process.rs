//! Agent processes: started in their own process group so a cancel reaches
//! every child they spawn, and read as bounded line streams so a chatty or
//! hostile process cannot exhaust the server's memory.

use nix::{
    sys::signal::{killpg, Signal},
    unistd::Pid,
};
use std::{path::Path, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
};

/// Longest line kept from an agent's output; the rest of a longer line is dropped.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Starts `program` for run `run_id` in `dir`, in a new process group,
/// with piped output (and piped input when `with_stdin`, else none). The run id is in the agent's environment, so hooks
/// the person installed globally know the run as agentdeck's own. The
/// error says what to fix (missing executable, missing directory).
pub fn spawn(
    program: &Path,
    args: &[String],
    dir: &Path,
    run_id: &str,
    with_stdin: bool,
) -> Result<Child, String> {
    if !dir.is_dir() {
        return Err(format!(
            "cannot start the agent: the project directory {} no longer exists",
            dir.display()
        ));
    }
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env(crate::hook::RUN_ENV, run_id)
        .process_group(0)
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => {
                format!(
                    "cannot start the agent: {} was not found",
                    program.display()
                )
            }
            std::io::ErrorKind::PermissionDenied => {
                format!(
                    "cannot start the agent: {} is not executable",
                    program.display()
                )
            }
            _ => format!("cannot start the agent {}: {err}", program.display()),
        })
}

/// Sends `signal` to every process in the group led by `pgid`. A group that
/// is already gone is not an error. Never signals for a pgid of 0 or 1
/// (0 would be this server's own group), or one that overflows.
pub fn signal_group(pgid: u32, signal: Signal) {
    match i32::try_from(pgid) {
        Ok(pgid) if pgid > 1 => {
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
        _ => tracing::warn!(pgid, "refusing to signal an invalid process group"),
    }
}

/// Stops the whole group: SIGTERM, then SIGKILL if the leader has not
/// exited within `grace`. Always ends with a SIGKILL to the group so no
/// background child outlives its run.
pub async fn terminate_group(child: &mut Child, pgid: u32, grace: Duration) {
    signal_group(pgid, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    signal_group(pgid, Signal::SIGKILL);
}

/// Reads lines from a stream, keeping at most [`MAX_LINE_BYTES`] of each.
/// Cancel-safe: a partial line survives a dropped `next_line` future.
pub struct LineReader<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, reader),
            line: Vec::new(),
        }
    }

    /// The next line without its newline (lossily decoded), or `None` at the end.
    pub async fn next_line(&mut self) -> Option<String> {
        loop {
            let chunk = match self.reader.fill_buf().await {
                Ok(chunk) => chunk,
                Err(_) => &[],
            };
            if chunk.is_empty() {
                return (!self.line.is_empty()).then(|| self.take_line());
            }
            let (used, complete) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
            let keep = if complete { used - 1 } else { used };
            self.line.extend_from_slice(&chunk[..keep.min(room)]);
            self.reader.consume(used);
            if complete {
                return Some(self.take_line());
            }
        }
    }

    fn take_line(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_owned();
        self.line.clear();
        line
    }
}

/// Writes lines to an agent's stdin from a task of its own, so a full
/// pipe never blocks the run's loop. Dropping it closes stdin (once the
/// lines sent before are written).
pub struct LineWriter {
    lines: tokio::sync::mpsc::UnboundedSender<String>,
}

impl LineWriter {
    pub fn spawn(mut stdin: tokio::process::ChildStdin) -> Self {
        let (lines, mut queued) = tokio::sync::mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(mut line) = queued.recv().await {
                line.push('\n');
                // A closed pipe means the agent is gone: its end is read elsewhere.
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
        });
        Self { lines }
    }

    /// Queues one line (a newline is added).
    pub fn send(&self, line: String) {
        let _ = self.lines.send(line);
    }
}

/// The last `limit` bytes of text pushed into it, cut on a char boundary.
#[derive(Debug, Default)]
pub struct Tail {
    text: String,
    limit: usize,
}

impl Tail {
    pub fn new(limit: usize) -> Self {
        Self {
            text: String::new(),
            limit,
        }
    }

    pub fn push_line(&mut self, line: &str) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(line);
        if self.text.len() > self.limit * 2 {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.text.len() > self.limit {
            let mut cut = self.text.len() - self.limit;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
    }

    /// The kept text, trimmed.
    pub fn into_string(mut self) -> String {
        self.trim();
        self.text.trim().to_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let mut input = b"one\r\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        input.extend(b"\nlast");
        let mut reader = LineReader::new(&input[..]);
        assert_eq!(reader.next_line().await.as_deref(), Some("one"));
        assert_eq!(reader.next_line().await.as_deref(), Some("two"));
        assert_eq!(
            reader.next_line().await.map(|l| l.len()),
            Some(MAX_LINE_BYTES)
        );
        assert_eq!(reader.next_line().await.as_deref(), Some("last"));
        assert_eq!(reader.next_line().await, None);
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let mut tail = Tail::new(10);
        for _ in 0..100 {
            tail.push_line("日本語のテキスト");
        }
        let text = tail.into_string();
        assert!(text.len() <= 10, "{text}");
        assert!(text.ends_with('ト'));
    }
}
