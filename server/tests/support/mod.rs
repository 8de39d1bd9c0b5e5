//! The real `agentdeck` binary on a random port and a fresh SQLite file,
//! shared by every integration test crate (each uses a different part of it).
#![allow(dead_code)]

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde_json::{json, Value};
use std::{
    ffi::{OsStr, OsString},
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use tempfile::TempDir;

/// The header lines of a server-function call: a form, answered in JSON.
pub const FORM: [&str; 2] = [
    "Content-Type: application/x-www-form-urlencoded",
    "Accept: application/json",
];

/// The header line of a JSON request.
pub const JSON: &str = "Content-Type: application/json";

/// The environment that would change how the server starts: removed, so the
/// developer's own settings never leak into a test.
const CLEARED_ENV: [&str; 5] = [
    "AGENTDECK_TOKEN",
    "AGENTDECK_READ_ONLY_TOKEN",
    "AGENTDECK_REQUIRE_TOKEN",
    "AGENTDECK_ALLOWED_HOSTS",
    "AGENTDECK_DATABASE_URL",
];

/// How to start a server: extra `serve` flags and environment, and the
/// directory that holds its database, site root and stderr files.
pub struct Options {
    args: Vec<String>,
    env: Vec<(String, OsString)>,
    dir: Arc<TempDir>,
    database_url: bool,
}

impl Options {
    /// Extra flags after `serve`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// One more environment variable for the server.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((name.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Starts on the data in `dir`: "the same server" again, which sees what
    /// an earlier one there wrote.
    pub fn dir(mut self, dir: Arc<TempDir>) -> Self {
        self.dir = dir;
        self
    }

    /// Leaves out `--database-url`, so the server picks its default location.
    pub fn default_database(mut self) -> Self {
        self.database_url = false;
        self
    }

    /// The `agentdeck serve` command these options describe, for a test that
    /// runs it itself (one that must fail to start). Transcript folders point
    /// into the directory, so nothing from the developer's own `~/.claude` or
    /// `~/.codex` is imported; stdout is piped and stderr goes to the next
    /// free `stderr-N` file there.
    pub fn command(&self) -> Command {
        let dir = self.dir.path();
        for sub in ["claude", "codex", "pkg"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // A stylesheet for the pages to link and the static-asset checks.
        std::fs::write(dir.join("pkg/agentdeck.css"), "body {}").unwrap();
        let stderr = (0..)
            .map(|n| dir.join(format!("stderr-{n}")))
            .find(|p| !p.exists())
            .unwrap();
        let mut command = Command::new(binary());
        command.args(["serve", "--port", "0"]);
        if self.database_url {
            command.arg("--database-url").arg(dir.join("agentdeck.db"));
        }
        command
            .arg("--claude-projects")
            .arg(dir.join("claude"))
            .arg("--codex-sessions")
            .arg(dir.join("codex"))
            .args(&self.args)
            .env("AGENTDECK_SITE_ROOT", dir)
            // The dashboard reads the agents' settings: never the machine's own.
            .env("CLAUDE_CONFIG_DIR", dir.join("claude-config"))
            .env("CODEX_HOME", dir.join("codex-home"));
        for name in CLEARED_ENV {
            command.env_remove(name);
        }
        command
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap());
        command
    }

    /// Starts the server and waits for its first line,
    /// `agentdeck listening on http://ADDR`.
    pub fn start(self) -> Server {
        let mut child = self.command().spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(listening) = line.trim().strip_prefix("agentdeck listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr_in(self.dir.path());
            panic!(
                "the server did not start with {:?}: {line:?}\n{stderr}",
                self.args
            );
        };
        let listening = listening.to_owned();
        Server {
            child,
            // Bound to every interface: connect through loopback.
            addr: listening.replace("0.0.0.0:", "127.0.0.1:"),
            listening,
            dir: self.dir,
            stdout,
        }
    }
}

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    /// Where to connect (loopback when it listens on every interface).
    pub addr: String,
    /// The address as the server announced it.
    pub listening: String,
    pub dir: Arc<TempDir>,
    /// The rest of its stdout, after the "listening" line.
    stdout: BufReader<ChildStdout>,
}

/// The value of header `name` (any case) in an HTTP head (status line,
/// then header lines), if it was sent.
pub fn header_in<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// An HTTP answer: status, the head as sent (status line and headers) and
/// the body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// The value of header `name` (any case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.head, name)
    }

    /// The body as JSON (a JSON string holding the raw text when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::String(self.body.clone()))
    }
}

impl Server {
    /// A server with no extra flags on a fresh database.
    pub fn start() -> Self {
        Self::options().start()
    }

    /// Options for a server on a fresh directory, to add to and `start`.
    pub fn options() -> Options {
        Options {
            args: Vec::new(),
            env: Vec::new(),
            dir: Arc::new(tempfile::tempdir().unwrap()),
            database_url: true,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn database(&self) -> PathBuf {
        self.path().join("agentdeck.db")
    }

    /// The next line the server printed, without its line break.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Everything servers in this directory wrote to stderr so far (every
    /// start, in order).
    pub fn stderr(&self) -> String {
        stderr_in(self.path())
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_of(self.child.id())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops the server with SIGTERM; it must exit cleanly within 10 s.
    /// Returns how long that took.
    pub fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait_exit(&mut self.child, Duration::from_secs(10))
            .expect("the server did not stop within 10 s");
        assert!(status.success(), "{status:?}");
        started.elapsed()
    }

    /// A connection to the server that gives up reading after 10 s.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// Sends one HTTP/1.1 request with the given header lines (a `Host`
    /// among them replaces the server's own) and reads the answer. The body
    /// is written from another thread, so a server that answers before
    /// reading all of it (413) does not deadlock the test. An event stream
    /// never ends: its answer is its head.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: impl AsRef<[u8]>,
    ) -> Reply {
        let mut stream = self.connect();
        // A large body can take a while to be refused.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = self.request_head(method, path, headers);
        let body = body.as_ref().to_vec();
        head.push_str(&format!(
            "Connection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        let mut writer = stream.try_clone().unwrap();
        let written = std::thread::spawn(move || {
            // A server that refuses the body may close before it is all sent.
            let _ = writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(&body));
        });
        let mut response = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                // A reset after the answer arrived (unread body) ends it too.
                Err(err) if err.kind() == ErrorKind::ConnectionReset && !response.is_empty() => {
                    break
                }
                Err(err) => panic!("{method} {path}: {err}"),
            }
            let head_end = response.windows(4).position(|w| w == b"\r\n\r\n");
            if head_end.is_some_and(|end| is_event_stream(&response[..end])) {
                break;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        written.join().unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        Reply {
            status: status_of(head),
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    /// The request line and the header lines, with the server's own `Host`
    /// first unless `headers` has one; the blank line is the caller's.
    fn request_head(&self, method: &str, path: &str, headers: &[&str]) -> String {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|h| h.starts_with("Host:")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head
    }

    /// A GET with the given header lines.
    pub fn get(&self, path: &str, headers: &[&str]) -> Reply {
        self.send("GET", path, headers, "")
    }

    /// Sends one form-encoded request, asking for JSON; returns status and body.
    pub fn form(&self, method: &str, path: &str, form: &str) -> (u16, String) {
        let reply = self.send(method, path, &FORM, form);
        (reply.status, reply.body)
    }

    /// Sends a JSON request; returns the status and the parsed body (a JSON
    /// string holding the raw text when it is not JSON).
    pub fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw_json(method, path, body.as_bytes())
    }

    /// Sends `body` as-is with a JSON content type.
    pub fn raw_json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let reply = self.send(method, path, &[JSON], body);
        (reply.status, reply.json())
    }

    /// Opens `GET /api/events?{query}` with extra header lines and reads the
    /// answer's head; returns its status, the head, and the stream left open
    /// for the events.
    pub fn open_events(&self, query: &str, headers: &[&str]) -> (u16, String, TcpStream) {
        let mut stream = self.connect();
        let headers = [&["Accept: text/event-stream"], headers].concat();
        let request = self.request_head("GET", &format!("/api/events?{query}"), &headers);
        stream
            .write_all(format!("{request}\r\n").as_bytes())
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream
                .read(&mut byte)
                .expect("no answer to the event request");
            assert!(n > 0, "closed before the head: {head:?}");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        (status_of(&head), head, stream)
    }

    /// Adds a project for a new directory `name` under the test's directory
    /// (through the server function: the JSON API has no project creation).
    pub fn add_project(&self, name: &str) -> i32 {
        let dir = self.path().join("projects").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (status, body) = self.form(
            "POST",
            "/rpc/add_project",
            &format!("path={}", dir.display()),
        );
        assert_eq!(status, 200, "{body}");
        let project: Value = serde_json::from_str(&body).unwrap();
        project["id"].as_i64().unwrap() as i32
    }

    /// Creates a shell session in the project; returns its id.
    pub fn create_session(&self, project_id: i32, name: &str) -> String {
        let (status, session) = self.json(
            "POST",
            &format!("/api/projects/{project_id}/sessions"),
            Some(json!({"name": name, "agent": "shell"})),
        );
        assert_eq!(status, 201, "{session}");
        session["id"].as_str().unwrap().to_owned()
    }

    /// Sends a message through the JSON API; it must be accepted.
    pub fn send_message(&self, session_id: &str, message: &str) {
        let path = format!("/api/sessions/{session_id}/messages");
        let (status, body) = self.json("POST", &path, Some(json!({ "message": message })));
        assert_eq!(status, 202, "{body}");
    }

    /// A session's detail (session, messages, runs, transitions, seq).
    pub fn detail(&self, session_id: &str) -> Value {
        let (status, detail) = self.json("GET", &format!("/api/sessions/{session_id}"), None);
        assert_eq!(status, 200, "{detail}");
        detail
    }

    /// A project's sessions as the database has them.
    pub fn sessions(&self, project_id: i32) -> Vec<Value> {
        let (status, list) =
            self.json("GET", &format!("/api/projects/{project_id}/sessions"), None);
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    }

    /// Polls the session until `done` holds for its detail.
    pub fn wait_for(&self, session_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            let detail = self.detail(session_id);
            if done(&detail) {
                return detail;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("session {session_id} never reached the expected state");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of an answer's head.
pub fn status_of(head: &str) -> u16 {
    head.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"))
}

/// Whether an answer's head opens an event stream (which never ends).
fn is_event_stream(head: &[u8]) -> bool {
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream")
}

/// Every `stderr-N` file in `dir`, in order.
fn stderr_in(dir: &Path) -> String {
    (0..)
        .map(|n| dir.join(format!("stderr-{n}")))
        .take_while(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Waits up to `within` for the child to exit.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A process's resident memory in KiB, from `/proc/<pid>/status`.
pub fn rss_of(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server is gone");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("no VmRSS in /proc/<pid>/status")
}

/// The binary under test: this build's, or `AGENTDECK_TEST_BIN` (e.g. the
/// release build, for load figures that mean something).
pub fn binary() -> PathBuf {
    std::env::var_os("AGENTDECK_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_agentdeck")),
        PathBuf::from,
    )
}

/// The fake Claude Code of the app's tests: it prints the real stream-json
/// format and speaks the control protocol (it asks for approval when the
/// message starts with `ask:`).
pub fn fake_claude() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/tests/fixtures/bin/claude")
}

/// The events of one open `/api/events` stream, read from its body
/// (chunked or not).
pub struct Events {
    body: BufReader<TcpStream>,
    chunked: bool,
    /// Decoded body text not yet split into events.
    text: String,
}

impl Events {
    pub fn open(server: &Server, query: &str) -> Self {
        let (status, head, stream) = server.open_events(query, &[]);
        assert_eq!(status, 200, "{head}");
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Self {
            body: BufReader::new(stream),
            chunked,
            text: String::new(),
        }
    }

    /// The next event's data, as JSON (the read gives up after 10 s).
    pub fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let event: String = self.text.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n")).unwrap();
                }
                continue;
            }
            self.fill();
        }
    }

    /// The next output event's (run id, number, line), skipping others.
    pub fn next_line(&mut self) -> (String, u64, String) {
        loop {
            let event = self.next();
            if let Some(output) = event.get("output") {
                return (
                    output["run_id"].as_str().unwrap().to_owned(),
                    output["n"].as_u64().unwrap(),
                    output["line"].as_str().unwrap().to_owned(),
                );
            }
        }
    }

    /// The next change-log entry (`{seq, session_id, reason, to_state, …}`),
    /// skipping output lines.
    pub fn next_change(&mut self) -> Value {
        loop {
            let event = self.next();
            if let Some(change) = event.get("change") {
                return change["change"].clone();
            }
            assert!(
                event.get("reset").is_none(),
                "the stream was reset: {event}"
            );
        }
    }

    /// Reads the next piece of the body into `text`.
    fn fill(&mut self) {
        let piece = if self.chunked {
            let mut size = String::new();
            self.body
                .read_line(&mut size)
                .expect("the stream went quiet");
            let len = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            assert!(len > 0, "the stream ended");
            let mut piece = vec![0; len + 2];
            self.body.read_exact(&mut piece).unwrap();
            piece.truncate(len);
            piece
        } else {
            let mut piece = vec![0; 4096];
            let n = self.body.read(&mut piece).expect("the stream went quiet");
            assert!(n > 0, "the stream ended");
            piece.truncate(n);
            piece
        };
        self.text.push_str(&String::from_utf8(piece).unwrap());
    }
}
