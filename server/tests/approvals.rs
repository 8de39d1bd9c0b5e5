//! Approvals over HTTP against the real binary and a real SQLite file:
//! a fake `claude` speaking the control protocol asks, the JSON API
//! answers (first answer wins, 409 after); permission modes; and a
//! terminal session's `PermissionRequest` hook waiting for the dashboard.

mod support;

use serde_json::{json, Value};
use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use support::{binary, fake_claude, Server};

fn claude_server() -> Server {
    Server::options()
        .args(&["--claude-bin", fake_claude().to_str().unwrap()])
        .start()
}

fn claude_session(server: &Server, project: i32, extra: Value) -> Value {
    let mut body = json!({"name": "asks", "agent": "claude"});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, session) = server.json(
        "POST",
        &format!("/api/projects/{project}/sessions"),
        Some(body),
    );
    assert_eq!(status, 201, "{session}");
    session
}

/// Polls `GET /api/approvals` until `count` requests are pending.
fn pending(server: &Server, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let (status, list) = server.json("GET", "/api/approvals", None);
        assert_eq!(status, 200, "{list}");
        let list = list.as_array().unwrap().clone();
        if list.len() == count {
            return list;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("never {count} pending approvals");
}

fn answer(server: &Server, id: &str, body: Value) -> (u16, Value) {
    server.json("POST", &format!("/api/approvals/{id}"), Some(body))
}

#[test]
fn the_api_lists_and_answers_requests_and_the_first_answer_wins() {
    let server = claude_server();
    let project = server.add_project("p");
    let session = claude_session(&server, project, json!({}));
    assert_eq!(session["permission_mode"], "ask");
    let id = session["id"].as_str().unwrap();
    server.send_message(id, "ask:echo from-api");
    let request = pending(&server, 1).remove(0);
    assert_eq!(request["tool"], "Bash");
    assert_eq!(request["summary"], "echo from-api");
    assert_eq!(request["status"], "pending");
    let detail = server.detail(id);
    assert_eq!(detail["session"]["state"], "working");
    assert_eq!(detail["session"]["attention"], "approval");
    let (status, listed) = server.json("GET", &format!("/api/sessions/{id}/approvals"), None);
    assert_eq!(
        (status, listed[0]["id"].clone()),
        (200, request["id"].clone())
    );

    let request_id = request["id"].as_str().unwrap();
    // Bad answers change nothing.
    let (status, body) = answer(&server, request_id, json!({"decision": "maybe"}));
    assert_eq!(status, 422, "{body}");
    let (status, body) = answer(&server, "no-such-request", json!({"decision": "allow"}));
    assert_eq!(status, 404, "{body}");

    let (status, allowed) = answer(&server, request_id, json!({"decision": "allow"}));
    assert_eq!(
        (status, allowed["status"].as_str()),
        (200, Some("allowed")),
        "{allowed}"
    );
    let (status, late) = answer(
        &server,
        request_id,
        json!({"decision": "deny", "message": "no"}),
    );
    assert_eq!(status, 409, "{late}");
    assert!(
        late["error"].as_str().unwrap().contains("already answered"),
        "{late}"
    );

    let detail = server.wait_for(id, |d| d["session"]["state"] != "working");
    assert_eq!(detail["session"]["state"], "idle", "{detail}");
    assert_eq!(detail["session"]["attention"], Value::Null);
    let answer_text = detail["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    assert_eq!(answer_text, "allowed: ran echo from-api (exit 0)");
    assert_eq!(detail["approvals"][0]["status"], "allowed");
    // Nothing pending any more.
    assert!(pending(&server, 0).is_empty());
}

#[test]
fn an_answer_after_the_run_ended_is_409() {
    let server = claude_server();
    let project = server.add_project("p");
    let id = claude_session(&server, project, json!({}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.send_message(&id, "ask:true");
    let request = pending(&server, 1).remove(0);
    let (status, _) = server.json("POST", &format!("/api/sessions/{id}/cancel"), None);
    assert_eq!(status, 200);
    let (status, late) = answer(
        &server,
        request["id"].as_str().unwrap(),
        json!({"decision": "allow"}),
    );
    assert_eq!(status, 409, "{late}");
    let (_, listed) = server.json("GET", &format!("/api/sessions/{id}/approvals"), None);
    assert_eq!(listed[0]["status"], "closed");
    assert_eq!(
        listed[0]["message"],
        "The run was cancelled before an answer"
    );
}

#[test]
fn permission_modes_are_chosen_at_creation_changed_while_idle_and_passed_to_the_agent() {
    let server = claude_server();
    let project = server.add_project("p");
    let session = claude_session(&server, project, json!({"permission_mode": "plan"}));
    assert_eq!(session["permission_mode"], "plan");
    let id = session["id"].as_str().unwrap();
    let mode_path = format!("/api/sessions/{id}/permission-mode");
    let (status, body) = server.json("PUT", &mode_path, Some(json!({"mode": "read_only"})));
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("choose one of ask, accept_edits, plan, bypass"));
    let (status, body) = server.json(
        "POST",
        &format!("/api/projects/{project}/sessions"),
        Some(json!({"name": "x", "agent": "claude", "permission_mode": "sideways"})),
    );
    assert_eq!(status, 422, "{body}");

    let (status, changed) = server.json("PUT", &mode_path, Some(json!({"mode": "accept_edits"})));
    assert_eq!(
        (status, changed["permission_mode"].as_str()),
        (200, Some("accept_edits"))
    );
    server.send_message(id, "ask:true");
    pending(&server, 1);
    // While it works, the mode stays what the run started with.
    let (status, body) = server.json("PUT", &mode_path, Some(json!({"mode": "ask"})));
    assert_eq!(status, 409, "{body}");
    let (status, _) = server.json("POST", &format!("/api/sessions/{id}/cancel"), None);
    assert_eq!(status, 200);
    let mode = std::fs::read_to_string(server.path().join("projects/p/.fake-agent-mode")).unwrap();
    assert_eq!(mode.trim(), "acceptEdits");
}

/// Runs `agentdeck hook claude` with `body` on stdin, in a thread; its
/// stdout and how long it took.
fn hook_in_background(server: &Server, body: Value) -> std::thread::JoinHandle<(String, Duration)> {
    let url = format!("http://{}", server.addr);
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(["hook", "claude", "--url", &url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        (String::from_utf8(output.stdout).unwrap(), started.elapsed())
    })
}

fn permission_request(session: &str, cwd: &std::path::Path, command: &str) -> Value {
    json!({
        "session_id": session,
        "cwd": cwd,
        "hook_event_name": "PermissionRequest",
        "permission_mode": "default",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "probe"},
        "permission_suggestions": [{"type": "addRules", "behavior": "allow",
            "destination": "localSettings", "rules": [{"toolName": "Bash", "ruleContent": command}]}],
    })
}

#[test]
fn a_terminal_permission_request_waits_for_the_dashboard_when_the_project_says_so() {
    let server = Server::start();
    let project = server.add_project("term");
    let cwd = std::fs::canonicalize(server.path().join("projects/term")).unwrap();
    let prompt = json!({"session_id": "t-1", "cwd": cwd, "hook_event_name": "UserPromptSubmit", "prompt": "tidy up"});
    let (status, _) = server.json("POST", "/api/hooks/claude", Some(prompt));
    assert_eq!(status, 200);

    // Off (the default): the hook only marks "Needs approval" and says nothing.
    let (stdout, took) = hook_in_background(&server, permission_request("t-1", &cwd, "ls"))
        .join()
        .unwrap();
    assert_eq!(stdout, "");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(pending(&server, 0).is_empty());

    let approvals_path = format!("/api/projects/{project}/approvals");
    let (status, body) = server.json(
        "PUT",
        &approvals_path,
        Some(json!({"enabled": true, "wait_secs": 5})),
    );
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.json(
        "PUT",
        &approvals_path,
        Some(json!({"enabled": true, "wait_secs": 60})),
    );
    assert_eq!(
        (status, body["approve_from_dashboard"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    // On: the hook waits; a deny from the dashboard is its decision.
    let hook = hook_in_background(&server, permission_request("t-1", &cwd, "rm -rf /tmp/x"));
    let request = pending(&server, 1).remove(0);
    assert_eq!(request["summary"], "rm -rf /tmp/x");
    assert_eq!(request["run_id"], Value::Null);
    let (status, _) = answer(
        &server,
        request["id"].as_str().unwrap(),
        json!({"decision": "deny", "message": "not that"}),
    );
    assert_eq!(status, 200);
    let (stdout, _) = hook.join().unwrap();
    let decision: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        decision,
        json!({"hookSpecificOutput": {"hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": "not that", "interrupt": false}}})
    );

    // Allow always hands back the agent's own suggested rules.
    let hook = hook_in_background(&server, permission_request("t-1", &cwd, "cargo test"));
    let request = pending(&server, 1).remove(0);
    let (status, _) = answer(
        &server,
        request["id"].as_str().unwrap(),
        json!({"decision": "allow", "always": true}),
    );
    assert_eq!(status, 200);
    let (stdout, _) = hook.join().unwrap();
    let decision: Value = serde_json::from_str(stdout.trim()).unwrap();
    let decided = &decision["hookSpecificOutput"]["decision"];
    assert_eq!(decided["behavior"], "allow");
    assert_eq!(decided["updatedInput"]["command"], "cargo test");
    assert_eq!(
        decided["updatedPermissions"][0]["rules"][0]["ruleContent"],
        "cargo test"
    );

    // Answered in the terminal instead: the agent moves on (PostToolUse,
    // Stop), and the request is closed; a late answer is 409.
    let hook = hook_in_background(&server, permission_request("t-1", &cwd, "make"));
    let request = pending(&server, 1).remove(0);
    let stop = json!({"session_id": "t-1", "cwd": cwd, "hook_event_name": "Stop"});
    let (status, _) = server.json("POST", "/api/hooks/claude", Some(stop));
    assert_eq!(status, 200);
    let (status, late) = answer(
        &server,
        request["id"].as_str().unwrap(),
        json!({"decision": "allow"}),
    );
    assert_eq!(status, 409, "{late}");
    let session = &server.sessions(project)[0];
    assert_eq!(session["state"], "idle");
    assert_eq!(session["attention"], Value::Null);
    drop(hook); // it ends at its 60 s bound; the test does not wait for it
}
