//! The real `agentdeck` binary on a random port and a fresh SQLite file.

mod support;

use nix::{
    sys::signal::{kill, killpg, Signal},
    unistd::Pid,
};
use serde_json::{json, Value};
use std::{io::Read, sync::Arc, time::Duration};
use support::{Reply, Server};

#[test]
fn listens_on_loopback_by_default_and_serves_the_projects_page() {
    let server = Server::start();
    assert!(
        server.listening.starts_with("127.0.0.1:"),
        "{}",
        server.listening
    );
    let (status, body) = server.form("GET", "/", "");
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
        let (status, body) = server.form("GET", path, "");
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("Not found"), "{path}: {body}");
    }
}

#[test]
fn server_functions_answer_with_the_status_of_their_error() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();

    let (status, body) = server.form("POST", "/rpc/add_project", &format!("path={path}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"id\":1"), "{body}");

    let (status, body) = server.form("POST", "/rpc/add_project", &format!("path={path}"));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already exists"), "{body}");

    let (status, _) = server.form("POST", "/rpc/add_project", "path=%2Fno%2Fsuch%2Fdir");
    assert_eq!(status, 422);

    let (status, body) = server.form(
        "POST",
        "/rpc/create_session",
        "project_id=1&name=one&agent=shell",
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"state\":\"idle\"") && body.contains("\"error_message\":null"),
        "{body}"
    );

    let (status, _) = server.form(
        "POST",
        "/rpc/create_session",
        "project_id=77&name=one&agent=shell",
    );
    assert_eq!(status, 404);

    let (status, body) = server.form("GET", "/projects/1/sessions", "");
    assert_eq!(status, 200);
    assert!(body.contains(">one<"), "{body}");
}

/// A project directory and a shell session in it, made through the JSON API.
fn project_with_session(server: &Server) -> String {
    let project = server.add_project("project");
    server.create_session(project, "job")
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
    let Reply { status, body, .. } = server.send("GET", "/", &["Host: rebound.evil.example"], "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("localhost only"), "{body}");
    for host in ["localhost:3000", "127.0.0.1", "[::1]:8080"] {
        let reply = server.get("/api/projects", &[&format!("Host: {host}")]);
        assert_eq!(reply.status, 200, "{host}");
    }
}

#[test]
fn cross_origin_writes_are_refused() {
    let server = Server::start();
    let id = project_with_session(&server);
    let body = json!({"message": "touch pwned"}).to_string();
    let headers = [support::JSON, "Origin: http://evil.example"];
    let reply = server.send(
        "POST",
        &format!("/api/sessions/{id}/messages"),
        &headers,
        &body,
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = server.send(
        "POST",
        "/rpc/add_project",
        &["Origin: http://evil.example"],
        "path=/tmp",
    );
    assert_eq!(reply.status, 403);
    let detail = server.detail(&id);
    assert_eq!(detail["session"]["state"], "idle");
    assert!(detail["runs"].as_array().unwrap().is_empty());
}

#[test]
fn a_killed_server_leaves_no_session_stuck_working() {
    let first = Server::start();
    let id = project_with_session(&first);
    first.send_message(&id, "sleep 30");
    let pid = run_pid(&first.wait_for(&id, |d| run_pid(d).is_some())).unwrap();

    let dir = Arc::clone(&first.dir);
    drop(first); // SIGKILL: no chance to clean up
                 // The orphaned agent is not the new server's to kill; the test tidies it.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);

    let second = Server::options().dir(dir).start();
    let detail = second.detail(&id);
    assert_eq!(detail["session"]["state"], "error");
    // Killed, the server could not say why; the next one names the host
    // whose instance stopped (this one: its dead pid is noticed at once).
    assert_eq!(
        detail["session"]["error_message"],
        format!(
            "Interrupted: the instance on {} stopped",
            app::instance::host_name()
        )
    );
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
        server = Server::options().dir(dir).start();
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
    first.send_message(&id, "sleep 30");
    let pid = run_pid(&first.wait_for(&id, |d| run_pid(d).is_some())).unwrap();
    assert!(group_alive(pid));

    first.terminate();
    assert!(
        group_ends(pid),
        "the agent's process group outlived the server"
    );

    let second = Server::options().dir(Arc::clone(&first.dir)).start();
    let detail = second.detail(&id);
    assert_eq!(detail["session"]["state"], "error");
    assert_eq!(detail["session"]["error_message"], INTERRUPTED);
    assert_eq!(detail["runs"][0]["outcome"], "interrupted");
}

#[test]
fn the_event_stream_replays_after_since_then_follows_live() {
    let server = Server::start();
    let id = project_with_session(&server);
    server.send_message(&id, "true");
    server.wait_for(&id, |d| d["session"]["state"] == "idle");

    let (status, head, mut stream) = server.open_events("project=1&since=1", &[]);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    // seq 1 is the session's creation; 2 and 3 are sent/succeeded; 4 and 5 come live.
    server.send_message(&id, "exit 3");
    let mut received = String::new();
    let mut buf = [0u8; 4096];
    while !received.contains("id: 5") {
        let n = stream.read(&mut buf).expect("the stream went quiet");
        assert!(n > 0, "the stream ended: {received}");
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
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
        !server.alive()
    });
    assert!(stopped, "the server did not stop with an event stream open");
}

#[test]
fn the_session_api_pages_its_history_with_before_cursors() {
    let server = Server::start();
    let id = project_with_session(&server);
    for message in ["echo one", "echo two"] {
        server.send_message(&id, message);
        server.wait_for(&id, |d| d["session"]["state"] == "idle");
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
