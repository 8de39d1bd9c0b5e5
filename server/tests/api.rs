//! The JSON API does what the dashboard does, with the same rules and
//! errors: projects added, renamed, synced and removed; sessions renamed
//! and deleted (a working one's run stopped first). Real binary, real SQLite.

mod support;

use nix::{sys::signal::killpg, unistd::Pid};
use serde_json::{json, Value};
use std::{path::Path, time::Duration};
use support::Server;

/// A new directory `name` under the test's directory.
fn directory(server: &Server, name: &str) -> String {
    let dir = server.path().join("projects").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap().display().to_string()
}

/// A Claude transcript of one exchange in `cwd`, where the server reads them.
fn claude_transcript(server: &Server, cwd: &str, id: &str, first_message: &str) {
    let folder: String = cwd
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = server.path().join("claude").join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let line = |kind: &str, uuid: &str, message: Value| {
        json!({"type": kind, "sessionId": id, "cwd": cwd, "uuid": uuid,
               "timestamp": "2025-05-01T10:00:00.000Z", "message": message})
        .to_string()
    };
    let text = format!(
        "{}\n{}\n",
        line(
            "user",
            "u1",
            json!({"role": "user", "content": first_message})
        ),
        line(
            "assistant",
            "u2",
            json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]})
        )
    );
    std::fs::write(dir.join(format!("{id}.jsonl")), text).unwrap();
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never happened");
}

fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Whether the group is gone within a few seconds (killed processes linger
/// as zombies until reaped).
fn group_ends(pgid: i32) -> bool {
    (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !group_alive(pgid)
    })
}

/// Starts `sleep 30` in the session and returns its run's process group.
fn working(server: &Server, session_id: &str) -> i32 {
    server.send_message(session_id, "sleep 30");
    let detail = server.wait_for(session_id, |d| {
        d["runs"]
            .as_array()
            .and_then(|runs| runs.last())
            .is_some_and(|run| run["pid"].is_i64())
    });
    assert_eq!(detail["session"]["state"], "working");
    let pgid = detail["runs"].as_array().unwrap().last().unwrap()["pid"]
        .as_i64()
        .unwrap() as i32;
    assert!(group_alive(pgid));
    pgid
}

#[test]
fn a_project_is_added_and_its_transcripts_imported() {
    let server = Server::start();
    let path = directory(&server, "shop");
    claude_transcript(&server, &path, "s-terminal", "Fix the checkout");

    let (status, project) = server.json("POST", "/api/projects", Some(json!({ "path": path })));
    assert_eq!(status, 201, "{project}");
    assert_eq!(project["name"], "shop");
    assert_eq!(project["path"], path.as_str());
    let id = project["id"].as_i64().unwrap() as i32;
    // As in the dashboard, the sync starts by itself.
    wait_until("the terminal session's import", || {
        server
            .sessions(id)
            .iter()
            .any(|s| s["name"] == "Fix the checkout")
    });

    let (status, listed) = server.json("GET", "/api/projects", None);
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    let named = directory(&server, "other");
    let (status, project) = server.json(
        "POST",
        "/api/projects",
        Some(json!({ "path": named, "name": "  Backend  " })),
    );
    assert_eq!((status, project["name"].as_str()), (201, Some("Backend")));

    // The same directory again, however it is spelt.
    let (status, body) = server.json(
        "POST",
        "/api/projects",
        Some(json!({ "path": format!("{path}/") })),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("already exists"));
}

#[test]
fn bad_projects_are_refused_with_the_dashboards_errors() {
    let server = Server::start();
    let missing = server.path().join("nowhere").display().to_string();
    let file = server.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for (body, says) in [
        (json!({ "path": "relative/dir" }), "must be absolute"),
        (json!({ "path": missing }), "No directory at"),
        (
            json!({ "path": file.display().to_string() }),
            "not a directory",
        ),
        (json!({ "path": "  " }), "Project path is required"),
        (json!({ "path": "/tmp", "colour": "red" }), "colour"),
        (json!({ "name": "no path" }), "path"),
        (
            json!({ "path": "/tmp", "name": "x".repeat(201) }),
            "too long",
        ),
    ] {
        let (status, answer) = server.json("POST", "/api/projects", Some(body.clone()));
        assert_eq!(status, 422, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {error}");
    }
    let (status, _) = server.raw_json("POST", "/api/projects", b"{not json");
    assert_eq!(status, 422);
    let (status, listed) = server.json("GET", "/api/projects", None);
    assert_eq!((status, listed), (200, json!([])));
}

#[test]
fn a_project_is_renamed_and_synced() {
    let server = Server::start();
    let id = server.add_project("shop");
    let path = format!("/api/projects/{id}");

    let (status, project) = server.json("PATCH", &path, Some(json!({"name": " Shop front "})));
    assert_eq!(
        (status, project["name"].as_str()),
        (200, Some("Shop front"))
    );
    let (_, listed) = server.json("GET", "/api/projects", None);
    assert_eq!(listed[0]["name"], "Shop front");

    let (status, body) = server.json("PATCH", &path, Some(json!({"name": "  "})));
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("Project name is required"))
    );
    let (status, body) = server.json("PATCH", &path, Some(json!({"name": "a", "path": "/"})));
    assert_eq!(status, 422, "{body}");
    for unknown in ["/api/projects/999", "/api/projects/abc"] {
        let (status, body) = server.json("PATCH", unknown, Some(json!({"name": "x"})));
        assert_eq!(status, 404, "{unknown}: {body}");
        assert!(body["error"].as_str().unwrap().contains("does not exist"));
    }

    let project_dir = listed[0]["path"].as_str().unwrap().to_owned();
    claude_transcript(&server, &project_dir, "s-later", "Later work");
    let (status, summary) = server.json("POST", &format!("{path}/sync"), None);
    assert_eq!(status, 200, "{summary}");
    // The import may have been the background sync's (after adding).
    assert!(summary["files_total"].as_i64().unwrap() >= 1, "{summary}");
    assert!(server
        .sessions(id)
        .iter()
        .any(|s| s["name"] == "Later work"));
    let (status, body) = server.json("POST", "/api/projects/999/sync", None);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn removing_a_project_removes_its_sessions_and_stops_their_runs() {
    let server = Server::start();
    let id = server.add_project("shop");
    let kept = server.add_project("kept");
    let idle = server.create_session(id, "idle one");
    let busy = server.create_session(id, "busy one");
    let other = server.create_session(kept, "elsewhere");
    let pgid = working(&server, &busy);

    let (status, body) = server.json("DELETE", &format!("/api/projects/{id}"), None);
    assert_eq!((status, body), (200, json!({ "id": id })));
    assert!(
        group_ends(pgid),
        "the run's process group outlived its project"
    );
    for session in [&idle, &busy] {
        let (status, _) = server.json("GET", &format!("/api/sessions/{session}"), None);
        assert_eq!(status, 404, "{session} survived its project");
    }
    let (_, listed) = server.json("GET", "/api/projects", None);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(server.detail(&other)["session"]["name"], "elsewhere");
    // The directory is the user's: it stays.
    assert!(Path::new(&server.path().join("projects/shop")).is_dir());

    let (status, body) = server.json("DELETE", &format!("/api/projects/{id}"), None);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_session_is_renamed_and_deleted() {
    let server = Server::start();
    let project = server.add_project("shop");
    let id = server.create_session(project, "job");
    let path = format!("/api/sessions/{id}");

    let (status, session) = server.json("PATCH", &path, Some(json!({"name": " nightly "})));
    assert_eq!(
        (status, session["name"].as_str()),
        (200, Some("nightly")),
        "{session}"
    );
    assert_eq!(server.detail(&id)["session"]["name"], "nightly");
    let (status, body) = server.json("PATCH", &path, Some(json!({"name": ""})));
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("Session name is required"))
    );
    let (status, body) = server.json(
        "PATCH",
        &path,
        Some(json!({"name": "x", "agent": "claude"})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("agent"), "{body}");
    let (status, body) = server.json("PATCH", "/api/sessions/nope", Some(json!({"name": "x"})));
    assert_eq!(status, 404, "{body}");

    let (status, body) = server.json("DELETE", &path, None);
    assert_eq!((status, body), (200, json!({ "id": id })));
    let (status, _) = server.json("GET", &path, None);
    assert_eq!(status, 404);
    let (status, body) = server.json("DELETE", &path, None);
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("does not exist"));
}

#[test]
fn deleting_a_working_session_cancels_its_run_first() {
    let server = Server::start();
    let project = server.add_project("shop");
    let id = server.create_session(project, "sleeper");
    let pgid = working(&server, &id);

    let (status, body) = server.json("DELETE", &format!("/api/sessions/{id}"), None);
    assert_eq!((status, body), (200, json!({ "id": id })));
    assert!(
        group_ends(pgid),
        "the deleted session's run is still running"
    );
    let (status, _) = server.json("GET", &format!("/api/sessions/{id}"), None);
    assert_eq!(status, 404);
    assert!(server.sessions(project).is_empty());
}
