//! Hostile or broken input on the real binary: each gets a clear error
//! (JSON on the API) and nothing already stored is lost or changed.

mod support;

use diesel::{connection::SimpleConnection, Connection, SqliteConnection};
use serde_json::{json, Value};
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use support::{Reply, Server};

/// A server with one project and one idle shell session in it.
fn server_with_session() -> (Server, i32, String) {
    let server = Server::start();
    let project = server.add_project("one");
    let session = server.create_session(project, "job");
    (server, project, session)
}

/// The error message of an API answer; fails unless it is `{"error": "..."}`.
fn error_of(status: u16, body: &Value) -> String {
    match body["error"].as_str() {
        Some(message) if !message.trim().is_empty() => message.to_owned(),
        _ => panic!("{status}: not a JSON error: {body}"),
    }
}

/// The session is idle with no message and no run: a refused send left nothing.
fn assert_untouched(server: &Server, session_id: &str) {
    let detail = server.detail(session_id);
    assert_eq!(detail["session"]["state"], "idle", "{detail}");
    assert_eq!(detail["messages"], json!([]), "{detail}");
    assert_eq!(detail["runs"], json!([]), "{detail}");
}

/// A normal send still works afterwards and ends idle.
fn assert_still_serves(server: &Server, session_id: &str) {
    server.send_message(session_id, "true");
    server.wait_for(session_id, |d| d["session"]["state"] == "idle");
}

#[test]
fn a_2_mib_body_gets_413_as_json() {
    let (server, _, id) = server_with_session();
    let body = json!({ "message": "x".repeat(2 << 20) }).to_string();
    let (status, answer) = server.raw_json(
        "POST",
        &format!("/api/sessions/{id}/messages"),
        body.as_bytes(),
    );
    assert_eq!(status, 413, "{answer}");
    let message = error_of(status, &answer);
    assert!(message.contains("limit"), "{message}");
    assert_untouched(&server, &id);

    // A server function gets the same bound.
    let form = format!("path={}", "x".repeat(2 << 20));
    let (status, answer) = server.form("POST", "/rpc/add_project", &form);
    assert_eq!(status, 413, "{answer}");
    let (_, projects) = server.json("GET", "/api/projects", None);
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    assert_still_serves(&server, &id);
}

#[test]
fn invalid_utf8_gets_a_readable_json_error() {
    let (server, project, id) = server_with_session();
    let (status, answer) = server.raw_json(
        "POST",
        &format!("/api/sessions/{id}/messages"),
        b"{\"message\": \"ls \xff\xfe\"}",
    );
    assert_eq!(status, 422, "{answer}");
    let message = error_of(status, &answer);
    assert!(
        message.contains("JSON") && message.contains("unicode"),
        "{message}"
    );
    assert_untouched(&server, &id);

    let (status, answer) = server.raw_json(
        "POST",
        &format!("/api/projects/{project}/sessions"),
        b"{\"name\": \"\xc3\x28\", \"agent\": \"shell\"}",
    );
    assert_eq!(status, 422, "{answer}");
    error_of(status, &answer);
    assert_eq!(server.sessions(project).len(), 1);
    assert_still_serves(&server, &id);
}

#[test]
fn unknown_and_missing_json_fields_get_422_naming_the_field() {
    let (server, project, id) = server_with_session();
    let messages = format!("/api/sessions/{id}/messages");
    let sessions = format!("/api/projects/{project}/sessions");
    let cases = [
        (
            &messages,
            json!({"message": "true", "priority": "high"}),
            "priority",
        ),
        (&messages, json!({}), "message"),
        (&messages, json!({"message": 5}), "string"),
        (
            &sessions,
            json!({"name": "two", "agent": "shell", "colour": "red"}),
            "colour",
        ),
        (&sessions, json!({"agent": "shell"}), "name"),
        (&sessions, json!({"name": "two", "agent": "vim"}), "vim"),
    ];
    for (path, body, named) in cases {
        let (status, answer) = server.json("POST", path, Some(body.clone()));
        assert_eq!(status, 422, "{body}: {answer}");
        let message = error_of(status, &answer);
        assert!(message.contains(named), "{body}: {message}");
    }
    assert_untouched(&server, &id);
    assert_eq!(server.sessions(project).len(), 1);
    assert_still_serves(&server, &id);
}

/// Writes `sql` into the server's database from outside, as a broken tool
/// or a hand edit would (CHECK constraints off for this connection only).
fn tamper(server: &Server, sql: &str) {
    let mut conn = SqliteConnection::establish(server.database().to_str().unwrap()).unwrap();
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA ignore_check_constraints = ON; {sql}"
    ))
    .unwrap();
}

#[test]
fn an_unknown_state_in_the_database_is_a_clear_500_and_nothing_else_breaks() {
    let (mut server, project, id) = server_with_session();
    assert_still_serves(&server, &id);
    let other_project = server.add_project("two");
    let other = server.create_session(other_project, "fine");

    tamper(
        &server,
        &format!("UPDATE sessions SET state = 'paused' WHERE id = '{id}'"),
    );

    for path in [
        format!("/api/sessions/{id}"),
        format!("/api/projects/{project}/sessions"),
    ] {
        let (status, answer) = server.json("GET", &path, None);
        assert_eq!(status, 500, "{path}: {answer}");
        let message = error_of(status, &answer);
        assert!(message.contains("database"), "{path}: {message}");
    }
    let (status, answer) = server.json(
        "POST",
        &format!("/api/sessions/{id}/messages"),
        Some(json!({"message": "true"})),
    );
    assert_eq!(status, 500, "{answer}");
    error_of(status, &answer);
    assert!(
        server
            .stderr()
            .contains(r#"unknown session state "paused""#),
        "the log should name the bad value:\n{}",
        server.stderr()
    );
    let (status, _) = server.form("GET", &format!("/projects/{project}/sessions"), "");
    assert_eq!(status, 500, "the project's page");

    // The rest keeps working, and the server is still up.
    assert!(server.alive());
    let (status, projects) = server.json("GET", "/api/projects", None);
    assert_eq!(
        (status, projects.as_array().map(Vec::len)),
        (200, Some(2)),
        "{projects}"
    );
    assert_eq!(server.sessions(other_project).len(), 1);
    let (status, _) = server.form("GET", &format!("/projects/{other_project}/sessions"), "");
    assert_eq!(status, 200, "another project's page");
    assert_still_serves(&server, &other);

    // Repaired, the session is back with its history intact.
    tamper(
        &server,
        &format!("UPDATE sessions SET state = 'idle' WHERE id = '{id}'"),
    );
    let detail = server.detail(&id);
    assert_eq!(detail["session"]["state"], "idle");
    assert_eq!(detail["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail["runs"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_bad_since_gets_422_as_json() {
    let (server, project, _) = server_with_session();
    for query in [
        "since=-1".to_owned(),
        "since=abc".to_owned(),
        format!("project={project}&since=-1"),
        format!("project={project}&since=abc"),
        "since=99999999999".to_owned(),
    ] {
        let Reply { status, head, body } = server.send(
            "GET",
            &format!("/api/events?{query}"),
            &["Accept: text/event-stream"],
            "",
        );
        assert_eq!(status, 422, "{query}: {head}\n{body}");
        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        let message = error_of(status, &answer);
        assert!(message.contains("since"), "{query}: {message}");
    }
    let (status, answer) = server.json("GET", "/api/events?project=abc", None);
    assert_eq!(status, 422, "{answer}");
    error_of(status, &answer);
}

#[test]
fn a_10_kb_session_name_gets_422_naming_the_limit() {
    let (server, project, _) = server_with_session();
    let name = "n".repeat(10_000);
    let (status, answer) = server.json(
        "POST",
        &format!("/api/projects/{project}/sessions"),
        Some(json!({"name": name, "agent": "shell"})),
    );
    assert_eq!(status, 422, "{answer}");
    let message = error_of(status, &answer);
    assert!(message.contains("at most 200 characters"), "{message}");

    let form = format!("project_id={project}&name={name}&agent=shell");
    let (status, answer) = server.form("POST", "/rpc/create_session", &form);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("at most 200 characters"), "{answer}");

    let names: Vec<Value> = server
        .sessions(project)
        .into_iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("job")]);
}

#[test]
fn a_postgresql_that_is_down_is_one_line_naming_the_url_without_its_password() {
    // Port 1 on loopback: nothing listens, so the connection is refused at once.
    let answer = refused_database_url("postgres://agent:hunter2@127.0.0.1:1/deck");
    assert!(
        answer.contains("postgres://agent:***@127.0.0.1:1/deck"),
        "the message should name the URL: {answer}"
    );
    assert!(
        !answer.contains("hunter2"),
        "the password was printed: {answer}"
    );
    assert_eq!(answer.trim_end().lines().count(), 1, "one line: {answer}");
}

/// (A URL of another scheme is refused the same way: `limits.rs`.)
/// Runs `serve` and `sync` with `url`, which must be refused: exit code 1,
/// nothing created in the working directory. Returns `serve`'s stderr.
fn refused_database_url(url: &str) -> String {
    let cwd = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    for command in ["serve", "sync"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentdeck"))
            .args([command, "--database-url", url])
            .args(["--claude-projects", "claude", "--codex-sessions", "codex"])
            .args(match command {
                "serve" => &["--port", "0"][..],
                _ => &[],
            })
            .current_dir(cwd.path())
            .env_remove("AGENTDECK_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`agentdeck {command}` accepted {url} and kept running");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(1), "{command}: {stderr}");
        let created: Vec<_> = std::fs::read_dir(cwd.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(created.is_empty(), "{command} created {created:?}");
        answers.push(stderr);
    }
    answers.swap_remove(0)
}
