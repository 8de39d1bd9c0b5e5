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

use crate::client::{self, Target};
use app::{
    agent::AgentKind,
    hook::{self, process::AgentProcess},
};
use hyper::Method;
use std::{path::Path, time::Duration};
use tokio::io::AsyncReadExt;

/// How long the whole hook may take, reading included.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// How long a `PermissionRequest` may wait for a decision from the
/// dashboard (each project sets its own bound, at most this).
pub const APPROVAL_DEADLINE: Duration = Duration::from_secs(3600);

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
    let target = Target::discover(forward.url, forward.data_dir);
    let mut headers = vec![(hook::HOST_HEADER, hook::process::this_host())];
    if let Some(agent) = AgentProcess::of_this_hook() {
        headers.push((hook::PID_HEADER, agent.pid.to_string()));
        if let Some(started) = agent.started {
            headers.push((hook::STARTED_HEADER, started.to_string()));
        }
    }
    if let Some(run) = std::env::var(hook::RUN_ENV).ok().filter(|r| !r.is_empty()) {
        headers.push((hook::RUN_HEADER, run));
    }
    let path = format!("/api/hooks/{}", forward.agent);
    let answer = client::request(&target, Method::POST, &path, &headers, Some(body))
        .await
        .map_err(|err| err.to_string())?;
    let (status, body) = (answer.status, answer.body);
    if status.is_success() {
        let decided = serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|answer| answer.get("hookSpecificOutput").is_some());
        return Ok(decided.then(|| String::from_utf8_lossy(&body).into_owned()));
    }
    Err(format!(
        "{} answered {status}: {}",
        target.base,
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
