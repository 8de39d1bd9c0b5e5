//! Outgoing notifications: where they go (targets), which committed changes
//! are worth one (a run failed, needs you, finished), and what each kind of
//! target is sent. Reaches a person who has no tab open; the browser's own
//! notifications are in `live::notify_run_end`.
//!
//! Target URLs are secrets (Slack and Discord webhook URLs grant posting):
//! they are never logged, and lists show them masked ([`mask`]).

#[cfg(feature = "ssr")]
pub mod outbox;
#[cfg(feature = "ssr")]
pub mod store;

use crate::{
    error::AppError,
    session_state::{Attention, SessionState},
    text_enum::text_enum,
    transition::{Reason, Transition},
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Longest target URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Most targets kept (flag targets included).
pub const MAX_TARGETS: usize = 20;

/// A second "needs you" for the same session within this long is not sent.
pub const NEEDS_YOU_QUIET_MS: i64 = 60_000;

text_enum! {
    /// What a target speaks.
    pub enum TargetKind ("notification target kind") {
        /// Any URL: a JSON body describing the change.
        Webhook = "webhook",
        /// An ntfy topic URL: the message as body, title and priority in headers.
        Ntfy = "ntfy",
        /// A Slack incoming webhook: `{"text": …}`.
        Slack = "slack",
        /// A Discord webhook: `{"content": …}`.
        Discord = "discord",
    }
}

impl TargetKind {
    /// The name shown to people.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Webhook => "Webhook (JSON)",
            Self::Ntfy => "ntfy",
            Self::Slack => "Slack",
            Self::Discord => "Discord",
        }
    }

    /// The kind a URL's host says it is, and the URL to send to: Slack's
    /// and Discord's webhook hosts, ntfy.sh or an `ntfy+https://` prefix
    /// (removed), else a generic webhook.
    pub fn infer(url: &str) -> (Self, String) {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("ntfy+") {
            return (Self::Ntfy, rest.to_owned());
        }
        let host = host_of(url).unwrap_or_default().to_ascii_lowercase();
        let path = url
            .split_once("://")
            .map(|(_, rest)| rest.find('/').map_or("", |at| &rest[at..]))
            .unwrap_or_default();
        let kind = if host == "hooks.slack.com" {
            Self::Slack
        } else if ["discord.com", "discordapp.com"]
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")))
            && path.starts_with("/api/webhooks")
        {
            Self::Discord
        } else if host == "ntfy.sh" {
            Self::Ntfy
        } else {
            Self::Webhook
        };
        (kind, url.to_owned())
    }

    /// A `--notify` value: `KIND=URL`, or a URL whose kind is inferred.
    pub fn parse_flag(value: &str) -> (Self, String) {
        if let Some((kind, url)) = value.trim().split_once('=') {
            if let Ok(kind) = kind.parse::<Self>() {
                if url.contains("://") {
                    let url = url.strip_prefix("ntfy+").unwrap_or(url);
                    return (kind, url.to_owned());
                }
            }
        }
        Self::infer(value)
    }
}

/// The host of an `http(s)://` URL (without user info or port).
fn host_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    })
}

/// Checks a target URL: http(s), a host, no spaces or control characters,
/// at most [`MAX_URL_BYTES`]. The message never repeats the URL.
pub fn validate_url(url: &str) -> Result<(), AppError> {
    if url.is_empty() {
        return Err(AppError::Invalid("URL is required".into()));
    }
    if url.len() > MAX_URL_BYTES {
        return Err(AppError::Invalid(format!(
            "URL is too long: at most {MAX_URL_BYTES} bytes"
        )));
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(AppError::Invalid(
            "URL must start with http:// or https://".into(),
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::Invalid(
            "URL must not contain spaces or control characters".into(),
        ));
    }
    if host_of(url).is_none_or(str::is_empty) {
        return Err(AppError::Invalid("URL has no host".into()));
    }
    Ok(())
}

/// A URL as lists show it: scheme and host, then "/…" and its last four
/// characters — enough to tell targets apart, not enough to post to one.
pub fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".into();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = host_of(url).unwrap_or_default();
    let tail = &rest[authority_end..];
    let last: String = {
        let chars: Vec<char> = tail.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    if tail.chars().count() <= 1 {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}/…{last}")
    }
}

/// Which events a target is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    pub on_failed: bool,
    pub on_needs_you: bool,
    pub on_finished: bool,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            on_failed: true,
            on_needs_you: true,
            on_finished: true,
        }
    }
}

/// A place notifications go, with the result of its last delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(diesel::Queryable, diesel::Selectable))]
#[cfg_attr(feature = "ssr", diesel(table_name = crate::db::schema::notify_targets))]
pub struct Target {
    pub id: i32,
    pub kind: TargetKind,
    /// The whole URL in the row; masked ([`Target::masked`]) in lists.
    pub url: String,
    pub on_failed: bool,
    pub on_needs_you: bool,
    pub on_finished: bool,
    /// Configured by `serve --notify`: not removable from the dashboard.
    pub from_flag: bool,
    pub created_at: i64,
    pub last_at: Option<i64>,
    pub last_ok: Option<bool>,
    /// "200 OK after 2 attempts", "timed out", …
    pub last_result: Option<String>,
}

impl Target {
    /// The target as lists show it: its URL masked.
    pub fn masked(mut self) -> Self {
        self.url = mask(&self.url);
        self
    }

    /// Whether this target is sent `event`.
    pub fn wants(&self, event: Event) -> bool {
        match event {
            Event::Failed => self.on_failed,
            Event::NeedsYou => self.on_needs_you,
            Event::Finished => self.on_finished,
            Event::Test => true,
        }
    }
}

text_enum! {
    /// What a notification is about.
    pub enum Event ("notification event") {
        /// A run ended in an error.
        Failed = "failed",
        /// A working session waits for approval or input.
        NeedsYou = "needs_you",
        /// A run ended well (or the agent ended the session).
        Finished = "finished",
        /// "Send test" in the dashboard.
        Test = "test",
    }
}

/// The event a committed change-log entry is worth on its own, given
/// whether the session already waited for the person before it (`None`:
/// not known). Cancels, syncs, renames are worth none.
pub fn event_of(change: &Transition, was_waiting: Option<bool>) -> Option<Event> {
    use SessionState::{Error, Idle, Working};
    match (change.from_state, change.to_state, change.reason) {
        (Working, Error, _) if change.reason.is_state_change() => Some(Event::Failed),
        (Working, Idle, Reason::Succeeded | Reason::Ended) => Some(Event::Finished),
        (Working, Working, Reason::Attention)
            if change.attention.is_some() && was_waiting != Some(true) =>
        {
            Some(Event::NeedsYou)
        }
        _ => None,
    }
}

/// What the worker remembers per session to send "needs you" once when a
/// session starts waiting: entries that repeat the same attention (one of
/// two requests answered) are not a new wait. Only working sessions are
/// kept, so it stays as small as the number of runs.
#[derive(Debug, Default)]
pub struct Watch {
    sessions: HashMap<String, Waiting>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Waiting {
    attention: Option<Attention>,
    /// When "needs you" was last sent for it (ms).
    notified_at: Option<i64>,
}

impl Watch {
    /// The event `change` is worth, remembering what it says.
    pub fn event(&mut self, change: &Transition) -> Option<Event> {
        let known = self.sessions.get(&change.session_id).copied();
        let mut event = event_of(change, known.map(|w| w.attention.is_some()));
        if change.reason == Reason::Attention {
            let mut waiting = known.unwrap_or_default();
            waiting.attention = change.attention;
            if event == Some(Event::NeedsYou) {
                let recent = waiting
                    .notified_at
                    .is_some_and(|at| change.at - at < NEEDS_YOU_QUIET_MS);
                if recent {
                    event = None;
                } else {
                    waiting.notified_at = Some(change.at);
                }
            }
            self.sessions.insert(change.session_id.clone(), waiting);
        } else if change.reason.is_state_change() && change.to_state == SessionState::Working {
            let waiting = Waiting {
                attention: None,
                ..known.unwrap_or_default()
            };
            self.sessions.insert(change.session_id.clone(), waiting);
        } else if change.reason.is_state_change() || change.reason == Reason::Deleted {
            self.sessions.remove(&change.session_id);
        }
        event
    }
}

/// A session or project as a notification names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named<Id> {
    pub id: Id,
    pub name: String,
}

/// One notification, whatever the target: the generic webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub event: Event,
    pub session: Named<String>,
    pub project: Named<i32>,
    pub from: SessionState,
    pub to: SessionState,
    pub error_message: Option<String>,
    pub attention: Option<Attention>,
    /// The session's page on this dashboard.
    pub link: String,
    pub at: i64,
    /// What chat targets show.
    pub text: String,
}

impl Notification {
    /// A notification of `event` for `change` (its session and project named).
    pub fn new(
        event: Event,
        change: &Transition,
        session_name: &str,
        project_name: &str,
        link: String,
    ) -> Self {
        let mut notification = Self {
            event,
            session: Named {
                id: change.session_id.clone(),
                name: session_name.to_owned(),
            },
            project: Named {
                id: change.project_id,
                name: project_name.to_owned(),
            },
            from: change.from_state,
            to: change.to_state,
            error_message: change.error_message.clone(),
            attention: change.attention,
            link,
            at: change.at,
            text: String::new(),
        };
        notification.text = notification.message();
        notification
    }

    /// What "Send test" sends: a made-up failure, so every field has a value.
    pub fn test(link: String, at: i64) -> Self {
        let mut notification = Self {
            event: Event::Test,
            session: Named {
                id: "test".into(),
                name: "Test session".into(),
            },
            project: Named {
                id: 0,
                name: "agentdeck".into(),
            },
            from: SessionState::Working,
            to: SessionState::Error,
            error_message: Some("This is a test notification.".into()),
            attention: None,
            link,
            at,
            text: String::new(),
        };
        notification.text = notification.message();
        notification
    }

    /// One line for a person: what happened to which session.
    pub fn title(&self) -> String {
        let session = &self.session.name;
        match self.event {
            Event::Failed => format!("{session} failed"),
            Event::NeedsYou => match self.attention {
                Some(attention) => format!("{session}: {}", attention.lowercase_label()),
                None => format!("{session} needs you"),
            },
            Event::Finished => format!("{session} finished"),
            Event::Test => "agentdeck test notification".into(),
        }
    }

    /// The title with the detail: the project and the error message.
    pub fn message(&self) -> String {
        let project = &self.project.name;
        match (self.event, &self.error_message) {
            (Event::Failed, Some(error)) => format!("{} in {project}: {error}", self.title()),
            (Event::Test, _) => "Notifications from agentdeck reach this target.".into(),
            _ => format!("{} in {project}", self.title()),
        }
    }

    /// ntfy's priority: failures and waits are urgent, the rest is not.
    pub const fn priority(&self) -> &'static str {
        match self.event {
            Event::Failed | Event::NeedsYou => "high",
            Event::Finished | Event::Test => "default",
        }
    }
}

/// An HTTP POST to a target, built without sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What `kind` at `url` is sent for `notification`.
#[cfg(feature = "ssr")]
pub fn request(kind: TargetKind, url: &str, notification: &Notification) -> OutgoingRequest {
    let (headers, body) = match kind {
        TargetKind::Webhook => (
            vec![("Content-Type", "application/json".to_owned())],
            serde_json::to_string(notification).unwrap_or_default(),
        ),
        TargetKind::Ntfy => (
            vec![
                ("Content-Type", "text/plain; charset=utf-8".to_owned()),
                ("Title", header_text(&notification.title())),
                ("Priority", notification.priority().to_owned()),
                ("Click", header_text(&notification.link)),
            ],
            notification.message(),
        ),
        TargetKind::Slack => (
            vec![("Content-Type", "application/json".to_owned())],
            serde_json::json!({ "text": format!(
                "{}\n<{}|Open in agentdeck>",
                notification.message(),
                notification.link
            ) })
            .to_string(),
        ),
        TargetKind::Discord => (
            vec![("Content-Type", "application/json".to_owned())],
            serde_json::json!({ "content": format!("{}\n{}", notification.message(), notification.link) })
                .to_string(),
        ),
    };
    OutgoingRequest {
        url: url.to_owned(),
        headers,
        body,
    }
}

#[cfg(feature = "ssr")]
/// Text safe in a header value: one line, no control characters.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------
// Server functions: thin, over `store` and the outbox.

/// Every target, URLs masked.
#[server(prefix = "/rpc", endpoint = "list_notify_targets")]
pub async fn list_notify_targets() -> Result<Vec<Target>, AppError> {
    let targets = store::list(&expect_context()).await;
    crate::error::with_status(targets.map(|t| t.into_iter().map(Target::masked).collect()))
}

/// Adds a target; `kind` empty or missing: inferred from the URL.
#[server(prefix = "/rpc", endpoint = "add_notify_target")]
pub async fn add_notify_target(
    #[server(default)] kind: Option<String>,
    url: String,
) -> Result<Target, AppError> {
    let added = async {
        let kind = store::parse_kind(kind.as_deref())?;
        store::add(&expect_context(), kind, &url, Events::default()).await
    };
    crate::error::with_status(added.await)
}

/// Turns a target's events on or off (a checkbox left out is off).
#[server(prefix = "/rpc", endpoint = "set_notify_events")]
pub async fn set_notify_events(
    id: i32,
    #[server(default)] on_failed: bool,
    #[server(default)] on_needs_you: bool,
    #[server(default)] on_finished: bool,
) -> Result<Target, AppError> {
    let events = Events {
        on_failed,
        on_needs_you,
        on_finished,
    };
    let set = store::set_events(&expect_context(), id, events).await;
    crate::error::with_status(set.map(Target::masked))
}

/// Removes a target added in the dashboard (409 for a `--notify` one).
#[server(prefix = "/rpc", endpoint = "remove_notify_target")]
pub async fn remove_notify_target(id: i32) -> Result<i32, AppError> {
    crate::error::with_status(store::remove(&expect_context(), id).await.map(|()| id))
}

/// Queues a test notification to one target; its result shows as the
/// target's last delivery.
#[server(prefix = "/rpc", endpoint = "send_test_notification")]
pub async fn send_test_notification(id: i32) -> Result<i32, AppError> {
    let outbox = expect_context::<outbox::Outbox>();
    crate::error::with_status(outbox.send_test(&expect_context(), id).await.map(|()| id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: SessionState, to: SessionState, reason: Reason) -> Transition {
        Transition {
            seq: 1,
            session_id: "s1".into(),
            project_id: 7,
            from_state: from,
            to_state: to,
            error_message: (to == SessionState::Error).then(|| "exit status 3".into()),
            reason,
            at: 1_000_000,
            attention: None,
        }
    }

    fn waiting(attention: Option<Attention>, at: i64) -> Transition {
        Transition {
            attention,
            at,
            ..change(
                SessionState::Working,
                SessionState::Working,
                Reason::Attention,
            )
        }
    }

    #[test]
    fn changes_worth_a_notification() {
        use SessionState::{Error, Idle, Working};
        let table = [
            (Working, Error, Reason::Failed, Some(Event::Failed)),
            (Working, Error, Reason::Interrupted, Some(Event::Failed)),
            (Working, Idle, Reason::Succeeded, Some(Event::Finished)),
            (Working, Idle, Reason::Ended, Some(Event::Finished)),
            (Working, Idle, Reason::Cancelled, None),
            (Idle, Working, Reason::Sent, None),
            (Error, Working, Reason::Sent, None),
            (Error, Idle, Reason::Synced, None),
            (Idle, Idle, Reason::Created, None),
            (Idle, Idle, Reason::Renamed, None),
            (Error, Error, Reason::Deleted, None),
        ];
        for (from, to, reason, expected) in table {
            assert_eq!(
                event_of(&change(from, to, reason), None),
                expected,
                "{from}→{to} {reason}"
            );
        }
        let asks = waiting(Some(Attention::Approval), 0);
        assert_eq!(event_of(&asks, Some(false)), Some(Event::NeedsYou));
        assert_eq!(event_of(&asks, None), Some(Event::NeedsYou));
        assert_eq!(event_of(&asks, Some(true)), None);
        assert_eq!(event_of(&waiting(None, 0), Some(true)), None);
    }

    #[test]
    fn needs_you_is_sent_once_per_wait_and_not_again_within_a_minute() {
        let mut watch = Watch::default();
        let sent = change(SessionState::Idle, SessionState::Working, Reason::Sent);
        assert_eq!(watch.event(&sent), None);
        let t0 = 1_000_000;
        assert_eq!(
            watch.event(&waiting(Some(Attention::Approval), t0)),
            Some(Event::NeedsYou)
        );
        // The same wait recorded again (one of two requests answered).
        assert_eq!(
            watch.event(&waiting(Some(Attention::Approval), t0 + 10)),
            None
        );
        // Answered, then asked again at once: not a second message.
        assert_eq!(watch.event(&waiting(None, t0 + 20)), None);
        assert_eq!(watch.event(&waiting(Some(Attention::Input), t0 + 30)), None);
        // Answered, and asked again minutes later: a new wait.
        assert_eq!(watch.event(&waiting(None, t0 + 40)), None);
        assert_eq!(
            watch.event(&waiting(
                Some(Attention::Approval),
                t0 + NEEDS_YOU_QUIET_MS + 50
            )),
            Some(Event::NeedsYou)
        );
        // The run ends: nothing is kept for the session.
        let failed = change(SessionState::Working, SessionState::Error, Reason::Failed);
        assert_eq!(watch.event(&failed), Some(Event::Failed));
        assert!(watch.sessions.is_empty());
    }

    fn notification(event: Event) -> Notification {
        let mut change = change(SessionState::Working, SessionState::Error, Reason::Failed);
        if event == Event::NeedsYou {
            change.to_state = SessionState::Working;
            change.error_message = None;
            change.attention = Some(Attention::Approval);
        }
        Notification::new(
            event,
            &change,
            "fix tests",
            "web",
            "http://deck:3000/projects/7/sessions/s1".into(),
        )
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn each_kind_gets_its_own_request() {
        let failed = notification(Event::Failed);
        let url = "https://example.com/hook";

        let webhook = request(TargetKind::Webhook, url, &failed);
        assert_eq!(webhook.url, url);
        assert_eq!(
            webhook.headers,
            [("Content-Type", "application/json".to_owned())]
        );
        let body: serde_json::Value = serde_json::from_str(&webhook.body).unwrap();
        assert_eq!(body["event"], "failed");
        assert_eq!(body["session"]["id"], "s1");
        assert_eq!(body["session"]["name"], "fix tests");
        assert_eq!(body["project"]["id"], 7);
        assert_eq!(body["project"]["name"], "web");
        assert_eq!(
            (body["from"].as_str(), body["to"].as_str()),
            (Some("working"), Some("error"))
        );
        assert_eq!(body["error_message"], "exit status 3");
        assert_eq!(body["attention"], serde_json::Value::Null);
        assert_eq!(body["link"], "http://deck:3000/projects/7/sessions/s1");
        assert_eq!(body["text"], "fix tests failed in web: exit status 3");

        let ntfy = request(TargetKind::Ntfy, "https://ntfy.sh/deck", &failed);
        let header = |name| {
            ntfy.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("Title"), Some("fix tests failed"));
        assert_eq!(header("Priority"), Some("high"));
        assert_eq!(
            header("Click"),
            Some("http://deck:3000/projects/7/sessions/s1")
        );
        assert_eq!(ntfy.body, "fix tests failed in web: exit status 3");

        let slack: serde_json::Value =
            serde_json::from_str(&request(TargetKind::Slack, url, &failed).body).unwrap();
        assert_eq!(
            slack,
            serde_json::json!({"text": "fix tests failed in web: exit status 3\n<http://deck:3000/projects/7/sessions/s1|Open in agentdeck>"})
        );
        let discord: serde_json::Value =
            serde_json::from_str(&request(TargetKind::Discord, url, &failed).body).unwrap();
        assert_eq!(
            discord,
            serde_json::json!({"content": "fix tests failed in web: exit status 3\nhttp://deck:3000/projects/7/sessions/s1"})
        );

        let waits = notification(Event::NeedsYou);
        assert_eq!(waits.title(), "fix tests: needs approval");
        assert_eq!(waits.message(), "fix tests: needs approval in web");
        let finished = notification(Event::Finished);
        let ntfy = request(TargetKind::Ntfy, url, &finished);
        assert!(ntfy.headers.contains(&("Priority", "default".to_owned())));
        assert!(ntfy
            .headers
            .contains(&("Title", "fix tests finished".to_owned())));
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn header_values_stay_on_one_line() {
        let mut failed = notification(Event::Failed);
        failed.session.name = "two\nlines".into();
        let ntfy = request(TargetKind::Ntfy, "https://ntfy.sh/x", &failed);
        assert!(ntfy
            .headers
            .contains(&("Title", "two lines failed".to_owned())));
    }

    #[test]
    fn kinds_are_inferred_from_urls() {
        let table = [
            (
                "https://hooks.slack.com/services/T/B/x",
                TargetKind::Slack,
                "https://hooks.slack.com/services/T/B/x",
            ),
            (
                "https://discord.com/api/webhooks/1/abc",
                TargetKind::Discord,
                "https://discord.com/api/webhooks/1/abc",
            ),
            (
                "https://discordapp.com/api/webhooks/1/abc",
                TargetKind::Discord,
                "https://discordapp.com/api/webhooks/1/abc",
            ),
            (
                "https://discord.com/channels/1",
                TargetKind::Webhook,
                "https://discord.com/channels/1",
            ),
            (
                "https://ntfy.sh/my-topic",
                TargetKind::Ntfy,
                "https://ntfy.sh/my-topic",
            ),
            (
                "ntfy+https://ntfy.example.org/t",
                TargetKind::Ntfy,
                "https://ntfy.example.org/t",
            ),
            (
                "http://127.0.0.1:9000/hook",
                TargetKind::Webhook,
                "http://127.0.0.1:9000/hook",
            ),
        ];
        for (url, kind, sent_to) in table {
            assert_eq!(TargetKind::infer(url), (kind, sent_to.to_owned()), "{url}");
        }
        assert_eq!(
            TargetKind::parse_flag("slack=http://127.0.0.1:9/x"),
            (TargetKind::Slack, "http://127.0.0.1:9/x".to_owned())
        );
        // `=` inside a URL's query is not a kind.
        assert_eq!(
            TargetKind::parse_flag("https://example.com/h?a=b").0,
            TargetKind::Webhook
        );
    }

    #[test]
    fn urls_are_checked_and_masked() {
        assert!(validate_url("https://example.com/x").is_ok());
        assert!(validate_url("HTTP://example.com").is_ok());
        for bad in [
            "",
            "ftp://x/y",
            "example.com",
            "https://",
            "https://a b",
            "javascript:alert(1)",
        ] {
            let err = validate_url(bad).unwrap_err();
            assert_eq!(err.status(), 422, "{bad}");
        }
        let long = format!("https://example.com/{}", "x".repeat(MAX_URL_BYTES));
        assert!(validate_url(&long)
            .unwrap_err()
            .to_string()
            .contains("2048"));
        assert_eq!(
            mask("https://hooks.slack.com/services/T000/B000/XXXXsecret"),
            "https://hooks.slack.com/…cret"
        );
        assert_eq!(
            mask("https://user:pw@example.com:8443/abcdefg"),
            "https://example.com/…defg"
        );
        assert_eq!(mask("http://example.com"), "http://example.com");
    }
}
