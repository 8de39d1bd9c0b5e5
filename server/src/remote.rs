//! Commands that drive a running server through its JSON API, with its
//! token: `agentdeck send`, `approve`, `deny` and `approvals`. They follow
//! the server's rules and print its errors, as the dashboard would.

use crate::{
    cli::{ApprovalsArgs, ApproveArgs, DenyArgs, SendArgs, ServerArgs},
    client::{self, RequestError, Target},
};
use app::{
    approval::{Approval, Status},
    project::Project,
    run::{Role, SessionDetail},
    session::Session,
    SessionState,
};
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// How often `send --wait` looks at the session again.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What a command prints when the server refuses it for want of a token.
const TOKEN_WANTED: &str =
    "the server wants a token: set AGENTDECK_TOKEN or run on the server's machine";

/// The running server, as the flags and the data directory point at it.
struct Remote {
    target: Target,
}

impl Remote {
    fn new(args: &ServerArgs) -> Self {
        let data_dir = args.data.data_dir().ok();
        Self {
            target: Target::discover(args.url.clone(), data_dir.as_deref()),
        }
    }

    /// One API call (`path` under `/api`); the answer's JSON as `T`, or the
    /// server's error message.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, String> {
        let body = body.map(|b| b.to_string().into_bytes());
        let answer = client::request(&self.target, method, &format!("/api{path}"), &[], body)
            .await
            .map_err(|err: RequestError| err.to_string())?;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Err(TOKEN_WANTED.to_owned());
        }
        if !answer.status.is_success() {
            let said = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(&answer.body);
                    format!(
                        "{} answered {}: {}",
                        self.target.base,
                        answer.status,
                        text.trim()
                    )
                });
            return Err(said);
        }
        serde_json::from_slice(&answer.body).map_err(|err| {
            format!(
                "{} answered something agentdeck cannot read: {err}",
                self.target.base
            )
        })
    }

    /// Every session with its project's name.
    async fn sessions(&self) -> Result<Vec<(Session, String)>, String> {
        let projects: Vec<Project> = self.call(Method::GET, "/projects", None).await?;
        let mut all = Vec::new();
        for project in projects {
            let path = format!("/projects/{}/sessions", project.id);
            let sessions: Vec<Session> = self.call(Method::GET, &path, None).await?;
            all.extend(sessions.into_iter().map(|s| (s, project.name.clone())));
        }
        Ok(all)
    }
}

/// The one session `wanted` names: its id, else its exact name, else a
/// unique start of its id.
fn pick_session(
    sessions: Vec<(Session, String)>,
    wanted: &str,
) -> Result<(Session, String), String> {
    if wanted.trim().is_empty() {
        return Err("name a session: its id, the start of its id, or its name".to_owned());
    }
    if let Some(exact) = sessions.iter().find(|(s, _)| s.id == wanted) {
        return Ok(exact.clone());
    }
    let named: Vec<_> = sessions
        .iter()
        .filter(|(s, _)| s.name == wanted)
        .cloned()
        .collect();
    let candidates = if named.is_empty() {
        sessions
            .into_iter()
            .filter(|(s, _)| s.id.starts_with(wanted))
            .collect()
    } else {
        named
    };
    match candidates.len() {
        0 => Err(format!(
            "no session is called {wanted} or has an id starting with it (agentdeck ls lists them)"
        )),
        1 => Ok(candidates.into_iter().next().expect("one candidate")),
        n => {
            let list: Vec<String> = candidates
                .iter()
                .map(|(s, project)| format!("  {}  {}  ({project})", s.id, s.name))
                .collect();
            Err(format!(
                "{wanted} matches {n} sessions; give more of the id:\n{}",
                list.join("\n")
            ))
        }
    }
}

/// `agentdeck send SESSION MESSAGE [--wait]`.
pub async fn send(args: SendArgs) -> Result<(), String> {
    let remote = Remote::new(&args.server);
    let (session, _) = pick_session(remote.sessions().await?, &args.session)?;
    let path = format!("/sessions/{}/messages", session.id);
    let sent: Session = remote
        .call(
            Method::POST,
            &path,
            Some(json!({ "message": args.message })),
        )
        .await?;
    if !args.wait {
        println!("{}: {}", sent.name, sent.state.as_str());
        return Ok(());
    }
    let detail_path = format!("/sessions/{}", sent.id);
    let detail = loop {
        let detail: SessionDetail = remote.call(Method::GET, &detail_path, None).await?;
        if detail.session.state != SessionState::Working {
            break detail;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    match detail.session.state {
        SessionState::Error => Err(format!(
            "{}: {}",
            detail.session.name,
            detail
                .session
                .error_message
                .as_deref()
                .unwrap_or("the run failed")
        )),
        _ => {
            // The answer to this message: its run is the newest, as the
            // session took no other message while working.
            let run_id = detail.runs.last().map(|run| run.id.clone());
            for message in detail
                .messages
                .iter()
                .filter(|m| m.role == Role::Agent && run_id.is_some() && m.run_id == run_id)
            {
                println!("{}", message.content);
            }
            Ok(())
        }
    }
}

/// The approval `wanted` names: a pending one's id or unique id start;
/// anything else is passed on for the server to judge (404, 409).
async fn approval_id(remote: &Remote, wanted: &str) -> Result<String, String> {
    if wanted.trim().is_empty() {
        return Err("name an approval request (agentdeck approvals lists them)".to_owned());
    }
    let pending: Vec<Approval> = remote.call(Method::GET, "/approvals", None).await?;
    if pending.iter().any(|a| a.id == wanted) {
        return Ok(wanted.to_owned());
    }
    let matches: Vec<&Approval> = pending
        .iter()
        .filter(|a| a.id.starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [] => Ok(wanted.to_owned()),
        [one] => Ok(one.id.clone()),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|a| format!("  {}  {}: {}", a.id, a.tool, a.summary))
                .collect();
            Err(format!(
                "{wanted} matches {} pending requests; give more of the id:\n{}",
                many.len(),
                list.join("\n")
            ))
        }
    }
}

/// "Allowed Bash: ls", "Denied Write: notes.md (not there)".
fn decided(approval: &Approval) -> String {
    let verb = match approval.status {
        Status::Allowed if approval.always => "Allowed always",
        Status::Allowed => "Allowed",
        Status::Denied => "Denied",
        Status::Pending => "Still pending",
        Status::Closed => "Closed",
    };
    let mut line = format!("{verb} {}: {}", approval.tool, approval.summary);
    if let Some(message) = approval.message.as_deref().filter(|m| !m.is_empty()) {
        line.push_str(&format!(" ({message})"));
    }
    line
}

async fn answer(server: &ServerArgs, request: &str, body: Value) -> Result<(), String> {
    let remote = Remote::new(server);
    let id = approval_id(&remote, request).await?;
    let approval: Approval = remote
        .call(Method::POST, &format!("/approvals/{id}"), Some(body))
        .await?;
    println!("{}", decided(&approval));
    Ok(())
}

/// `agentdeck approve REQUEST [--always]`.
pub async fn approve(args: ApproveArgs) -> Result<(), String> {
    let body = json!({ "decision": "allow", "always": args.always });
    answer(&args.server, &args.request, body).await
}

/// `agentdeck deny REQUEST [--message TEXT]`.
pub async fn deny(args: DenyArgs) -> Result<(), String> {
    let mut body = json!({ "decision": "deny" });
    if let Some(message) = args.message {
        body["message"] = Value::String(message);
    }
    answer(&args.server, &args.request, body).await
}

/// `agentdeck approvals [--json]`: the requests waiting, oldest first.
pub async fn approvals(args: ApprovalsArgs) -> Result<(), String> {
    let remote = Remote::new(&args.server);
    if args.json {
        let pending: Value = remote.call(Method::GET, "/approvals", None).await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&pending).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let pending: Vec<Approval> = remote.call(Method::GET, "/approvals", None).await?;
    if pending.is_empty() {
        eprintln!("agentdeck: no approval requests are waiting");
        return Ok(());
    }
    let sessions = remote.sessions().await?;
    let now = app::db::now_millis();
    for approval in pending {
        let session = sessions
            .iter()
            .find(|(s, _)| s.id == approval.session_id)
            .map_or(approval.session_id.as_str(), |(s, _)| s.name.as_str());
        println!(
            "{}  {:<20} {:<10} {}  ({} ago)",
            approval.id,
            session,
            approval.tool,
            approval.summary,
            app::components::coarse(now - approval.created_at)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::agent::AgentKind;

    fn session(id: &str, name: &str) -> (Session, String) {
        let mut session = Session::new(1, name.to_owned(), AgentKind::Shell, 0);
        session.id = id.to_owned();
        (session, "proj".to_owned())
    }

    #[test]
    fn sessions_are_picked_by_id_then_name_then_unique_prefix() {
        let all = vec![
            session("abc123", "build"),
            session("abd456", "abc"),
            session("ffe789", "tests"),
        ];
        let pick = |wanted: &str| pick_session(all.clone(), wanted).map(|(s, _)| s.id);
        assert_eq!(pick("abc123").unwrap(), "abc123");
        // An exact name beats a prefix of another id.
        assert_eq!(pick("abc").unwrap(), "abd456");
        assert_eq!(pick("tests").unwrap(), "ffe789");
        assert_eq!(pick("ff").unwrap(), "ffe789");
        let ambiguous = pick("ab").unwrap_err();
        assert!(
            ambiguous.contains("matches 2 sessions")
                && ambiguous.contains("abc123")
                && ambiguous.contains("abd456"),
            "{ambiguous}"
        );
        assert!(pick("zzz").unwrap_err().contains("no session"));
        assert!(pick(" ").is_err());
    }
}
