//! Bounded resources on the real `agentdeck` binary: slow and oversized
//! requests, event stream limits, bad `since` values, database locations
//! and file modes.

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde_json::{json, Value};
use std::{
    ffi::OsStr,
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

/// A running server on a fresh database, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    dir: Arc<tempfile::TempDir>,
}

impl Server {
    /// A server on `agentdeck.db` in a new temporary directory.
    fn start(args: &[&str]) -> Self {
        Self::start_in(Arc::new(tempfile::tempdir().unwrap()), args)
    }

    /// A server on `agentdeck.db` in `dir`, with extra flags.
    fn start_in(dir: Arc<tempfile::TempDir>, args: &[&str]) -> Self {
        let mut command = agentdeck(&dir);
        command
            .arg("--database-url")
            .arg(dir.path().join("agentdeck.db"))
            .args(args);
        Self::spawn(command, dir)
    }

    fn spawn(mut command: Command, dir: Arc<tempfile::TempDir>) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("agentdeck listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { child, addr, dir }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// Sends one request and reads the whole answer; returns its status,
    /// head and body.
    fn send(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
        let mut stream = self.connect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (status_of(head), head.to_owned(), body.to_owned())
    }

    /// Sends a JSON request; returns the status and the parsed body.
    fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, text) =
            self.send(method, path, "Content-Type: application/json\r\n", &body);
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Opens `GET /api/events?{query}` and reads the answer's head; the
    /// stream is left open for the events.
    fn open_events(&self, query: &str, headers: &str) -> (u16, String, TcpStream) {
        let mut stream = self.connect();
        write!(
            stream,
            "GET /api/events?{query} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{headers}\r\n",
            self.addr
        )
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

    /// A project (a fresh directory) with `sessions` shell sessions, through the API.
    fn project_with_sessions(&self, sessions: usize) -> Vec<String> {
        let project = self.dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        let form = format!("path={}", project.display());
        let (status, _, body) = self.send(
            "POST",
            "/rpc/add_project",
            "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n",
            &form,
        );
        assert_eq!(status, 200, "{body}");
        (0..sessions)
            .map(|i| self.create_session(&format!("job {i}")))
            .collect()
    }

    fn create_session(&self, name: &str) -> String {
        let (status, session) = self.json(
            "POST",
            "/api/projects/1/sessions",
            Some(json!({"name": name, "agent": "shell"})),
        );
        assert_eq!(status, 201, "{session}");
        session["id"].as_str().unwrap().to_owned()
    }

    /// Stops the server with SIGTERM; returns how long it took to exit.
    fn terminate(mut self) -> Duration {
        let started = Instant::now();
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait_exit(&mut self.child, Duration::from_secs(10))
            .expect("the server did not stop within 10 s");
        assert!(status.success(), "{status:?}");
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `agentdeck serve` on a free port, the site root in `dir`.
fn agentdeck(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentdeck"));
    command
        .args(["serve", "--port", "0"])
        .env("AGENTDECK_SITE_ROOT", dir.path())
        .env_remove("AGENTDECK_DATABASE_URL");
    command
}

fn status_of(head: &str) -> u16 {
    head.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"))
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Reads until the server closes the connection; returns how long that took.
fn time_until_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return started.elapsed(),
            Err(err) => panic!("the connection stayed open ({err})"),
        }
    }
}

/// Reads events until one has id `last`; returns every id seen.
fn read_ids_until(stream: &mut TcpStream, last: &str) -> Vec<String> {
    let mut received = String::new();
    let mut buf = [0u8; 4096];
    while !received.lines().any(|l| l == format!("id: {last}")) {
        let n = stream.read(&mut buf).expect("the stream went quiet");
        assert!(n > 0, "the stream ended: {received}");
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    received
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_owned)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn slow_and_idle_connections_are_dropped_while_others_are_served() {
    let server = Server::start(&["--header-timeout", "1"]);

    // Slowloris: a head that never ends.
    let mut slow = server.connect();
    write!(slow, "GET / HTTP/1.1\r\nHost: {}\r\n", server.addr).unwrap();
    // A connection that sends nothing at all.
    let mut silent = server.connect();
    // A kept-alive connection left idle after one request.
    let mut idle = server.connect();
    write!(
        idle,
        "GET /api/projects HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut answer = String::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with("[]") {
        let n = idle.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering: {answer}");
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let (status, projects) = server.json("GET", "/api/projects", None);
    assert_eq!((status, projects), (200, json!([])));

    for (name, stream) in [
        ("slow", &mut slow),
        ("silent", &mut silent),
        ("idle", &mut idle),
    ] {
        let open_for = time_until_closed(stream);
        assert!(
            open_for < Duration::from_secs(4),
            "{name} connection open for {open_for:?}"
        );
    }
    let (status, _) = server.json("GET", "/api/projects", None);
    assert_eq!(status, 200, "the server stopped serving");
}

#[test]
fn oversized_request_heads_are_refused_and_the_server_carries_on() {
    let server = Server::start(&[]);
    let big = format!("X-Big: {}\r\n", "a".repeat(100 * 1024));
    let many: String = (0..150).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
    for (name, headers) in [("100 KiB header", big), ("150 headers", many)] {
        let mut stream = server.connect();
        // The server may answer and close before the whole head is written.
        let _ = write!(
            stream,
            "GET /api/projects HTTP/1.1\r\nHost: {}\r\n{headers}\r\n",
            server.addr
        );
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.is_empty() || response.starts_with("HTTP/1.1 431"),
            "{name}: {response}"
        );
        let (status, _) = server.json("GET", "/api/projects", None);
        assert_eq!(status, 200, "after the {name}");
    }
}

#[test]
fn event_streams_are_limited_per_client_and_a_closed_one_frees_its_slot() {
    let server = Server::start(&["--max-streams-per-client", "2"]);
    let (status, _, first) = server.open_events("", "");
    assert_eq!(status, 200);
    let (status, _, _second) = server.open_events("since=0", "");
    assert_eq!(status, 200);

    let (status, head, body) = server.send("GET", "/api/events", "", "");
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    let error: Value = serde_json::from_str(&body).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("too many open event streams") && message.contains("limit 2"),
        "{message}"
    );

    drop(first);
    let freed = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        server.open_events("", "").0 == 200
    });
    assert!(freed, "closing a stream did not free its slot");
}

#[test]
fn event_streams_are_limited_in_all() {
    let server = Server::start(&["--max-streams", "1"]);
    let (status, _, _open) = server.open_events("", "");
    assert_eq!(status, 200);
    let (status, head, body) = server.send("GET", "/api/events?since=0", "", "");
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    assert!(body.contains("limit 1 for this server"), "{body}");
    // Everything else is still served.
    let (status, _) = server.json("GET", "/api/projects", None);
    assert_eq!(status, 200);
}

#[test]
fn bad_since_last_event_id_and_project_are_clear_422s() {
    let server = Server::start(&[]);
    let long = "9".repeat(5000);
    for (query, header, expected) in [
        (
            "since=-1",
            "",
            r#"since must be a change number (0 or more), not "-1""#,
        ),
        (
            "since=abc",
            "",
            r#"since must be a change number (0 or more), not "abc""#,
        ),
        (
            "since=99999999999",
            "",
            r#"since must be a change number (0 or more), not "99999999999""#,
        ),
        (
            "since=",
            "",
            r#"since must be a change number (0 or more), not """#,
        ),
        (
            "",
            "Last-Event-ID: x\r\n",
            r#"Last-Event-ID must be a change number (0 or more), not "x""#,
        ),
        (
            "since=3",
            "Last-Event-ID: -7\r\n",
            r#"Last-Event-ID must be a change number (0 or more), not "-7""#,
        ),
        (
            "project=abc",
            "",
            r#"project must be a project id, not "abc""#,
        ),
        (
            &format!("since={long}"),
            "",
            "since must be a change number",
        ),
    ] {
        let (status, _, body) = server.send("GET", &format!("/api/events?{query}"), header, "");
        assert_eq!(status, 422, "{query} {header}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with(expected), "{query} {header}: {message}");
        assert!(
            message.len() < 200,
            "the whole input echoed back: {message}"
        );
    }
}

#[test]
fn a_stream_without_since_starts_from_now_and_outlives_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1"]);
    server.project_with_sessions(2); // changes 1 and 2
    let (status, _, mut stream) = server.open_events("project=1", "");
    assert_eq!(status, 200);
    // Longer than the header timeout: a response being streamed is not cut.
    std::thread::sleep(Duration::from_millis(2500));
    server.create_session("new"); // change 3
    assert_eq!(read_ids_until(&mut stream, "3"), ["3"]);
}

#[test]
fn a_database_url_with_another_scheme_is_refused_and_nothing_is_created() {
    let cwd = tempfile::tempdir().unwrap();
    let url = "postgres://u:secret@h/db";
    let by_flag = |command: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_agentdeck"));
        c.args([command, "--database-url", url]);
        c
    };
    let mut by_env = Command::new(env!("CARGO_BIN_EXE_agentdeck"));
    by_env
        .args(["serve", "--port", "0"])
        .env("AGENTDECK_DATABASE_URL", url);
    for mut command in [by_flag("serve"), by_flag("sync"), by_env] {
        let mut child = command
            .current_dir(cwd.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(10)).expect("it did not exit");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("postgres://"), "{stderr}");
        assert!(stderr.contains("SQLite file path"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
        assert!(
            !stderr.contains("secret") && !stdout.contains("secret"),
            "{stderr}"
        );
        let created: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
        assert!(created.is_empty(), "created {created:?}");
    }
}

#[test]
fn the_data_directory_and_database_are_private_to_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let data_home = dir.path().join("data");
    let mut command = agentdeck(&dir);
    command
        .env("XDG_DATA_HOME", &data_home)
        .env("HOME", dir.path().join("home"));
    let server = Server::spawn(command, Arc::new(dir));
    let data_dir = data_home.join("agentdeck");
    let db = data_dir.join("agentdeck.db");
    assert_eq!(mode(&data_home), 0o700);
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&db), 0o600);
    server.project_with_sessions(1); // writes: the WAL files exist now
    for suffix in ["-wal", "-shm"] {
        let mut name = db.clone().into_os_string();
        name.push(OsStr::new(suffix));
        assert_eq!(mode(Path::new(&name)), 0o600, "{suffix}");
    }
}

#[test]
fn an_existing_database_is_made_private_and_agents_keep_the_users_umask() {
    let first = Server::start(&[]);
    let dir = Arc::clone(&first.dir);
    let db = dir.path().join("agentdeck.db");
    let id = first.project_with_sessions(1).remove(0);
    first.terminate();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let server = Server::start_in(dir, &[]);
    assert_eq!(mode(&db), 0o600);

    // The shell agent reports the umask it runs with: the user's, not the
    // server's private one.
    let (status, body) = server.json(
        "POST",
        &format!("/api/sessions/{id}/messages"),
        Some(json!({"message": "umask"})),
    );
    assert_eq!(status, 202, "{body}");
    let answer = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            let (_, detail) = server.json("GET", &format!("/api/sessions/{id}"), None);
            (detail["session"]["state"] == "idle").then(|| detail["messages"].clone())
        })
        .expect("the run did not finish");
    let printed = answer.as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .trim()
        .to_owned();
    let ours = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:").map(|u| u.trim().to_owned()))
        .unwrap();
    let octal = |s: &str| u32::from_str_radix(s, 8).unwrap_or_else(|_| panic!("{s:?}"));
    assert_eq!(
        octal(&printed),
        octal(&ours),
        "agent umask {printed}, ours {ours}"
    );
}

#[test]
fn a_graceful_stop_is_prompt_with_streams_and_slow_clients_open() {
    let server = Server::start(&[]);
    let streams: Vec<_> = (0..3).map(|_| server.open_events("", "").2).collect();
    let mut slow = server.connect();
    write!(slow, "GET / HTTP/1.1\r\nHost: {}\r\n", server.addr).unwrap();
    let took = server.terminate();
    assert!(took < Duration::from_secs(6), "stopping took {took:?}");
    drop((streams, slow));
}
