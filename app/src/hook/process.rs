//! The agent process behind a hook, and whether it is still running. Claude
//! Code runs command hooks through `sh -c`, so the agent is the nearest
//! ancestor of `agentdeck hook` that is not a shell. A pid alone can be
//! reused after the agent exits: its start time (from `/proc`, on Linux)
//! tells the two apart.

use nix::{
    errno::Errno,
    sys::signal::kill,
    unistd::{getppid, Pid},
};

/// Programs that only pass a hook on: never the agent itself.
const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "mksh",
    "ash",
    "busybox",
    "env",
    "timeout",
    "nohup",
    "sudo",
    "agentdeck",
];

/// This machine's name: a pid means something only on its own machine.
pub fn this_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A process, told apart from a later one with the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentProcess {
    pub pid: i32,
    /// Start time in clock ticks after boot; `None` where `/proc` is missing.
    pub started: Option<i64>,
}

impl AgentProcess {
    /// The agent that ran this hook: the nearest ancestor that is not a
    /// shell, or `None` when there is none below init.
    pub fn of_this_hook() -> Option<Self> {
        let mut pid = getppid().as_raw();
        // A bound, in case `/proc` reports a loop.
        for _ in 0..16 {
            if pid <= 1 {
                return None;
            }
            let stat = Stat::read(pid)?;
            if !SHELLS.contains(&stat.name.as_str()) {
                return Some(Self {
                    pid,
                    started: Some(stat.started),
                });
            }
            pid = stat.parent;
        }
        None
    }

    /// Whether this process still runs (a zombie counts as gone: it has exited).
    pub fn is_running(&self) -> bool {
        match Stat::read(self.pid) {
            Some(stat) => !stat.zombie && self.started.is_none_or(|s| s == stat.started),
            // No `/proc` entry: on Linux the process is gone; elsewhere ask
            // the kernel (EPERM means it exists but belongs to another user).
            None if std::path::Path::new("/proc/self/stat").exists() => false,
            None => !matches!(kill(Pid::from_raw(self.pid), None), Err(Errno::ESRCH)),
        }
    }
}

/// What `/proc/<pid>/stat` says about a process.
struct Stat {
    name: String,
    parent: i32,
    started: i64,
    zombie: bool,
}

impl Stat {
    fn read(pid: i32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&text)
    }

    /// `pid (name) state ppid …`, start time being field 22. The name may
    /// hold spaces and parentheses: it ends at the last `)`.
    fn parse(text: &str) -> Option<Self> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let name = text.get(open + 1..close)?.to_owned();
        let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
        // fields[0] is field 3 (state); field N is fields[N - 3].
        Some(Self {
            name,
            zombie: matches!(*fields.first()?, "Z" | "X"),
            parent: fields.get(1)?.parse().ok()?,
            started: fields.get(19)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_with_odd_names() {
        let line = "4242 (my (odd) prog) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(
            (stat.name.as_str(), stat.parent, stat.started, stat.zombie),
            ("my (odd) prog", 17, 987_654, false)
        );
        assert!(Stat::parse("garbage").is_none());
    }

    #[test]
    fn this_process_runs_and_a_wrong_start_time_is_another_process() {
        let me = std::process::id() as i32;
        let started = Stat::read(me).map(|s| s.started);
        assert!(AgentProcess { pid: me, started }.is_running());
        if let Some(started) = started {
            let reused = AgentProcess {
                pid: me,
                started: Some(started + 1),
            };
            assert!(!reused.is_running());
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!AgentProcess { pid, started: None }.is_running());
    }
}
