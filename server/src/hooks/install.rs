//! `agentdeck hooks install | uninstall | status`: puts agentdeck's hook
//! command into Claude Code's and Codex's hook files, and takes it out
//! again, without disturbing anything else in them.
//!
//! Our entries are the handlers whose command runs an executable named
//! `agentdeck` with `hook claude` (or `hook codex`), wherever it lives, so
//! a moved executable replaces its old entry instead of adding a second one.
//! A file is rewritten only when its content changes: atomically, with its
//! key order and permissions kept, the previous content saved next to it as
//! `<file>.agentdeck-backup`. Nothing here reads the environment: the caller
//! passes the directories and the executable.

use serde_json::{json, Map, Value};
use std::{
    borrow::Cow,
    collections::HashSet,
    fmt::Write as _,
    fs::{self, Permissions},
    io::{self, Write as _},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

/// The file name that marks a hook command as ours.
const EXE_NAME: &str = "agentdeck";

/// How long an agent waits for our hook command. It only hands the event to
/// the server, so anything longer would just stall the session (and Claude
/// Code's SessionEnd budget grows to the longest timeout) when the server
/// hangs.
pub const HOOK_TIMEOUT_SECS: u64 = 10;

/// How long Claude Code waits for our `PermissionRequest` hook: it may
/// wait for a decision made in the dashboard (the project's own bound is
/// at most this).
pub const APPROVAL_HOOK_TIMEOUT_SECS: u64 = 3600;

/// The handler for `event`: a `PermissionRequest` gets the longer timeout.
fn for_event(handler: &Value, event: &str) -> Value {
    let mut handler = handler.clone();
    if event == "PermissionRequest" {
        handler["timeout"] = json!(APPROVAL_HOOK_TIMEOUT_SECS);
    }
    handler
}

/// Appended to a hook file's name for the copy of its previous content.
pub const BACKUP_SUFFIX: &str = ".agentdeck-backup";

const CLAUDE_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PermissionRequest",
    "Notification",
    "PostToolUse",
    "Stop",
    "StopFailure",
    "SessionEnd",
];

const CODEX_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PermissionRequest",
    "PostToolUse",
    "Stop",
];

/// An agent whose hooks agentdeck can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Claude,
    Codex,
}

impl Agent {
    /// Every agent: what `install`/`uninstall` act on when given none.
    pub const ALL: [Agent; 2] = [Agent::Claude, Agent::Codex];

    /// The name shown to the user.
    pub fn name(self) -> &'static str {
        match self {
            Agent::Claude => "Claude Code",
            Agent::Codex => "Codex",
        }
    }

    /// The word after `hook` in our command (`agentdeck hook claude`).
    pub fn hook_arg(self) -> &'static str {
        match self {
            Agent::Claude => "claude",
            Agent::Codex => "codex",
        }
    }

    /// The hook events agentdeck listens to.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            Agent::Claude => CLAUDE_EVENTS,
            Agent::Codex => CODEX_EVENTS,
        }
    }
}

/// Where each agent keeps its user-level configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// `~/.claude`, or `$CLAUDE_CONFIG_DIR`.
    pub claude_dir: PathBuf,
    /// `~/.codex`, or `$CODEX_HOME`.
    pub codex_dir: PathBuf,
}

impl Targets {
    /// The agents' own defaults under `home`, unless the caller read
    /// `$CLAUDE_CONFIG_DIR` / `$CODEX_HOME` (an empty value counts as unset).
    pub fn from_home(
        home: &Path,
        claude_config_dir: Option<PathBuf>,
        codex_home: Option<PathBuf>,
    ) -> Self {
        let or_default = |dir: Option<PathBuf>, default: &str| {
            dir.filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or_else(|| home.join(default))
        };
        Self {
            claude_dir: or_default(claude_config_dir, ".claude"),
            codex_dir: or_default(codex_home, ".codex"),
        }
    }

    /// The file holding `agent`'s user-level hooks.
    pub fn hooks_file(&self, agent: Agent) -> PathBuf {
        match agent {
            Agent::Claude => self.claude_dir.join("settings.json"),
            Agent::Codex => self.codex_dir.join("hooks.json"),
        }
    }

    /// Codex's config, where older versions take a `notify` program.
    pub fn codex_config(&self) -> PathBuf {
        self.codex_dir.join("config.toml")
    }
}

/// Why a hook file was not changed. Nothing is written when one is
/// returned, not even to the other agents' files.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{} is not valid JSON ({source}); it was left untouched: fix it, or move it away, \
         and run this again",
        path.display()
    )]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{}: {problem}, so agentdeck cannot add its hooks; it was left untouched: fix it, \
         or move it away, and run this again",
        path.display()
    )]
    Unexpected { path: PathBuf, problem: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{}: {problem}", path.display())]
    Exe {
        path: PathBuf,
        problem: &'static str,
    },
}

/// What happened to one file (or, in a dry run, what would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    /// Already as asked: the file was not touched.
    Unchanged,
}

/// Which command produced an [`Outcome`]: it words the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Install,
    Uninstall,
}

/// The result for one agent's hook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub agent: Agent,
    pub operation: Operation,
    pub path: PathBuf,
    pub change: Change,
    /// Where the previous content was saved (none when nothing was
    /// written, the file is new, or this is a dry run).
    pub backup: Option<PathBuf>,
    /// Dry run only, when something would change: the file's new content.
    pub preview: Option<String>,
}

impl Outcome {
    /// The lines to print for this file.
    pub fn render(&self) -> String {
        let (agent, path) = (self.agent.name(), self.path.display());
        let mut text = match (self.operation, self.change, self.preview.is_some()) {
            (Operation::Install, Change::Unchanged, _) => {
                format!("{agent}: already installed in {path}")
            }
            (Operation::Uninstall, Change::Unchanged, _) => {
                format!("{agent}: not installed in {path}, nothing to remove")
            }
            (Operation::Install, Change::Created, false) => {
                format!("{agent}: created {path} with agentdeck's hooks")
            }
            (Operation::Install, Change::Updated, false) => {
                format!("{agent}: added agentdeck's hooks to {path}")
            }
            (Operation::Uninstall, _, false) => {
                format!("{agent}: removed agentdeck's hooks from {path}")
            }
            (_, Change::Created, true) => format!("{agent}: would create {path}:"),
            (_, Change::Updated, true) => format!("{agent}: would change {path} to:"),
        };
        if let Some(backup) = &self.backup {
            let _ = write!(text, " (previous content saved as {})", backup.display());
        }
        if let Some(preview) = &self.preview {
            text.push('\n');
            text.push_str(preview.trim_end());
        } else if self.operation == Operation::Install && self.change != Change::Unchanged {
            text.push_str(match self.agent {
                Agent::Claude => "\n  Sessions started from now on report to agentdeck.",
                Agent::Codex => {
                    "\n  Codex runs new hooks only once you trust them: open /hooks in codex."
                }
            });
        }
        text
    }
}

/// Adds agentdeck's hooks for `agents` (none: all of them), running `exe`
/// (absolute, named `agentdeck`), replacing any entry of an earlier
/// install. With `dry_run`, only reports.
pub fn install(
    targets: &Targets,
    agents: &[Agent],
    exe: &Path,
    dry_run: bool,
) -> Result<Vec<Outcome>, InstallError> {
    let exe = checked_exe(exe)?;
    let plans = selected(agents)
        .into_iter()
        .map(|agent| {
            let handler = json!({
                "type": "command",
                "command": format!("{} hook {}", sh_quote(exe), agent.hook_arg()),
                "timeout": HOOK_TIMEOUT_SECS,
            });
            plan(agent, &targets.hooks_file(agent), Some(&handler))
        })
        .collect::<Result<Vec<_>, _>>()?;
    carry_out(plans, Operation::Install, dry_run)
}

/// Removes agentdeck's hooks for `agents` (none: all of them), and the
/// matcher groups and events left empty by that; nothing else.
pub fn uninstall(
    targets: &Targets,
    agents: &[Agent],
    dry_run: bool,
) -> Result<Vec<Outcome>, InstallError> {
    let plans = selected(agents)
        .into_iter()
        .map(|agent| plan(agent, &targets.hooks_file(agent), None))
        .collect::<Result<Vec<_>, _>>()?;
    carry_out(plans, Operation::Uninstall, dry_run)
}

fn selected(agents: &[Agent]) -> Vec<Agent> {
    let agents = if agents.is_empty() {
        &Agent::ALL[..]
    } else {
        agents
    };
    let mut unique = Vec::new();
    for &agent in agents {
        if !unique.contains(&agent) {
            unique.push(agent);
        }
    }
    unique
}

fn checked_exe(exe: &Path) -> Result<&str, InstallError> {
    let problem = if !exe.is_absolute() {
        "the hook command needs the absolute path of the agentdeck executable"
    } else if exe.file_name().is_none_or(|name| name != EXE_NAME) {
        "the executable must be named agentdeck, or a reinstall could not recognise its hooks"
    } else {
        return exe.to_str().ok_or(InstallError::Exe {
            path: exe.to_owned(),
            problem: "the executable's path is not UTF-8, which a JSON hook file cannot hold",
        });
    };
    Err(InstallError::Exe {
        path: exe.to_owned(),
        problem,
    })
}

/// One file's intended change, worked out before anything is written.
struct Plan {
    agent: Agent,
    /// The path as the user knows it.
    path: PathBuf,
    /// Where the content really lives (the target of a symlink).
    real: PathBuf,
    before: Option<String>,
    after: String,
    change: Change,
}

/// Reads `path` and edits it in memory: `handler` added, or with `None`
/// our entries removed.
fn plan(agent: Agent, path: &Path, handler: Option<&Value>) -> Result<Plan, InstallError> {
    let real = real_path(path)?;
    let before = match fs::read_to_string(&real) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(InstallError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let original = parse(path, before.as_deref())?;
    let mut doc = original.clone();
    edit(&mut doc, agent, handler).map_err(|problem| InstallError::Unexpected {
        path: path.to_owned(),
        problem,
    })?;
    let after = pretty(&doc);
    // Compared as JSON (key order included, unlike `Value`'s `==`), so a
    // file merely laid out differently is left alone.
    let change = if after == pretty(&original) {
        Change::Unchanged
    } else if before.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    Ok(Plan {
        agent,
        path: path.to_owned(),
        real,
        before,
        after,
        change,
    })
}

/// A symlinked hook file (dotfile managers do that) is edited where it
/// points, so the link survives.
fn real_path(path: &Path) -> Result<PathBuf, InstallError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|source| InstallError::Read {
                path: path.to_owned(),
                source,
            })
        }
        _ => Ok(path.to_owned()),
    }
}

/// A missing or blank file counts as `{}`.
fn parse(path: &Path, text: Option<&str>) -> Result<Value, InstallError> {
    match text {
        Some(text) if !text.trim().is_empty() => {
            serde_json::from_str(text).map_err(|source| InstallError::NotJson {
                path: path.to_owned(),
                source,
            })
        }
        _ => Ok(Value::Object(Map::new())),
    }
}

/// The layout Claude Code itself writes: two spaces, a final newline.
fn pretty(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Puts `handler` under each of `agent`'s events, in place of our earlier
/// entry where there is one; with `None`, removes our entries. Other
/// handlers stay where they are; a matcher group or event that our removal
/// leaves empty goes too, as does a `hooks` object left empty.
fn edit(doc: &mut Value, agent: Agent, handler: Option<&Value>) -> Result<(), String> {
    let root = doc
        .as_object_mut()
        .ok_or("the file does not hold a JSON object")?;
    match root.get("hooks") {
        Some(Value::Object(_)) => {}
        Some(_) => return Err("its \"hooks\" is not an object".into()),
        None if handler.is_none() => return Ok(()),
        None => {
            root.insert("hooks".into(), Value::Object(Map::new()));
        }
    }
    let Some(Value::Object(hooks)) = root.get_mut("hooks") else {
        return Ok(());
    };
    let wanted: &[&str] = if handler.is_some() {
        agent.events()
    } else {
        &[]
    };
    let mut placed = HashSet::new();
    let mut emptied = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        let want = wanted.contains(&event.as_str());
        let Value::Array(groups) = groups else {
            if want {
                return Err(format!("its \"hooks\".\"{event}\" is not a list"));
            }
            continue;
        };
        let groups_before = groups.len();
        groups.retain_mut(|group| {
            let Some(Value::Array(handlers)) = group.get_mut("hooks") else {
                return true;
            };
            let handlers_before = handlers.len();
            handlers.retain_mut(|old| {
                if our_exe(agent, old).is_none() {
                    return true;
                }
                match handler {
                    Some(new) if want && placed.insert(event.clone()) => {
                        *old = for_event(new, event);
                        true
                    }
                    _ => false,
                }
            });
            !handlers.is_empty() || handlers.len() == handlers_before
        });
        if groups.is_empty() && groups.len() < groups_before {
            emptied.push(event.clone());
        }
    }
    for event in &emptied {
        hooks.shift_remove(event);
    }
    match handler {
        Some(new) => {
            for &event in wanted.iter().filter(|&&event| !placed.contains(event)) {
                let groups = hooks.entry(event).or_insert_with(|| json!([]));
                if let Value::Array(groups) = groups {
                    groups.push(json!({ "hooks": [for_event(new, event)] }));
                }
            }
        }
        None if hooks.is_empty() && !emptied.is_empty() => {
            root.shift_remove("hooks");
        }
        None => {}
    }
    Ok(())
}

/// The executable of `handler` if it is one of our hooks for `agent`.
fn our_exe(agent: Agent, handler: &Value) -> Option<PathBuf> {
    let (exe, rest) = first_word(handler.get("command")?.as_str()?)?;
    let mut args = rest.split_whitespace();
    let ours = Path::new(&exe)
        .file_name()
        .is_some_and(|name| name == EXE_NAME)
        && args.next() == Some("hook")
        && args.next() == Some(agent.hook_arg());
    ours.then(|| PathBuf::from(exe))
}

/// `word` as one sh word: as is when that is safe, else single-quoted.
fn sh_quote(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// The first sh word of `command`, unquoted, and the rest of the command.
/// Knows plain words, backslashes, single and double quotes: enough for
/// what [`sh_quote`] writes or a user would type for a path.
fn first_word(command: &str) -> Option<(String, &str)> {
    let command = command.trim_start();
    let mut word = String::new();
    let mut end = command.len();
    let mut chars = command.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                end = at;
                break;
            }
            '\'' => loop {
                match chars.next()?.1 {
                    '\'' => break,
                    c => word.push(c),
                }
            },
            '"' => loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => {
                        let escaped = chars.next()?.1;
                        if !matches!(escaped, '"' | '\\' | '$' | '`') {
                            word.push('\\');
                        }
                        word.push(escaped);
                    }
                    c => word.push(c),
                }
            },
            '\\' => word.push(chars.next()?.1),
            c => word.push(c),
        }
    }
    (!word.is_empty()).then(|| (word, &command[end..]))
}

/// Writes the plans (unless `dry_run`), backing up each changed file.
fn carry_out(
    plans: Vec<Plan>,
    operation: Operation,
    dry_run: bool,
) -> Result<Vec<Outcome>, InstallError> {
    let mut outcomes = Vec::new();
    for plan in plans {
        let mut outcome = Outcome {
            agent: plan.agent,
            operation,
            path: plan.path.clone(),
            change: plan.change,
            backup: None,
            preview: None,
        };
        match (plan.change, dry_run) {
            (Change::Unchanged, _) => {}
            (_, true) => outcome.preview = Some(plan.after),
            (_, false) => outcome.backup = write(&plan)?,
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Saves the previous content, then replaces the file; returns the backup.
fn write(plan: &Plan) -> Result<Option<PathBuf>, InstallError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| InstallError::Write { path, source }
    };
    let mode = match fs::metadata(&plan.real) {
        Ok(meta) => Some(meta.permissions()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(write_error(&plan.path)(source)),
    };
    let dir = parent(&plan.real);
    fs::create_dir_all(dir).map_err(write_error(dir))?;
    let backup = match &plan.before {
        Some(before) => {
            let mut name = plan.path.clone().into_os_string();
            name.push(BACKUP_SUFFIX);
            let backup = PathBuf::from(name);
            replace(&backup, before, mode.clone()).map_err(write_error(&backup))?;
            Some(backup)
        }
        None => None,
    };
    replace(&plan.real, &plan.after, mode).map_err(write_error(&plan.path))?;
    Ok(backup)
}

/// Replaces `path` atomically: a reader (an agent starting meanwhile) sees
/// the old file or the new one, never half of one.
fn replace(path: &Path, text: &str, mode: Option<Permissions>) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut staged = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(parent(path))?;
    staged.write_all(text.as_bytes())?;
    if let Some(mode) = mode {
        staged.as_file().set_permissions(mode)?;
    }
    staged.as_file().sync_all()?;
    staged.persist(path).map_err(|err| err.error)?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Whether agentdeck's hooks are in place, per agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub agents: Vec<AgentStatus>,
}

/// What one agent's hook file says about agentdeck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub agent: Agent,
    pub path: PathBuf,
    pub file: FileState,
    /// Our events that have our hook.
    pub present: Vec<&'static str>,
    /// Our events that lack it.
    pub missing: Vec<&'static str>,
    /// Each distinct executable our entries run.
    pub commands: Vec<RecordedExe>,
    /// Codex only: what `config.toml`'s `notify` (older Codex) runs.
    pub notify: Option<Notify>,
    /// The last hook the server had from this agent, filled in by the
    /// caller from the database.
    pub last_report: Option<app::hook::HookReport>,
}

/// Whether the hook file could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Missing,
    Readable,
    /// Unreadable or not the expected JSON: why.
    Unusable(String),
}

/// How completely agentdeck's hooks are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    No,
    Partly,
    Yes,
}

/// An executable that our hook entries run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedExe {
    pub path: PathBuf,
    /// It exists and may be executed.
    pub executable: bool,
    /// It is the executable asking.
    pub current: bool,
}

/// What Codex's legacy `notify` setting runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    Absent,
    /// Some other program.
    Other,
    Agentdeck,
}

impl AgentStatus {
    pub fn installed(&self) -> Installed {
        match (self.present.is_empty(), self.missing.is_empty()) {
            (true, _) => Installed::No,
            (false, true) => Installed::Yes,
            (false, false) => Installed::Partly,
        }
    }
}

/// Reads (never writes) every agent's hook file; `exe` is the running
/// executable, to tell whether the hooks run this one.
pub fn status(targets: &Targets, exe: &Path) -> Status {
    let agents = Agent::ALL
        .into_iter()
        .map(|agent| agent_status(targets, agent, exe))
        .collect();
    Status { agents }
}

fn agent_status(targets: &Targets, agent: Agent, exe: &Path) -> AgentStatus {
    let path = targets.hooks_file(agent);
    let read = real_path(&path).and_then(|real| match fs::read_to_string(real) {
        Ok(text) => parse(&path, Some(&text)).map(Some),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::Read {
            path: path.clone(),
            source,
        }),
    });
    let (file, doc) = match read {
        Ok(Some(doc)) => (FileState::Readable, doc),
        Ok(None) => (FileState::Missing, Value::Null),
        Err(err) => (FileState::Unusable(err.to_string()), Value::Null),
    };
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let mut commands: Vec<RecordedExe> = Vec::new();
    let hooks = doc.get("hooks").and_then(Value::as_object);
    for (event, groups) in hooks.into_iter().flatten() {
        let handlers = groups
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|group| group.get("hooks")?.as_array())
            .flatten();
        for found in handlers.filter_map(|handler| our_exe(agent, handler)) {
            if let Some(&event) = agent.events().iter().find(|&&e| e == event) {
                if !present.contains(&event) {
                    present.push(event);
                }
            }
            if !commands.iter().any(|known| known.path == found) {
                commands.push(RecordedExe {
                    executable: is_executable(&found),
                    current: found == exe,
                    path: found,
                });
            }
        }
    }
    for &event in agent.events() {
        if !present.contains(&event) {
            missing.push(event);
        }
    }
    present.sort_by_key(|event| agent.events().iter().position(|e| e == event));
    let notify = (agent == Agent::Codex).then(|| {
        fs::read_to_string(targets.codex_config())
            .map(|config| notify_in(&config))
            .unwrap_or(Notify::Absent)
    });
    AgentStatus {
        agent,
        path,
        file,
        present,
        missing,
        commands,
        notify,
        last_report: None,
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A text search, not a TOML parse: the `notify = [...]` setting (up to its
/// closing bracket) and whether it mentions agentdeck.
fn notify_in(config: &str) -> Notify {
    let mut lines = config.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("notify") else {
            continue;
        };
        if !rest.trim_start().starts_with('=') {
            continue;
        }
        let mut setting = line.to_owned();
        if line.contains('[') && !line.contains(']') {
            for next in lines.by_ref() {
                setting.push_str(next);
                if next.contains(']') {
                    break;
                }
            }
        }
        return if setting.contains(EXE_NAME) {
            Notify::Agentdeck
        } else {
            Notify::Other
        };
    }
    Notify::Absent
}

impl Status {
    /// The report `agentdeck hooks status` prints.
    pub fn render(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        self.render_at(now)
    }

    fn render_at(&self, now_millis: i64) -> String {
        let mut text = String::new();
        for agent in &self.agents {
            agent.render_into(&mut text, now_millis);
        }
        text
    }
}

impl AgentStatus {
    fn render_into(&self, text: &mut String, now_millis: i64) {
        let _ = writeln!(text, "{}: {}", self.agent.name(), self.path.display());
        let all = self.agent.events().len();
        let hooks = match (&self.file, self.installed()) {
            (FileState::Unusable(why), _) => format!("cannot tell: {why}"),
            (FileState::Missing, _) => "not installed (no such file)".to_owned(),
            (_, Installed::No) => "not installed".to_owned(),
            (_, Installed::Yes) => format!("installed (all {all} events)"),
            (_, Installed::Partly) => format!(
                "partly installed, missing {}: run `agentdeck hooks install` again",
                self.missing.join(", ")
            ),
        };
        let _ = writeln!(text, "  hooks: {hooks}");
        for exe in &self.commands {
            let note = match (exe.executable, exe.current) {
                (false, _) => "not an executable file: run `agentdeck hooks install` again",
                (true, true) => "this agentdeck",
                (true, false) => "another agentdeck than this one",
            };
            let _ = writeln!(text, "  runs: {} ({note})", exe.path.display());
        }
        match self.notify {
            Some(Notify::Agentdeck) => {
                text.push_str("  config.toml notify: runs agentdeck (older Codex; left as it is)\n")
            }
            Some(Notify::Other) => {
                text.push_str("  config.toml notify: runs another program (left as it is)\n")
            }
            Some(Notify::Absent) | None => {}
        }
        match &self.last_report {
            None => text.push_str("  last report: none yet\n"),
            Some(report) => {
                let _ = writeln!(
                    text,
                    "  last report: {}, {} ({})",
                    ago(now_millis - report.last_at),
                    report.last_event,
                    report.outcome.as_str().replace('_', " ")
                );
                if report.outcome == app::hook::Outcome::NoProject {
                    let _ = writeln!(
                        text,
                        "  ignored: {} is in no project; add it (or a folder above it) as a project to see its sessions",
                        report.last_cwd.as_deref().unwrap_or("its directory")
                    );
                }
            }
        }
    }
}

/// `millis` as a rough age: "12s ago", "3m ago", "5h ago", "2d ago".
fn ago(millis: i64) -> String {
    format!("{} ago", app::components::coarse(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use tempfile::TempDir;

    const EXE: &str = "/opt/agentdeck/bin/agentdeck";

    /// A user's settings, laid out as `pretty` would, in no sorted order,
    /// with another tool's Stop hook and a PreToolUse hook.
    const SETTINGS: &str = r#"{
  "permissions": {
    "deny": [
      "Read(./.env)"
    ],
    "allow": [
      "Bash(npm run lint)"
    ]
  },
  "model": "opus",
  "hooks": {
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "/usr/bin/other-tool stop"
          }
        ]
      }
    ],
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "~/bin/check-bash.sh",
            "timeout": 5
          }
        ]
      }
    ]
  },
  "env": {
    "ZED": "1",
    "ALPHA": "2"
  },
  "cleanupPeriodDays": 30
}
"#;

    const CODEX_HOOKS: &str = r#"{
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "shell",
        "hooks": [
          {
            "type": "command",
            "command": "python3 ~/.codex/guard.py",
            "statusMessage": "guarding"
          }
        ]
      }
    ]
  }
}
"#;

    fn home() -> (TempDir, Targets) {
        let home = tempfile::tempdir().unwrap();
        let targets = Targets::from_home(home.path(), None, None);
        (home, targets)
    }

    fn put(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn backup_of(path: &Path) -> PathBuf {
        PathBuf::from(format!("{}{BACKUP_SUFFIX}", path.display()))
    }

    fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn install_one(targets: &Targets, agent: Agent, exe: &str) -> Outcome {
        let mut outcomes = install(targets, &[agent], Path::new(exe), false).unwrap();
        assert_eq!(outcomes.len(), 1);
        outcomes.remove(0)
    }

    /// The commands of our handlers under each event.
    fn ours(agent: Agent, doc: &Value) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (event, groups) in doc["hooks"].as_object().unwrap() {
            for group in groups.as_array().unwrap() {
                for handler in group["hooks"].as_array().unwrap() {
                    if our_exe(agent, handler).is_some() {
                        found.push((event.clone(), handler["command"].as_str().unwrap().into()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_fixture_is_laid_out_as_pretty_writes() {
        for text in [SETTINGS, CODEX_HOOKS] {
            assert_eq!(pretty(&serde_json::from_str(text).unwrap()), text);
        }
    }

    #[test]
    fn install_keeps_other_hooks_and_settings() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        put(&path, SETTINGS);

        let outcome = install_one(&targets, Agent::Claude, EXE);
        assert_eq!(outcome.change, Change::Updated);
        assert_eq!(outcome.backup, Some(backup_of(&path)));
        assert_eq!(read(&backup_of(&path)), SETTINGS);

        let text = read(&path);
        assert!(text.ends_with("}\n") && text.contains("\n  \"model\""));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            keys(&doc),
            ["permissions", "model", "hooks", "env", "cleanupPeriodDays"]
        );
        assert_eq!(keys(&doc["env"]), ["ZED", "ALPHA"]);
        assert_eq!(keys(&doc["permissions"]), ["deny", "allow"]);
        // New events come after the existing ones; ours goes after the
        // other tool's Stop hook.
        let mut events = vec!["Stop", "PreToolUse"];
        events.extend(CLAUDE_EVENTS.iter().filter(|e| **e != "Stop"));
        assert_eq!(keys(&doc["hooks"]), events);
        assert_eq!(
            doc["hooks"]["Stop"][0]["hooks"][0]["command"],
            "/usr/bin/other-tool stop"
        );
        let command = format!("{EXE} hook claude");
        assert_eq!(
            doc["hooks"]["Stop"][1],
            json!({"hooks": [{"type": "command", "command": command, "timeout": 10}]})
        );
        let mut expected: Vec<_> = CLAUDE_EVENTS
            .iter()
            .map(|e| (e.to_string(), command.clone()))
            .collect();
        expected.sort();
        let mut found = ours(Agent::Claude, &doc);
        found.sort();
        assert_eq!(found, expected);

        // Without our entries, the result is the original, order included.
        let mut stripped = doc.clone();
        edit(&mut stripped, Agent::Claude, None).unwrap();
        assert_eq!(stripped, serde_json::from_str::<Value>(SETTINGS).unwrap());
        assert_eq!(pretty(&stripped), SETTINGS);
    }

    #[test]
    fn install_then_uninstall_gives_back_the_original() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        put(&path, SETTINGS);
        install_one(&targets, Agent::Claude, EXE);
        let installed = read(&path);

        let outcomes = uninstall(&targets, &[Agent::Claude], false).unwrap();
        assert_eq!(outcomes[0].change, Change::Updated);
        assert_eq!(outcomes[0].backup, Some(backup_of(&path)));
        assert_eq!(read(&path), SETTINGS);
        assert_eq!(read(&backup_of(&path)), installed);

        // Again: nothing to remove, nothing written.
        let outcomes = uninstall(&targets, &[Agent::Claude], false).unwrap();
        assert_eq!(outcomes[0].change, Change::Unchanged);
        assert_eq!(outcomes[0].backup, None);
        assert_eq!(read(&path), SETTINGS);
        assert_eq!(read(&backup_of(&path)), installed);
        assert!(outcomes[0].render().contains("not installed"));
    }

    #[test]
    fn installing_twice_is_installing_once() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        put(&path, SETTINGS);
        install_one(&targets, Agent::Claude, EXE);
        let first = read(&path);
        let backup = read(&backup_of(&path));

        let again = install_one(&targets, Agent::Claude, EXE);
        assert_eq!(again.change, Change::Unchanged);
        assert_eq!(again.backup, None);
        assert!(
            again.render().contains("already installed"),
            "{}",
            again.render()
        );
        assert_eq!(read(&path), first);
        assert_eq!(read(&backup_of(&path)), backup);
    }

    #[test]
    fn a_file_that_only_differs_in_layout_is_left_alone() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        put(&path, SETTINGS);
        install_one(&targets, Agent::Claude, EXE);
        let compact =
            serde_json::to_string(&serde_json::from_str::<Value>(&read(&path)).unwrap()).unwrap();
        put(&path, &compact);
        assert_eq!(
            install_one(&targets, Agent::Claude, EXE).change,
            Change::Unchanged
        );
        assert_eq!(read(&path), compact);
    }

    #[test]
    fn a_new_executable_path_replaces_our_entry_in_place() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        put(&path, SETTINGS);
        install_one(&targets, Agent::Claude, EXE);
        let before: Value = serde_json::from_str(&read(&path)).unwrap();

        let moved = "/home/me/my tools/agentdeck";
        let outcome = install_one(&targets, Agent::Claude, moved);
        assert_eq!(outcome.change, Change::Updated);
        let doc: Value = serde_json::from_str(&read(&path)).unwrap();
        let found = ours(Agent::Claude, &doc);
        assert_eq!(found.len(), CLAUDE_EVENTS.len());
        for (_, command) in &found {
            assert_eq!(command, "'/home/me/my tools/agentdeck' hook claude");
        }
        // Same places: only the commands differ.
        assert_eq!(keys(&doc["hooks"]), keys(&before["hooks"]));
        assert_eq!(doc["hooks"]["Stop"].as_array().unwrap().len(), 2);
        // And the quoted path is recognised as ours.
        assert_eq!(
            install_one(&targets, Agent::Claude, moved).change,
            Change::Unchanged
        );
    }

    #[test]
    fn a_duplicate_or_misplaced_entry_of_ours_is_cleaned_up() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Codex);
        let ours = json!({"type": "command", "command": "/old/agentdeck hook codex"});
        let other = json!({"type": "command", "command": "notify-send done"});
        let doc = json!({"hooks": {
            "Stop": [{"hooks": [ours.clone(), other.clone(), ours.clone()]}],
            "PreCompact": [{"hooks": [ours.clone()]}],
        }});
        put(&path, &pretty(&doc));
        install_one(&targets, Agent::Codex, EXE);
        let doc: Value = serde_json::from_str(&read(&path)).unwrap();
        assert_eq!(doc["hooks"].get("PreCompact"), None);
        let stop = &doc["hooks"]["Stop"];
        assert_eq!(stop.as_array().unwrap().len(), 1);
        assert_eq!(stop[0]["hooks"][0]["command"], format!("{EXE} hook codex"));
        assert_eq!(stop[0]["hooks"][1], other);
        assert_eq!(stop[0]["hooks"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn uninstall_keeps_a_group_shared_with_other_hooks() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        let other = json!({"type": "command", "command": "say done"});
        let doc = json!({"hooks": {"Stop": [{"matcher": "", "hooks": [
            {"type": "command", "command": "agentdeck hook claude", "timeout": 10},
            other.clone(),
        ]}]}});
        put(&path, &pretty(&doc));
        uninstall(&targets, &[], false).unwrap();
        let doc: Value = serde_json::from_str(&read(&path)).unwrap();
        assert_eq!(
            doc,
            json!({"hooks": {"Stop": [{"matcher": "", "hooks": [other]}]}})
        );
        // No Codex file was there, and none was made.
        assert!(!targets.hooks_file(Agent::Codex).exists());
    }

    #[test]
    fn only_our_commands_are_recognised() {
        let table = [
            ("agentdeck hook claude", Some("agentdeck")),
            ("/usr/bin/agentdeck hook claude", Some("/usr/bin/agentdeck")),
            (
                "  /usr/bin/agentdeck   hook   claude --quiet",
                Some("/usr/bin/agentdeck"),
            ),
            ("'/a b/agentdeck' hook claude", Some("/a b/agentdeck")),
            (
                r#""/a \"b\"/agentdeck" hook claude"#,
                Some("/a \"b\"/agentdeck"),
            ),
            (r"/a\ b/agentdeck hook claude", Some("/a b/agentdeck")),
            ("/usr/bin/agentdeck hook codex", None),
            ("/usr/bin/agentdeck hooks claude", None),
            ("/usr/bin/agentdeck hook", None),
            ("/usr/bin/agentdeck-old hook claude", None),
            ("/usr/bin/other hook claude", None),
            ("echo /usr/bin/agentdeck hook claude", None),
            ("'/unterminated/agentdeck hook claude", None),
            ("", None),
        ];
        for (command, exe) in table {
            let handler = json!({"type": "command", "command": command});
            assert_eq!(
                our_exe(Agent::Claude, &handler),
                exe.map(PathBuf::from),
                "{command}"
            );
        }
        assert_eq!(our_exe(Agent::Claude, &json!({"type": "http"})), None);
    }

    #[test]
    fn quoting_round_trips() {
        for word in [
            "/usr/local/bin/agentdeck",
            "/a b/agentdeck",
            "/it's/agentdeck",
            "/$HOME/`x`/\"q\"/agentdeck",
            "/tab\there/agentdeck",
        ] {
            let command = format!("{} hook claude", sh_quote(word));
            let (parsed, rest) = first_word(&command).unwrap();
            assert_eq!((parsed.as_str(), rest), (word, " hook claude"));
        }
        assert_eq!(sh_quote("/usr/bin/agentdeck"), "/usr/bin/agentdeck");
        assert_eq!(sh_quote("/a b/agentdeck"), "'/a b/agentdeck'");
    }

    #[test]
    fn an_unusable_file_is_refused_and_left_untouched() {
        for (text, needle) in [
            ("{ \"model\": \"opus\", ", "not valid JSON"),
            ("[1, 2]", "does not hold a JSON object"),
            ("{\"hooks\": []}", "\"hooks\" is not an object"),
            (
                "{\"hooks\": {\"Stop\": {}}}",
                "\"hooks\".\"Stop\" is not a list",
            ),
        ] {
            let (_home, targets) = home();
            let path = targets.hooks_file(Agent::Claude);
            put(&path, text);
            let err = install(&targets, &[], Path::new(EXE), false).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(needle), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert_eq!(read(&path), text);
            assert!(!backup_of(&path).exists());
            // Refused before anything was written, Codex's file included.
            assert!(!targets.codex_dir.exists());
        }
    }

    #[test]
    fn an_event_of_others_that_is_not_a_list_is_no_obstacle() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Codex);
        put(&path, r#"{"hooks": {"Custom": "whatever"}}"#);
        install_one(&targets, Agent::Codex, EXE);
        let doc: Value = serde_json::from_str(&read(&path)).unwrap();
        assert_eq!(doc["hooks"]["Custom"], "whatever");
        uninstall(&targets, &[Agent::Codex], false).unwrap();
        assert_eq!(
            read(&path),
            pretty(&json!({"hooks": {"Custom": "whatever"}}))
        );
    }

    #[test]
    fn a_bad_executable_path_is_refused() {
        let (_home, targets) = home();
        for exe in ["agentdeck", "bin/agentdeck", "/usr/bin/agentdeck-dev"] {
            let err = install(&targets, &[], Path::new(exe), false).unwrap_err();
            assert!(matches!(err, InstallError::Exe { .. }));
            assert!(err.to_string().starts_with(exe), "{err}");
        }
        assert!(!targets.claude_dir.exists());
    }

    #[test]
    fn a_dry_run_writes_nothing() {
        let (_home, targets) = home();
        let outcomes = install(&targets, &[], Path::new(EXE), true).unwrap();
        assert_eq!(outcomes.len(), 2);
        for outcome in &outcomes {
            assert_eq!(outcome.change, Change::Created);
            assert_eq!(outcome.backup, None);
            let preview = outcome.preview.as_deref().unwrap();
            let doc: Value = serde_json::from_str(preview).unwrap();
            assert_eq!(
                ours(outcome.agent, &doc).len(),
                outcome.agent.events().len()
            );
            assert!(outcome.render().contains("would create"));
        }
        assert!(!targets.claude_dir.exists() && !targets.codex_dir.exists());

        let path = targets.hooks_file(Agent::Claude);
        put(&path, SETTINGS);
        let outcome = &install(&targets, &[Agent::Claude], Path::new(EXE), true).unwrap()[0];
        assert_eq!(outcome.change, Change::Updated);
        assert_eq!(read(&path), SETTINGS);
        assert!(!backup_of(&path).exists());

        install_one(&targets, Agent::Claude, EXE);
        let installed = read(&path);
        let outcome = &uninstall(&targets, &[Agent::Claude], true).unwrap()[0];
        assert_eq!(outcome.preview.as_deref(), Some(SETTINGS));
        assert_eq!(read(&path), installed);
    }

    #[test]
    fn missing_directories_are_created() {
        let home = tempfile::tempdir().unwrap();
        let claude = home.path().join("config/claude");
        let targets = Targets::from_home(home.path(), Some(claude.clone()), None);
        let outcomes = install(&targets, &[Agent::Claude], Path::new(EXE), false).unwrap();
        assert_eq!(outcomes[0].change, Change::Created);
        assert_eq!(outcomes[0].backup, None);
        assert_eq!(outcomes[0].path, claude.join("settings.json"));
        let doc: Value = serde_json::from_str(&read(&claude.join("settings.json"))).unwrap();
        assert_eq!(keys(&doc["hooks"]), CLAUDE_EVENTS);
        assert!(outcomes[0].render().contains("created"));
        // No staged file is left behind.
        assert_eq!(fs::read_dir(&claude).unwrap().count(), 1);
    }

    #[test]
    fn targets_follow_the_callers_environment() {
        let home = Path::new("/home/me");
        let default = Targets::from_home(home, None, Some(PathBuf::new()));
        assert_eq!(
            default.hooks_file(Agent::Claude),
            home.join(".claude/settings.json")
        );
        assert_eq!(
            default.hooks_file(Agent::Codex),
            home.join(".codex/hooks.json")
        );
        assert_eq!(default.codex_config(), home.join(".codex/config.toml"));
        let moved = Targets::from_home(home, Some("/c".into()), Some("/x".into()));
        assert_eq!(
            moved.hooks_file(Agent::Claude),
            Path::new("/c/settings.json")
        );
        assert_eq!(moved.hooks_file(Agent::Codex), Path::new("/x/hooks.json"));
    }

    #[test]
    fn permissions_and_symlinks_are_kept() {
        let (home, targets) = home();
        let real = home.path().join("dotfiles/claude-settings.json");
        put(&real, SETTINGS);
        fs::set_permissions(&real, Permissions::from_mode(0o640)).unwrap();
        let path = targets.hooks_file(Agent::Claude);
        fs::create_dir_all(&targets.claude_dir).unwrap();
        symlink(&real, &path).unwrap();

        install_one(&targets, Agent::Claude, EXE);
        assert!(fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            ours(Agent::Claude, &serde_json::from_str(&read(&real)).unwrap()).len(),
            8
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&real), 0o640);
        assert_eq!(mode(&backup_of(&path)), 0o640);
        assert_eq!(read(&backup_of(&path)), SETTINGS);
    }

    #[test]
    fn codex_hooks_json_likewise() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Codex);
        put(&path, CODEX_HOOKS);
        let outcome = install_one(&targets, Agent::Codex, EXE);
        assert_eq!(outcome.change, Change::Updated);
        assert!(outcome.render().contains("/hooks"), "{}", outcome.render());
        let doc: Value = serde_json::from_str(&read(&path)).unwrap();
        let mut events = vec!["PreToolUse"];
        events.extend(CODEX_EVENTS);
        assert_eq!(keys(&doc["hooks"]), events);
        let original: Value = serde_json::from_str(CODEX_HOOKS).unwrap();
        assert_eq!(doc["hooks"]["PreToolUse"], original["hooks"]["PreToolUse"]);
        for (_, command) in ours(Agent::Codex, &doc) {
            assert_eq!(command, format!("{EXE} hook codex"));
        }
        // Claude's entries are not Codex's, and the reverse.
        assert!(ours(Agent::Claude, &doc).is_empty());
        assert!(!targets.hooks_file(Agent::Claude).exists());

        assert_eq!(
            install_one(&targets, Agent::Codex, EXE).change,
            Change::Unchanged
        );
        uninstall(&targets, &[Agent::Codex], false).unwrap();
        assert_eq!(read(&path), CODEX_HOOKS);
    }

    #[test]
    fn uninstall_drops_the_hooks_object_it_emptied() {
        let (_home, targets) = home();
        let path = targets.hooks_file(Agent::Claude);
        let original = pretty(&json!({"model": "sonnet"}));
        put(&path, &original);
        install_one(&targets, Agent::Claude, EXE);
        uninstall(&targets, &[Agent::Claude], false).unwrap();
        assert_eq!(read(&path), original);
    }

    #[test]
    fn status_before_and_after() {
        let (home, targets) = home();
        let exe = home.path().join("bin/agentdeck");
        put(&exe, "#!/bin/sh\n");
        fs::set_permissions(&exe, Permissions::from_mode(0o755)).unwrap();

        let before = status(&targets, &exe);
        assert_eq!(before.agents.len(), 2);
        for agent in &before.agents {
            assert_eq!(agent.file, FileState::Missing);
            assert_eq!(agent.installed(), Installed::No);
            assert_eq!(agent.missing, agent.agent.events());
            assert!(agent.commands.is_empty());
        }
        assert_eq!(before.agents[0].notify, None);
        assert_eq!(before.agents[1].notify, Some(Notify::Absent));
        assert!(before.render().contains("not installed (no such file)"));

        install(&targets, &[], &exe, false).unwrap();
        put(
            &targets.codex_config(),
            "model = \"o3\"\nnotify = [\n  \"/usr/bin/agentdeck\",\n  \"notify\",\n]\n",
        );
        let mut after = status(&targets, &exe);
        for agent in &after.agents {
            assert_eq!(agent.file, FileState::Readable);
            assert_eq!(agent.installed(), Installed::Yes);
            assert_eq!(agent.present, agent.agent.events());
            assert!(agent.missing.is_empty());
            assert_eq!(
                agent.commands,
                [RecordedExe {
                    path: exe.clone(),
                    executable: true,
                    current: true
                }]
            );
        }
        assert_eq!(after.agents[1].notify, Some(Notify::Agentdeck));
        after.agents[0].last_report = Some(app::hook::HookReport {
            agent: app::agent::AgentKind::Claude,
            last_at: 1_000,
            last_event: "Stop".into(),
            last_cwd: None,
            outcome: app::hook::Outcome::Applied,
            received: 1,
        });
        let text = after.render_at(181_000);
        assert!(text.contains("installed (all 8 events)"), "{text}");
        assert!(text.contains("(this agentdeck)"), "{text}");
        assert!(text.contains("notify: runs agentdeck"), "{text}");
        assert!(text.contains("last report: 3m ago"), "{text}");

        // Another executable, since gone, and a Stop hook taken out by hand.
        let gone = home.path().join("old/agentdeck");
        install(&targets, &[Agent::Claude], &gone, false).unwrap();
        let path = targets.hooks_file(Agent::Claude);
        let mut doc: Value = serde_json::from_str(&read(&path)).unwrap();
        doc["hooks"].as_object_mut().unwrap().shift_remove("Stop");
        put(&path, &pretty(&doc));
        let claude = &status(&targets, &exe).agents[0];
        assert_eq!(claude.installed(), Installed::Partly);
        assert_eq!(claude.missing, ["Stop"]);
        assert_eq!(
            claude.commands,
            [RecordedExe {
                path: gone,
                executable: false,
                current: false
            }]
        );
        let text = status(&targets, &exe).render();
        assert!(text.contains("partly installed, missing Stop"), "{text}");
        assert!(text.contains("not an executable file"), "{text}");

        put(&path, "{");
        let claude = &status(&targets, &exe).agents[0];
        assert!(matches!(&claude.file, FileState::Unusable(why) if why.contains("not valid JSON")));
    }

    #[test]
    fn the_notify_setting_is_found_by_text() {
        for (config, notify) in [
            ("", Notify::Absent),
            ("# notify = [\"agentdeck\"]\n", Notify::Absent),
            ("notifications = true\n", Notify::Absent),
            (
                "notify = [\"/bin/agentdeck\", \"notify\"]\n",
                Notify::Agentdeck,
            ),
            ("notify=[\"notify-send\"]\n", Notify::Other),
            (
                "notify = [\n  \"python3\",\n  \"x.py\"\n]\n# agentdeck\n",
                Notify::Other,
            ),
        ] {
            assert_eq!(notify_in(config), notify, "{config}");
        }
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(-5), "0s ago");
        assert_eq!(ago(59_999), "59s ago");
        assert_eq!(ago(60_000), "1m ago");
        assert_eq!(ago(7_200_000), "2h ago");
        assert_eq!(ago(3 * 86_400_000), "3d ago");
    }
}
