//! The command line: `agentdeck serve` and its settings, each also readable
//! from an `AGENTDECK_*` environment variable.

use app::{run::runner::RunnerConfig, sync::scan::SyncConfig};
use clap::{Args, Parser, Subcommand};
use std::{net::IpAddr, path::PathBuf, time::Duration};

/// A live dashboard for coding-agent sessions.
#[derive(Debug, Parser)]
#[command(name = "agentdeck", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web dashboard.
    Serve(ServeArgs),
    /// Import sessions from Claude Code and Codex transcripts, then exit.
    Sync(SyncArgs),
}

/// Where the data lives: shared by every command.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// SQLite database file, created with its directory if missing
    /// [default: <data dir>/agentdeck/agentdeck.db, e.g. ~/.local/share/agentdeck/agentdeck.db].
    #[arg(long, env = "AGENTDECK_DATABASE_URL", value_name = "PATH")]
    pub database_url: Option<String>,

    /// Claude Code transcripts folder [default: ~/.claude/projects].
    #[arg(long, env = "AGENTDECK_CLAUDE_PROJECTS", value_name = "DIR")]
    pub claude_projects: Option<PathBuf>,

    /// Codex transcripts folder [default: ~/.codex/sessions].
    #[arg(long, env = "AGENTDECK_CODEX_SESSIONS", value_name = "DIR")]
    pub codex_sessions: Option<PathBuf>,
}

impl DataArgs {
    /// The database location: the flag, or the per-user data directory.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("agentdeck")
                .join("agentdeck.db")
                .to_string_lossy()
                .into_owned()
        })
    }

    /// Where transcripts are read from.
    pub fn sync_config(&self) -> SyncConfig {
        let defaults = SyncConfig::default();
        SyncConfig {
            claude_root: self.claude_projects.clone().unwrap_or(defaults.claude_root),
            codex_root: self.codex_sessions.clone().unwrap_or(defaults.codex_root),
        }
    }
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Only this project (its directory); every project when omitted.
    #[arg(long, value_name = "PATH")]
    pub project: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Address to listen on. The server runs commands for whoever can reach
    /// it, so it listens on loopback only unless told otherwise.
    #[arg(long, env = "AGENTDECK_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Port to listen on; 0 picks a free one (the URL is printed at start).
    #[arg(long, env = "AGENTDECK_PORT", default_value_t = 3000)]
    pub port: u16,

    /// Directory holding the built site (`pkg/` with the WASM, JS and CSS)
    /// [default: `site/` beside the binary's directory, i.e. target/site].
    #[arg(long, env = "AGENTDECK_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,

    /// Claude Code executable [default: `claude` found on PATH].
    #[arg(long, env = "AGENTDECK_CLAUDE_BIN", value_name = "PATH")]
    pub claude_bin: Option<PathBuf>,

    /// Codex executable [default: `codex` found on PATH].
    #[arg(long, env = "AGENTDECK_CODEX_BIN", value_name = "PATH")]
    pub codex_bin: Option<PathBuf>,

    /// Seconds a run may take before it is stopped and recorded as an error.
    #[arg(
        long,
        env = "AGENTDECK_RUN_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 1800
    )]
    pub run_timeout: u64,
}

impl ServeArgs {
    /// How agent runs are started and bounded.
    pub fn runner_config(&self) -> RunnerConfig {
        RunnerConfig {
            claude_bin: self.claude_bin.clone(),
            codex_bin: self.codex_bin.clone(),
            run_timeout: Duration::from_secs(self.run_timeout),
            ..RunnerConfig::default()
        }
    }

    /// The site directory: the flag, or `../site` relative to the binary
    /// (cargo-leptos puts the binary in `target/<profile>/` and the site in
    /// `target/site`), or `target/site` under the working directory.
    pub fn site_root(&self) -> PathBuf {
        if let Some(root) = &self.site_root {
            return root.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("site")))
            .filter(|site| site.join("pkg").is_dir())
            .unwrap_or_else(|| PathBuf::from("target/site"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_to_loopback_port_3000() {
        let cli = Cli::try_parse_from(["agentdeck", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.bind.to_string(), "127.0.0.1");
        assert_eq!(args.port, 3000);
        assert!(args.data.database_url().ends_with("agentdeck.db"));
    }

    #[test]
    fn help_explains_every_flag_and_its_environment_variable() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in [
            "--bind",
            "AGENTDECK_BIND",
            "127.0.0.1",
            "--port",
            "AGENTDECK_PORT",
            "--database-url",
            "AGENTDECK_DATABASE_URL",
            "--site-root",
            "--claude-bin",
            "AGENTDECK_CODEX_BIN",
            "--run-timeout",
            "--claude-projects",
            "AGENTDECK_CODEX_SESSIONS",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }
}
