//! Outgoing notifications from the real server to a local receiver: the
//! retry after a 500, a slow target that never holds up a state change,
//! each kind's request, and the API's rules for targets.

mod support;

use serde_json::{json, Value};
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use support::Server;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    /// Request line and headers.
    head: String,
    body: String,
}

impl Received {
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A local HTTP server answering the n-th request with `answers[n]` (the
/// last one for all later requests): a status, after a delay.
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(answers: Vec<(u16, Duration)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&got);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let answer = answers[n.min(answers.len() - 1)];
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_one(stream, answer, &seen));
            }
        });
        Self { base, got }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("expected {n} requests, got {:?}", self.received());
    }
}

fn serve_one(mut stream: TcpStream, (status, delay): (u16, Duration), seen: &Mutex<Vec<Received>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + 4 + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&data[head_end + 4..]).into_owned();
    seen.lock().unwrap().push(Received { head, body });
    std::thread::sleep(delay);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// A server whose notification retries wait 50 ms, 100 ms, …
fn fast_retrying_server() -> Server {
    Server::options().args(&["--notify-retry-ms", "50"]).start()
}

fn add_target(server: &Server, body: Value) -> Value {
    let (status, target) = server.json("POST", "/api/notify-targets", Some(body));
    assert_eq!(status, 201, "{target}");
    target
}

fn targets(server: &Server) -> Vec<Value> {
    let (status, list) = server.json("GET", "/api/notify-targets", None);
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

/// Polls the target list until target `id` satisfies `done`.
fn wait_for_target(server: &Server, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let target = targets(server)
            .into_iter()
            .find(|t| t["id"] == id)
            .expect("the target is gone");
        if done(&target) {
            return target;
        }
        assert!(
            Instant::now() < deadline,
            "target never got there: {target}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn fail_a_run(server: &Server) -> (i32, String) {
    let project = server.add_project("web");
    let session = server.create_session(project, "job");
    server.send_message(&session, "exit 3");
    server.wait_for(&session, |d| d["session"]["state"] == "error");
    (project, session)
}

#[test]
fn a_failure_reaches_a_webhook_after_it_first_answered_500() {
    let server = fast_retrying_server();
    let receiver = Receiver::start(vec![(500, Duration::ZERO), (200, Duration::ZERO)]);
    let url = receiver.url("/hook");
    let target = add_target(&server, json!({ "url": url }));
    // The caller that added it sees the whole URL; lists show it masked.
    assert_eq!(
        (target["kind"].as_str(), target["url"].as_str()),
        (Some("webhook"), Some(url.as_str()))
    );

    let (project, session) = fail_a_run(&server);
    let got = receiver.wait_for(2);
    let body = got[1].json();
    assert_eq!(
        got[0].body, got[1].body,
        "the retry sends the same notification"
    );
    assert_eq!(got[1].path(), "/hook");
    assert_eq!(got[1].header("content-type"), Some("application/json"));
    assert_eq!(body["event"], "failed", "{body}");
    assert_eq!(body["session"]["id"], session.as_str());
    assert_eq!(body["session"]["name"], "job");
    assert_eq!(body["project"]["id"], project);
    assert_eq!(body["project"]["name"], "web");
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str()),
        (Some("working"), Some("error"))
    );
    assert!(
        body["error_message"].as_str().unwrap().contains('3'),
        "{body}"
    );
    let link = format!(
        "http://{}/projects/{project}/sessions/{session}",
        server.addr
    );
    assert_eq!(body["link"], link.as_str());

    let target = wait_for_target(&server, target["id"].as_i64().unwrap(), |t| {
        t["last_ok"] == true
    });
    assert_eq!(target["last_result"], "200 OK after 2 attempts", "{target}");
    assert!(target["last_at"].as_i64().is_some());
    let masked = target["url"].as_str().unwrap();
    assert_eq!(masked, "http://127.0.0.1/…hook");
    // Nothing more is sent: one failure, one notification.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received().len(), 2);
}

#[test]
fn a_slow_target_never_delays_a_state_change() {
    let server = fast_retrying_server();
    let receiver = Receiver::start(vec![(200, Duration::from_secs(30))]);
    add_target(&server, json!({ "url": receiver.url("/slow") }));
    let project = server.add_project("web");
    let session = server.create_session(project, "job");
    for (message, state) in [("exit 3", "error"), ("true", "idle"), ("exit 4", "error")] {
        let sent = Instant::now();
        server.send_message(&session, message);
        server.wait_for(&session, |d| {
            d["session"]["state"] == state
                && d["runs"]
                    .as_array()
                    .is_some_and(|r| r.iter().all(|r| r["ended_at"].is_i64()))
        });
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{message}: the state took {:?}",
            sent.elapsed()
        );
    }
    // The deliveries are under way, held by the receiver.
    assert!(!receiver.wait_for(2).is_empty());
}

#[test]
fn ntfy_slack_and_discord_get_their_own_shapes() {
    let server = fast_retrying_server();
    let receiver = Receiver::start(vec![(200, Duration::ZERO)]);
    let ntfy = add_target(
        &server,
        json!({ "kind": "ntfy", "url": receiver.url("/topic"), "on_finished": false }),
    );
    add_target(
        &server,
        json!({ "kind": "slack", "url": receiver.url("/slack"), "on_finished": false }),
    );
    add_target(
        &server,
        json!({ "kind": "discord", "url": receiver.url("/discord"), "on_finished": false }),
    );
    assert_eq!(ntfy["on_finished"], false);

    let (_, session) = fail_a_run(&server);
    let got = receiver.wait_for(3);
    let by_path = |path: &str| {
        got.iter()
            .find(|r| r.path() == path)
            .unwrap_or_else(|| panic!("{path}: {got:?}"))
    };

    let topic = by_path("/topic");
    assert_eq!(topic.header("title"), Some("job failed"));
    assert_eq!(topic.header("priority"), Some("high"));
    assert!(
        topic.header("click").unwrap().ends_with(&session),
        "{topic:?}"
    );
    assert!(topic.body.starts_with("job failed in web: "), "{topic:?}");

    let slack = by_path("/slack").json();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("job failed in web: ") && text.contains("|Open in agentdeck>"),
        "{slack}"
    );
    assert_eq!(slack.as_object().unwrap().len(), 1);
    let discord = by_path("/discord").json();
    assert!(
        discord["content"].as_str().unwrap().contains(&session),
        "{discord}"
    );
    assert_eq!(discord.as_object().unwrap().len(), 1);

    // "Send test" reaches one target and shows as its last delivery.
    let id = ntfy["id"].as_i64().unwrap();
    let (status, _) = server.json("POST", &format!("/api/notify-targets/{id}/test"), None);
    assert_eq!(status, 202);
    let got = receiver.wait_for(4);
    assert_eq!(got[3].path(), "/topic");
    assert_eq!(got[3].header("title"), Some("agentdeck test notification"));
    let target = wait_for_target(&server, id, |t| {
        t["last_result"] == "200 OK after 1 attempt"
    });
    assert_eq!(target["last_ok"], true);

    // A finished run is sent to nobody: every target turned it off.
    server.send_message(&session, "true");
    server.wait_for(&session, |d| d["session"]["state"] == "idle");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.received().len(), 4);
}

#[test]
fn targets_follow_the_same_rules_in_the_api_and_the_dashboard() {
    let receiver = Receiver::start(vec![(200, Duration::ZERO)]);
    let flagged = receiver.url("/from-flag");
    let server = Server::options()
        .args(&["--notify", &format!("slack={flagged}")])
        .start();
    let list = targets(&server);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0]["kind"].as_str(), list[0]["from_flag"].as_bool()),
        (Some("slack"), Some(true))
    );
    let flag_id = list[0]["id"].as_i64().unwrap();

    // 409: a flag target stays until the flag goes.
    let (status, body) = server.json("DELETE", &format!("/api/notify-targets/{flag_id}"), None);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--notify"),
        "{body}"
    );
    let (status, body) = server.form(
        "POST",
        "/rpc/remove_notify_target",
        &format!("id={flag_id}"),
    );
    assert_eq!(status, 409, "{body}");

    // 422s, each saying what is wrong (never quoting the URL).
    let long = format!("https://example.com/{}", "x".repeat(2048));
    for (body, says) in [
        (json!({"url": "ftp://example.com/x"}), "http:// or https://"),
        (json!({"url": "example.com"}), "http:// or https://"),
        (json!({"url": long}), "at most 2048 bytes"),
        (
            json!({"url": "https://example.com", "kind": "pager"}),
            "unknown notification target kind",
        ),
        (
            json!({"url": "https://example.com", "colour": "red"}),
            "unknown field",
        ),
    ] {
        let (status, answer) = server.json("POST", "/api/notify-targets", Some(body.clone()));
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (status, body) = server.form(
        "POST",
        "/rpc/add_notify_target",
        "kind=&url=ftp%3A%2F%2Fx%2Fy",
    );
    assert_eq!(status, 422, "{body}");

    // The same URL twice is a 409; the dashboard's form adds like the API.
    let url = receiver.url("/hook");
    add_target(&server, json!({ "url": url }));
    let (status, _) = server.json("POST", "/api/notify-targets", Some(json!({ "url": url })));
    assert_eq!(status, 409);
    let (status, body) = server.form(
        "POST",
        "/rpc/add_notify_target",
        &format!(
            "kind=discord&url={}",
            receiver.url("/d").replace(':', "%3A").replace('/', "%2F")
        ),
    );
    assert_eq!(status, 200, "{body}");
    let added: Value = serde_json::from_str(&body).unwrap();
    let id = added["id"].as_i64().unwrap();

    // Events: the form sends only the checked boxes; PATCH keeps what it leaves out.
    let (status, body) = server.form(
        "POST",
        "/rpc/set_notify_events",
        &format!("id={id}&on_failed=true"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, target) = server.json(
        "PATCH",
        &format!("/api/notify-targets/{id}"),
        Some(json!({"on_finished": true})),
    );
    assert_eq!(status, 200, "{target}");
    assert_eq!(
        (
            &target["on_failed"],
            &target["on_needs_you"],
            &target["on_finished"]
        ),
        (&json!(true), &json!(false), &json!(true))
    );
    let (status, _) = server.json(
        "PATCH",
        &format!("/api/notify-targets/{id}"),
        Some(json!({"on_fail": true})),
    );
    assert_eq!(status, 422);
    let (status, _) = server.json("PATCH", "/api/notify-targets/999", Some(json!({})));
    assert_eq!(status, 404);

    // The page lists them (masked) with their forms.
    let page = server.get("/notifications", &[]);
    assert_eq!(page.status, 200);
    for expected in [
        "Add target",
        "Send test",
        "Remove",
        "set by --notify",
        "http://127.0.0.1/…",
    ] {
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    assert!(!page.body.contains(&url), "the page shows a URL unmasked");

    // At most 20 targets.
    for n in targets(&server).len()..20 {
        add_target(
            &server,
            json!({ "url": format!("https://example.com/{n}") }),
        );
    }
    let (status, body) = server.json(
        "POST",
        "/api/notify-targets",
        Some(json!({"url": "https://example.com/21"})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 20"),
        "{body}"
    );

    // Removing a dashboard target works; then it is gone.
    let (status, _) = server.json("DELETE", &format!("/api/notify-targets/{id}"), None);
    assert_eq!(status, 204);
    let (status, _) = server.json("POST", &format!("/api/notify-targets/{id}/test"), None);
    assert_eq!(status, 404);
}
