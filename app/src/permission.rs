//! Permission modes: how much an agent may do without asking. Each session
//! has one, chosen when it is created and changeable while it is idle.

use crate::{agent::AgentKind, text_enum::text_enum};

text_enum! {
    /// What a session's agent may do on its own. The first four are
    /// Claude Code's modes; the last three are Codex's sandboxes (`codex
    /// exec` cannot ask, so Codex always runs with `approval_policy=never`).
    pub enum PermissionMode ("permission mode") {
        /// Claude asks for each tool that needs approval; the dashboard answers.
        Ask = "ask",
        /// Claude edits files without asking; other tools still ask.
        AcceptEdits = "accept_edits",
        /// Claude only plans: it reads, and changes nothing.
        Plan = "plan",
        /// Claude runs every tool without asking.
        Bypass = "bypass",
        /// Codex reads the project and changes nothing.
        ReadOnly = "read_only",
        /// Codex may write inside the project directory.
        WorkspaceWrite = "workspace_write",
        /// Codex may do anything the server's user can: no sandbox.
        FullAccess = "full_access",
    }
}

impl PermissionMode {
    /// The mode a new session of `agent` starts in.
    pub const fn default_for(agent: AgentKind) -> Self {
        match agent {
            AgentKind::Codex => Self::WorkspaceWrite,
            AgentKind::Claude | AgentKind::Shell => Self::Ask,
        }
    }

    /// The modes `agent` offers (none for the shell: it runs what it is sent).
    pub fn choices(agent: AgentKind) -> &'static [Self] {
        match agent {
            AgentKind::Claude => &[Self::Ask, Self::AcceptEdits, Self::Plan, Self::Bypass],
            AgentKind::Codex => &[Self::ReadOnly, Self::WorkspaceWrite, Self::FullAccess],
            AgentKind::Shell => &[],
        }
    }

    /// Whether `agent` can run in this mode.
    pub fn fits(self, agent: AgentKind) -> bool {
        agent == AgentKind::Shell && self == Self::Ask || Self::choices(agent).contains(&self)
    }

    /// The name shown to people.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Ask => "Ask me",
            Self::AcceptEdits => "Accept edits",
            Self::Plan => "Plan only",
            Self::Bypass => "Bypass",
            Self::ReadOnly => "Read only",
            Self::WorkspaceWrite => "Write in the project",
            Self::FullAccess => "Full access",
        }
    }

    /// What choosing it means, when that deserves a warning.
    pub const fn warning(self) -> Option<&'static str> {
        match self {
            Self::Bypass => Some(
                "Claude runs every command and edit without asking, with your user's rights. \
                 (As root, Claude Code refuses this mode unless IS_SANDBOX=1 is set.)",
            ),
            Self::FullAccess => {
                Some("Codex runs without a sandbox: any command, any file your user can reach.")
            }
            _ => None,
        }
    }

    /// The agent's own flag values: Claude's `--permission-mode`, Codex's `--sandbox`.
    pub const fn agent_value(self) -> &'static str {
        match self {
            Self::Ask => "default",
            Self::AcceptEdits => "acceptEdits",
            Self::Plan => "plan",
            Self::Bypass => "bypassPermissions",
            Self::ReadOnly => "read-only",
            Self::WorkspaceWrite => "workspace-write",
            Self::FullAccess => "danger-full-access",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_agent_offers_its_own_modes_and_starts_in_one_of_them() {
        for agent in AgentKind::ALL {
            assert!(PermissionMode::default_for(agent).fits(agent), "{agent}");
        }
        assert!(!PermissionMode::Bypass.fits(AgentKind::Codex));
        assert!(!PermissionMode::ReadOnly.fits(AgentKind::Claude));
        assert!(!PermissionMode::Plan.fits(AgentKind::Shell));
        assert_eq!(
            "sideways".parse::<PermissionMode>().unwrap_err().0,
            "unknown permission mode \"sideways\": expected one of ask, accept_edits, plan, \
             bypass, read_only, workspace_write, full_access"
        );
    }
}
