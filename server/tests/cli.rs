//! `agentdeck send`, `approve`, `deny` and `approvals` against a real
//! running server: they find it, show it its token, follow its rules and
//! print its errors.

mod support;

use serde_json::json;
use std::{
    collections::HashMap,
    process::{Command, Output},
};
use support::{binary, fake_claude, Server};

const TOKEN: &str = "full-access-token-0123456789";

/// Runs `agentdeck ARGS` as a user on the server's machine would: with its
/// data directory (where the URL and any token file are), no token in the
/// environment unless `env` gives one.
fn agentdeck(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .arg("--database-url")
        .arg(server.database())
        .env_remove("AGENTDECK_TOKEN")
        .env_remove("AGENTDECK_URL")
        .env_remove("AGENTDECK_DATABASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn send_waits_for_the_answer_and_fails_with_the_run() {
    let server = Server::start();
    let project = server.add_project("shop");
    let id = server.create_session(project, "job");

    let done = agentdeck(
        &server,
        &["send", "job", "echo hello from the shell", "--wait"],
        &[],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        stdout(&done).contains("hello from the shell"),
        "{}",
        stdout(&done)
    );
    assert_eq!(server.detail(&id)["session"]["state"], "idle");

    let failed = agentdeck(
        &server,
        &["send", &id[..8], "echo oops >&2; exit 3", "--wait"],
        &[],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
    assert!(
        stderr(&failed).starts_with("agentdeck: job: "),
        "{}",
        stderr(&failed)
    );
    assert_eq!(server.detail(&id)["session"]["state"], "error");

    // Without --wait: the state it is in now.
    let sent = agentdeck(&server, &["send", &id, "sleep 2"], &[]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert_eq!(stdout(&sent), "job: working\n");
    // The server's rules hold: a working session takes no second message.
    let busy = agentdeck(&server, &["send", &id, "true"], &[]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(
        stderr(&busy).contains("session is busy"),
        "{}",
        stderr(&busy)
    );
}

#[test]
fn sessions_are_named_by_id_prefix_or_name_and_ambiguity_is_explained() {
    let server = Server::start();
    let project = server.add_project("shop");
    let other = server.add_project("other");
    // Among 17 ids two share their first hex digit.
    let mut by_first: HashMap<char, Vec<String>> = HashMap::new();
    let mut job_3 = String::new();
    for n in 0..17 {
        let in_project = if n % 2 == 0 { project } else { other };
        let id = server.create_session(in_project, &format!("job {n}"));
        if n == 3 {
            job_3 = id.clone();
        }
        by_first
            .entry(id.chars().next().unwrap())
            .or_default()
            .push(id);
    }
    let (prefix, shared) = by_first.iter().find(|(_, ids)| ids.len() > 1).unwrap();
    let prefix = prefix.to_string();
    let ambiguous = agentdeck(&server, &["send", &prefix, "true"], &[]);
    assert_eq!(ambiguous.status.code(), Some(1));
    let said = stderr(&ambiguous);
    assert!(
        said.contains(&format!("{prefix} matches {} sessions", shared.len())),
        "{said}"
    );
    for id in shared {
        assert!(said.contains(id.as_str()), "{said}");
    }

    let unknown = agentdeck(&server, &["send", "no such job", "true"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no session"),
        "{}",
        stderr(&unknown)
    );

    // Names, even with spaces and in another project.
    let named = agentdeck(&server, &["send", "job 3", "echo three", "--wait"], &[]);
    assert!(named.status.success(), "{}", stderr(&named));
    assert_eq!(stdout(&named).trim(), "three");

    // Nothing was sent to any of the ambiguous ones (but "job 3", by name,
    // when its id happens to be one of them).
    for id in shared.iter().filter(|id| **id != job_3) {
        assert!(server.detail(id)["runs"].as_array().unwrap().is_empty());
    }
}

#[test]
fn a_stopped_server_is_one_clear_line() {
    let server = Server::start();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    for args in [
        vec!["send", "job", "true"],
        vec!["approve", "abc"],
        vec!["approvals"],
    ] {
        let mut args = args.clone();
        args.extend(["--url", &url]);
        let output = agentdeck(&server, &args, &[]);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&output),
            format!("agentdeck: agentdeck is not running at {url}: connection refused\n"),
            "{args:?}"
        );
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn a_protected_server_wants_its_token() {
    let server = Server::options().env("AGENTDECK_TOKEN", TOKEN).start();
    let project_dir = server.path().join("shop");
    std::fs::create_dir_all(&project_dir).unwrap();

    let refused = agentdeck(&server, &["send", "job", "true"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        "agentdeck: the server wants a token: set AGENTDECK_TOKEN or run on the server's machine\n"
    );

    // With the token, through the server's recorded URL.
    let reply = server.send(
        "POST",
        "/api/projects",
        &[support::JSON, &format!("Authorization: Bearer {TOKEN}")],
        json!({ "path": project_dir }).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = server.send(
        "POST",
        "/api/projects/1/sessions",
        &[support::JSON, &format!("Authorization: Bearer {TOKEN}")],
        json!({ "name": "job", "agent": "shell" }).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let sent = agentdeck(
        &server,
        &["send", "job", "echo with the token", "--wait"],
        &[("AGENTDECK_TOKEN", TOKEN)],
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert_eq!(stdout(&sent).trim(), "with the token");
}

#[test]
fn approvals_are_listed_allowed_and_denied() {
    let claude = fake_claude();
    let server = Server::options()
        .args(&["--claude-bin", claude.to_str().unwrap()])
        .start();
    let project = server.add_project("shop");
    let create = |name: &str| {
        let (status, session) = server.json(
            "POST",
            &format!("/api/projects/{project}/sessions"),
            Some(json!({"name": name, "agent": "claude"})),
        );
        assert_eq!(status, 201, "{session}");
        session["id"].as_str().unwrap().to_owned()
    };
    let (first, second) = (create("first"), create("second"));
    server.send_message(&first, "ask:touch allowed.txt");
    server.send_message(&second, "ask:rm -rf build");
    let pending = |count: usize| {
        for _ in 0..400 {
            let (_, list) = server.json("GET", "/api/approvals", None);
            let list = list.as_array().unwrap().clone();
            if list.len() == count {
                return list;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("never {count} pending requests");
    };
    let waiting = pending(2);

    let listed = agentdeck(&server, &["approvals"], &[]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let table = stdout(&listed);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.contains("first") && table.contains("touch allowed.txt"),
        "{table}"
    );
    assert!(
        table.contains("second") && table.contains("Bash"),
        "{table}"
    );
    let json_list = agentdeck(&server, &["approvals", "--json"], &[]);
    let parsed: serde_json::Value = serde_json::from_str(&stdout(&json_list)).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2);

    let id_of = |session: &str| {
        waiting.iter().find(|a| a["session_id"] == session).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (allow_id, deny_id) = (id_of(&first), id_of(&second));
    // A prefix long enough to be unique among two uuids.
    let allowed = agentdeck(&server, &["approve", &allow_id[..13]], &[]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert_eq!(stdout(&allowed), "Allowed Bash: touch allowed.txt\n");
    let denied = agentdeck(
        &server,
        &["deny", &deny_id, "--message", "not the build folder"],
        &[],
    );
    assert!(denied.status.success(), "{}", stderr(&denied));
    assert_eq!(
        stdout(&denied),
        "Denied Bash: rm -rf build (not the build folder)\n"
    );
    pending(0);

    // Answered already: the server's 409, exit 1.
    let again = agentdeck(&server, &["approve", &allow_id], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).starts_with("agentdeck: "),
        "{}",
        stderr(&again)
    );
    assert!(stdout(&again).is_empty());

    let unknown = agentdeck(&server, &["deny", "nonexistent"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("does not exist"),
        "{}",
        stderr(&unknown)
    );
}
