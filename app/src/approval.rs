//! Approvals: a tool use an agent asks the person to allow or deny, from
//! any tab or device. Claude runs started here ask over the control
//! protocol (`can_use_tool`); terminal sessions ask through their
//! `PermissionRequest` hook when the project lets the dashboard answer.
//! The first answer wins; every later one gets 409.

#[cfg(feature = "ssr")]
pub mod store;

use crate::{error::AppError, text_enum::text_enum};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

text_enum! {
    /// Where a request stands.
    pub enum Status ("approval status") {
        /// Waiting for an answer.
        Pending = "pending",
        Allowed = "allowed",
        Denied = "denied",
        /// Withdrawn without an answer from here: the run ended or was
        /// cancelled, the server restarted, the terminal answered, or no
        /// answer came in time. `message` says which.
        Closed = "closed",
    }
}

/// A request as stored and shown.
///
/// The browser does not decode the decoder's `skipped` fields (they stay at
/// their defaults there): no page reads them, and each decoded field costs
/// the bundle about 0.4 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(Deserialize))]
#[cfg_attr(feature = "ssr", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::approvals))]
pub struct Approval {
    pub id: String,
    pub session_id: String,
    /// The agentdeck run that asked; `None` for a terminal session's hook.
    pub run_id: Option<String>,
    /// The agent's own id for the request.
    pub request_id: String,
    pub tool: String,
    /// The tool's input as the agent sent it (JSON).
    pub input: String,
    /// What a person reads first: the command, the file path.
    pub summary: String,
    /// More to read, when there is more: a diff, a file's new content.
    pub detail: Option<String>,
    /// Why the agent asks, if it said.
    pub reason: Option<String>,
    /// The agent's permission suggestions (JSON): "allow always" applies them.
    pub suggestions: Option<String>,
    pub status: Status,
    /// Allowed for the rest of the session (the suggestions were applied).
    pub always: bool,
    /// The reason given with a deny, or why the request was closed.
    pub message: Option<String>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(Approval {
    required: [id, tool, summary, status, always],
    optional: [detail, reason, suggestions, message],
    skipped: [session_id, run_id, request_id, input, created_at, decided_at],
});

impl Approval {
    pub fn is_pending(&self) -> bool {
        self.status == Status::Pending
    }

    /// Whether "Allow always for this session" can be offered.
    pub fn can_allow_always(&self) -> bool {
        self.suggestions.is_some()
    }

    /// "Allowed", "Denied: not now", "Closed: the run was cancelled".
    pub fn outcome(&self) -> String {
        let status = match (self.status, self.always) {
            (Status::Pending, _) => "Waiting for you",
            (Status::Allowed, true) => "Allowed always",
            (Status::Allowed, false) => "Allowed",
            (Status::Denied, _) => "Denied",
            (Status::Closed, _) => "Closed",
        };
        match &self.message {
            Some(message) if !message.is_empty() => format!("{status}: {message}"),
            _ => status.to_owned(),
        }
    }
}

/// A person's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Answer {
    /// Allow this use; with `always`, the agent's suggested rules too.
    Allow {
        #[serde(default)]
        always: bool,
    },
    /// Deny it; the agent is told `message` and goes on without the tool.
    Deny {
        #[serde(default)]
        message: Option<String>,
    },
}

/// Longest deny message kept, in characters.
pub const MAX_DENY_MESSAGE_CHARS: usize = 2_000;

/// What the agent is told when the person denies without saying why.
pub const DEFAULT_DENY_MESSAGE: &str = "The person denied this in agentdeck.";

impl Answer {
    /// The answer from a form's fields: `decision` is allow, allow_always or deny.
    pub fn from_form(decision: &str, message: Option<String>) -> Result<Self, AppError> {
        match decision {
            "allow" => Ok(Self::Allow { always: false }),
            "allow_always" => Ok(Self::Allow { always: true }),
            "deny" => Ok(Self::Deny { message }),
            other => Err(AppError::Invalid(format!(
                "unknown decision {other:?}: expected allow, allow_always or deny"
            ))),
        }
    }
}

/// How a tool use reads to a person: a one-line summary and, for edits,
/// the change itself.
pub fn describe(tool: &str, input: &serde_json::Value) -> (String, Option<String>) {
    let text = |key: &str| input.get(key).and_then(serde_json::Value::as_str);
    let path = text("file_path")
        .or_else(|| text("notebook_path"))
        .or_else(|| text("path"));
    match tool {
        "Bash" => (
            text("command").unwrap_or("(no command)").to_owned(),
            text("description").map(str::to_owned),
        ),
        "Edit" => (
            format!("Edit {}", path.unwrap_or("a file")),
            Some(diff(
                text("old_string").unwrap_or(""),
                text("new_string").unwrap_or(""),
            )),
        ),
        "MultiEdit" => {
            let edits = input.get("edits").and_then(serde_json::Value::as_array);
            let detail = edits
                .into_iter()
                .flatten()
                .map(|edit| {
                    let part = |key: &str| edit.get(key).and_then(serde_json::Value::as_str);
                    diff(
                        part("old_string").unwrap_or(""),
                        part("new_string").unwrap_or(""),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (format!("Edit {}", path.unwrap_or("a file")), Some(detail))
        }
        "Write" => (
            format!("Write {}", path.unwrap_or("a file")),
            text("content").map(|content| diff("", content)),
        ),
        "WebFetch" => (format!("Fetch {}", text("url").unwrap_or("a URL")), None),
        "WebSearch" => (
            format!("Search the web for {}", text("query").unwrap_or("")),
            None,
        ),
        _ => match path.or_else(|| text("pattern")).or_else(|| text("command")) {
            Some(target) => (format!("{tool} {target}"), None),
            None => (
                tool.to_owned(),
                Some(serde_json::to_string_pretty(input).unwrap_or_default()),
            ),
        },
    }
}

/// The change from `old` to `new` as removed and added lines (the agent
/// sends whole snippets, so this is what a reviewer compares).
fn diff(old: &str, new: &str) -> String {
    let removed = old.lines().map(|line| format!("- {line}"));
    let added = new.lines().map(|line| format!("+ {line}"));
    removed.chain(added).collect::<Vec<_>>().join("\n")
}

/// The approvals of one session: pending ones first, then the newest answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionApprovals {
    pub approvals: Vec<Approval>,
}

/// Answers a pending request. `decision` is allow, allow_always or deny;
/// `message` goes to the agent with a deny. 409 when it was already
/// answered or closed.
#[server(prefix = "/rpc", endpoint = "answer_approval")]
pub async fn answer_approval(
    approval_id: String,
    decision: String,
    message: Option<String>,
) -> Result<Approval, AppError> {
    let answer = Answer::from_form(&decision, message);
    let answered = match answer {
        Ok(answer) => {
            let broker = expect_context::<std::sync::Arc<store::Broker>>();
            store::answer(&expect_context(), &broker, &approval_id, answer).await
        }
        Err(err) => Err(err),
    };
    crate::error::with_status(answered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_read_the_way_a_person_checks_them() {
        assert_eq!(
            describe(
                "Bash",
                &json!({"command": "rm -rf build", "description": "Clean"})
            ),
            ("rm -rf build".into(), Some("Clean".into()))
        );
        assert_eq!(
            describe(
                "Edit",
                &json!({"file_path": "/p/a.rs", "old_string": "x\ny", "new_string": "z"})
            ),
            ("Edit /p/a.rs".into(), Some("- x\n- y\n+ z".into()))
        );
        assert_eq!(
            describe(
                "Write",
                &json!({"file_path": "/p/new.txt", "content": "hi"})
            ),
            ("Write /p/new.txt".into(), Some("+ hi".into()))
        );
        assert_eq!(
            describe("Glob", &json!({"pattern": "**/*.rs"})),
            ("Glob **/*.rs".into(), None)
        );
        let (summary, detail) = describe("mcp__db__query", &json!({"sql": "select 1"}));
        assert_eq!(summary, "mcp__db__query");
        assert!(detail.unwrap().contains("\"sql\": \"select 1\""));
    }

    #[test]
    fn answers_come_from_forms_and_json() {
        assert_eq!(
            Answer::from_form("allow_always", None).unwrap(),
            Answer::Allow { always: true }
        );
        assert!(Answer::from_form("maybe", None).is_err());
        let answer: Answer =
            serde_json::from_value(json!({"decision": "deny", "message": "no"})).unwrap();
        assert_eq!(
            answer,
            Answer::Deny {
                message: Some("no".into())
            }
        );
        let allow: Answer = serde_json::from_value(json!({"decision": "allow"})).unwrap();
        assert_eq!(allow, Answer::Allow { always: false });
    }
}
