//! `agentdeck hook claude|codex`: the command Claude Code and Codex run as
//! a hook. It reads the hook's JSON on stdin (or, for Codex's legacy
//! `notify`, as its last argument), adds who sent it (the agent process,
//! this machine, agentdeck's own run if any) and forwards it to the
//! server's `/api/hooks/<agent>`.
//!
//! The agent waits for its hooks, so this never gets in the way: it exits 0
//! within [`DEADLINE`] whatever happens (server down, bad input). It writes
//! to stdout, which Claude Code reads as the hook's decision, only the
//! decision the server answers a `PermissionRequest` with when the project
//! lets the dashboard approve; that request may wait up to
//! [`APPROVAL_DEADLINE`] (the server's own bound per project is shorter).

use crate::access::TokenStore;
use app::{
    access::Access,
    agent::AgentKind,
    hook::{self, process::AgentProcess},
};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Request};
use hyper_util::rt::TokioIo;
use std::{path::Path, time::Duration};
use tokio::io::AsyncReadExt;

/// How long the whole hook may take, reading included.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// How long a `PermissionRequest` may wait for a decision from the
/// dashboard (each project sets its own bound, at most this).
pub const APPROVAL_DEADLINE: Duration = Duration::from_secs(3600);

/// The file the server writes its URL to at start, in the data directory:
/// the hook's default target.
pub const URL_FILE: &str = "server-url";

/// Where to send and with what.
pub struct Forward<'a> {
    pub agent: AgentKind,
    /// `--url` / `AGENTDECK_URL`; else the running server's, else the default port.
    pub url: Option<String>,
    pub data_dir: Option<&'a Path>,
    /// Codex's `notify` passes the JSON as the last argument.
    pub argument: Option<String>,
}

/// Forwards one hook; problems go to stderr, one line, and never fail the agent.
pub async fn run(mut forward: Forward<'_>) {
    let started = tokio::time::Instant::now();
    let body = match forward.argument.take() {
        Some(argument) => Ok(argument.into_bytes()),
        None => match tokio::time::timeout(DEADLINE, read_stdin()).await {
            Ok(read) => read,
            Err(_) => Err("stdin did not close in time".to_owned()),
        },
    };
    let body = match body {
        Ok(body) => body,
        Err(problem) => return eprintln!("agentdeck hook: {problem}"),
    };
    let deadline = if asks_for_approval(forward.agent, &body) {
        APPROVAL_DEADLINE
    } else {
        DEADLINE
    };
    let left = deadline.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, send(forward, body)).await {
        Ok(Ok(Some(decision))) => println!("{decision}"),
        Ok(Ok(None)) => {}
        Ok(Err(problem)) => eprintln!("agentdeck hook: {problem}"),
        Err(_) => eprintln!(
            "agentdeck hook: gave up after {} s (is the server busy?)",
            deadline.as_secs()
        ),
    }
}

/// Whether the hook is Claude's `PermissionRequest`, which the dashboard may answer.
fn asks_for_approval(agent: AgentKind, body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        hook_event_name: Option<&'a str>,
    }
    agent == AgentKind::Claude
        && serde_json::from_slice::<Event>(body)
            .is_ok_and(|event| event.hook_event_name == Some("PermissionRequest"))
}

/// Sends the hook; the decision to print, if the server made one.
async fn send(forward: Forward<'_>, body: Vec<u8>) -> Result<Option<String>, String> {
    let base = forward
        .url
        .filter(|u| !u.trim().is_empty())
        .or_else(|| {
            let dir = forward.data_dir?;
            let text = std::fs::read_to_string(dir.join(URL_FILE)).ok()?;
            Some(text.trim().to_owned()).filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "http://127.0.0.1:3000".to_owned());
    let (authority, prefix) = http_target(&base)?;
    let mut request = Request::post(format!("{prefix}/api/hooks/{}", forward.agent))
        .header(hyper::header::HOST, &authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hook::HOST_HEADER, hook::process::this_host());
    if let Some(agent) = AgentProcess::of_this_hook() {
        request = request.header(hook::PID_HEADER, agent.pid);
        if let Some(started) = agent.started {
            request = request.header(hook::STARTED_HEADER, started);
        }
    }
    if let Some(run) = std::env::var(hook::RUN_ENV).ok().filter(|r| !r.is_empty()) {
        request = request.header(hook::RUN_HEADER, run);
    }
    if let Some(token) = token(forward.data_dir) {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|err| format!("cannot build the request: {err}"))?;

    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|err| format!("agentdeck is not reachable at {base}: {err}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("cannot talk to {base}: {err}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("cannot send the hook to {base}: {err}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if status.is_success() {
        let decided = serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|answer| answer.get("hookSpecificOutput").is_some());
        return Ok(decided.then(|| String::from_utf8_lossy(&body).into_owned()));
    }
    Err(format!(
        "{base} answered {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    ))
}

/// The hook body on stdin, up to the server's limit (a longer one would be
/// refused anyway: it is not sent).
async fn read_stdin() -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let limit = hook::MAX_HOOK_BYTES as u64 + 1;
    tokio::io::stdin()
        .take(limit)
        .read_to_end(&mut body)
        .await
        .map_err(|err| format!("cannot read the hook from stdin: {err}"))?;
    if body.len() > hook::MAX_HOOK_BYTES {
        return Err(format!(
            "hook body over {} bytes; not sent",
            hook::MAX_HOOK_BYTES
        ));
    }
    Ok(body)
}

/// `host:port` and path prefix of an `http://` URL.
fn http_target(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!(
            "{url}: only http:// URLs are supported (reach a remote server through an ssh tunnel)"
        )
    })?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(format!("{url} has no host"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let prefix = path.trim_end_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{prefix}")
    };
    Ok((authority, prefix))
}

/// `AGENTDECK_TOKEN`, else the full-access token stored in the data directory.
fn token(data_dir: Option<&Path>) -> Option<String> {
    if let Some(token) = std::env::var("AGENTDECK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Some(token);
    }
    let store = TokenStore::new(data_dir?.to_owned());
    Some(store.load(Access::Full).ok()??.expose().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        assert_eq!(
            http_target("http://127.0.0.1:4000").unwrap(),
            ("127.0.0.1:4000".into(), String::new())
        );
        assert_eq!(
            http_target("http://box/deck/").unwrap(),
            ("box:80".into(), "/deck".into())
        );
        assert!(http_target("https://box")
            .unwrap_err()
            .contains("only http://"));
        assert!(http_target("http:///x").is_err());
    }
}
