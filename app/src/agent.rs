//! Which coding agent a session talks to.

use crate::text_enum::text_enum;
use serde::Serialize;

text_enum! {
    /// The agent behind a session. `Shell` is built in and always available.
    #[derive(Default)]
    pub enum AgentKind ("agent") {
        /// Runs each message as a shell command in the project directory.
        #[default]
        Shell = "shell",
        /// Claude Code CLI.
        Claude = "claude",
        /// Codex CLI.
        Codex = "codex",
    }
}

impl AgentKind {
    /// The name shown to people.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Shell => "Shell",
            Self::Claude => "Claude Code",
            Self::Codex => "Codex",
        }
    }
}

/// An agent the "New session" form offers, and why it cannot be used if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(feature = "hydrate"), derive(serde::Deserialize))]
pub struct AgentChoice {
    pub kind: AgentKind,
    /// `None` when the agent can run here.
    pub unavailable: Option<String>,
}

#[cfg(feature = "hydrate")]
crate::object_decoder::object_decoder!(AgentChoice {
    required: [kind],
    optional: [unavailable],
    skipped: [],
});

/// The agents this server can run, with the reason for each one it cannot.
#[leptos::server(prefix = "/rpc", endpoint = "agent_choices")]
pub async fn agent_choices() -> Result<Vec<AgentChoice>, crate::error::AppError> {
    Ok(leptos::prelude::expect_context::<std::sync::Arc<crate::run::runner::Runner>>().choices())
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
