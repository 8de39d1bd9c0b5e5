//! Bounded resources on the real `agentdeck` binary: slow and oversized
//! requests, event stream limits, bad `since` values, database locations
//! and file modes.

mod support;

use serde_json::{json, Value};
use std::{
    ffi::OsStr,
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use support::{wait_exit, Reply, Server};

/// A project (a fresh directory) with `sessions` shell sessions, through the API.
fn project_with_sessions(server: &Server, sessions: usize) -> Vec<String> {
    let project = server.add_project("project");
    (0..sessions)
        .map(|i| server.create_session(project, &format!("job {i}")))
        .collect()
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
    let server = Server::options().args(&["--header-timeout", "1"]).start();

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
    let server = Server::start();
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
    let server = Server::options()
        .args(&["--max-streams-per-client", "2"])
        .start();
    let (status, _, first) = server.open_events("", &[]);
    assert_eq!(status, 200);
    let (status, _, _second) = server.open_events("since=0", &[]);
    assert_eq!(status, 200);

    let Reply { status, head, body } = server.get("/api/events", &[]);
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
        server.open_events("", &[]).0 == 200
    });
    assert!(freed, "closing a stream did not free its slot");
}

#[test]
fn event_streams_are_limited_in_all() {
    let server = Server::options().args(&["--max-streams", "1"]).start();
    let (status, _, _open) = server.open_events("", &[]);
    assert_eq!(status, 200);
    let Reply { status, head, body } = server.get("/api/events?since=0", &[]);
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
    let server = Server::start();
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
            "Last-Event-ID: x",
            r#"Last-Event-ID must be a change number (0 or more), not "x""#,
        ),
        (
            "since=3",
            "Last-Event-ID: -7",
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
        let headers: Vec<&str> = [header].into_iter().filter(|h| !h.is_empty()).collect();
        let Reply { status, body, .. } = server.get(&format!("/api/events?{query}"), &headers);
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
    let server = Server::options().args(&["--header-timeout", "1"]).start();
    project_with_sessions(&server, 2); // changes 1 and 2
    let (status, _, mut stream) = server.open_events("project=1", &[]);
    assert_eq!(status, 200);
    // Longer than the header timeout: a response being streamed is not cut.
    std::thread::sleep(Duration::from_millis(2500));
    server.create_session(1, "new"); // change 3
    assert_eq!(read_ids_until(&mut stream, "3"), ["3"]);
}

#[test]
fn a_database_url_with_another_scheme_is_refused_and_nothing_is_created() {
    let cwd = tempfile::tempdir().unwrap();
    let url = "mysql://u:secret@h/db";
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
        assert!(stderr.contains("mysql://"), "{stderr}");
        assert!(stderr.contains("SQLite file path"), "{stderr}");
        assert!(stderr.contains("postgres://"), "what it speaks: {stderr}");
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
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let data_home = dir.path().join("data");
    let server = Server::options()
        .dir(Arc::clone(&dir))
        .default_database()
        .env("XDG_DATA_HOME", &data_home)
        .env("HOME", dir.path().join("home"))
        .start();
    let data_dir = data_home.join("agentdeck");
    let db = data_dir.join("agentdeck.db");
    assert_eq!(mode(&data_home), 0o700);
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&db), 0o600);
    project_with_sessions(&server, 1); // writes: the WAL files exist now
    for suffix in ["-wal", "-shm"] {
        let mut name = db.clone().into_os_string();
        name.push(OsStr::new(suffix));
        assert_eq!(mode(Path::new(&name)), 0o600, "{suffix}");
    }
}

#[test]
fn an_existing_database_is_made_private_and_agents_keep_the_users_umask() {
    let mut first = Server::start();
    let dir = Arc::clone(&first.dir);
    let db = dir.path().join("agentdeck.db");
    let id = project_with_sessions(&first, 1).remove(0);
    first.terminate();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let server = Server::options().dir(dir).start();
    assert_eq!(mode(&db), 0o600);

    // The shell agent reports the umask it runs with: the user's, not the
    // server's private one.
    server.send_message(&id, "umask");
    let detail = server.wait_for(&id, |d| d["session"]["state"] == "idle");
    let printed = detail["messages"].as_array().unwrap().last().unwrap()["content"]
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
    let mut server = Server::start();
    let streams: Vec<_> = (0..3).map(|_| server.open_events("", &[]).2).collect();
    let mut slow = server.connect();
    write!(slow, "GET / HTTP/1.1\r\nHost: {}\r\n", server.addr).unwrap();
    let took = server.terminate();
    assert!(took < Duration::from_secs(6), "stopping took {took:?}");
    drop((streams, slow));
}
