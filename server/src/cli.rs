//! The command line: `agentdeck serve` and its settings, each also readable
//! from an `AGENTDECK_*` environment variable.

use crate::access::Secret;
use app::{
    db::{redact_password, Location},
    run::runner::{RunnerConfig, DEFAULT_MAX_RUNS},
    sync::scan::SyncConfig,
};
use clap::{
    builder::{BoolishValueParser, RangedU64ValueParser, TypedValueParser},
    error::ErrorKind,
    Args, Parser, Subcommand,
};
use std::{ffi::OsStr, net::IpAddr, path::PathBuf, time::Duration};

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
    /// Print every session across projects with its state, newest change
    /// first (for a terminal or a status bar).
    Ls(LsArgs),
    /// Print the stored access token (creating it if missing), or replace it.
    Token(TokenArgs),
    /// Forward one Claude Code or Codex hook to the server (the command
    /// `agentdeck hooks install` puts in the agents' settings). Always
    /// exits 0 within 2 s and prints nothing on stdout.
    Hook(HookArgs),
    /// Install, remove or check agentdeck's hooks in Claude Code's and
    /// Codex's settings, so sessions in terminals show up live.
    Hooks(HooksArgs),
    /// Send a message to a session of the running server and print its new
    /// state (with --wait, the answer).
    Send(SendArgs),
    /// Allow a pending approval request of the running server.
    Approve(ApproveArgs),
    /// Deny a pending approval request of the running server.
    Deny(DenyArgs),
    /// List the approval requests waiting for an answer.
    Approvals(ApprovalsArgs),
}

/// How to reach a running server: shared by the commands that talk to it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server [default: the one running with this data directory, else
    /// http://127.0.0.1:3000]. Its token comes from AGENTDECK_TOKEN, else
    /// the data directory.
    #[arg(long, env = "AGENTDECK_URL", value_name = "URL")]
    pub url: Option<String>,

    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The session: its id, a unique start of its id, or its exact name.
    pub session: String,

    /// What to send.
    pub message: String,

    /// Wait for the run to end and print the answer (exit 1 on an error).
    #[arg(long)]
    pub wait: bool,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request's id, or a unique start of a pending one's.
    pub request: String,

    /// Allow this for the rest of the session (the agent's suggestion).
    #[arg(long)]
    pub always: bool,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request's id, or a unique start of a pending one's.
    pub request: String,

    /// Why, for the agent to read.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// JSON (the server's array of approvals) instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct HooksArgs {
    #[command(subcommand)]
    pub action: HooksAction,
}

#[derive(Debug, Subcommand)]
pub enum HooksAction {
    /// Add agentdeck's hooks to ~/.claude/settings.json and ~/.codex/hooks.json
    /// (both unless one is named), keeping every other setting and hook.
    Install(HookAgents),
    /// Remove agentdeck's hooks again, and only those.
    Uninstall(HookAgents),
    /// What is installed, where, and when each agent last reported.
    Status(HookStatusArgs),
}

#[derive(Debug, Args)]
pub struct HookStatusArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct HookAgents {
    /// Claude Code only.
    #[arg(long)]
    pub claude: bool,
    /// Codex only.
    #[arg(long)]
    pub codex: bool,
    /// Print what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Where the data lives: shared by every command.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The database: a SQLite file (a path or sqlite://PATH), created with
    /// its directory if missing, readable by this user only; or a
    /// PostgreSQL URL (postgres://USER:PASSWORD@HOST/DB) that several
    /// instances share [default: <data dir>/agentdeck/agentdeck.db, e.g.
    /// ~/.local/share/agentdeck/agentdeck.db].
    #[arg(long, env = "AGENTDECK_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Claude Code transcripts folder [default: ~/.claude/projects].
    #[arg(long, env = "AGENTDECK_CLAUDE_PROJECTS", value_name = "DIR")]
    pub claude_projects: Option<PathBuf>,

    /// Codex transcripts folder [default: ~/.codex/sessions].
    #[arg(long, env = "AGENTDECK_CODEX_SESSIONS", value_name = "DIR")]
    pub codex_sessions: Option<PathBuf>,
}

impl DataArgs {
    /// The database: the flag (a PostgreSQL URL, a path, or `sqlite://PATH`),
    /// or `agentdeck/agentdeck.db` in the per-user data directory.
    pub fn database(&self) -> Result<Location, String> {
        match &self.database_url {
            Some(url) if is_postgres_url(url) => Ok(Location::Postgres(url.clone())),
            Some(url) => sqlite_path(url).map(Location::Sqlite),
            None => default_database_path(dirs::data_dir()).map(Location::Sqlite),
        }
    }

    /// The directory holding the SQLite database (with PostgreSQL, the
    /// per-user data directory), where the token files live too.
    pub fn data_dir(&self) -> Result<PathBuf, String> {
        let path = match self.database()? {
            Location::Sqlite(path) => path,
            Location::Postgres(_) => default_database_path(dirs::data_dir())?,
        };
        Ok(match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
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

/// A lease between 1 s and a day.
fn parse_lease(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (1.0..=86_400.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!(
            "{seconds} s is out of range: a lease is 1 s to 1 day"
        ))
    }
}

/// Whether `url` names a PostgreSQL database (either scheme, any case).
fn is_postgres_url(url: &str) -> bool {
    url_scheme(url).is_some_and(|scheme| {
        scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
    })
}

/// A `--database-url` as a SQLite file path. A URL with any other scheme is
/// refused before anything touches the disk: SQLite would take
/// `postgres://u@h/db` for a relative path and create a folder `postgres:`.
/// Only the scheme is quoted back, so a password in the URL is never printed.
fn sqlite_path(url: &str) -> Result<PathBuf, String> {
    let path = match url_scheme(url) {
        None => url,
        Some(scheme) if scheme.eq_ignore_ascii_case("sqlite") => &url[scheme.len() + 3..],
        Some(scheme) => {
            return Err(format!(
                "--database-url {}: agentdeck keeps its data in SQLite or PostgreSQL and does not speak {scheme}://; \
                 pass a SQLite file path (e.g. ~/agentdeck.db), sqlite://PATH or postgres://…",
                redact_password(url)
            ))
        }
    };
    if path.trim().is_empty() {
        return Err(
            "--database-url is empty: pass a SQLite file path (e.g. ~/agentdeck.db)".into(),
        );
    }
    Ok(PathBuf::from(path))
}

/// The scheme `url` starts with, if it looks like one (`^[a-zA-Z][a-zA-Z0-9+.-]*://`).
fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    valid.then_some(scheme)
}

/// The default database file. Without a per-user data directory there is no
/// private place to put it (a fixed path under /tmp would be predictable to
/// every other user), so the user has to name one.
fn default_database_path(data_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    let dir = data_dir.ok_or(
        "there is no per-user data directory to keep the database in ($HOME and $XDG_DATA_HOME are unset): \
         pass --database-url PATH",
    )?;
    Ok(dir.join("agentdeck").join("agentdeck.db"))
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
pub struct LsArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Only sessions in this state.
    #[arg(long, value_parser = ["idle", "working", "error"])]
    pub state: Option<String>,

    /// JSON (an array of {session, project_name}) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Replace the stored token with a new one; the old one keeps working
    /// until the server restarts.
    #[arg(long)]
    pub rotate: bool,

    /// The read-only token (views everything, changes nothing) instead of the full one.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// Which agent runs this hook.
    #[arg(value_parser = ["claude", "codex"])]
    pub agent: String,

    /// The server to report to [default: the one running with this data
    /// directory, else http://127.0.0.1:3000].
    #[arg(long, env = "AGENTDECK_URL", value_name = "URL")]
    pub url: Option<String>,

    #[command(flatten)]
    pub data: DataArgs,

    /// Codex's `notify` program gets the event's JSON as its last argument.
    #[arg(value_name = "NOTIFY_JSON")]
    pub notify: Option<String>,
}

/// Who may use the server. Token values are never shown in `--help` or logs.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// Access token every request must carry (Authorization: Bearer, or the
    /// login cookie) [default: none on loopback; on any other address a
    /// random one, stored in <data dir>/token and printed at start].
    #[arg(
        long,
        env = "AGENTDECK_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        value_parser = SecretParser
    )]
    pub token: Option<Secret>,

    /// Require a token on loopback too (shared machines, ssh forwards,
    /// containers): any local user can reach 127.0.0.1.
    #[arg(
        long,
        env = "AGENTDECK_REQUIRE_TOKEN",
        value_parser = BoolishValueParser::new()
    )]
    pub require_token: bool,

    /// A second token that views everything live and changes nothing
    /// [default: <data dir>/read-only-token if `agentdeck token --read-only` made one].
    #[arg(
        long,
        env = "AGENTDECK_READ_ONLY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        value_parser = SecretParser
    )]
    pub read_only_token: Option<Secret>,

    /// Another host name (or address) browsers may use to reach this server,
    /// e.g. the machine's DNS name; repeatable (comma-separated in the
    /// environment). Loopback names and the bound address are always
    /// allowed; other names are refused (DNS rebinding).
    #[arg(
        long = "allowed-host",
        env = "AGENTDECK_ALLOWED_HOSTS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
}

/// Parses a token without ever echoing it: clap's own errors quote the
/// value, which would put a secret on the terminal and into logs.
#[derive(Clone)]
struct SecretParser;

impl TypedValueParser for SecretParser {
    type Value = Secret;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Secret, clap::Error> {
        let flag = arg.map(|a| a.to_string()).unwrap_or_else(|| "token".into());
        value
            .to_str()
            .ok_or("it is not valid UTF-8".to_owned())
            .and_then(|v| Secret::new(v.to_owned()))
            .map_err(|reason| {
                clap::Error::raw(
                    ErrorKind::ValueValidation,
                    format!("invalid {flag}: {reason}\n"),
                )
                .with_cmd(cmd)
            })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Seconds an instance's heartbeat stays good: another instance on the
    /// same database interrupts this one's runs once it has been silent
    /// (or unable to reach the database) this long.
    #[arg(long, env = "AGENTDECK_LEASE", value_name = "SECONDS", default_value_t = 30.0,
          value_parser = parse_lease)]
    pub lease: f64,

    /// Address to listen on. The server runs commands for whoever can reach
    /// it, so it listens on loopback only unless told otherwise.
    #[arg(long, env = "AGENTDECK_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Port to listen on; 0 picks a free one (the URL is printed at start).
    #[arg(long, env = "AGENTDECK_PORT", default_value_t = 3000)]
    pub port: u16,

    /// Directory holding the built site (`pkg/` with the WASM, JS and CSS),
    /// served from disk [default: the site embedded in a release binary;
    /// without one, `site/` beside the binary's directory, i.e. target/site].
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

    /// Runs in progress at once across all sessions; a message sent beyond
    /// it is refused with 429.
    #[arg(
        long,
        env = "AGENTDECK_MAX_RUNS",
        value_name = "N",
        default_value_t = DEFAULT_MAX_RUNS,
        value_parser = at_least_one()
    )]
    pub max_runs: usize,

    /// Live event streams open at once (every open page holds one); one
    /// beyond it is refused with 503 and `Retry-After`.
    #[arg(
        long,
        env = "AGENTDECK_MAX_STREAMS",
        value_name = "N",
        default_value_t = 4096,
        value_parser = at_least_one()
    )]
    pub max_streams: usize,

    /// Live event streams open at once from one client address.
    #[arg(
        long,
        env = "AGENTDECK_MAX_STREAMS_PER_CLIENT",
        value_name = "N",
        default_value_t = 256,
        value_parser = at_least_one()
    )]
    pub max_streams_per_client: usize,

    /// Seconds a client may take to send a request's headers, and to start
    /// its next request on a kept-alive connection; slower connections are
    /// closed (a slowloris client cannot hold connections open).
    #[arg(
        long,
        env = "AGENTDECK_HEADER_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_timeout: u64,

    #[command(flatten)]
    pub access: AccessArgs,

    /// Send notifications (a run failed, needs you, finished) to this URL;
    /// repeatable (space-separated in the environment). `slack=URL`,
    /// `discord=URL`, `ntfy=URL` or `webhook=URL` name the kind; otherwise
    /// it is told from the URL (hooks.slack.com, discord.com/api/webhooks,
    /// ntfy.sh or an `ntfy+https://` prefix; else a JSON webhook).
    #[arg(
        long = "notify",
        env = "AGENTDECK_NOTIFY",
        value_name = "URL",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    pub notify: Vec<String>,

    /// The dashboard's address as links in notifications start with, e.g.
    /// https://deck.example.org [default: the address it listens on].
    #[arg(long, env = "AGENTDECK_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Milliseconds before a failed notification's first retry (each later
    /// one waits twice as long). For tests.
    #[arg(
        long,
        env = "AGENTDECK_NOTIFY_RETRY_MS",
        hide = true,
        default_value_t = 1000
    )]
    pub notify_retry_ms: u64,
}

/// A count limit: zero would refuse everything, so it is not accepted.
fn at_least_one() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..)
}

impl ServeArgs {
    /// How agent runs are started and bounded.
    pub fn runner_config(&self) -> RunnerConfig {
        RunnerConfig {
            claude_bin: self.claude_bin.clone(),
            codex_bin: self.codex_bin.clone(),
            run_timeout: Duration::from_secs(self.run_timeout),
            max_runs: self.max_runs,
            timings: app::instance::Timings::with_lease(Duration::from_secs_f64(self.lease)),
            ..RunnerConfig::default()
        }
    }

    /// Where the site comes from: the flag's directory; else the copy
    /// embedded in the binary; else `../site` relative to the binary
    /// (cargo-leptos puts the binary in `target/<profile>/` and the site in
    /// `target/site`), or `target/site` under the working directory.
    pub fn site(&self) -> crate::site::Site {
        crate::site::Site::choose(self.site_root.clone(), || {
            std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.join("site")))
                .filter(|site| site.join("pkg").is_dir())
                .unwrap_or_else(|| PathBuf::from("target/site"))
        })
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
        assert!(
            matches!(args.data.database().unwrap(), Location::Sqlite(path) if path.ends_with("agentdeck.db"))
        );
        assert_eq!(args.max_runs, DEFAULT_MAX_RUNS);
        assert_eq!(args.runner_config().max_runs, DEFAULT_MAX_RUNS);
        assert_eq!((args.max_streams, args.max_streams_per_client), (4096, 256));
        assert_eq!(args.header_timeout, 10);
    }

    #[test]
    fn limits_of_zero_are_refused() {
        for flag in [
            "--max-runs",
            "--max-streams",
            "--max-streams-per-client",
            "--header-timeout",
        ] {
            let parsed = Cli::try_parse_from(["agentdeck", "serve", flag, "0"]);
            assert!(parsed.is_err(), "{flag} 0 was accepted");
        }
    }

    #[test]
    fn database_urls_are_postgres_sqlite_paths_or_refused_by_scheme() {
        let path = |url: &str| sqlite_path(url).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(path("/data/agentdeck.db").unwrap(), "/data/agentdeck.db");
        assert_eq!(path("rel/x.db").unwrap(), "rel/x.db");
        assert_eq!(path("sqlite:///data/x.db").unwrap(), "/data/x.db");
        assert_eq!(path("sqlite://x.db").unwrap(), "x.db");
        assert_eq!(path("SQLite://x.db").unwrap(), "x.db");
        // Not a scheme: SQLite paths and URIs without `://` are SQLite's to read.
        assert_eq!(path("file:x.db?mode=rwc").unwrap(), "file:x.db?mode=rwc");
        assert_eq!(path("./a://b").unwrap(), "./a://b");
        assert_eq!(path("1x://b").unwrap(), "1x://b");

        for (url, scheme) in [
            ("mysql://root:pw@localhost/agentdeck", "mysql://"),
            ("http://example.com/db", "http://"),
            ("postgresql+psycopg://u@h/db", "postgresql+psycopg://"),
            ("file:///tmp/x.db", "file://"),
        ] {
            let err = path(url).unwrap_err();
            assert!(err.contains(scheme), "{url}: {err}");
            assert!(err.contains("SQLite file path"), "{url}: {err}");
            assert!(
                !err.contains("secret") && !err.contains("pw@"),
                "{url}: {err}"
            );
        }
        assert!(path("").unwrap_err().contains("empty"));
        assert!(path("sqlite://").unwrap_err().contains("empty"));
        assert!(path("mysql://u:secret@h/db")
            .unwrap_err()
            .contains("mysql://u:***@h/db"));
        for url in ["postgres://u:secret@h/db", "PostgreSQL://h/db"] {
            assert!(is_postgres_url(url), "{url}");
        }
        assert!(!is_postgres_url("postgres:x.db"));
        assert_eq!(
            redact_password("postgres://u@h:5/db"),
            "postgres://u@h:5/db"
        );
        assert_eq!(
            redact_password("pg://u:p@ss@h/db?x=1"),
            "pg://u:***@h/db?x=1"
        );
    }

    #[test]
    fn without_a_data_directory_the_database_must_be_named() {
        let err = default_database_path(None).unwrap_err();
        assert!(err.contains("--database-url"), "{err}");
        let path = default_database_path(Some(PathBuf::from("/home/u/.local/share"))).unwrap();
        assert_eq!(
            path,
            PathBuf::from("/home/u/.local/share/agentdeck/agentdeck.db")
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let cli = Cli::try_parse_from([
            "agentdeck",
            "serve",
            "--token",
            "0123456789abcdef-full",
            "--read-only-token",
            "0123456789abcdef-view",
            "--allowed-host",
            "pi.local,deck.example",
            "--allowed-host",
            "10.0.0.7",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.access.token.unwrap().expose(), "0123456789abcdef-full");
        assert_eq!(
            args.access.allowed_hosts,
            ["pi.local", "deck.example", "10.0.0.7"]
        );
    }

    #[test]
    fn a_weak_or_unusable_token_is_refused_with_the_reason() {
        for bad in [
            "short",
            "has space in it 0123456789",
            "semi;colon0123456789",
        ] {
            let err = Cli::try_parse_from(["agentdeck", "serve", "--token", bad]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("token"), "{text}");
            assert!(!text.contains(bad), "the error echoes the secret: {text}");
        }
    }

    #[test]
    fn token_command_takes_rotate_and_read_only() {
        let cli = Cli::try_parse_from(["agentdeck", "token", "--rotate", "--read-only"]).unwrap();
        let Command::Token(args) = cli.command else {
            panic!("not token")
        };
        assert!(args.rotate && args.read_only);
    }

    #[test]
    fn the_data_dir_is_the_database_folder() {
        let cli =
            Cli::try_parse_from(["agentdeck", "sync", "--database-url", "/srv/deck/a.db"]).unwrap();
        let Command::Sync(args) = cli.command else {
            panic!("not sync")
        };
        assert_eq!(
            args.data.data_dir().unwrap(),
            std::path::Path::new("/srv/deck")
        );
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
            "--max-runs",
            "AGENTDECK_MAX_RUNS",
            "--max-streams",
            "AGENTDECK_MAX_STREAMS",
            "--max-streams-per-client",
            "AGENTDECK_MAX_STREAMS_PER_CLIENT",
            "--header-timeout",
            "AGENTDECK_HEADER_TIMEOUT",
            "--token",
            "AGENTDECK_TOKEN",
            "--require-token",
            "AGENTDECK_REQUIRE_TOKEN",
            "--read-only-token",
            "AGENTDECK_READ_ONLY_TOKEN",
            "--allowed-host",
            "AGENTDECK_ALLOWED_HOSTS",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }
}
