//! Importing sessions from transcripts written by the tests into temporary
//! `~/.claude/projects` and `~/.codex/sessions` folders, on a real SQLite file.

mod common;

use app::{
    agent::AgentKind,
    db::Db,
    live::LiveEvent,
    project::{self, Project},
    run::runner::{Runner, RunnerConfig},
    session::{self, Session},
    sync::{
        files::{self, Listing, MAX_TRANSCRIPT_LINE_BYTES},
        scan::{SyncConfig, Syncer},
    },
    transition::{
        writer::{self, Applied},
        Reason, TransitionEvent,
    },
    SessionState,
};
use nix::{sys::stat::Mode, unistd::mkfifo};
use std::{
    fs,
    io::Write,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

struct Fixture {
    dir: tempfile::TempDir,
    db: Db,
    syncer: Arc<Syncer>,
    _scratch: Option<app::db::scratch::ScratchDatabase>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db, _scratch) = common::open_test_db(dir.path());
        let config = SyncConfig {
            claude_root: dir.path().join("claude/projects"),
            codex_root: dir.path().join("codex/sessions"),
        };
        let syncer = Syncer::new(db.clone(), config);
        Self {
            dir,
            db,
            syncer,
            _scratch,
        }
    }

    async fn project(&self, name: &str) -> Project {
        let path = self.dir.path().join("work").join(name);
        fs::create_dir_all(&path).unwrap();
        project::store::add(&self.db, path.to_str().unwrap(), Some("p"))
            .await
            .unwrap()
    }

    /// Claude's folder for a cwd: every non-alphanumeric character becomes `-`
    /// (lossy on purpose: the sync must never decode it).
    fn claude_file(&self, cwd: &str, session_id: &str) -> PathBuf {
        let mut folder: String = cwd
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        if folder.len() > 200 {
            folder.truncate(200);
            folder.push_str("-h4sh");
        }
        let dir = self.dir.path().join("claude/projects").join(folder);
        fs::create_dir_all(&dir).unwrap();
        dir.join(format!("{session_id}.jsonl"))
    }

    /// A valid Claude transcript `s-real` of `project`, beside which the
    /// special files of a test are put.
    fn real_transcript(&self, project: &Project, first_message: &str) -> PathBuf {
        let real = self.claude_file(&project.path, "s-real");
        fs::write(&real, claude_lines("s-real", &project.path, first_message)).unwrap();
        real
    }

    async fn sessions(&self, project: &Project) -> Vec<Session> {
        let mut list = session::store::list_for_project(&self.db, project.id, None)
            .await
            .unwrap()
            .sessions;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

fn claude_lines(session_id: &str, cwd: &str, first_message: &str) -> String {
    let cwd = serde_json::to_string(cwd).unwrap();
    let msg = serde_json::to_string(first_message).unwrap();
    format!(
        concat!(
            r#"{{"type":"user","sessionId":"{id}","cwd":{cwd},"timestamp":"2025-05-01T10:00:00.000Z","uuid":"u1","message":{{"role":"user","content":{msg}}}}}"#,
            "\n",
            r#"{{"type":"assistant","sessionId":"{id}","cwd":{cwd},"timestamp":"2025-05-01T10:00:05.000Z","uuid":"u2","message":{{"role":"assistant","content":[{{"type":"text","text":"ok"}}]}}}}"#,
            "\n",
        ),
        id = session_id,
        cwd = cwd,
        msg = msg
    )
}

fn append(path: &Path, text: &str) {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[tokio::test]
async fn imports_by_recorded_cwd_never_by_folder_name_and_is_idempotent() {
    let fx = Fixture::new();
    // Paths with spaces, dots and unicode, one over 200 characters, and two
    // that encode to the same Claude folder (`a.b` and `a-b`).
    let odd = fx.project("my app v1.2 — ünïcode").await;
    let long = fx.project(&"very-long-directory-name.".repeat(9)).await;
    let dotted = fx.project("a.b").await;
    let dashed = fx.project("a-b").await;
    assert_eq!(
        fx.claude_file(&dotted.path, "x").parent(),
        fx.claude_file(&dashed.path, "y").parent()
    );

    fs::write(
        fx.claude_file(&odd.path, "s-odd"),
        claude_lines("s-odd", &odd.path, "Fix the build"),
    )
    .unwrap();
    fs::write(
        fx.claude_file(&long.path, "s-long"),
        claude_lines("s-long", &long.path, "Long path work"),
    )
    .unwrap();
    fs::write(
        fx.claude_file(&dotted.path, "s-dot"),
        claude_lines("s-dot", &dotted.path, "Dotted"),
    )
    .unwrap();
    fs::write(
        fx.claude_file(&dashed.path, "s-dash"),
        claude_lines("s-dash", &dashed.path, "Dashed"),
    )
    .unwrap();
    // A subagent transcript for the same cwd is not a session of its own.
    let sub = fx
        .claude_file(&odd.path, "s-odd")
        .with_extension("")
        .join("subagents");
    fs::create_dir_all(&sub).unwrap();
    fs::write(
        sub.join("agent-1.jsonl"),
        claude_lines("sub-1", &odd.path, "subagent"),
    )
    .unwrap();
    // Noise: an empty file, a non-JSON file, a file with a truncated last line.
    fs::write(fx.claude_file(&odd.path, "empty"), "").unwrap();
    fs::write(
        fx.claude_file(&odd.path, "garbage"),
        "this is not json\nnor this\n",
    )
    .unwrap();
    let truncated = fx.claude_file(&odd.path, "s-trunc");
    fs::write(
        &truncated,
        claude_lines("s-trunc", &odd.path, "Truncated one") + r#"{"type":"user","sessionId":"s-tr"#,
    )
    .unwrap();

    let summary = fx.syncer.sync(&odd).await.unwrap();
    assert_eq!(
        (summary.imported, summary.lines_skipped),
        (2, 3),
        "{summary:?}"
    );
    assert_eq!(
        summary.files_total, 7,
        "subagent transcripts are not counted"
    );
    let names: Vec<_> = fx
        .sessions(&odd)
        .await
        .into_iter()
        .map(|s| (s.name, s.agent, s.state, s.error_message, s.message_count))
        .collect();
    assert_eq!(
        names,
        [
            (
                "Fix the build".to_owned(),
                AgentKind::Claude,
                SessionState::Idle,
                None,
                2
            ),
            (
                "Truncated one".to_owned(),
                AgentKind::Claude,
                SessionState::Idle,
                None,
                2
            ),
        ]
    );
    for (project, expected) in [
        (&long, "Long path work"),
        (&dotted, "Dotted"),
        (&dashed, "Dashed"),
    ] {
        fx.syncer.sync(project).await.unwrap();
        let sessions = fx.sessions(project).await;
        assert_eq!(
            sessions.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            [expected]
        );
        assert_eq!(sessions[0].created_at, 1_746_093_600_000);
        assert_eq!(sessions[0].updated_at, 1_746_093_605_000);
    }

    let before = fx.sessions(&odd).await;
    let again = fx.syncer.sync(&odd).await.unwrap();
    assert_eq!(
        (again.imported, again.updated, again.files_read),
        (0, 0, 0),
        "unchanged files are not opened: {again:?}"
    );
    assert_eq!(fx.sessions(&odd).await, before);
}

#[tokio::test]
async fn appended_lines_are_read_incrementally_and_deleted_files_delete_nothing() {
    let fx = Fixture::new();
    let project = fx.project("inc").await;
    let file = fx.claude_file(&project.path, "s1");
    fs::write(
        &file,
        "not json at all\n".to_owned() + &claude_lines("s1", &project.path, "First"),
    )
    .unwrap();
    let first = fx.syncer.sync(&project).await.unwrap();
    assert_eq!((first.imported, first.lines_skipped), (1, 1));

    std::thread::sleep(Duration::from_millis(20));
    let cwd = serde_json::to_string(&project.path).unwrap();
    append(&file, &format!("{{\"type\":\"summary\",\"summary\":\"Renamed by summary\"}}\n{{\"type\":\"user\",\"sessionId\":\"s1\",\"cwd\":{cwd},\"timestamp\":\"2025-05-02T00:00:00Z\",\"message\":{{\"role\":\"user\",\"content\":\"more\"}}}}\n"));
    let second = fx.syncer.sync(&project).await.unwrap();
    // Only the new lines were parsed: the malformed first line is not met again.
    assert_eq!(
        (second.files_read, second.updated, second.lines_skipped),
        (1, 1, 0),
        "{second:?}"
    );
    let session = &fx.sessions(&project).await[0];
    assert_eq!(
        (session.name.as_str(), session.message_count),
        ("Renamed by summary", 3)
    );
    assert_eq!(session.updated_at, 1_746_144_000_000);

    fs::remove_file(&file).unwrap();
    fx.syncer.sync(&project).await.unwrap();
    assert_eq!(
        fx.sessions(&project).await.len(),
        1,
        "a vanished transcript never deletes a session"
    );
}

#[tokio::test]
async fn codex_rollouts_are_imported_too() {
    let fx = Fixture::new();
    let project = fx.project("codex").await;
    let day = fx.dir.path().join("codex/sessions/2025/03/01");
    fs::create_dir_all(&day).unwrap();
    let cwd = serde_json::to_string(&project.path).unwrap();
    fs::write(
        day.join("rollout-2025-03-01T10-00-00-0199.jsonl"),
        format!(
            "{{\"timestamp\":\"2025-03-01T10:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{{\"id\":\"0199-thread\",\"cwd\":{cwd}}}}}\n\
             {{\"timestamp\":\"2025-03-01T10:00:02.000Z\",\"type\":\"response_item\",\"payload\":{{\"type\":\"message\",\"role\":\"user\",\"content\":[{{\"type\":\"input_text\",\"text\":\"Write the docs\"}}]}}}}\n"
        ),
    )
    .unwrap();
    let summary = fx.syncer.sync(&project).await.unwrap();
    assert_eq!(summary.imported, 1);
    let session = &fx.sessions(&project).await[0];
    assert_eq!(
        (
            session.agent,
            session.name.as_str(),
            session.external_id.as_deref()
        ),
        (AgentKind::Codex, "Write the docs", Some("0199-thread"))
    );
}

#[tokio::test]
async fn sync_clears_stale_errors_through_the_writer_and_leaves_working_sessions_alone() {
    let fx = Fixture::new();
    let project = fx.project("states").await;
    let failed = session::store::create(&fx.db, project.id, "failed", AgentKind::Shell)
        .await
        .unwrap();
    let busy = session::store::create(&fx.db, project.id, "busy", AgentKind::Shell)
        .await
        .unwrap();
    for (id, events) in [
        (
            failed.id.clone(),
            vec![TransitionEvent::Send, TransitionEvent::Fail("boom".into())],
        ),
        (busy.id.clone(), vec![TransitionEvent::Send]),
    ] {
        for event in events {
            let id = id.clone();
            fx.db
                .write(move |conn| match writer::apply(conn, &id, &event)? {
                    Applied::Changed(c) => Ok(((), vec![LiveEvent::change(c)])),
                    other => panic!("{other:?}"),
                })
                .await
                .unwrap();
        }
    }
    let summary = fx.syncer.sync(&project).await.unwrap();
    assert_eq!(summary.errors_cleared, 1);
    let cleared = session::store::get(&fx.db, &failed.id).await.unwrap();
    assert_eq!(
        (cleared.state, cleared.error_message),
        (SessionState::Idle, None)
    );
    let history = fx
        .db
        .run(move |conn| writer::history(conn, &failed.id))
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().reason, Reason::Synced);
    assert_eq!(
        session::store::get(&fx.db, &busy.id).await.unwrap().state,
        SessionState::Working
    );
}

#[tokio::test]
async fn an_imported_claude_session_continues_with_resume() {
    let fx = Fixture::new();
    let project = fx.project("resume").await;
    fs::write(
        fx.claude_file(&project.path, "4f1c-claude-id"),
        claude_lines("4f1c-claude-id", &project.path, "Earlier work"),
    )
    .unwrap();
    fx.syncer.sync(&project).await.unwrap();
    let imported = fx.sessions(&project).await.remove(0);

    let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bin/claude");
    let runner = Runner::new(
        fx.db.clone(),
        RunnerConfig {
            claude_bin: Some(fake),
            ..RunnerConfig::default()
        },
    );
    runner.send(&imported.id, "success continue").await.unwrap();
    for _ in 0..200 {
        if session::store::get(&fx.db, &imported.id)
            .await
            .unwrap()
            .state
            != SessionState::Working
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let args = fs::read_to_string(Path::new(&project.path).join(".fake-agent-args")).unwrap();
    assert_eq!(args, "--resume 4f1c-claude-id\n");
    assert_eq!(
        session::store::get(&fx.db, &imported.id)
            .await
            .unwrap()
            .state,
        SessionState::Idle
    );
}

/// Runs a sync that must finish; a FIFO that hangs it is opened for writing
/// (which releases the blocked reader) before the test fails.
async fn sync_within(
    fx: &Fixture,
    project: &Project,
    fifo: Option<&Path>,
) -> app::sync::SyncSummary {
    match tokio::time::timeout(Duration::from_secs(60), fx.syncer.sync(project)).await {
        Ok(summary) => summary.unwrap(),
        Err(_) => {
            if let Some(fifo) = fifo {
                drop(fs::OpenOptions::new().write(true).open(fifo));
            }
            panic!("sync did not finish within 60 s");
        }
    }
}

/// Peak resident memory of this process in KiB, after resetting it to the
/// current resident size (`clear_refs` 5), so a test measures its own peak.
fn reset_peak_rss() {
    fs::write("/proc/self/clear_refs", "5").expect("reset peak RSS");
}

fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_fifo_named_like_a_transcript_neither_hangs_nor_blocks_the_sync() {
    let fx = Fixture::new();
    let project = fx.project("fifo").await;
    let real = fx.real_transcript(&project, "Beside a FIFO");
    let fifo = real.with_file_name("x.jsonl");
    mkfifo(&fifo, Mode::S_IRWXU).unwrap();

    let summary = sync_within(&fx, &project, Some(&fifo)).await;
    assert_eq!(
        (summary.imported, summary.files_total, summary.files_skipped),
        (1, 1, 1),
        "{summary}"
    );
    assert_eq!(fx.sessions(&project).await[0].name, "Beside a FIFO");
    // The next sync is not blocked either.
    let again = sync_within(&fx, &project, Some(&fifo)).await;
    assert_eq!((again.files_read, again.files_skipped), (0, 1), "{again}");
}

#[tokio::test]
async fn a_file_swapped_after_listing_is_not_read() {
    let fx = Fixture::new();
    let project = fx.project("swap").await;
    let path = fx.claude_file(&project.path, "s-swap");
    fs::write(&path, claude_lines("s-swap", &project.path, "Swapped")).unwrap();
    let listed = || {
        let mut listing = Listing::default();
        listing.add_root(&fx.dir.path().join("claude/projects"), AgentKind::Claude);
        assert_eq!(listing.files.len(), 1);
        listing.files.remove(0)
    };

    let found = listed();
    assert!(files::open(&found).unwrap().is_some());
    // Swapped for a FIFO: opening neither blocks nor yields it.
    fs::remove_file(&path).unwrap();
    mkfifo(&path, Mode::S_IRWXU).unwrap();
    let open = tokio::task::spawn_blocking(move || files::open(&found).unwrap().is_some());
    let opened = tokio::time::timeout(Duration::from_secs(10), open).await;
    if opened.is_err() {
        drop(fs::OpenOptions::new().write(true).open(&path));
        panic!("opening a FIFO blocked");
    }
    assert!(!opened.unwrap().unwrap(), "a FIFO is not a transcript");
    // Swapped for another file (a rename over it): not the file listed.
    fs::remove_file(&path).unwrap();
    fs::write(&path, "{}\n").unwrap();
    let found = listed();
    let other = path.with_extension("new");
    fs::write(&other, "{}\n").unwrap();
    fs::rename(&other, &path).unwrap();
    assert!(files::open(&found).unwrap().is_none());
}

#[tokio::test]
async fn symlinks_are_followed_only_inside_the_root() {
    let fx = Fixture::new();
    let project = fx.project("links").await;
    let real = fx.real_transcript(&project, "Real file");
    let folder = real.parent().unwrap().to_owned();
    let root = fx.dir.path().join("claude/projects");

    // Inside the root: a link to a file only reachable through it.
    let elsewhere = root.join("notes");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(
        elsewhere.join("kept.txt"),
        claude_lines("s-inside", &project.path, "Linked from inside"),
    )
    .unwrap();
    symlink(elsewhere.join("kept.txt"), folder.join("s-inside.jsonl")).unwrap();
    // Outside the root: a file and a folder of transcripts.
    let outside = fx.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(
        outside.join("s-out.jsonl"),
        claude_lines("s-out", &project.path, "Outside file"),
    )
    .unwrap();
    symlink(outside.join("s-out.jsonl"), folder.join("s-out.jsonl")).unwrap();
    symlink(&outside, root.join("outside-folder")).unwrap();
    // Loops: a folder linking to its parent, two links to each other.
    symlink(&folder, folder.join("again")).unwrap();
    symlink(folder.join("b.jsonl"), folder.join("a.jsonl")).unwrap();
    symlink(folder.join("a.jsonl"), folder.join("b.jsonl")).unwrap();

    let summary = sync_within(&fx, &project, None).await;
    let names: Vec<_> = fx
        .sessions(&project)
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["Linked from inside", "Real file"]);
    assert_eq!(
        (summary.files_total, summary.files_skipped),
        (2, 4),
        "the outside file and folder and both looping links are skipped: {summary}"
    );
}

#[tokio::test]
async fn a_2_gib_sparse_file_syncs_in_bounded_memory_beside_real_ones() {
    let fx = Fixture::new();
    let project = fx.project("sparse").await;
    let real = fx.real_transcript(&project, "Next to 2 GiB");
    let sparse = real.with_file_name("s-sparse.jsonl");
    fs::File::create(&sparse).unwrap().set_len(2 << 30).unwrap();

    reset_peak_rss();
    let before = rss_kib();
    let summary = sync_within(&fx, &project, None).await;
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 200, "peak RSS grew by {grown_mib} MiB");
    assert_eq!(
        (summary.imported, summary.files_read, summary.lines_skipped),
        (1, 2, 1),
        "one imported; the newline-free 2 GiB is one skipped line: {summary}"
    );

    // Unchanged, it is not read again; once its endless line ends, the rest
    // of that line is dropped uncounted and what follows is imported.
    let again = sync_within(&fx, &project, None).await;
    assert_eq!(again.files_read, 0, "{again}");
    append(
        &sparse,
        &("\n".to_owned() + &claude_lines("s-sparse", &project.path, "After the zeros")),
    );
    let last = sync_within(&fx, &project, None).await;
    assert_eq!(
        (last.imported, last.files_read, last.lines_skipped),
        (1, 1, 0),
        "{last}"
    );
    let names: Vec<_> = fx
        .sessions(&project)
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["After the zeros", "Next to 2 GiB"]);
}

#[tokio::test]
async fn a_50_mb_line_is_skipped_and_counted_and_the_rest_of_its_file_imported() {
    let fx = Fixture::new();
    let project = fx.project("long-line").await;
    let path = fx.claude_file(&project.path, "s-long");
    let lines = claude_lines("s-long", &project.path, "Around a huge line");
    let (first, second) = lines.split_at(lines.find('\n').unwrap() + 1);
    {
        // A valid JSON line, so only its length can make it skipped;
        // written in pieces so the test itself stays small.
        let mut file = fs::File::create(&path).unwrap();
        file.write_all(first.as_bytes()).unwrap();
        file.write_all(br#"{"type":"assistant","sessionId":"s-long","message":{"content":""#)
            .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..50 {
            file.write_all(&chunk).unwrap();
        }
        file.write_all(b"\"}}\n").unwrap();
        file.write_all(second.as_bytes()).unwrap();
    }
    assert!(fs::metadata(&path).unwrap().len() > 50 << 20);
    const { assert!(MAX_TRANSCRIPT_LINE_BYTES < 50 << 20) };

    reset_peak_rss();
    let before = rss_kib();
    let summary = sync_within(&fx, &project, None).await;
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 40, "peak RSS grew by {grown_mib} MiB");
    assert_eq!(
        (summary.imported, summary.lines_skipped),
        (1, 1),
        "{summary}"
    );
    let session = &fx.sessions(&project).await[0];
    assert_eq!(
        (session.name.as_str(), session.message_count),
        ("Around a huge line", 2)
    );
}

#[tokio::test]
async fn a_file_rewritten_shorter_is_read_again_from_the_start() {
    let fx = Fixture::new();
    let project = fx.project("rewrite").await;
    let path = fx.claude_file(&project.path, "s1");
    let original = claude_lines("s1", &project.path, "Original").repeat(5);
    fs::write(&path, &original).unwrap();
    let first = sync_within(&fx, &project, None).await;
    assert_eq!(first.imported, 1);
    assert_eq!(fx.sessions(&project).await[0].message_count, 10);

    let rewritten = claude_lines("s1", &project.path, "Rewritten");
    assert!(rewritten.len() < original.len());
    fs::write(&path, &rewritten).unwrap();
    let second = sync_within(&fx, &project, None).await;
    assert_eq!((second.files_read, second.updated), (1, 1), "{second}");
    let session = &fx.sessions(&project).await[0];
    assert_eq!(
        (session.name.as_str(), session.message_count),
        ("Rewritten", 2)
    );
}

#[tokio::test]
async fn a_session_opening_with_a_slash_command_is_named_by_the_first_real_prompt() {
    let fx = Fixture::new();
    let project = fx.project("slash").await;
    let cwd = serde_json::to_string(&project.path).unwrap();
    // As Claude Code 2.1.332 records `/model` (caveat, command, output), then
    // an interrupted turn and a tool result, before the person's prompt.
    let lines = [
        r#"{"type":"user","isMeta":true,"message":{"role":"user","content":"<local-command-caveat>Caveat: The messages below were generated by the user while running local commands. DO NOT respond to these messages or otherwise consider them in your response unless the user explicitly asks you to.</local-command-caveat>"}"#,
        r#"{"type":"user","message":{"role":"user","content":"<command-name>/model</command-name>\n<command-message>model</command-message>\n<command-args></command-args>"}"#,
        r#"{"type":"user","message":{"role":"user","content":"<local-command-stdout>Set model to sonnet</local-command-stdout>"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user for tool use]"}]}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_01","type":"tool_result","content":"done"}]}"#,
        r#"{"type":"summary","summary":"<command-name>/model</command-name>","leafUuid":"u3""#,
        r#"{"type":"user","message":{"role":"user","content":"Rename the sync module\nand update its tests"}"#,
        r#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"Renamed."}]}"#,
    ];
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            format!(
                "{line},\"sessionId\":\"s-slash\",\"cwd\":{cwd},\"uuid\":\"u{i}\",\"timestamp\":\"2025-05-01T10:00:0{i}.000Z\"}}\n"
            )
        })
        .collect();
    fs::write(fx.claude_file(&project.path, "s-slash"), text).unwrap();

    let summary = sync_within(&fx, &project, None).await;
    assert_eq!(
        (summary.imported, summary.lines_skipped),
        (1, 0),
        "{summary}"
    );
    let session = &fx.sessions(&project).await[0];
    assert_eq!(
        (session.name.as_str(), session.message_count),
        ("Rename the sync module", 2),
        "only the prompt and the reply are messages"
    );
}
