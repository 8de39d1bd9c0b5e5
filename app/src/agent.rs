//! Which coding agent a session talks to.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// The agent behind a session. `Shell` is built in and always available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(
    feature = "ssr",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
)]
#[cfg_attr(feature = "ssr", diesel(sql_type = diesel::sql_types::Text))]
pub enum AgentKind {
    /// Runs each message as a shell command in the project directory.
    #[default]
    Shell,
    /// Claude Code CLI.
    Claude,
    /// Codex CLI.
    Codex,
}

impl AgentKind {
    /// Every agent, in the order the UI offers them.
    pub const ALL: [AgentKind; 3] = [Self::Shell, Self::Claude, Self::Codex];

    /// The text stored in the database and used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Shell => "shell",
            Self::Claude => "claude",
            Self::Codex => "codex",
        }
    }

    /// The name shown to people.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Shell => "Shell",
            Self::Claude => "Claude Code",
            Self::Codex => "Codex",
        }
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown agent {0:?}: expected one of shell, claude, codex")]
pub struct UnknownAgent(pub String);

impl FromStr for AgentKind {
    type Err = UnknownAgent;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|agent| agent.as_str() == text)
            .ok_or_else(|| UnknownAgent(text.to_owned()))
    }
}

#[cfg(feature = "ssr")]
crate::db::text_sql_type!(AgentKind);

/// An agent the "New session" form offers, and why it cannot be used if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentChoice {
    pub kind: AgentKind,
    /// `None` when the agent can run here.
    pub unavailable: Option<String>,
}

/// The agents this server can run, with the reason for each one it cannot.
#[leptos::server(prefix = "/rpc", endpoint = "agent_choices")]
pub async fn agent_choices() -> Result<Vec<AgentChoice>, crate::error::AppError> {
    Ok(AgentKind::ALL
        .into_iter()
        .map(|kind| AgentChoice {
            kind,
            unavailable: match kind {
                AgentKind::Shell => None,
                other => find_on_path(other.as_str())
                    .is_none()
                    .then(|| format!("{} not found on PATH", other.as_str())),
            },
        })
        .collect())
}

/// The first executable called `name` on `PATH`.
#[cfg(feature = "ssr")]
pub fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_rejects_unknown() {
        for agent in AgentKind::ALL {
            assert_eq!(agent.as_str().parse::<AgentKind>(), Ok(agent));
        }
        assert!("bash"
            .parse::<AgentKind>()
            .unwrap_err()
            .to_string()
            .contains("bash"));
    }
}
