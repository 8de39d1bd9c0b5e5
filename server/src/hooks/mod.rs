//! Terminal sessions report to agentdeck through the agents' own hooks:
//! `agentdeck hook` forwards one, `agentdeck hooks` installs them.

pub mod forward;
pub mod install;

use app::{
    agent::AgentKind,
    hook::{Installation, InstallationProbe},
};
use std::{path::PathBuf, sync::Arc};

/// The dashboard's reader of the agents' settings files: the same status
/// `agentdeck hooks status` prints, for this server's user.
pub fn installation_probe() -> InstallationProbe {
    InstallationProbe(Arc::new(|| {
        let (Some(home), Ok(exe)) = (dirs::home_dir(), std::env::current_exe()) else {
            return Vec::new();
        };
        let targets = install::Targets::from_home(
            &home,
            std::env::var_os("CLAUDE_CONFIG_DIR").map(PathBuf::from),
            std::env::var_os("CODEX_HOME").map(PathBuf::from),
        );
        install::status(&targets, &exe)
            .agents
            .into_iter()
            .map(|status| {
                let summary = match status.installed() {
                    install::Installed::Yes => "installed".to_owned(),
                    install::Installed::No => "not installed".to_owned(),
                    install::Installed::Partly => {
                        format!("partly installed (missing {})", status.missing.join(", "))
                    }
                };
                Installation {
                    agent: match status.agent {
                        install::Agent::Claude => AgentKind::Claude,
                        install::Agent::Codex => AgentKind::Codex,
                    },
                    file: status.path.display().to_string(),
                    installed: status.installed() == install::Installed::Yes,
                    summary,
                }
            })
            .collect()
    }))
}
