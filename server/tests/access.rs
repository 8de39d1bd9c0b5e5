//! Access tokens, the login cookie, the read-only token, the Host
//! allow-list, CSRF and security headers, on the real `agentdeck` binary.

mod support;

use serde_json::{json, Value};
use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
};
use support::{Reply, Server};

/// Requests and output only these tests need.
trait Access {
    /// The next line the server printed after "listening": a login link.
    /// Returns the token in it, after checking the link's form.
    fn login_token(&mut self, label: &str) -> String;
    /// A JSON POST from a script (no Origin, no Sec-Fetch-Site).
    fn post_json(&self, path: &str, headers: &[&str], body: Value) -> Reply;
    /// A server-function call, as a form post.
    fn post_form(&self, path: &str, headers: &[&str], form: &str) -> Reply;
    /// The server's own Origin header.
    fn origin(&self) -> String;
}

impl Access for Server {
    fn login_token(&mut self, label: &str) -> String {
        let line = self.next_line();
        let port = self.addr.rsplit(':').next().unwrap();
        let prefix = format!("agentdeck {label}: http://127.0.0.1:{port}/?token=");
        line.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("expected {prefix}…, got {line:?}"))
            .to_owned()
    }

    fn post_json(&self, path: &str, headers: &[&str], body: Value) -> Reply {
        let mut all = vec![support::JSON];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, body.to_string())
    }

    fn post_form(&self, path: &str, headers: &[&str], form: &str) -> Reply {
        let mut all = support::FORM.to_vec();
        all.extend_from_slice(headers);
        self.send("POST", path, &all, form)
    }

    fn origin(&self) -> String {
        format!("Origin: http://{}", self.addr)
    }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn cookie(token: &str) -> String {
    format!("Cookie: theme=dark; agentdeck_token={token}")
}

/// Adds a project whose name would give it away, and a session in it.
/// `auth` is the credential header ("" on a tokenless server).
fn project_with_session(server: &Server, auth: &str) -> String {
    let auth = if auth.is_empty() {
        "X-Credential: none"
    } else {
        auth
    };
    let dir = server.dir.path().join("project-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let form = format!("path={}&name=zebra-secret-project", dir.display());
    let reply = server.post_form("/rpc/add_project", &[auth], &form);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = server.post_json(
        "/api/projects/1/sessions",
        &[auth],
        json!({"name": "job", "agent": "shell"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

const TOKEN: &str = "full-access-token-0123456789";
const VIEW_TOKEN: &str = "view-only-token-0123456789";

#[test]
fn a_network_bind_needs_the_generated_token() {
    let mut server = Server::options().args(&["--bind", "0.0.0.0"]).start();
    let token = server.login_token("login");
    assert_eq!(token.len(), 64, "{token}");
    let warning = server.stderr();
    assert!(
        warning.contains("can run commands on this machine as this user"),
        "{warning}"
    );
    assert!(warning.contains("--allowed-host"), "{warning}");
    assert!(!warning.contains(&token), "the token is logged: {warning}");

    for path in ["/api/projects", "/api/events", "/rpc/list_projects"] {
        let method = if path.starts_with("/rpc") {
            "POST"
        } else {
            "GET"
        };
        let reply = server.send(method, path, &[&server.origin()], "");
        assert_eq!(reply.status, 401, "{path}: {}", reply.body);
        assert!(
            reply.json()["error"].as_str().unwrap().contains("Bearer"),
            "{path}"
        );
        assert_eq!(
            reply
                .header("www-authenticate")
                .map(|v| v.starts_with("Bearer")),
            Some(true),
            "{path}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
    }
    let wrong = server.get("/api/projects", &[&bearer("not-the-token-0123456789")]);
    assert_eq!(wrong.status, 401, "{}", wrong.body);

    project_with_session(&server, &bearer(&token));
    let reply = server.get("/api/projects", &[&bearer(&token)]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("zebra-secret-project"));
    let stream = server.get("/api/events", &[&bearer(&token)]);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));

    // Pages: a login page that tells nothing about what it protects.
    for path in ["/", "/projects/1/sessions", "/no/such/page"] {
        let page = server.get(path, &[]);
        assert_eq!(page.status, 401, "{path}");
        assert!(page.body.contains("Access token"), "{path}: {}", page.body);
        assert!(page.body.contains(r#"name="token""#));
        assert!(page.body.contains(r#"action="/login""#));
        assert!(page.body.contains("/pkg/agentdeck.css"));
        assert!(!page.body.contains("zebra"), "{path} leaks: {}", page.body);
        assert!(!page.body.contains("<script"), "{path}: {}", page.body);
    }
    // Static assets need no token.
    let css = server.get("/pkg/agentdeck.css", &[]);
    assert_eq!(css.status, 200);
}

#[test]
fn a_login_link_becomes_a_cookie_and_leaves_the_url() {
    let server = Server::options()
        .args(&["--bind", "0.0.0.0"])
        .env("AGENTDECK_TOKEN", TOKEN)
        .start();
    project_with_session(&server, &bearer(TOKEN));

    let reply = server.get(
        &format!("/projects/1/sessions?token={TOKEN}&state=idle"),
        &[],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(
        reply.header("location"),
        Some("/projects/1/sessions?state=idle")
    );
    let set_cookie = reply.header("set-cookie").unwrap();
    for part in [
        &format!("agentdeck_token={TOKEN}"),
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    let reply = server.get(&format!("/?token={TOKEN}"), &[]);
    assert_eq!((reply.status, reply.header("location")), (303, Some("/")));

    let page = server.get("/", &[&cookie(TOKEN)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("zebra-secret-project"), "{}", page.body);
    let api = server.get("/api/projects", &[&cookie(TOKEN)]);
    assert_eq!(api.status, 200);

    let wrong = server.get("/?token=wrong-token-0123456789", &[]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(wrong.body.contains("not valid"), "{}", wrong.body);
    assert!(!wrong.body.contains("zebra"));
    let stale = server.get("/", &[&cookie("old-token-0123456789abc")]);
    assert_eq!(stale.status, 401);
    assert!(stale.body.contains("no longer valid"), "{}", stale.body);

    // The login form.
    let form = server.get("/login?next=/projects/1/sessions", &[]);
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains(r#"value="/projects/1/sessions""#),
        "{}",
        form.body
    );
    let origin = server.origin();
    let login = |token: &str, next: &str| {
        server.send(
            "POST",
            "/login",
            &["Content-Type: application/x-www-form-urlencoded", &origin],
            format!("token={token}&next={next}"),
        )
    };
    let ok = login(TOKEN, "%2Fprojects%2F1%2Fsessions");
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/projects/1/sessions"));
    assert!(ok.header("set-cookie").unwrap().contains("HttpOnly"));
    let elsewhere = login(TOKEN, "%2F%2Fevil.example%2F");
    assert_eq!(elsewhere.header("location"), Some("/"));
    let refused = login("wrong-token-0123456789", "%2F");
    assert_eq!(refused.status, 401);
    assert!(refused.header("set-cookie").is_none());
    assert!(refused.body.contains("not valid") && refused.body.contains("Access token"));
}

/// Every server function endpoint in the app crate.
fn server_fn_endpoints() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // `#[server(` and `#[leptos::server(` alike.
                for (start, _) in text.match_indices("server(prefix") {
                    let rest = &text[start..];
                    let attr = &rest[..rest.find(")]").unwrap()];
                    let endpoint = attr
                        .split("endpoint = \"")
                        .nth(1)
                        .and_then(|e| e.split('"').next())
                        .unwrap_or_else(|| panic!("no endpoint in {attr}"));
                    found.insert(endpoint.to_owned());
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src"),
        &mut found,
    );
    found
}

#[test]
fn the_read_only_token_sees_everything_and_changes_nothing() {
    let server = Server::options()
        .args(&["--read-only-token", VIEW_TOKEN])
        .env("AGENTDECK_TOKEN", TOKEN)
        .start();
    let id = project_with_session(&server, &bearer(TOKEN));
    let viewer = bearer(VIEW_TOKEN);

    for path in [
        "/api/projects".to_owned(),
        "/api/projects/1/sessions".to_owned(),
        format!("/api/sessions/{id}"),
        "/".to_owned(),
        "/projects/1/sessions".to_owned(),
        format!("/projects/1/sessions/{id}"),
        "/api/events?project=1".to_owned(),
        "/notifications".to_owned(),
        "/api/notify-targets".to_owned(),
    ] {
        let reply = server.get(&path, &[&viewer]);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let page = server.get("/", &[&cookie(VIEW_TOKEN)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("zebra-secret-project"));

    let reads = [
        ("list_projects", String::new()),
        ("load_overview", String::new()),
        ("load_hook_status", String::new()),
        ("agent_choices", String::new()),
        ("project_sessions", "project_id=1".to_owned()),
        ("load_conversation", format!("session_id={id}")),
        ("load_session_detail", format!("session_id={id}")),
        ("load_timeline", format!("session_id={id}")),
        ("list_notify_targets", String::new()),
    ];
    let writes = [
        ("add_project", "path=/tmp".to_owned()),
        ("rename_project", "project_id=1&name=renamed".to_owned()),
        ("remove_project", "project_id=1".to_owned()),
        (
            "set_project_approvals",
            "project_id=1&enabled=on&wait_minutes=5".to_owned(),
        ),
        ("set_permission_mode", format!("session_id={id}&mode=ask")),
        ("answer_approval", "approval_id=x&decision=allow".to_owned()),
        ("sync_project", "project_id=1".to_owned()),
        (
            "create_session",
            "project_id=1&name=x&agent=shell".to_owned(),
        ),
        ("rename_session", format!("session_id={id}&name=renamed")),
        ("delete_session", format!("session_id={id}")),
        (
            "send_message",
            format!("session_id={id}&message=touch+pwned"),
        ),
        ("cancel_run", format!("session_id={id}")),
        ("answer_approval", "approval_id=x&decision=allow".to_owned()),
        ("set_permission_mode", format!("session_id={id}&mode=ask")),
        (
            "set_project_approvals",
            "project_id=1&enabled=on&wait_minutes=5".to_owned(),
        ),
        ("mark_seen", format!("session_id={id}")),
        (
            "add_notify_target",
            "kind=&url=http%3A%2F%2F127.0.0.1%3A9%2Fx".to_owned(),
        ),
        ("set_notify_events", "id=1&on_failed=true".to_owned()),
        ("remove_notify_target", "id=1".to_owned()),
        ("send_test_notification", "id=1".to_owned()),
    ];
    let listed: BTreeSet<String> = reads
        .iter()
        .chain(&writes)
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        listed,
        server_fn_endpoints(),
        "a server function is missing from this test: is it a read or a write?"
    );
    for (name, form) in &reads {
        let reply = server.post_form(&format!("/rpc/{name}"), &[&viewer], form);
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
    }
    let refusal = "read-only access: this token can view but not change anything";
    let same_origin = server.origin();
    for (name, form) in &writes {
        // With the page's own Origin, as the browser would send it.
        let reply = server.post_form(
            &format!("/rpc/{name}"),
            &[&cookie(VIEW_TOKEN), &same_origin],
            form,
        );
        assert_eq!(reply.status, 403, "{name}: {}", reply.body);
        assert_eq!(reply.json()["error"], refusal, "{name}");
    }
    for (path, body) in [
        ("/api/projects/1/sessions".to_owned(), json!({"name": "x"})),
        (
            format!("/api/sessions/{id}/messages"),
            json!({"message": "touch pwned"}),
        ),
        (format!("/api/sessions/{id}/cancel"), json!({})),
        (
            "/api/notify-targets".to_owned(),
            json!({"url": "http://127.0.0.1:9/x"}),
        ),
        ("/api/notify-targets/1/test".to_owned(), json!({})),
        ("/api/projects".to_owned(), json!({"path": "/tmp"})),
        ("/api/projects/1/sync".to_owned(), json!({})),
    ] {
        let reply = server.post_json(&path, &[&viewer], body);
        assert_eq!(reply.status, 403, "{path}: {}", reply.body);
        assert_eq!(reply.json()["error"], refusal, "{path}");
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        let reply = server.send(method, &format!("/api/sessions/{id}"), &[&viewer], "");
        assert_eq!(reply.status, 403, "{method}");
        let reply = server.send(method, "/api/notify-targets/1", &[&viewer], "");
        assert_eq!(reply.status, 403, "{method}");
        for path in [format!("/api/sessions/{id}"), "/api/projects/1".to_owned()] {
            let body = json!({"name": "renamed"}).to_string();
            let reply = server.send(method, &path, &[&viewer, support::JSON], body);
            assert_eq!(reply.status, 403, "{method} {path}");
        }
    }
    let targets = server.get("/api/notify-targets", &[&bearer(TOKEN)]).json();
    assert_eq!(targets, json!([]));

    // Nothing changed.
    let detail = server
        .get(&format!("/api/sessions/{id}"), &[&bearer(TOKEN)])
        .json();
    assert_eq!(detail["session"]["name"], "job");
    assert!(detail["runs"].as_array().unwrap().is_empty(), "{detail}");
    let sessions = server
        .get("/api/projects/1/sessions", &[&bearer(TOKEN)])
        .json();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let projects = server.get("/api/projects", &[&bearer(TOKEN)]).json();
    assert_eq!(projects.as_array().unwrap().len(), 1);
    assert!(!server.dir.path().join("project-dir/pwned").exists());

    // The full token still writes.
    let reply = server.post_form(
        "/rpc/rename_session",
        &[&bearer(TOKEN)],
        &format!("session_id={id}&name=renamed"),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn token_command(dir: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_agentdeck"))
        .args(["token", "--database-url"])
        .arg(dir.join("agentdeck.db"))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_generated_token_is_private_survives_restarts_and_rotates() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let network = || {
        Server::options()
            .dir(Arc::clone(&dir))
            .args(&["--bind", "0.0.0.0"])
    };
    let mut first = network().start();
    let token = first.login_token("login");
    let file = dir.path().join("token");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    drop(first);

    let mut second = network().start();
    assert_eq!(second.login_token("login"), token);
    assert_eq!(second.get("/api/projects", &[&bearer(&token)]).status, 200);
    assert_eq!(token_command(dir.path(), &[]), token);

    let rotated = token_command(dir.path(), &["--rotate"]);
    assert_ne!(rotated, token);
    assert_eq!(rotated.len(), 64);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The running server keeps the token it started with.
    assert_eq!(second.get("/api/projects", &[&bearer(&token)]).status, 200);
    drop(second);

    let mut third = network().start();
    assert_eq!(third.login_token("login"), rotated);
    assert_eq!(third.get("/api/projects", &[&bearer(&token)]).status, 401);
    assert_eq!(third.get("/api/projects", &[&bearer(&rotated)]).status, 200);
    drop(third);

    // A read-only token made by the command is used, and printed, at start.
    let view = token_command(dir.path(), &["--read-only"]);
    assert_ne!(view, rotated);
    let mut fourth = network().start();
    assert_eq!(fourth.login_token("login"), rotated);
    assert_eq!(fourth.login_token("read-only login"), view);
    let reply = fourth.post_json(
        "/api/projects/1/sessions",
        &[&bearer(&view)],
        json!({"name": "x"}),
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    drop(fourth);

    // A token file others can read is refused, with what to do.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = network().command().stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains(&rotated), "{stderr}");
}

#[test]
fn require_token_protects_loopback_too() {
    let mut server = Server::options()
        .env("AGENTDECK_REQUIRE_TOKEN", "true")
        .start();
    assert!(server.addr.starts_with("127.0.0.1:"));
    let token = server.login_token("login");
    assert_eq!(server.get("/api/projects", &[]).status, 401);
    assert_eq!(server.get("/", &[]).status, 401);
    assert_eq!(server.get("/api/projects", &[&bearer(&token)]).status, 200);

    let mut flagged = Server::options().args(&["--require-token"]).start();
    let token = flagged.login_token("login");
    assert_eq!(flagged.get("/api/projects", &[]).status, 401);
    assert_eq!(flagged.get("/", &[&cookie(&token)]).status, 200);

    // A given token is in force even on loopback, and is not printed.
    let given = Server::options().args(&["--token", TOKEN]).start();
    assert_eq!(given.get("/api/projects", &[]).status, 401);
    assert_eq!(given.get("/api/projects", &[&bearer(TOKEN)]).status, 200);
    assert!(!given.stderr().contains(TOKEN));
}

#[test]
fn pages_carry_a_nonce_csp_and_frame_headers() {
    let server = Server::start();
    let page = server.get("/", &[]);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").expect("no CSP");
    for directive in [
        "default-src 'self'",
        "'wasm-unsafe-eval'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("no nonce in the CSP");
    assert!(nonce.len() >= 22, "{nonce}");
    let scripts: Vec<&str> = page.body.split("<script").skip(1).collect();
    assert!(scripts.len() >= 2, "{}", page.body);
    for script in &scripts {
        let tag = &script[..script.find('>').unwrap()];
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "a script without the nonce: <script{tag}>"
        );
    }
    assert!(
        !page.body.contains(" style=\""),
        "inline styles break the CSP"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    let again = server.get("/", &[]);
    let other = again.header("content-security-policy").unwrap();
    assert!(!other.contains(nonce), "the nonce repeats");

    for reply in [
        server.get("/api/projects", &[]),
        server.post_form("/rpc/list_projects", &[], ""),
    ] {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
    let css = server.get("/pkg/agentdeck.css", &[]);
    assert_eq!(css.status, 200);
    assert_ne!(css.header("cache-control"), Some("no-store"));
    assert_eq!(css.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn writes_from_other_sites_are_refused() {
    const REFUSAL: &str =
        "cross-origin request refused: agentdeck only accepts changes from its own pages";
    let server = Server::start();
    let session_count = |server: &Server| {
        server
            .get("/api/projects/1/sessions", &[])
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    project_with_session(&server, "");
    let create = |server: &Server, headers: &[&str]| {
        server.post_json("/api/projects/1/sessions", headers, json!({"name": "n"}))
    };
    let own = server.origin();
    let own_https = format!("Origin: https://{}", server.addr);
    let cases: [(&[&str], u16); 9] = [
        (&["Origin: http://evil.example"], 403),
        (&["Origin: null"], 403),
        (
            &[&format!("Origin: http://{}.evil.example", server.addr)],
            403,
        ),
        (&[&own], 201),
        (&[&own_https], 201),
        (&["Sec-Fetch-Site: cross-site"], 403),
        (&["Sec-Fetch-Site: same-site"], 403),
        (&["Sec-Fetch-Site: same-origin"], 201),
        (&[], 201), // a script on a tokenless loopback server
    ];
    let mut created = 1;
    for (headers, status) in cases {
        let reply = create(&server, headers);
        assert_eq!(reply.status, status, "{headers:?}: {}", reply.body);
        if status == 403 {
            assert_eq!(reply.json()["error"], REFUSAL);
        } else {
            created += 1;
        }
    }
    assert_eq!(session_count(&server), created);
    // A form posted from another site to a server function.
    let reply = server.post_form(
        "/rpc/add_project",
        &["Origin: http://evil.example"],
        "path=/tmp",
    );
    assert_eq!(reply.status, 403);
    let reply = server.post_form(
        "/rpc/add_project",
        &["Sec-Fetch-Site: none"],
        "path=/nonexistent",
    );
    assert_eq!(reply.status, 422, "typed by the user: past the check");

    // With a token in force, a browser's cookie alone is not enough.
    let guarded = Server::options().args(&["--token", TOKEN]).start();
    project_with_session(&guarded, &bearer(TOKEN));
    let own = guarded.origin();
    for (headers, status) in [
        (vec![cookie(TOKEN)], 403),
        (
            vec![cookie(TOKEN), "Origin: http://evil.example".into()],
            403,
        ),
        (
            vec![cookie(TOKEN), "Sec-Fetch-Site: cross-site".into()],
            403,
        ),
        (vec![cookie(TOKEN), own.clone()], 201),
        (
            vec![cookie(TOKEN), "Sec-Fetch-Site: same-origin".into()],
            201,
        ),
        (vec![bearer(TOKEN)], 201),
        (
            vec![bearer(TOKEN), "Origin: http://evil.example".into()],
            403,
        ),
    ] {
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let reply = create(&guarded, &headers);
        assert_eq!(reply.status, status, "{headers:?}: {}", reply.body);
    }
}

#[test]
fn only_allowed_host_names_are_served() {
    let server = Server::options()
        .args(&[
            "--bind",
            "0.0.0.0",
            "--token",
            TOKEN,
            "--allowed-host",
            "deck.example",
        ])
        .start();
    let auth = bearer(TOKEN);
    let port = server.addr.rsplit(':').next().unwrap();
    for host in [
        format!("deck.example:{port}"),
        "DECK.example".to_owned(),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        "[::1]".to_owned(),
    ] {
        let reply = server.get("/api/projects", &[&format!("Host: {host}"), &auth]);
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
    }
    for host in ["rebound.evil.example", "deck.example.evil.example", ""] {
        // Refused before authentication: no token needed to learn nothing.
        let reply = server.get("/", &[&format!("Host: {host}")]);
        assert_eq!(reply.status, 403, "{host}: {}", reply.body);
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("--allowed-host NAME"), "{error}");
        if host == "rebound.evil.example" {
            assert!(
                !error.contains("deck.example"),
                "lists the allowed names: {error}"
            );
        }
    }
    // The machine's own addresses are allowed when bound to all of them.
    let own = nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|i| i.address?.as_sockaddr_in().map(|a| a.ip()))
        .find(|ip| !ip.is_loopback());
    if let Some(ip) = own {
        let reply = server.get("/api/projects", &[&format!("Host: {ip}:{port}"), &auth]);
        assert_eq!(reply.status, 200, "{ip}: {}", reply.body);
    }

    let env_only = Server::options()
        .env("AGENTDECK_ALLOWED_HOSTS", "a.example,b.example")
        .start();
    for (host, status) in [("a.example", 200), ("b.example", 200), ("c.example", 403)] {
        let reply = env_only.get("/api/projects", &[&format!("Host: {host}")]);
        assert_eq!(reply.status, status, "{host}");
    }
}
