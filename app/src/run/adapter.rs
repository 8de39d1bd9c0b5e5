//! What each agent needs: its command line, and how to read its output into
//! an answer or an error (wire formats: Claude `stream-json`, Codex
//! `exec --json`, plain shell output).

use super::process::Tail;
use crate::agent::AgentKind;
use crate::permission::PermissionMode;
use serde_json::{json, Value};
use std::process::ExitStatus;

/// How much of the answer is kept.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How much of stderr (and of non-JSON stdout) is kept for error messages.
const ERROR_TAIL_BYTES: usize = 4 * 1024;

/// The arguments for one run of `agent` with `message` in `mode`.
/// `external_id` is the agent's conversation id from earlier runs;
/// `new_id` names a new Claude conversation. Claude gets its message on
/// stdin ([`claude_user_line`]) and asks for approvals over the control
/// protocol; for the others the message comes after `--`, so one that
/// starts with `-` is never taken for a flag.
pub fn arguments(
    agent: AgentKind,
    message: &str,
    external_id: Option<&str>,
    new_id: Option<&str>,
    mode: PermissionMode,
) -> Vec<String> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    match agent {
        // `sh -c -- STRING`: POSIX sh ends its options at `--`.
        AgentKind::Shell => owned(&["-c", "--", message]),
        AgentKind::Claude => {
            let mut args = owned(&[
                "--output-format",
                "stream-json",
                "--verbose",
                "--input-format",
                "stream-json",
                "--permission-prompt-tool",
                "stdio",
                "--permission-mode",
                mode.agent_value(),
            ]);
            match (external_id, new_id) {
                (Some(id), _) => args.extend(owned(&["--resume", id])),
                (None, Some(id)) => args.extend(owned(&["--session-id", id])),
                (None, None) => {}
            }
            args
        }
        // Adding a project is the person's trust decision: without
        // `--skip-git-repo-check`, Codex refuses every run outside a git
        // repository ("Not inside a trusted directory"). `exec` cannot ask
        // for approval, so the sandbox is the mode. `exec`'s options go
        // before its `resume` subcommand.
        AgentKind::Codex => {
            let mut args = owned(&[
                "exec",
                "--skip-git-repo-check",
                "--json",
                "--sandbox",
                mode.agent_value(),
                "-c",
                "approval_policy=\"never\"",
            ]);
            if let Some(id) = external_id {
                args.extend(owned(&["resume", id]));
            }
            args.extend(owned(&["--", message]));
            args
        }
    }
}

/// Whether `agent` takes its message and control messages on stdin.
pub fn uses_control_protocol(agent: AgentKind) -> bool {
    agent == AgentKind::Claude
}

/// The stream-json `user` line that sends Claude the message.
pub fn claude_user_line(message: &str) -> String {
    json!({
        "type": "user",
        "session_id": "",
        "message": { "role": "user", "content": message },
        "parent_tool_use_id": null,
    })
    .to_string()
}

/// The `control_response` answering request `request_id` with `response`.
pub fn control_success(request_id: &str, response: Value) -> String {
    json!({
        "type": "control_response",
        "response": { "subtype": "success", "request_id": request_id, "response": response },
    })
    .to_string()
}

/// The `control_response` refusing a request this host does not serve.
pub fn control_error(request_id: &str, error: &str) -> String {
    json!({
        "type": "control_response",
        "response": { "subtype": "error", "request_id": request_id, "error": error },
    })
    .to_string()
}

/// The `interrupt` control request (a cancel): Claude withdraws what it
/// asked, ends the turn and writes its `result`.
pub fn control_interrupt(request_id: &str) -> String {
    json!({
        "type": "control_request",
        "request_id": request_id,
        "request": { "subtype": "interrupt" },
    })
    .to_string()
}

/// A `can_use_tool` request: the agent asks to use a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionAsk {
    pub request_id: String,
    pub tool: String,
    pub input: Value,
    pub reason: Option<String>,
    pub suggestions: Option<Value>,
}

/// What one stdout line means for the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Continue,
    /// The agent's final event: the run's outcome is known.
    Ended,
    /// The agent asks the person to approve a tool use.
    Ask(PermissionAsk),
    /// The agent withdrew the request with this id.
    Withdrawn(String),
    /// A control request this host does not serve (answer it with an error).
    Unsupported {
        request_id: String,
        error: String,
    },
}

/// How a run's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signal(signal),
            (None, None) => Self::Code(-1),
        }
    }
}

impl Exit {
    fn describe(self) -> String {
        match self {
            Self::Code(code) => format!("exited with status {code}"),
            Self::Signal(signal) => {
                let name = nix::sys::signal::Signal::try_from(signal)
                    .map_or_else(|_| String::new(), |s| format!(" ({})", s.as_str()));
                format!("killed by signal {signal}{name}")
            }
        }
    }
}

/// The agent's own verdict, when its output carries one.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Success,
    Failure(String),
}

/// Everything gathered from a run's output, line by line.
#[derive(Debug)]
pub struct Output {
    agent: AgentKind,
    answer: Tail,
    /// Claude's final `result` text, which supersedes the streamed text.
    final_answer: Option<String>,
    /// Non-JSON stdout lines (Claude and Codex print some errors there).
    plain_stdout: Tail,
    stderr: Tail,
    last_error_event: Option<String>,
    pub verdict: Option<Verdict>,
    pub agent_session_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub malformed_lines: usize,
    /// Tools the agent was refused (Claude's `permission_denials`), in order, once each.
    pub denied_tools: Vec<String>,
    /// Human-readable text from recent lines, for the live output view.
    display: Vec<String>,
}

impl Output {
    pub fn new(agent: AgentKind) -> Self {
        Self {
            agent,
            answer: Tail::new(MAX_ANSWER_BYTES),
            final_answer: None,
            plain_stdout: Tail::new(ERROR_TAIL_BYTES),
            stderr: Tail::new(ERROR_TAIL_BYTES),
            last_error_event: None,
            verdict: None,
            agent_session_id: None,
            cost_usd: None,
            malformed_lines: 0,
            denied_tools: Vec::new(),
            display: Vec::new(),
        }
    }

    /// Text for the live output view gathered since the last call.
    pub fn take_display(&mut self) -> Vec<String> {
        std::mem::take(&mut self.display)
    }

    pub fn stderr_line(&mut self, line: &str) {
        self.stderr.push_line(line);
    }

    /// Takes one stdout line and says what it means for the run. After
    /// [`Step::Ended`] the caller stops the process, which may linger.
    pub fn stdout_line(&mut self, line: &str) -> Step {
        if self.agent == AgentKind::Shell {
            self.answer.push_line(line);
            self.display.push(line.to_owned());
            return Step::Continue;
        }
        if line.trim().is_empty() {
            return Step::Continue;
        }
        let ended = |ends: bool| if ends { Step::Ended } else { Step::Continue };
        match serde_json::from_str::<Value>(line) {
            Ok(event) if event.is_object() => match self.agent {
                AgentKind::Claude => match control_step(&event) {
                    Some(Ok(step)) => step,
                    Some(Err(())) => {
                        self.malformed_lines += 1;
                        Step::Continue
                    }
                    None => ended(self.claude_event(&event)),
                },
                AgentKind::Codex => ended(self.codex_event(&event)),
                AgentKind::Shell => Step::Continue,
            },
            _ => {
                self.malformed_lines += 1;
                self.plain_stdout.push_line(line);
                Step::Continue
            }
        }
    }

    fn claude_event(&mut self, event: &Value) -> bool {
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(id) = text("session_id") {
            self.agent_session_id = Some(id);
        }
        match event.get("type").and_then(Value::as_str) {
            Some("assistant") => {
                let blocks = event.pointer("/message/content").and_then(Value::as_array);
                for block in blocks.into_iter().flatten() {
                    if block.get("type").and_then(Value::as_str) == Some("text") {
                        if let Some(t) = block.get("text").and_then(Value::as_str) {
                            self.answer.push_line(t);
                            self.display.push(t.to_owned());
                        }
                    }
                }
                false
            }
            Some("result") => {
                self.cost_usd = event.get("total_cost_usd").and_then(Value::as_f64);
                let denials = event.get("permission_denials").and_then(Value::as_array);
                for denial in denials.into_iter().flatten() {
                    if let Some(tool) = denial.get("tool_name").and_then(Value::as_str) {
                        if !self.denied_tools.iter().any(|t| t == tool) {
                            self.denied_tools.push(tool.to_owned());
                        }
                    }
                }
                let is_error = event
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let subtype = text("subtype").unwrap_or_default();
                let result = text("result").unwrap_or_default();
                if is_error || (subtype != "success" && !subtype.is_empty()) {
                    let mut message = match (subtype.as_str(), result.trim()) {
                        ("", "") => "Claude reported an error".to_owned(),
                        (kind, "") => kind.to_owned(),
                        ("" | "success", text) => text.to_owned(),
                        (kind, text) => format!("{kind}: {text}"),
                    };
                    if let Some(status) = event.get("api_error_status").filter(|s| !s.is_null()) {
                        message.push_str(&format!(" (API status {status})"));
                    }
                    self.verdict = Some(Verdict::Failure(message));
                } else {
                    self.final_answer = Some(result);
                    self.verdict = Some(Verdict::Success);
                }
                true
            }
            _ => false,
        }
    }

    fn codex_event(&mut self, event: &Value) -> bool {
        let message_at = |pointer: &str| {
            event
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match event.get("type").and_then(Value::as_str) {
            Some("thread.started") => {
                self.agent_session_id = message_at("/thread_id");
                false
            }
            Some("item.completed") => {
                if message_at("/item/type").as_deref() == Some("agent_message") {
                    if let Some(text) = message_at("/item/text") {
                        self.answer.push_line(&text);
                        self.display.push(text);
                    }
                }
                false
            }
            Some("turn.completed") => {
                self.verdict = Some(Verdict::Success);
                true
            }
            Some("turn.failed") => {
                let message = message_at("/error/message")
                    .or_else(|| self.last_error_event.clone())
                    .unwrap_or_else(|| "Codex reported a failed turn".to_owned());
                self.verdict = Some(Verdict::Failure(message));
                true
            }
            Some("error") => {
                self.last_error_event = message_at("/message");
                false
            }
            _ => false,
        }
    }

    /// The run's result: the answer, or the best error message — the agent's
    /// own verdict first, then stderr, then the exit status. Never empty.
    pub fn finish(mut self, exit: Option<Exit>) -> Result<String, String> {
        let succeeded = match (&self.verdict, exit) {
            (Some(Verdict::Success), _) => true,
            (Some(Verdict::Failure(message)), _) => return Err(message.clone()),
            (None, Some(Exit::Code(0))) => self.agent == AgentKind::Shell,
            (None, _) => false,
        };
        if succeeded {
            let streamed = std::mem::take(&mut self.answer).into_string();
            return Ok(self.final_answer.take().unwrap_or(streamed));
        }
        let status = match exit {
            Some(exit) => exit.describe(),
            None => "stopped before it finished".to_owned(),
        };
        let status = match self.agent {
            AgentKind::Shell => status,
            agent if exit == Some(Exit::Code(0)) => {
                format!("{agent} exited without a final result")
            }
            agent => format!("{agent} {status}"),
        };
        let detail = match self.last_error_event.take() {
            Some(message) => message,
            None if !self.stderr.is_empty() => self.stderr.into_string(),
            None => self.plain_stdout.into_string(),
        };
        Err(if detail.is_empty() {
            status
        } else {
            format!("{status}: {detail}")
        })
    }
}

/// The control-protocol meaning of a Claude line: `None` for an ordinary
/// event, `Err` for a control line too malformed to answer.
fn control_step(event: &Value) -> Option<Result<Step, ()>> {
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    match event.get("type").and_then(Value::as_str)? {
        "control_request" => {
            let Some(request_id) = text(event, "request_id") else {
                return Some(Err(()));
            };
            let request = event.get("request").cloned().unwrap_or(Value::Null);
            let unsupported = |error: &str| {
                Some(Ok(Step::Unsupported {
                    request_id: request_id.clone(),
                    error: error.to_owned(),
                }))
            };
            match request.get("subtype").and_then(Value::as_str) {
                Some("can_use_tool") => {
                    let Some(tool) = text(&request, "tool_name") else {
                        return unsupported("can_use_tool without a tool_name");
                    };
                    let input = request.get("input").cloned().unwrap_or_else(|| json!({}));
                    if !input.is_object() {
                        return unsupported("can_use_tool with an input that is not an object");
                    }
                    let reason = text(&request, "decision_reason")
                        .or_else(|| text(&request, "title"))
                        .or_else(|| text(&request, "description"));
                    Some(Ok(Step::Ask(PermissionAsk {
                        request_id,
                        tool,
                        input,
                        reason,
                        suggestions: request.get("permission_suggestions").cloned(),
                    })))
                }
                Some(other) => unsupported(&format!("agentdeck does not serve {other} requests")),
                None => unsupported("a control request without a subtype"),
            }
        }
        "control_cancel_request" => Some(match text(event, "request_id") {
            Some(id) => Ok(Step::Withdrawn(id)),
            None => Err(()),
        }),
        // Answers to our own requests (interrupt): nothing to do.
        "control_response" => Some(Ok(Step::Continue)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(agent: AgentKind, lines: &[&str]) -> Output {
        let mut output = Output::new(agent);
        for line in lines {
            output.stdout_line(line);
        }
        output
    }

    #[test]
    fn command_lines_start_or_continue_the_agents_conversation() {
        use PermissionMode as M;
        assert_eq!(
            arguments(AgentKind::Shell, "ls -l", None, None, M::Ask),
            ["-c", "--", "ls -l"]
        );
        let claude = arguments(
            AgentKind::Claude,
            "hi",
            None,
            Some("new-id"),
            M::AcceptEdits,
        );
        assert_eq!(
            claude,
            [
                "--output-format",
                "stream-json",
                "--verbose",
                "--input-format",
                "stream-json",
                "--permission-prompt-tool",
                "stdio",
                "--permission-mode",
                "acceptEdits",
                "--session-id",
                "new-id",
            ]
        );
        // The message goes on stdin, never on the command line.
        assert!(!claude.iter().any(|arg| arg == "hi"));
        assert_eq!(
            arguments(AgentKind::Claude, "hi", Some("old"), Some("new-id"), M::Ask)[9..],
            ["--resume", "old"]
        );
        assert_eq!(
            arguments(AgentKind::Codex, "hi", None, None, M::WorkspaceWrite),
            [
                "exec",
                "--skip-git-repo-check",
                "--json",
                "--sandbox",
                "workspace-write",
                "-c",
                "approval_policy=\"never\"",
                "--",
                "hi"
            ]
        );
        assert_eq!(
            arguments(AgentKind::Codex, "-h", Some("t1"), None, M::ReadOnly)[7..],
            ["resume", "t1", "--", "-h"]
        );
        let line: Value = serde_json::from_str(&claude_user_line("fix \"it\"")).unwrap();
        assert_eq!(line["type"], "user");
        assert_eq!(line["message"]["content"], "fix \"it\"");
    }

    #[test]
    fn control_requests_become_steps_and_malformed_ones_are_counted() {
        let mut output = Output::new(AgentKind::Claude);
        let ask = output.stdout_line(
            r#"{"type":"control_request","request_id":"r1","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{"command":"ls"},"permission_suggestions":[{"type":"addRules"}],"decision_reason":"not in allow list"}}"#,
        );
        assert_eq!(
            ask,
            Step::Ask(PermissionAsk {
                request_id: "r1".into(),
                tool: "Bash".into(),
                input: json!({"command": "ls"}),
                reason: Some("not in allow list".into()),
                suggestions: Some(json!([{"type": "addRules"}])),
            })
        );
        assert_eq!(
            output.stdout_line(r#"{"type":"control_cancel_request","request_id":"r1"}"#),
            Step::Withdrawn("r1".into())
        );
        assert!(matches!(
            output.stdout_line(r#"{"type":"control_request","request_id":"r2","request":{"subtype":"hook_callback"}}"#),
            Step::Unsupported { request_id, .. } if request_id == "r2"
        ));
        assert!(matches!(
            output.stdout_line(r#"{"type":"control_request","request_id":"r3","request":{"subtype":"can_use_tool","input":{}}}"#),
            Step::Unsupported { request_id, .. } if request_id == "r3"
        ));
        assert_eq!(
            output
                .stdout_line(r#"{"type":"control_request","request":{"subtype":"can_use_tool"}}"#),
            Step::Continue
        );
        assert_eq!(output.malformed_lines, 1);
        assert_eq!(
            output.stdout_line(r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","permission_denials":[{"tool_name":"Bash"},{"tool_name":"Edit"},{"tool_name":"Bash"}]}"#),
            Step::Ended
        );
        assert_eq!(output.denied_tools, ["Bash", "Edit"]);
    }

    #[test]
    fn claude_result_is_the_end_and_the_verdict() {
        let mut output = Output::new(AgentKind::Claude);
        assert_eq!(
            output.stdout_line(r#"{"type":"system","subtype":"init","session_id":"abc"}"#),
            Step::Continue
        );
        assert_eq!(
            output.stdout_line(r#"{"type":"result","subtype":"success","is_error":false,"result":"hi","total_cost_usd":0.5,"session_id":"abc"}"#),
            Step::Ended
        );
        assert_eq!(output.agent_session_id.as_deref(), Some("abc"));
        assert_eq!(output.cost_usd, Some(0.5));
        // A lingering process killed after the result is still a success.
        assert_eq!(output.finish(Some(Exit::Signal(15))), Ok("hi".into()));
    }

    #[test]
    fn claude_without_a_result_is_a_failure_even_with_exit_zero() {
        let output = feed(
            AgentKind::Claude,
            &[r#"{"type":"assistant","message":{"content":[{"type":"text","text":"partial"}]}}"#],
        );
        assert_eq!(
            output.finish(Some(Exit::Code(0))),
            Err("claude exited without a final result".into())
        );
        let garbage = feed(AgentKind::Claude, &["not json", "{\"type\":"]);
        assert_eq!(garbage.malformed_lines, 2);
        assert_eq!(
            garbage.finish(Some(Exit::Code(1))),
            Err("claude exited with status 1: not json\n{\"type\":".into())
        );
    }

    #[test]
    fn claude_error_results_name_their_kind() {
        let output = feed(
            AgentKind::Claude,
            &[r#"{"type":"result","subtype":"error_max_turns","is_error":true}"#],
        );
        assert_eq!(
            output.finish(Some(Exit::Code(0))),
            Err("error_max_turns".into())
        );
    }

    #[test]
    fn codex_error_events_explain_a_crash() {
        let output = feed(
            AgentKind::Codex,
            &[r#"{"type":"error","message":"rate limited"}"#],
        );
        assert_eq!(
            output.finish(Some(Exit::Code(1))),
            Err("codex exited with status 1: rate limited".into())
        );
    }

    #[test]
    fn shell_status_and_signals_are_described() {
        let mut output = Output::new(AgentKind::Shell);
        output.stderr_line("");
        assert_eq!(
            output.finish(Some(Exit::Code(4))),
            Err("exited with status 4".into())
        );
        let killed = Output::new(AgentKind::Shell);
        assert_eq!(
            killed.finish(Some(Exit::Signal(9))),
            Err("killed by signal 9 (SIGKILL)".into())
        );
        let mut ok = Output::new(AgentKind::Shell);
        ok.stdout_line("a");
        ok.stdout_line("b");
        assert_eq!(ok.finish(Some(Exit::Code(0))), Ok("a\nb".into()));
    }
}
