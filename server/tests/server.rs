//! The real `agentdeck` binary on a random port and a fresh SQLite file.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
};

/// A running server, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
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
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Sends one HTTP/1.1 request; returns the status and body.
    fn request(&self, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let body = form.unwrap_or("");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
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
