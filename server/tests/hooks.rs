//! Terminal sessions against the real binary and a real SQLite file: hook
//! bodies (shapes of Claude Code 2.1.332 and Codex 0.171) mapped to state
//! changes, `agentdeck hook` run by a stand-in agent through `sh -c` and
//! killed mid-turn, and global hooks firing for agentdeck's own runs.

mod support;

use serde_json::{json, Value};
use std::{
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use support::{binary, wait_exit, Server};

/// A hook body for `event` in `cwd`, with the fields every event carries.
fn body(session: &str, cwd: &Path, event: &str, extra: Value) -> Value {
    let mut body = json!({
        "session_id": session,
        "transcript_path": format!("/home/me/.claude/projects/x/{session}.jsonl"),
        "cwd": cwd,
        "permission_mode": "default",
        "hook_event_name": event,
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

fn post(server: &Server, agent: &str, body: &Value) -> (u16, Value) {
    server.json("POST", &format!("/api/hooks/{agent}"), Some(body.clone()))
}

/// The project's sessions with this external id.
fn by_external(server: &Server, project: i32, external: &str) -> Vec<Value> {
    server
        .sessions(project)
        .into_iter()
        .filter(|s| s["external_id"] == external)
        .collect()
}

fn project_dir(server: &Server, name: &str) -> PathBuf {
    std::fs::canonicalize(server.path().join("projects").join(name)).unwrap()
}

#[test]
fn every_claude_hook_event_maps_to_its_state_change() {
    let server = Server::start();
    let project = server.add_project("web");
    let dir = project_dir(&server, "web");
    let sub = dir.join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let id = "3f1c9a52-0b7e-4d1a-9e65-6a1d1f0c2b11";
    let hook = |event: &str, extra: Value| post(&server, "claude", &body(id, &sub, event, extra));

    // SessionStart arrives first for command hooks: the session is known,
    // idle, in the project whose directory contains the cwd.
    let (status, started) = hook(
        "SessionStart",
        json!({"source": "startup", "model": "claude-x"}),
    );
    assert_eq!(
        (status, started["outcome"].as_str()),
        (200, Some("applied")),
        "{started}"
    );
    let session_id = started["session_id"].as_str().unwrap().to_owned();
    let sessions = by_external(&server, project, id);
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["state"], "idle");
    assert_eq!(sessions[0]["agent"], "claude");
    assert_eq!(sessions[0]["name"], "Claude Code 3f1c9a52");
    assert!(sessions[0]["last_hook_at"].is_i64());

    // A prompt: working, named after it, the prompt in the conversation.
    let (status, _) = hook(
        "UserPromptSubmit",
        json!({"prompt": "Fix the flaky login test\nthen push"}),
    );
    assert_eq!(status, 200);
    let detail = server.detail(&session_id);
    assert_eq!(detail["session"]["state"], "working");
    assert_eq!(detail["session"]["name"], "Fix the flaky login test");
    let first = &detail["messages"][0];
    assert_eq!(
        (first["role"].as_str(), first["content"].as_str()),
        (Some("user"), Some("Fix the flaky login test\nthen push"))
    );

    // Waiting for approval: marked, once; a tool completing clears it.
    let permission = json!({"tool_name": "Bash", "tool_input": {"command": "npm test"}});
    assert_eq!(
        hook("PermissionRequest", permission.clone()).1["outcome"],
        "applied"
    );
    assert_eq!(
        server.detail(&session_id)["session"]["attention"],
        "approval"
    );
    assert_eq!(
        hook("PermissionRequest", permission).1["outcome"],
        "unchanged"
    );
    assert_eq!(
        hook("PostToolUse", json!({"tool_name": "Bash"})).1["outcome"],
        "applied"
    );
    assert_eq!(
        server.detail(&session_id)["session"]["attention"],
        Value::Null
    );
    let elicit = json!({"message": "Which branch?", "notification_type": "elicitation_dialog"});
    hook("Notification", elicit);
    assert_eq!(server.detail(&session_id)["session"]["attention"], "input");

    // Stop: idle, attention cleared, the answer in the conversation; a
    // replayed Stop changes nothing.
    let stop = json!({"stop_hook_active": false, "last_assistant_message": "Fixed: the test waited on a timer."});
    assert_eq!(hook("Stop", stop.clone()).1["outcome"], "applied");
    let detail = server.detail(&session_id);
    assert_eq!(detail["session"]["state"], "idle");
    assert_eq!(detail["session"]["attention"], Value::Null);
    assert_eq!(detail["messages"].as_array().unwrap().len(), 2);
    assert_eq!(hook("Stop", stop).1["outcome"], "unchanged");
    // A replayed prompt is not added twice.
    hook("UserPromptSubmit", json!({"prompt": "again"}));
    hook("UserPromptSubmit", json!({"prompt": "again"}));
    assert_eq!(
        server.detail(&session_id)["messages"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // StopFailure: error with a message built from its fields.
    let failure = json!({"error": "server_error", "last_assistant_message": "API Error: 529 Overloaded. Try again later."});
    hook("StopFailure", failure);
    let detail = server.detail(&session_id);
    assert_eq!(detail["session"]["state"], "error");
    assert_eq!(
        detail["session"]["error_message"],
        "Claude Code API error (server_error): API Error: 529 Overloaded. Try again later."
    );

    // SessionEnd while working: idle, and marked ended; a new start clears that.
    hook("UserPromptSubmit", json!({"prompt": "one more"}));
    hook("SessionEnd", json!({"reason": "prompt_input_exit"}));
    let detail = server.detail(&session_id);
    assert_eq!(detail["session"]["state"], "idle");
    assert!(detail["session"]["ended_at"].is_i64());
    hook("SessionStart", json!({"source": "resume"}));
    assert_eq!(
        server.detail(&session_id)["session"]["ended_at"],
        Value::Null
    );

    // The recorded history, in order.
    let reasons: Vec<String> = server.detail(&session_id)["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}→{} {}",
                t["from_state"].as_str().unwrap(),
                t["to_state"].as_str().unwrap(),
                t["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "idle→working sent",
            "working→idle succeeded",
            "idle→working sent",
            "working→error failed",
            "error→working sent",
            "working→idle ended",
        ]
    );

    // An event of a newer Claude version: accepted, ignored.
    let (status, unknown) = hook("TeammateIdle", json!({}));
    assert_eq!(
        (status, unknown["outcome"].as_str()),
        (202, Some("ignored"))
    );

    // `GET /api/hooks`: the last report of each agent.
    let (status, reports) = server.json("GET", "/api/hooks", None);
    assert_eq!(status, 200);
    assert_eq!(reports[0]["agent"], "claude");
    assert_eq!(reports[0]["last_event"], "TeammateIdle");
    assert!(reports[0]["received"].as_i64().unwrap() >= 15);
}

#[test]
fn bad_hooks_get_a_clear_4xx_and_change_nothing() {
    let server = Server::start();
    let project = server.add_project("api");
    let dir = project_dir(&server, "api");
    let cases: [(&[u8], u16, &str); 4] = [
        (b"{not json", 422, "not a JSON object"),
        (b"[]", 422, "not a JSON object"),
        (br#"{"session_id":"x"}"#, 422, "hook_event_name"),
        (br#"{"hook_event_name":"Stop"}"#, 422, "session_id"),
    ];
    for (bad, status, fragment) in cases {
        let (got, answer) = server.raw_json("POST", "/api/hooks/claude", bad);
        assert_eq!(got, status, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(fragment),
            "{answer}"
        );
    }
    // 2 MiB: refused before it is read.
    let mut huge = body("big", &dir, "UserPromptSubmit", json!({}));
    huge["prompt"] = json!("x".repeat(2 << 20));
    let (status, answer) = post(&server, "claude", &huge);
    assert_eq!(status, 413, "{answer}");
    // Not an agent with hooks.
    let (status, _) = post(&server, "shell", &body("s", &dir, "Stop", json!({})));
    assert_eq!(status, 404);
    // A directory in no project: 202, ignored, nothing created.
    let elsewhere = tempfile::tempdir().unwrap();
    let (status, answer) = post(
        &server,
        "claude",
        &body(
            "lost",
            elsewhere.path(),
            "UserPromptSubmit",
            json!({"prompt": "hi"}),
        ),
    );
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (202, Some("no_project"))
    );
    assert!(server.sessions(project).is_empty());
    let (_, reports) = server.json("GET", "/api/hooks", None);
    assert_eq!(reports[0]["outcome"], "no_project");
    assert_eq!(reports[0]["last_cwd"], elsewhere.path().to_str().unwrap());
}

#[test]
fn codex_hooks_and_its_legacy_notify() {
    let server = Server::start();
    let project = server.add_project("cli");
    let dir = project_dir(&server, "cli");
    let thread = "0199a213-81c0-7800-8aa1-bbab2a035a53";
    let prompt = json!({"prompt": "add a --json flag", "turn_id": "t1", "model": "gpt-5"});
    let (status, _) = post(
        &server,
        "codex",
        &body(thread, &dir, "UserPromptSubmit", prompt),
    );
    assert_eq!(status, 200);
    let sessions = by_external(&server, project, thread);
    assert_eq!(
        (sessions[0]["agent"].as_str(), sessions[0]["state"].as_str()),
        (Some("codex"), Some("working"))
    );
    assert_eq!(sessions[0]["name"], "add a --json flag");
    // `notify` ends the turn (Codex appends the JSON as an argument).
    let notify = json!({"type": "agent-turn-complete", "thread-id": thread, "turn-id": "t1", "cwd": dir,
        "client": "codex-tui", "input-messages": ["add a --json flag"], "last-assistant-message": "Added."});
    let status = Command::new(binary())
        .args(["hook", "codex", "--url", &format!("http://{}", server.addr)])
        .arg(notify.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let detail = server.detail(sessions[0]["id"].as_str().unwrap());
    assert_eq!(detail["session"]["state"], "idle");
    assert_eq!(detail["messages"][1]["content"], "Added.");
}

/// A stand-in agent: a copy of the system shell named `claude`, so it is
/// not taken for a shell passing the hook on, as Claude Code's process isn't.
fn stand_in_agent(dir: &Path) -> PathBuf {
    let shell = ["/bin/bash", "/bin/sh"]
        .into_iter()
        .find(|s| Path::new(s).exists())
        .unwrap();
    std::fs::create_dir_all(dir.join("agent-bin")).unwrap();
    let agent = dir.join("agent-bin/claude");
    std::fs::copy(shell, &agent).unwrap();
    agent
}

#[test]
fn a_terminal_killed_mid_turn_becomes_an_error_within_the_watchdog_bound() {
    let server = Server::start();
    let project = server.add_project("term");
    let dir = project_dir(&server, "term");
    let id = "7d0f0c58-5d2e-4a0b-8d8c-3e4f5a6b7c8d";
    let prompt = body(
        id,
        &dir,
        "UserPromptSubmit",
        json!({"prompt": "refactor the parser"}),
    );
    // Under the target dir, not /tmp: /tmp may be mounted noexec.
    let bin = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let agent = stand_in_agent(bin.path());
    // Like Claude Code: run the hook command through `sh -c` with the JSON
    // on stdin, then go on working.
    let hook = format!(
        "{} hook claude --url http://{}",
        binary().display(),
        server.addr
    );
    let mut child = Command::new(&agent)
        .arg("-c")
        .arg(r#"printf '%s' "$BODY" | sh -c "$HOOK" > hook-stdout; sleep 60"#)
        .env("BODY", prompt.to_string())
        .env("HOOK", &hook)
        .env_remove("AGENTDECK_RUN")
        .current_dir(&dir)
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let session = loop {
        let found = by_external(&server, project, id);
        if found.first().is_some_and(|s| s["state"] == "working") {
            break found[0].clone();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the stand-in agent exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The hook wrote nothing on stdout (Claude Code reads it as a decision).
    assert_eq!(
        std::fs::read_to_string(dir.join("hook-stdout")).unwrap(),
        ""
    );
    let session_id = session["id"].as_str().unwrap();

    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let killed = Instant::now();
    wait_exit(&mut child, Duration::from_secs(5)).unwrap();
    let detail = server.wait_for(session_id, |d| d["session"]["state"] == "error");
    let delay = killed.elapsed();
    assert_eq!(
        detail["session"]["error_message"],
        format!("Claude Code exited during the turn (process {pid} is gone)")
    );
    assert!(delay < Duration::from_secs(5), "took {delay:?}");
    println!("watchdog delay after SIGKILL: {} ms", delay.as_millis());
}

#[test]
fn the_hook_command_exits_0_quickly_and_silently_when_the_server_is_down() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for url in [
        format!("http://127.0.0.1:{port}"),
        "https://example.invalid".to_owned(),
    ] {
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(["hook", "claude", "--url", &url])
            .env("AGENTDECK_DATABASE_URL", dir.path().join("db"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(br#"{"session_id":"a","hook_event_name":"Stop"}"#)
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // A stdin that never closes: still done within the deadline.
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args([
            "hook",
            "claude",
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(4)).expect("the hook hung on stdin");
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn global_hooks_firing_for_agentdecks_own_run_change_nothing() {
    let fake_claude = support::fake_claude();
    let hook = format!("{} hook claude", binary().display());
    // The hook finds the server through the URL it writes into its data
    // directory, like a person's global hook would.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let database = dir.path().join("agentdeck.db");
    let server = Server::options()
        .args(&["--claude-bin", fake_claude.to_str().unwrap()])
        .env(
            "AGENTDECK_HOOK",
            format!("{hook} --database-url {}", database.display()),
        )
        .dir(dir)
        .start();
    assert_eq!(
        std::fs::read_to_string(server.path().join("server-url"))
            .unwrap()
            .trim(),
        format!("http://{}", server.addr)
    );
    let project = server.add_project("own");
    for message in ["hooks", "hooks-over-http"] {
        let (status, session) = server.json(
            "POST",
            &format!("/api/projects/{project}/sessions"),
            Some(json!({"name": message, "agent": "claude"})),
        );
        assert_eq!(status, 201, "{session}");
        let id = session["id"].as_str().unwrap();
        server.send_message(id, message);
        let detail = server.wait_for(id, |d| d["session"]["state"] != "working");
        // The runner's outcome stands: the hooks' StopFailure and SessionEnd did nothing.
        assert_eq!(detail["session"]["state"], "idle", "{message}: {detail}");
        assert_eq!(detail["session"]["attention"], Value::Null);
        assert_eq!(detail["session"]["last_hook_at"], Value::Null, "{message}");
        let reasons: Vec<&str> = detail["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["reason"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["sent", "succeeded"], "{message}");
        let (_, reports) = server.json("GET", "/api/hooks", None);
        assert_eq!(reports[0]["outcome"], "own_run", "{message}: {reports}");
        assert!(reports[0]["received"].as_i64().unwrap() >= 4);
    }
    // No second session appeared for the run's conversation.
    assert_eq!(server.sessions(project).len(), 2);
}

/// `agentdeck` with a temporary HOME (never the machine's real one).
fn with_home(home: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(binary())
        .args(args)
        .env("HOME", home)
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CODEX_HOME")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn hooks_install_status_and_uninstall_on_a_temporary_home() {
    let home = tempfile::tempdir().unwrap();
    let settings = home.path().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original = "{\n  \"model\": \"opus\",\n  \"hooks\": {\n    \"Stop\": [\n      {\n        \"hooks\": [\n          {\n            \"type\": \"command\",\n            \"command\": \"say done\"\n          }\n        ]\n      }\n    ]\n  }\n}\n";
    std::fs::write(&settings, original).unwrap();

    let (ok, out) = with_home(home.path(), &["hooks", "install", "--dry-run"]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        original,
        "a dry run writes nothing"
    );

    let (ok, out) = with_home(home.path(), &["hooks", "install"]);
    assert!(ok, "{out}");
    let installed = std::fs::read_to_string(&settings).unwrap();
    let json: Value = serde_json::from_str(&installed).unwrap();
    assert_eq!(json["model"], "opus");
    let stop = json["hooks"]["Stop"].as_array().unwrap();
    assert!(
        stop.iter().any(|g| g["hooks"][0]["command"] == "say done"),
        "{installed}"
    );
    let ours = format!("{} hook claude", binary().display());
    for event in [
        "SessionStart",
        "UserPromptSubmit",
        "PermissionRequest",
        "Stop",
        "StopFailure",
        "SessionEnd",
    ] {
        assert!(
            json["hooks"][event].to_string().contains(&ours),
            "{event} not installed: {installed}"
        );
    }
    assert!(home.path().join(".codex/hooks.json").exists());

    // Twice = once.
    let (ok, _) = with_home(home.path(), &["hooks", "install"]);
    assert!(ok);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), installed);

    let db = home.path().join("agentdeck.db");
    let (ok, status) = with_home(
        home.path(),
        &["hooks", "status", "--database-url", db.to_str().unwrap()],
    );
    assert!(ok, "{status}");
    assert!(status.contains("installed (all"), "{status}");
    assert!(status.contains("last report: none yet"), "{status}");

    let (ok, out) = with_home(home.path(), &["hooks", "uninstall"]);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        original,
        "uninstall restores the file"
    );
    let (_, status) = with_home(home.path(), &["hooks", "status"]);
    assert!(status.contains("not installed"), "{status}");
}

/// Hooks from several agents at once all commit (prints the rate; the
/// benchmark measures it on the release build).
#[test]
fn concurrent_hooks_all_commit() {
    let server = std::sync::Arc::new(Server::start());
    let project = server.add_project("busy");
    let dir = project_dir(&server, "busy");
    let (threads, turns) = (4, 50);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (server, dir) = (std::sync::Arc::clone(&server), dir.clone());
            std::thread::spawn(move || {
                for turn in 0..turns {
                    let id = format!("agent-{t}");
                    let prompt = json!({"prompt": format!("turn {turn}")});
                    assert_eq!(
                        post(
                            &server,
                            "claude",
                            &body(&id, &dir, "UserPromptSubmit", prompt)
                        )
                        .0,
                        200
                    );
                    assert_eq!(
                        post(&server, "claude", &body(&id, &dir, "Stop", json!({}))).0,
                        200
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let posts = threads * turns * 2;
    println!(
        "hook ingest (debug build, {threads} clients): {:.0} posts/s",
        posts as f64 / started.elapsed().as_secs_f64()
    );
    let sessions = server.sessions(project);
    assert_eq!(sessions.len(), threads);
    for session in sessions {
        assert_eq!(session["state"], "idle");
        let detail = server.detail(session["id"].as_str().unwrap());
        assert_eq!(detail["transitions"].as_array().unwrap().len(), turns * 2);
    }
}

/// With a token in force, hooks are writes like any other: refused without
/// it, and `agentdeck hook` brings the one stored in the data directory.
#[test]
fn with_a_token_in_force_the_hook_command_uses_the_stored_one() {
    let server = Server::options().args(&["--require-token"]).start();
    let token = std::fs::read_to_string(server.path().join("token")).unwrap();
    let project = {
        let dir = server.path().join("projects/locked");
        std::fs::create_dir_all(&dir).unwrap();
        let reply = server.send(
            "POST",
            "/rpc/add_project",
            &[
                support::FORM[0],
                support::FORM[1],
                &format!("Authorization: Bearer {}", token.trim()),
            ],
            format!("path={}", dir.display()),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["id"].as_i64().unwrap()
    };
    let dir = project_dir(&server, "locked");
    let prompt = body(
        "locked-1",
        &dir,
        "UserPromptSubmit",
        json!({"prompt": "hi"}),
    );
    assert_eq!(post(&server, "claude", &prompt).0, 401);
    let mut child = Command::new(binary())
        .args(["hook", "claude", "--database-url"])
        .arg(server.database())
        .env_remove("AGENTDECK_TOKEN")
        .env_remove("AGENTDECK_URL")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prompt.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let listed = server.send(
        "GET",
        &format!("/api/projects/{project}/sessions"),
        &[&format!("Authorization: Bearer {}", token.trim())],
        "",
    );
    assert_eq!(listed.json()[0]["state"], "working", "{}", listed.body);
}

/// `agentdeck ls` prints every session across projects with its state,
/// from the same database a running server writes.
#[test]
fn ls_prints_sessions_across_projects_with_their_state() {
    let server = Server::start();
    server.add_project("one");
    server.add_project("two");
    let (one, two) = (project_dir(&server, "one"), project_dir(&server, "two"));
    post(
        &server,
        "claude",
        &body(
            "w-1",
            &one,
            "UserPromptSubmit",
            json!({"prompt": "still busy"}),
        ),
    );
    post(
        &server,
        "claude",
        &body(
            "w-1",
            &one,
            "PermissionRequest",
            json!({"tool_name": "Bash"}),
        ),
    );
    post(
        &server,
        "claude",
        &body(
            "e-1",
            &two,
            "UserPromptSubmit",
            json!({"prompt": "will fail"}),
        ),
    );
    post(
        &server,
        "claude",
        &body("e-1", &two, "StopFailure", json!({"error": "rate_limit"})),
    );
    let ls = |extra: &[&str]| {
        let output = Command::new(binary())
            .arg("ls")
            .arg("--database-url")
            .arg(server.database())
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let all: Value = serde_json::from_str(&ls(&["--json"])).unwrap();
    let seen: Vec<(String, String, String)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["session"]["name"].as_str().unwrap().to_owned(),
                a["session"]["state"].as_str().unwrap().to_owned(),
                a["project_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("will fail".into(), "error".into(), "two".into()),
            ("still busy".into(), "working".into(), "one".into()),
        ]
    );
    let table = ls(&[]);
    assert!(table.contains("working  Needs approval  one"), "{table}");
    assert!(table.contains("error"), "{table}");
    let failed = ls(&["--state", "error"]);
    assert!(
        failed.contains("will fail") && !failed.contains("still busy"),
        "{failed}"
    );
}
