//! Reading agents' transcripts (Claude Code `projects/*/<id>.jsonl`, Codex
//! `sessions/YYYY/MM/DD/rollout-*.jsonl`) line by line into what an
//! imported session needs. Pure: no files, no database.

use crate::agent::AgentKind;
use serde_json::Value;

/// Longest name taken from a transcript.
const MAX_NAME_CHARS: usize = 80;

/// What is known about one transcript so far; reading more lines extends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscriptInfo {
    pub external_id: Option<String>,
    pub cwd: Option<String>,
    pub title: Option<String>,
    pub first_message: Option<String>,
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
    pub message_count: i32,
    pub skipped_lines: i32,
}

impl TranscriptInfo {
    /// Takes one complete line. A line that is not a JSON object is counted
    /// as skipped; nothing is fatal.
    pub fn read_line(&mut self, agent: AgentKind, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(line) else {
            self.skipped_lines += 1;
            return;
        };
        let event = Value::Object(event);
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(at) = text(&event, "timestamp")
            .as_deref()
            .and_then(parse_timestamp)
        {
            self.first_at = Some(self.first_at.map_or(at, |t| t.min(at)));
            self.last_at = Some(self.last_at.map_or(at, |t| t.max(at)));
        }
        match agent {
            AgentKind::Claude => {
                self.external_id = self
                    .external_id
                    .take()
                    .or_else(|| text(&event, "sessionId"));
                self.cwd = self
                    .cwd
                    .take()
                    .or_else(|| text(&event, "cwd").filter(|c| !c.is_empty()));
                let sidechain = event
                    .get("isSidechain")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                match event.get("type").and_then(Value::as_str) {
                    Some("summary") => self.title = text(&event, "summary").or(self.title.take()),
                    Some(role @ ("user" | "assistant")) if !sidechain => {
                        self.message_count += 1;
                        if role == "user" && self.first_message.is_none() {
                            self.first_message =
                                event.pointer("/message/content").and_then(first_text);
                        }
                    }
                    _ => {}
                }
            }
            AgentKind::Codex => {
                let payload = event.get("payload").unwrap_or(&event);
                match event.get("type").and_then(Value::as_str) {
                    Some("session_meta") => {
                        self.external_id = self.external_id.take().or_else(|| text(payload, "id"));
                        self.cwd = self.cwd.take().or_else(|| text(payload, "cwd"));
                        if let Some(at) = text(payload, "timestamp")
                            .as_deref()
                            .and_then(parse_timestamp)
                        {
                            self.first_at = Some(self.first_at.map_or(at, |t| t.min(at)));
                        }
                    }
                    Some("response_item")
                        if text(payload, "type").as_deref() == Some("message") =>
                    {
                        let role = text(payload, "role");
                        if matches!(role.as_deref(), Some("user" | "assistant")) {
                            let content = payload.get("content").and_then(first_text);
                            let is_context = content.as_deref().is_some_and(|c| c.starts_with('<'));
                            if !is_context {
                                self.message_count += 1;
                                if role.as_deref() == Some("user") && self.first_message.is_none() {
                                    self.first_message = content;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            AgentKind::Shell => {}
        }
    }

    /// The session name: the summary line, else the first user message,
    /// else the agent and a short id.
    pub fn name(&self, agent: AgentKind) -> String {
        let from_text = |t: &String| {
            let line = t.lines().map(str::trim).find(|l| !l.is_empty())?;
            let mut name: String = line.chars().take(MAX_NAME_CHARS).collect();
            if line.chars().count() > MAX_NAME_CHARS {
                name.push('…');
            }
            Some(name)
        };
        self.title
            .as_ref()
            .and_then(from_text)
            .or_else(|| self.first_message.as_ref().and_then(from_text))
            .unwrap_or_else(|| {
                let id = self.external_id.as_deref().unwrap_or("session");
                format!(
                    "{} {}",
                    agent.label(),
                    id.chars().take(8).collect::<String>()
                )
            })
    }
}

/// The first text in message content: a plain string, or the first text
/// block (`text`, or Codex's `input_text` / `output_text`).
fn first_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => blocks.iter().find_map(|block| {
            let kind = block.get("type").and_then(Value::as_str)?;
            matches!(kind, "text" | "input_text" | "output_text")
                .then(|| block.get("text").and_then(Value::as_str).map(str::to_owned))
                .flatten()
        }),
        _ => None,
    }
    .filter(|t| !t.trim().is_empty())
}

/// Unix milliseconds from an RFC 3339 UTC time like `2025-06-01T12:34:56.789Z`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut time_parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (
        time_parts.next()??,
        time_parts.next()??,
        time_parts.next()??,
    );
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_unix_millis() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2025-06-01T12:34:56.789Z"),
            Some(1_748_781_296_789)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T23:59:59.5+00:00"),
            Some(1_709_251_199_500)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2025-13-01T00:00:00Z"), None);
    }

    #[test]
    fn claude_lines_give_id_cwd_title_and_count() {
        let mut info = TranscriptInfo::default();
        for line in [
            r#"{"type":"user","sessionId":"abc-123","cwd":"/p","timestamp":"2025-01-01T00:00:00Z","message":{"role":"user","content":"Fix the flaky test\nplease"}}"#,
            r#"{"type":"assistant","sessionId":"abc-123","cwd":"/p","timestamp":"2025-01-01T00:01:00Z","message":{"role":"assistant","content":[{"type":"text","text":"Done"}]}}"#,
            r#"{"type":"assistant","isSidechain":true,"sessionId":"abc-123","message":{"content":"side"}}"#,
            "not json",
            r#"{"type":"user","sessionId":"abc-1"#,
        ] {
            info.read_line(AgentKind::Claude, line);
        }
        assert_eq!(info.external_id.as_deref(), Some("abc-123"));
        assert_eq!(info.cwd.as_deref(), Some("/p"));
        assert_eq!((info.message_count, info.skipped_lines), (2, 2));
        assert_eq!(info.name(AgentKind::Claude), "Fix the flaky test");
        assert_eq!(info.last_at.unwrap() - info.first_at.unwrap(), 60_000);
        info.read_line(
            AgentKind::Claude,
            r#"{"type":"summary","summary":"Flaky test fixed","leafUuid":"x"}"#,
        );
        assert_eq!(info.name(AgentKind::Claude), "Flaky test fixed");
    }

    #[test]
    fn codex_lines_give_id_cwd_and_first_real_user_message() {
        let mut info = TranscriptInfo::default();
        for line in [
            r#"{"timestamp":"2025-03-01T10:00:00.000Z","type":"session_meta","payload":{"id":"0199-codex","cwd":"/work/p","timestamp":"2025-03-01T10:00:00.000Z"}}"#,
            r#"{"timestamp":"2025-03-01T10:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>cwd</environment_context>"}]}}"#,
            r#"{"timestamp":"2025-03-01T10:00:02.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"Add a README"}]}}"#,
            r#"{"timestamp":"2025-03-01T10:00:09.000Z","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Added."}]}}"#,
        ] {
            info.read_line(AgentKind::Codex, line);
        }
        assert_eq!(info.external_id.as_deref(), Some("0199-codex"));
        assert_eq!(info.cwd.as_deref(), Some("/work/p"));
        assert_eq!(info.message_count, 2);
        assert_eq!(info.name(AgentKind::Codex), "Add a README");
    }

    #[test]
    fn names_fall_back_and_are_bounded() {
        let info = TranscriptInfo {
            external_id: Some("1234567890".into()),
            ..Default::default()
        };
        assert_eq!(info.name(AgentKind::Claude), "Claude Code 12345678");
        let long = TranscriptInfo {
            first_message: Some("x".repeat(200)),
            ..Default::default()
        };
        assert_eq!(
            long.name(AgentKind::Codex).chars().count(),
            MAX_NAME_CHARS + 1
        );
    }
}
