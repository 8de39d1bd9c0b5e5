//! What each agent needs: its command line, and how to read its output into
//! an answer or an error (wire formats: Claude `stream-json`, Codex
//! `exec --json`, plain shell output).

use super::process::Tail;
use crate::agent::AgentKind;
use serde_json::Value;
use std::process::ExitStatus;

/// How much of the answer is kept.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How much of stderr (and of non-JSON stdout) is kept for error messages.
const ERROR_TAIL_BYTES: usize = 4 * 1024;

/// The arguments for one run of `agent` with `message`. `external_id` is
/// the agent's conversation id from earlier runs; `new_id` names a new
/// Claude conversation. The message always comes after `--`, so one that
/// starts with `-` is never taken for a flag.
pub fn arguments(
    agent: AgentKind,
    message: &str,
    external_id: Option<&str>,
    new_id: Option<&str>,
) -> Vec<String> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    match agent {
        // `sh -c -- STRING`: POSIX sh ends its options at `--`.
        AgentKind::Shell => owned(&["-c", "--", message]),
        AgentKind::Claude => {
            let mut args = owned(&["-p", "--output-format", "stream-json", "--verbose"]);
            match (external_id, new_id) {
                (Some(id), _) => args.extend(owned(&["--resume", id])),
                (None, Some(id)) => args.extend(owned(&["--session-id", id])),
                (None, None) => {}
            }
            args.extend(owned(&["--", message]));
            args
        }
        // Adding a project is the person's trust decision: without
        // `--skip-git-repo-check`, Codex refuses every run outside a git
        // repository ("Not inside a trusted directory"). `exec`'s options
        // go before its `resume` subcommand.
        AgentKind::Codex => {
            let mut args = owned(&["exec", "--skip-git-repo-check", "--json"]);
            if let Some(id) = external_id {
                args.extend(owned(&["resume", id]));
            }
            args.extend(owned(&["--", message]));
            args
        }
    }
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

    /// Takes one stdout line. Returns true when the line ends the run (the
    /// agent's final event): the caller then stops the process, which may linger.
    pub fn stdout_line(&mut self, line: &str) -> bool {
        if self.agent == AgentKind::Shell {
            self.answer.push_line(line);
            self.display.push(line.to_owned());
            return false;
        }
        if line.trim().is_empty() {
            return false;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(event) if event.is_object() => match self.agent {
                AgentKind::Claude => self.claude_event(&event),
                AgentKind::Codex => self.codex_event(&event),
                AgentKind::Shell => false,
            },
            _ => {
                self.malformed_lines += 1;
                self.plain_stdout.push_line(line);
                false
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
        assert_eq!(
            arguments(AgentKind::Shell, "ls -l", None, None),
            ["-c", "--", "ls -l"]
        );
        assert_eq!(
            arguments(AgentKind::Claude, "hi", None, Some("new-id")),
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--session-id",
                "new-id",
                "--",
                "hi"
            ]
        );
        assert_eq!(
            arguments(AgentKind::Claude, "hi", Some("old"), Some("new-id"))[4..],
            ["--resume", "old", "--", "hi"]
        );
        assert_eq!(
            arguments(AgentKind::Codex, "hi", None, None),
            ["exec", "--skip-git-repo-check", "--json", "--", "hi"]
        );
        assert_eq!(
            arguments(AgentKind::Codex, "-h", Some("t1"), None),
            [
                "exec",
                "--skip-git-repo-check",
                "--json",
                "resume",
                "t1",
                "--",
                "-h"
            ]
        );
    }

    #[test]
    fn claude_result_is_the_end_and_the_verdict() {
        let mut output = Output::new(AgentKind::Claude);
        assert!(!output.stdout_line(r#"{"type":"system","subtype":"init","session_id":"abc"}"#));
        assert!(output.stdout_line(r#"{"type":"result","subtype":"success","is_error":false,"result":"hi","total_cost_usd":0.5,"session_id":"abc"}"#));
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
