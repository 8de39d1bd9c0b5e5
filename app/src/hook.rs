//! Terminal sessions: Claude Code and Codex running in a person's terminal
//! report each turn through hooks. This module reads a hook's JSON (the
//! fields agentdeck needs, typed; everything else ignored) and says what it
//! does to the session — a pure mapping, tested as a table. Applying it is
//! [`store::ingest`]'s job, through the one state writer.

#[cfg(feature = "ssr")]
pub mod process;
#[cfg(feature = "ssr")]
pub mod store;

use crate::{
    agent::AgentKind, session_state::Attention, text_enum::text_enum, transition::truncate_error,
};
use serde::{Deserialize, Serialize};

/// Longest hook body accepted, in bytes (a prompt or a tool's input can be
/// long; a body beyond this is refused with 413 and changes nothing).
pub const MAX_HOOK_BYTES: usize = 1 << 20;

/// Longest prompt or answer text kept from a hook, in characters.
pub const MAX_HOOK_TEXT_CHARS: usize = 100_000;

/// A hook that could not be read: the caller answers 422 and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the hook body is not a JSON object: {0}")]
    NotJson(String),
    #[error("the hook body has no {0}")]
    Missing(&'static str),
    #[error("{0} hooks are not supported (only claude and codex)")]
    Agent(String),
}

/// The fields of a hook body that agentdeck reads. Claude Code's hooks and
/// Codex's share these names; Codex's legacy `notify` program gets a
/// kebab-case object with `type: "agent-turn-complete"`.
#[derive(Debug, Default, Deserialize)]
struct HookBody {
    session_id: Option<String>,
    cwd: Option<String>,
    hook_event_name: Option<String>,
    prompt: Option<String>,
    source: Option<String>,
    error: Option<String>,
    error_details: Option<serde_json::Value>,
    last_assistant_message: Option<String>,
    notification_type: Option<String>,
    message: Option<String>,
    /// Codex `notify`.
    #[serde(rename = "type")]
    notify_type: Option<String>,
    #[serde(rename = "thread-id")]
    thread_id: Option<String>,
    #[serde(rename = "input-messages")]
    input_messages: Option<Vec<String>>,
    #[serde(rename = "last-assistant-message")]
    notify_last_message: Option<String>,
}

/// One hook call, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub agent: AgentKind,
    /// The agent's own session id (Claude's `session_id`, Codex's thread id).
    pub external_id: String,
    /// The directory the agent runs in, which picks the project.
    pub cwd: Option<String>,
    /// The event's name as sent (for `hooks status`).
    pub event: String,
    pub effect: Effect,
    /// A prompt the session can be named after, if it is new.
    pub first_prompt: Option<String>,
}

/// What a hook does to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The session is known (created if new); a fresh start also means no
    /// turn of an earlier process is still going.
    Started { fresh: bool },
    /// The person sent a prompt: `working`; the prompt joins the conversation.
    Prompt(String),
    /// The turn ended: `idle`; the agent's last message joins the conversation.
    TurnEnded(Option<String>),
    /// The turn ended on an error: `error` with this message.
    TurnFailed(String),
    /// The agent ended the session: `idle` if it was working, marked ended.
    SessionEnded,
    /// The agent waits for the person.
    NeedsYou(Attention),
    /// A tool ran: whatever the agent waited for was answered.
    Attended,
    /// Nothing agentdeck tracks (an event it does not know, or one that
    /// changes nothing, like a compaction).
    Nothing,
}

/// Reads one hook body sent by `agent`'s hooks.
pub fn parse(agent: AgentKind, body: &[u8]) -> Result<Report, HookError> {
    if !matches!(agent, AgentKind::Claude | AgentKind::Codex) {
        return Err(HookError::Agent(agent.to_string()));
    }
    let body: HookBody = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value @ serde_json::Value::Object(_)) => {
            serde_json::from_value(value).map_err(|err| HookError::NotJson(err.to_string()))?
        }
        Ok(_) => return Err(HookError::NotJson("not an object".into())),
        Err(err) => return Err(HookError::NotJson(err.to_string())),
    };
    if body.notify_type.is_some() && body.hook_event_name.is_none() {
        return parse_notify(agent, body);
    }
    let event = body
        .hook_event_name
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or(HookError::Missing("hook_event_name"))?;
    let external_id = body
        .session_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or(HookError::Missing("session_id"))?;
    let cwd = body.cwd.clone().filter(|c| !c.is_empty());
    let effect = effect_of(agent, &event, body);
    let first_prompt = match &effect {
        Effect::Prompt(prompt) => Some(prompt.clone()),
        _ => None,
    };
    Ok(Report {
        agent,
        external_id,
        cwd,
        event,
        effect,
        first_prompt,
    })
}

/// Codex's legacy `notify` program: `agent-turn-complete` ends a turn.
fn parse_notify(agent: AgentKind, body: HookBody) -> Result<Report, HookError> {
    let external_id = body
        .thread_id
        .filter(|id| !id.trim().is_empty())
        .ok_or(HookError::Missing("thread-id"))?;
    let event = body.notify_type.unwrap_or_default();
    let effect = if event == "agent-turn-complete" {
        Effect::TurnEnded(body.notify_last_message.map(bounded))
    } else {
        Effect::Nothing
    };
    Ok(Report {
        agent,
        external_id,
        cwd: body.cwd.filter(|c| !c.is_empty()),
        event,
        effect,
        first_prompt: body.input_messages.and_then(|m| m.into_iter().next()),
    })
}

/// The mapping from a hook event to its effect.
fn effect_of(agent: AgentKind, event: &str, body: HookBody) -> Effect {
    match event {
        "SessionStart" => Effect::Started {
            // A compaction restarts the context mid-session, maybe mid-turn.
            fresh: !matches!(body.source.as_deref(), Some("compact")),
        },
        "UserPromptSubmit" => Effect::Prompt(bounded(body.prompt.unwrap_or_default())),
        "Stop" => Effect::TurnEnded(body.last_assistant_message.map(bounded)),
        "StopFailure" => Effect::TurnFailed(failure_message(agent, &body)),
        "SessionEnd" => Effect::SessionEnded,
        "PermissionRequest" => Effect::NeedsYou(Attention::Approval),
        "Notification" => match body.notification_type.as_deref() {
            Some("permission_prompt") => Effect::NeedsYou(Attention::Approval),
            Some(
                "elicitation_dialog"
                | "elicitation_url_dialog"
                | "agent_needs_input"
                | "input_request",
            ) => Effect::NeedsYou(Attention::Input),
            _ => Effect::Nothing,
        },
        "PostToolUse" | "PostToolUseFailure" => Effect::Attended,
        _ => Effect::Nothing,
    }
}

/// "API error (server_error): API Error: 529 Overloaded…", bounded like
/// every error message.
fn failure_message(agent: AgentKind, body: &HookBody) -> String {
    let kind = body.error.as_deref().unwrap_or("unknown");
    let details = match &body.error_details {
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let text = details
        .or_else(|| body.last_assistant_message.clone())
        .or_else(|| body.message.clone())
        .filter(|t| !t.trim().is_empty());
    let message = match text {
        Some(text) => format!("{} API error ({kind}): {}", agent.label(), text.trim()),
        None => format!("{} API error ({kind})", agent.label()),
    };
    truncate_error(&message)
}

/// Cuts hook text to [`MAX_HOOK_TEXT_CHARS`].
fn bounded(text: String) -> String {
    match text.char_indices().nth(MAX_HOOK_TEXT_CHARS) {
        Some((at, _)) => format!("{} […]", &text[..at]),
        None => text,
    }
}

/// Who sent a hook: the agent process (found by `agentdeck hook`: the
/// nearest ancestor that is not a shell) on which machine, and the run of
/// agentdeck's own it belongs to, if agentdeck started the agent. Sent as
/// headers beside the agent's own body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub pid: Option<i32>,
    /// The process's start time (clock ticks after boot), telling a reused
    /// pid apart.
    pub started: Option<i64>,
    pub host: Option<String>,
    pub own_run: Option<String>,
}

/// The header carrying [`Sender::pid`].
pub const PID_HEADER: &str = "x-agentdeck-pid";
/// The header carrying [`Sender::started`].
pub const STARTED_HEADER: &str = "x-agentdeck-pid-started";
/// The header carrying [`Sender::host`].
pub const HOST_HEADER: &str = "x-agentdeck-host";
/// The header carrying [`Sender::own_run`].
pub const RUN_HEADER: &str = "x-agentdeck-run";
/// The environment variable agentdeck sets for the agents it runs, so
/// their hooks (if the person has global hooks) are known as its own.
pub const RUN_ENV: &str = "AGENTDECK_RUN";

text_enum! {
    /// What became of a hook.
    pub enum Outcome ("hook outcome") {
        /// The session changed.
        Applied = "applied",
        /// Known, nothing to change (e.g. a replayed event).
        Unchanged = "unchanged",
        /// Its directory is in no project: ignored.
        NoProject = "no_project",
        /// A run agentdeck started: the runner records it, the hook changes nothing.
        OwnRun = "own_run",
        /// An event agentdeck does not track.
        Ignored = "ignored",
    }
}

impl Outcome {
    /// Whether the hook reached a session (200) or was set aside (202).
    pub const fn reached_a_session(self) -> bool {
        matches!(self, Self::Applied | Self::Unchanged)
    }
}

/// The answer to a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingested {
    pub outcome: Outcome,
    /// agentdeck's session, when the hook reached one.
    pub session_id: Option<String>,
}

/// The last hook an agent sent, for `agentdeck hooks status` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::hook_reports))]
pub struct HookReport {
    pub agent: AgentKind,
    pub last_at: i64,
    pub last_event: String,
    pub last_cwd: Option<String>,
    pub outcome: Outcome,
    pub received: i32,
}

/// Whether an agent's hooks are installed, as `agentdeck hooks status` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub agent: AgentKind,
    /// The settings file the hooks live in.
    pub file: String,
    pub installed: bool,
    /// "installed", "not installed", "partly installed (missing …)".
    pub summary: String,
}

/// The dashboard's view of terminal sessions: per agent, whether its
/// hooks are installed and the last hook it sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookStatus {
    pub installations: Vec<Installation>,
    pub reports: Vec<HookReport>,
    /// The server's clock when read, for the reports' ages.
    pub now: i64,
}

/// Reads the agents' settings files: the server provides it (the install
/// code lives with the command line).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct InstallationProbe(pub std::sync::Arc<dyn Fn() -> Vec<Installation> + Send + Sync>);

/// Whether the hooks are installed and when each agent last reported.
#[leptos::server(prefix = "/rpc", endpoint = "load_hook_status")]
pub async fn load_hook_status() -> Result<HookStatus, crate::error::AppError> {
    let installations = leptos::prelude::use_context::<InstallationProbe>()
        .map(|probe| (probe.0)())
        .unwrap_or_default();
    let reports =
        crate::error::with_status(store::reports(&leptos::prelude::expect_context()).await)?;
    Ok(HookStatus {
        installations,
        reports,
        now: crate::db::now_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentKind::{Claude, Codex};

    fn claude(json: serde_json::Value) -> Report {
        parse(Claude, json.to_string().as_bytes()).expect("parses")
    }

    fn base(event: &str) -> serde_json::Value {
        serde_json::json!({
            "session_id": "abc-123",
            "transcript_path": "/home/me/.claude/projects/-w-p/abc-123.jsonl",
            "cwd": "/w/p",
            "permission_mode": "default",
            "hook_event_name": event,
        })
    }

    fn with(event: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut body = base(event);
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    }

    /// Every event (shapes from Claude Code 2.1.332) and what it does.
    #[test]
    fn events_map_to_effects() {
        use serde_json::json;
        let table = [
            (
                with("SessionStart", json!({"source": "startup", "model": "m"})),
                Effect::Started { fresh: true },
            ),
            (
                with("SessionStart", json!({"source": "compact"})),
                Effect::Started { fresh: false },
            ),
            (
                with("UserPromptSubmit", json!({"prompt": "fix the build"})),
                Effect::Prompt("fix the build".into()),
            ),
            (
                with(
                    "Stop",
                    json!({"stop_hook_active": false, "last_assistant_message": "Done."}),
                ),
                Effect::TurnEnded(Some("Done.".into())),
            ),
            (
                with(
                    "StopFailure",
                    json!({"error": "server_error", "last_assistant_message": "API Error: 529 Overloaded."}),
                ),
                Effect::TurnFailed(
                    "Claude Code API error (server_error): API Error: 529 Overloaded.".into(),
                ),
            ),
            (
                with(
                    "StopFailure",
                    json!({"error": "rate_limit", "error_details": {"retry_after": 30}}),
                ),
                Effect::TurnFailed(
                    r#"Claude Code API error (rate_limit): {"retry_after":30}"#.into(),
                ),
            ),
            (
                with("SessionEnd", json!({"reason": "prompt_input_exit"})),
                Effect::SessionEnded,
            ),
            (
                with(
                    "PermissionRequest",
                    json!({"tool_name": "Bash", "tool_input": {"command": "rm -rf build"}}),
                ),
                Effect::NeedsYou(Attention::Approval),
            ),
            (
                with(
                    "Notification",
                    json!({"message": "Claude needs your permission to use Bash", "notification_type": "permission_prompt"}),
                ),
                Effect::NeedsYou(Attention::Approval),
            ),
            (
                with(
                    "Notification",
                    json!({"message": "?", "notification_type": "elicitation_dialog"}),
                ),
                Effect::NeedsYou(Attention::Input),
            ),
            (
                with(
                    "Notification",
                    json!({"message": "Claude is waiting for your input", "notification_type": "idle_prompt"}),
                ),
                Effect::Nothing,
            ),
            (
                with(
                    "PostToolUse",
                    json!({"tool_name": "Bash", "tool_response": {}}),
                ),
                Effect::Attended,
            ),
            (base("SomeEventOfTomorrow"), Effect::Nothing),
        ];
        for (body, expected) in table {
            let report = claude(body.clone());
            assert_eq!(report.effect, expected, "{body}");
            assert_eq!(report.external_id, "abc-123");
            assert_eq!(report.event, body["hook_event_name"].as_str().unwrap());
        }
    }

    #[test]
    fn codex_hooks_and_notify() {
        let hook = parse(
            Codex,
            br#"{"session_id":"t-1","cwd":"/w/p","hook_event_name":"UserPromptSubmit","prompt":"hi","turn_id":"u"}"#,
        )
        .unwrap();
        assert_eq!(hook.effect, Effect::Prompt("hi".into()));
        let notify = parse(
            Codex,
            br#"{"type":"agent-turn-complete","thread-id":"t-1","turn-id":"u","cwd":"/w/p","input-messages":["hi"],"last-assistant-message":null}"#,
        )
        .unwrap();
        assert_eq!(
            (
                notify.external_id.as_str(),
                notify.cwd.as_deref(),
                &notify.effect
            ),
            ("t-1", Some("/w/p"), &Effect::TurnEnded(None))
        );
    }

    #[test]
    fn bad_bodies_are_clear_errors() {
        for (body, fragment) in [
            (&b"not json"[..], "not a JSON object"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"session_id":"a"}"#, "hook_event_name"),
            (br#"{"hook_event_name":"Stop"}"#, "session_id"),
            (
                br#"{"hook_event_name":"Stop","session_id":""}"#,
                "session_id",
            ),
            (
                br#"{"hook_event_name":"Stop","session_id":7}"#,
                "not a JSON object",
            ),
        ] {
            let err = parse(Claude, body).unwrap_err().to_string();
            assert!(err.contains(fragment), "{err}");
        }
        assert!(parse(AgentKind::Shell, b"{}").is_err());
    }

    #[test]
    fn texts_are_bounded() {
        let long = "é".repeat(MAX_HOOK_TEXT_CHARS + 10);
        let Effect::Prompt(kept) = claude(with(
            "UserPromptSubmit",
            serde_json::json!({ "prompt": long }),
        ))
        .effect
        else {
            panic!("a prompt");
        };
        assert_eq!(kept.chars().count(), MAX_HOOK_TEXT_CHARS + 4);
        let Effect::TurnFailed(message) = claude(with(
            "StopFailure",
            serde_json::json!({"error": "unknown", "error_details": "x".repeat(5000)}),
        ))
        .effect
        else {
            panic!("a failure");
        };
        assert!(message.chars().count() <= crate::transition::MAX_ERROR_CHARS);
    }
}
