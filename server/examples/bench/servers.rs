//! The servers under test, as processes of their own: the release
//! `agentdeck` on a database in a scratch directory (or on a PostgreSQL
//! database several of them share), and `bare_sse`.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Where the binaries are.
#[derive(Clone)]
pub struct Binaries {
    pub agentdeck: PathBuf,
    pub bare: PathBuf,
    /// The built site (`target/site`), when there is one.
    pub site_root: Option<PathBuf>,
}

/// Each change's commit instant, as the server logged it (`seq` → µs).
pub type Commits = Arc<Mutex<HashMap<i64, u64>>>;

/// A running agentdeck, stopped when dropped.
pub struct Agentdeck {
    pub child: Child,
    pub addr: String,
    pub commits: Commits,
    /// When its "listening" line was read (µs since the epoch).
    pub listening_us: u64,
}

impl Agentdeck {
    /// Starts agentdeck on the database in `dir` (on `port`, 0 for any).
    pub fn start(bins: &Binaries, dir: &Path, port: u16) -> Result<Self, String> {
        Self::start_logging(bins, dir, port, false)
    }

    /// [`Agentdeck::start`], logging each commit's instant into `commits`
    /// when `commit_log` (a line per commit, so only where latency is measured).
    pub fn start_logging(
        bins: &Binaries,
        dir: &Path,
        port: u16,
        commit_log: bool,
    ) -> Result<Self, String> {
        Self::launch(bins, dir, None, port, commit_log)
    }

    /// [`Agentdeck::start_logging`] on the PostgreSQL database `url` (any
    /// number of instances may share it), its other files in `dir`.
    pub fn start_postgres(
        bins: &Binaries,
        dir: &Path,
        url: &str,
        commit_log: bool,
    ) -> Result<Self, String> {
        Self::launch(bins, dir, Some(url), 0, commit_log)
    }

    fn launch(
        bins: &Binaries,
        dir: &Path,
        database_url: Option<&str>,
        port: u16,
        commit_log: bool,
    ) -> Result<Self, String> {
        for sub in ["claude", "codex"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let mut command = Command::new(&bins.agentdeck);
        command
            .args(["serve", "--port", &port.to_string()])
            .args(data_args_on(dir, database_url))
            // Every page of the bench comes from one address.
            .args(["--max-streams", "8192", "--max-streams-per-client", "8192"])
            .env(
                "AGENTDECK_LOG",
                if commit_log {
                    "warn,app::db=trace"
                } else {
                    "warn"
                },
            )
            .env("NO_COLOR", "1")
            .env("CLAUDE_CONFIG_DIR", dir.join("claude-config"))
            .env("CODEX_HOME", dir.join("codex-home"))
            .env_remove("AGENTDECK_TOKEN")
            .env_remove("AGENTDECK_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(site) = &bins.site_root {
            command.arg("--site-root").arg(site);
        }
        if database_url.is_some() {
            // A PostgreSQL server keeps its URL and token files in the
            // per-user data directory: one in `dir`, never the user's own.
            command.env("XDG_DATA_HOME", dir.join("data"));
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", bins.agentdeck.display()))?;
        let addr = listening_line(&mut child, "agentdeck listening on http://")?;
        let listening_us = crate::http::now_us();
        let commits = Commits::default();
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::clone(&commits);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((seq, at)) = commit_of(&line) {
                    log.lock().expect("commit log").insert(seq, at);
                } else if line.contains("ERROR") || line.contains("panicked") {
                    eprintln!("  agentdeck: {line}");
                }
            }
        });
        Ok(Self {
            child,
            addr,
            commits,
            listening_us,
        })
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// SIGTERM, then waits for the process to end.
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for Agentdeck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags that put agentdeck's database and transcript folders in `dir`.
pub fn data_args(dir: &Path) -> [std::ffi::OsString; 6] {
    data_args_on(dir, None)
}

/// [`data_args`], on the database `url` when there is one.
fn data_args_on(dir: &Path, url: Option<&str>) -> [std::ffi::OsString; 6] {
    [
        "--database-url".into(),
        url.map_or_else(|| dir.join("agentdeck.db").into(), Into::into),
        "--claude-projects".into(),
        dir.join("claude").into(),
        "--codex-sessions".into(),
        dir.join("codex").into(),
    ]
}

/// `seq` and `committed_us` of a "change committed" trace line.
fn commit_of(line: &str) -> Option<(i64, u64)> {
    if !line.contains("change committed") {
        return None;
    }
    let field = |name: &str| {
        let start = line.find(name)? + name.len();
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<u64>().ok()
    };
    Some((field(" seq=")? as i64, field("committed_us=")?))
}

/// A running bare_sse, stopped when dropped.
pub struct Bare {
    pub child: Child,
    pub addr: String,
}

impl Bare {
    /// Starts bare_sse; `page` is the file it serves at `/page`.
    pub fn start(bins: &Binaries, page: Option<&Path>) -> Result<Self, String> {
        let mut command = Command::new(&bins.bare);
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        if let Some(page) = page {
            command.env("BARE_PAGE", page);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", bins.bare.display()))?;
        let addr = listening_line(&mut child, "bare_sse listening on http://")?;
        Ok(Self { child, addr })
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's first stdout line, which must start with `prefix`
/// (followed by the address).
fn listening_line(child: &mut Child, prefix: &str) -> Result<String, String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| format!("the server did not start: {line:?}"))?
        .to_owned();
    // Keep reading, so a server that prints more never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines().map_while(Result::ok) {});
    Ok(addr)
}

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// SIGTERM, then up to 10 s for the process to end, then SIGKILL.
pub fn stop(child: &mut Child) {
    use nix::{sys::signal, unistd::Pid};
    let _ = signal::kill(Pid::from_raw(child.id() as i32), signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}
