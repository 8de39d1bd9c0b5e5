//! The real `agentdeck` binary on a random port and a fresh SQLite file.

use nix::{
    sys::signal::{kill, killpg, Signal},
    unistd::Pid,
};
use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

/// A running server, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    dir: Arc<tempfile::TempDir>,
}

impl Server {
    fn start() -> Self {
        Self::start_in(Arc::new(tempfile::tempdir().unwrap()))
    }

    /// A server on the database in `dir` (a second server on the same
    /// directory sees what the first one wrote).
    fn start_in(dir: Arc<tempfile::TempDir>) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentdeck"))
            .args(["serve", "--port", "0", "--database-url"])
            .arg(dir.path().join("agentdeck.db"))
            .env("AGENTDECK_SITE_ROOT", dir.path())
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

    /// Sends one form-encoded HTTP/1.1 request; returns the status and body.
    fn request(&self, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
        let headers =
            "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n";
        self.send(method, path, headers, form.unwrap_or(""))
    }

    /// Sends a JSON request; returns the status and the parsed body.
    fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = self.send(method, path, "Content-Type: application/json\r\n", &body);
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn send(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let host = match headers.starts_with("Host:") {
            true => String::new(),
            false => format!("Host: {}\r\n", self.addr),
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n{headers}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn listens_on_loopback_by_default_and_serves_the_projects_page() {
    let server = Server::start();
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    let (status, body) = server.request("GET", "/", None);
    assert_eq!(status, 200);
    assert!(body.contains("Add project"), "{body}");
}

#[test]
fn unknown_pages_and_projects_are_real_404s() {
    let server = Server::start();
    for path in [
        "/projects/4242/sessions",
        "/projects/abc/sessions",
        "/no/such/page",
    ] {
        let (status, body) = server.request("GET", path, None);
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("Not found"), "{path}: {body}");
    }
}

#[test]
fn server_functions_answer_with_the_status_of_their_error() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();

    let (status, body) = server.request("POST", "/rpc/add_project", Some(&format!("path={path}")));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"id\":1"), "{body}");

    let (status, body) = server.request("POST", "/rpc/add_project", Some(&format!("path={path}")));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already exists"), "{body}");

    let (status, _) = server.request("POST", "/rpc/add_project", Some("path=%2Fno%2Fsuch%2Fdir"));
    assert_eq!(status, 422);

    let (status, body) = server.request(
        "POST",
        "/rpc/create_session",
        Some("project_id=1&name=one&agent=shell"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"state\":\"idle\"") && body.contains("\"error_message\":null"),
        "{body}"
    );

    let (status, _) = server.request(
        "POST",
        "/rpc/create_session",
        Some("project_id=77&name=one&agent=shell"),
    );
    assert_eq!(status, 404);

    let (status, body) = server.request("GET", "/projects/1/sessions", None);
    assert_eq!(status, 200);
    assert!(body.contains(">one<"), "{body}");
}

/// A project directory and a shell session in it, made through the JSON API.
fn project_with_session(server: &Server) -> String {
    let project_dir = server.dir.path().join("project");
    std::fs::create_dir_all(&project_dir).unwrap();
    let form = format!("path={}", project_dir.display());
    let (status, body) = server.request("POST", "/rpc/add_project", Some(&form));
    assert_eq!(status, 200, "{body}");
    let (status, session) = server.json(
        "POST",
        "/api/projects/1/sessions",
        Some(json!({"name": "job", "agent": "shell"})),
    );
    assert_eq!(status, 201, "{session}");
    session["id"].as_str().unwrap().to_owned()
}

/// Sends a message through the JSON API; it must be accepted.
fn send_message(server: &Server, session_id: &str, message: &str) {
    let path = format!("/api/sessions/{session_id}/messages");
    let (status, body) = server.json("POST", &path, Some(json!({ "message": message })));
    assert_eq!(status, 202, "{body}");
}

/// Polls the session until `done` holds for it.
fn wait_for(server: &Server, session_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (status, detail) = server.json("GET", &format!("/api/sessions/{session_id}"), None);
        assert_eq!(status, 200, "{detail}");
        if done(&detail) {
            return detail;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("session {session_id} never reached the expected state");
}

fn run_pid(detail: &Value) -> Option<i32> {
    detail["runs"].as_array()?.last()?["pid"]
        .as_i64()
        .map(|pid| pid as i32)
}

fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Whether the group is gone within a few seconds (killed processes linger
/// as zombies until their new parent reaps them).
fn group_ends(pgid: i32) -> bool {
    (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !group_alive(pgid)
    })
}

const INTERRUPTED: &str = "Interrupted: the server stopped while this run was in progress";

#[test]
fn the_json_api_answers_with_the_right_statuses() {
    let server = Server::start();
    let id = project_with_session(&server);
    let messages = format!("/api/sessions/{id}/messages");

    let (status, body) = server.json("POST", &messages, Some(json!({"message": "sleep 5"})));
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("working")),
        "{body}"
    );
    let (status, body) = server.json("POST", &messages, Some(json!({"message": "true"})));
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"],
        "session is busy: a run is in progress; wait for it to finish or cancel it"
    );

    let (status, body) = server.json("GET", "/api/projects/1/sessions?state=working", None);
    assert_eq!(
        (status, body.as_array().map(Vec::len)),
        (200, Some(1)),
        "{body}"
    );
    let (status, body) = server.json("GET", "/api/projects/1/sessions?state=idle", None);
    assert_eq!(
        (status, body.as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
    let (status, body) = server.json("GET", "/api/projects/1/sessions?state=paused", None);
    assert_eq!(status, 422, "{body}");

    let (status, body) = server.json("POST", &format!("/api/sessions/{id}/cancel"), None);
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("idle")),
        "{body}"
    );

    let (status, body) = server.json("POST", &messages, Some(json!({"message": "  "})));
    assert_eq!(status, 422, "{body}");
    let huge = "x".repeat(100_001);
    let (status, body) = server.json("POST", &messages, Some(json!({ "message": huge })));
    assert_eq!(status, 413, "{body}");
    let (status, body) = server.json("POST", &messages, Some(json!({"text": "wrong field"})));
    assert_eq!(status, 422, "{body}");
    let (status, _) = server.json(
        "POST",
        "/api/sessions/nope/messages",
        Some(json!({"message": "true"})),
    );
    assert_eq!(status, 404);
    let (status, _) = server.json("GET", "/api/projects/99/sessions", None);
    assert_eq!(status, 404);
    let (status, projects) = server.json("GET", "/api/projects", None);
    assert_eq!((status, projects.as_array().map(Vec::len)), (200, Some(1)));
}

#[test]
fn requests_for_another_host_name_are_refused_on_loopback() {
    let server = Server::start();
    let (status, body) = server.send("GET", "/", "Host: rebound.evil.example\r\n", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("localhost only"), "{body}");
    for host in ["localhost:3000", "127.0.0.1", "[::1]:8080"] {
        let (status, _) = server.send("GET", "/api/projects", &format!("Host: {host}\r\n"), "");
        assert_eq!(status, 200, "{host}");
    }
}

#[test]
fn cross_origin_writes_are_refused() {
    let server = Server::start();
    let id = project_with_session(&server);
    let body = json!({"message": "touch pwned"}).to_string();
    let headers = "Content-Type: application/json\r\nOrigin: http://evil.example\r\n";
    let (status, text) = server.send(
        "POST",
        &format!("/api/sessions/{id}/messages"),
        headers,
        &body,
    );
    assert_eq!(status, 403, "{text}");
    let (status, _) = server.send(
        "POST",
        "/rpc/add_project",
        "Origin: http://evil.example\r\n",
        "path=/tmp",
    );
    assert_eq!(status, 403);
    let detail = wait_for(&server, &id, |_| true);
    assert_eq!(detail["session"]["state"], "idle");
    assert!(detail["runs"].as_array().unwrap().is_empty());
}

#[test]
fn a_killed_server_leaves_no_session_stuck_working() {
    let first = Server::start();
    let id = project_with_session(&first);
    send_message(&first, &id, "sleep 30");
    let pid = run_pid(&wait_for(&first, &id, |d| run_pid(d).is_some())).unwrap();

    let dir = Arc::clone(&first.dir);
    drop(first); // SIGKILL: no chance to clean up
                 // The orphaned agent is not the new server's to kill; the test tidies it.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);

    let second = Server::start_in(dir);
    let detail = wait_for(&second, &id, |_| true);
    assert_eq!(detail["session"]["state"], "error");
    assert_eq!(detail["session"]["error_message"], INTERRUPTED);
    assert_eq!(
        detail["transitions"].as_array().unwrap().last().unwrap()["reason"],
        "interrupted"
    );
    assert_eq!(detail["runs"][0]["outcome"], "interrupted");
}

/// kill -9 while runs are ending, again and again: after each restart no
/// session is working, every run is closed, and the error message is set
/// exactly for sessions in error.
#[test]
fn kill_9_while_runs_end_leaves_a_consistent_database() {
    let mut server = Server::start();
    let first = project_with_session(&server);
    let mut ids = vec![first];
    for name in ["two", "three", "four"] {
        let (status, session) = server.json(
            "POST",
            "/api/projects/1/sessions",
            Some(json!({"name": name, "agent": "shell"})),
        );
        assert_eq!(status, 201, "{session}");
        ids.push(session["id"].as_str().unwrap().to_owned());
    }
    for round in 0..4u64 {
        // Short runs end all the time; the kill lands in the middle of them.
        let deadline = std::time::Instant::now() + Duration::from_millis(300 + 150 * round);
        while std::time::Instant::now() < deadline {
            for id in &ids {
                let path = format!("/api/sessions/{id}/messages");
                let body = json!({ "message": "echo hi" });
                let (status, body) = server.json("POST", &path, Some(body));
                assert!(status == 202 || status == 409, "{status} {body}");
            }
        }
        let dir = Arc::clone(&server.dir);
        drop(server); // SIGKILL
        server = Server::start_in(dir);
        for id in &ids {
            let (status, detail) = server.json("GET", &format!("/api/sessions/{id}"), None);
            assert_eq!(status, 200, "round {round}: {detail}");
            let session = &detail["session"];
            assert_ne!(session["state"], "working", "round {round}: {detail}");
            assert_eq!(
                session["state"] == "error",
                !session["error_message"].is_null(),
                "round {round}: {detail}"
            );
            for run in detail["runs"].as_array().unwrap() {
                assert!(!run["ended_at"].is_null(), "round {round}: open run {run}");
            }
        }
    }
}

#[test]
fn a_graceful_stop_interrupts_runs_and_ends_their_processes() {
    let mut first = Server::start();
    let id = project_with_session(&first);
    send_message(&first, &id, "sleep 30");
    let pid = run_pid(&wait_for(&first, &id, |d| run_pid(d).is_some())).unwrap();
    assert!(group_alive(pid));

    kill(Pid::from_raw(first.child.id() as i32), Signal::SIGTERM).unwrap();
    let exit = first.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        group_ends(pid),
        "the agent's process group outlived the server"
    );

    let second = Server::start_in(Arc::clone(&first.dir));
    let detail = wait_for(&second, &id, |_| true);
    assert_eq!(detail["session"]["state"], "error");
    assert_eq!(detail["session"]["error_message"], INTERRUPTED);
    assert_eq!(detail["runs"][0]["outcome"], "interrupted");
}

#[test]
fn the_event_stream_replays_after_since_then_follows_live() {
    let server = Server::start();
    let id = project_with_session(&server);
    send_message(&server, &id, "true");
    wait_for(&server, &id, |d| d["session"]["state"] == "idle");

    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET /api/events?project=1&since=1 HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        server.addr
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // seq 1 is the session's creation; 2 and 3 are sent/succeeded; 4 and 5 come live.
    send_message(&server, &id, "exit 3");
    let mut received = String::new();
    let mut buf = [0u8; 4096];
    while !received.contains("id: 5") {
        let n = stream.read(&mut buf).expect("the stream went quiet");
        assert!(n > 0, "the stream ended: {received}");
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("text/event-stream"), "{received}");
    let ids: Vec<&str> = received
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["2", "3", "4", "5"], "{received}");
    assert!(received.contains(r#""reason":"failed""#), "{received}");
    assert!(
        !received.contains(r#""reason":"created""#),
        "since=1 must skip the creation"
    );

    let (status, _) = server.json("GET", "/api/events?project=1&session=x", None);
    assert_eq!(status, 422);

    // An open stream must not hold up a graceful stop.
    let mut server = server;
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    let stopped = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        server.child.try_wait().unwrap().is_some()
    });
    assert!(stopped, "the server did not stop with an event stream open");
}

#[test]
fn the_session_api_pages_its_history_with_before_cursors() {
    let server = Server::start();
    let id = project_with_session(&server);
    for message in ["echo one", "echo two"] {
        send_message(&server, &id, message);
        wait_for(&server, &id, |d| d["session"]["state"] == "idle");
    }
    let path = format!("/api/sessions/{id}");
    let (status, newest) = server.json("GET", &path, None);
    assert_eq!(status, 200, "{newest}");
    let contents: Vec<&str> = newest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["echo one", "one", "echo two", "two"]);
    assert_eq!(newest["has_earlier"], false);
    assert_eq!(newest["has_earlier_transitions"], false);

    // The page before the second run's message: the first run only.
    let second = newest["messages"][2]["id"].as_i64().unwrap();
    let (status, earlier) = server.json("GET", &format!("{path}?before={second}"), None);
    assert_eq!(status, 200, "{earlier}");
    assert_eq!(earlier["messages"].as_array().unwrap().len(), 2);
    assert_eq!(earlier["messages"][0]["content"], "echo one");
    assert_eq!(earlier["runs"].as_array().unwrap().len(), 1);
    assert_eq!(earlier["has_earlier"], false);
    let last_seq = newest["transitions"][3]["seq"].as_i64().unwrap();
    let (status, earlier) = server.json(
        "GET",
        &format!("{path}?transitions_before={last_seq}"),
        None,
    );
    assert_eq!(status, 200, "{earlier}");
    assert_eq!(earlier["transitions"].as_array().unwrap().len(), 3);

    let (status, body) = server.json("GET", &format!("{path}?before=abc"), None);
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().is_some(), "{body}");
}
