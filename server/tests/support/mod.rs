//! The real `agentdeck` binary on a random port and a fresh SQLite file,
//! shared by the integration tests that need extra flags (each test crate
//! uses a different part of it).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running server, killed when dropped. Its log goes to `server.log` in
/// its directory, so a failing test can show it.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// A server on a fresh database with `extra` flags after `serve`.
    /// Transcript folders point into the test's directory, so nothing from
    /// the developer's own `~/.claude` or `~/.codex` is imported.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["claude", "codex"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentdeck"))
            .args(["serve", "--port", "0", "--database-url"])
            .arg(dir.path().join("agentdeck.db"))
            .arg("--claude-projects")
            .arg(dir.path().join("claude"))
            .arg("--codex-sessions")
            .arg(dir.path().join("codex"))
            .args(extra)
            .env("AGENTDECK_SITE_ROOT", dir.path())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(addr) = line.trim().strip_prefix("agentdeck listening on http://") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("the server did not start with {extra:?}: {line:?}\n{log}");
        };
        let addr = addr.to_owned();
        Self { child, addr, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn database(&self) -> PathBuf {
        self.path().join("agentdeck.db")
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_of(self.child.id())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends one form-encoded request, asking for JSON; returns status and body.
    pub fn form(&self, method: &str, path: &str, form: &str) -> (u16, String) {
        let headers =
            "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n";
        let (status, _, body) = self.send(method, path, headers, form.as_bytes());
        (status, body)
    }

    /// Sends a JSON request; returns the status and the parsed body (a JSON
    /// string holding the raw text when it is not JSON).
    pub fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw_json(method, path, body.as_bytes())
    }

    /// Sends `body` as-is with a JSON content type.
    pub fn raw_json(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, _, text) = self.send(method, path, "Content-Type: application/json\r\n", body);
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends one HTTP/1.1 request; returns the status, the header block and
    /// the body. The body is written from another thread, so a server that
    /// answers before reading all of it (413) does not deadlock the test.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}\
             Content-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut writer = stream.try_clone().unwrap();
        let body = body.to_vec();
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
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        written.join().unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {response:?}"));
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (status, head.to_owned(), body.to_owned())
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

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
