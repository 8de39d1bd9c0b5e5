//! "Never stuck": every way found to leave a session `working` for good,
//! reproduced on a real SQLite file with real agent processes (the shell,
//! and a fake Claude that speaks its wire format).

mod common;

use app::{
    agent::AgentKind,
    db::Db,
    error::AppError,
    run::{
        runner::{RunnerConfig, LOST_RUN_MESSAGE},
        store::{self, Ending},
        Outcome, SessionDetail,
    },
    session,
    sync::scan::{SyncConfig, Syncer},
    transition::TransitionEvent,
    SessionState,
};
use common::Fixture;
use diesel::{connection::SimpleConnection, Connection, SqliteConnection};
use std::{path::PathBuf, sync::Arc, time::Duration};

impl Fixture {
    async fn session_count(&self) -> usize {
        session::store::list_for_project(&self.db, self.project.id, None)
            .await
            .unwrap()
            .sessions
            .len()
    }
}

fn open_runs(detail: &SessionDetail) -> usize {
    detail.runs.iter().filter(|r| r.ended_at.is_none()).count()
}

/// The reproduced bug: a sync during a new Claude session's first run used
/// to import that run's own transcript as a second session; the run's end
/// then hit the unique (agent, external_id) index, rolled back, and left the
/// session "Processing" for good.
#[tokio::test]
async fn sync_during_a_new_claude_sessions_first_run_links_its_transcript() {
    let fx = Fixture::new().await;
    let claude_root = fx.dir.path().join("claude/projects");
    std::fs::write(
        PathBuf::from(&fx.project.path).join(".fake-claude-transcripts"),
        claude_root.to_str().unwrap(),
    )
    .unwrap();
    let syncer = Syncer::new(
        fx.db.clone(),
        SyncConfig {
            claude_root,
            codex_root: fx.dir.path().join("codex/sessions"),
        },
    );
    let session = fx.session(AgentKind::Claude).await;
    fx.runner
        .send(&session.id, "slow first turn")
        .await
        .unwrap();

    // The fake writes its transcript at once, then works for 2 s.
    let mut summary = syncer.sync(&fx.project).await.unwrap();
    for _ in 0..40 {
        if summary.files_total > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        summary = syncer.sync(&fx.project).await.unwrap();
    }
    assert_eq!(summary.files_total, 1, "{summary}");
    assert_eq!(summary.imported, 0, "the run's own transcript: {summary}");
    assert_eq!(fx.session_count().await, 1);

    let detail = fx.settled_within(&session.id, 10).await;
    assert_eq!(detail.session.state, SessionState::Idle, "{detail:#?}");
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Succeeded));
    assert!(detail.session.external_id.is_some());
    assert_eq!(fx.session_count().await, 1);
    // Another sync still imports nothing new.
    assert_eq!(syncer.sync(&fx.project).await.unwrap().imported, 0);
    assert_eq!(fx.session_count().await, 1);
}

/// The class behind it: an agent conversation id that another session
/// already holds must not make recording the run's end fail.
#[tokio::test]
async fn a_conversation_id_held_by_another_session_does_not_fail_the_runs_end() {
    let fx = Fixture::new().await;
    let holder = fx.session(AgentKind::Claude).await;
    let first = fx.runner.send(&holder.id, "success one").await.unwrap();
    let held = fx.settled_within(&first.id, 10).await;
    let taken = held.session.external_id.clone().unwrap();

    let other = fx.session(AgentKind::Claude).await;
    fx.runner
        .send(&other.id, &format!("as-session:{taken}"))
        .await
        .unwrap();
    let detail = fx.settled_within(&other.id, 10).await;
    assert_eq!(detail.session.state, SessionState::Idle, "{detail:#?}");
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Succeeded));
    assert_ne!(detail.session.external_id.as_deref(), Some(taken.as_str()));
    assert_eq!(
        fx.detail(&holder.id).await.session.external_id.as_deref(),
        Some(taken.as_str())
    );
}

/// The write lock held by someone else for longer than the busy timeout:
/// the first attempt to record the end fails, a retry succeeds.
#[tokio::test]
async fn a_busy_database_at_the_runs_end_is_retried() {
    if common::skip_on_postgres("a_busy_database_at_the_runs_end_is_retried") {
        return;
    }
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    fx.runner
        .send(&session.id, "sleep 0.5; echo done")
        .await
        .unwrap();
    let path = fx.db_path();
    let holder = std::thread::spawn(move || {
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(7));
        conn.batch_execute("COMMIT").unwrap();
    });
    let detail = fx.settled_within(&session.id, 30).await;
    holder.join().unwrap();
    assert_eq!(detail.session.state, SessionState::Idle, "{detail:#?}");
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Succeeded));
    assert_eq!(detail.messages.last().unwrap().content, "done");
}

/// A full database (`max_page_count` reached on every pooled connection):
/// the run's end, with its large answer, cannot be written; the session
/// still leaves `working`, with an error saying why.
#[tokio::test]
async fn a_full_database_at_the_runs_end_still_leaves_working() {
    if common::skip_on_postgres("a_full_database_at_the_runs_end_still_leaves_working") {
        return;
    }
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    fx.runner
        .send(&session.id, "sleep 1; head -c 60000 /dev/zero | tr '\\0' x")
        .await
        .unwrap();
    // Every connection of the pool gets a page limit at the current size.
    set_page_limit_on_every_connection(&fx.db, None);
    tokio::spawn(Arc::clone(&fx.runner).watchdog(Duration::from_millis(500)));
    let detail = fx.settled_within(&session.id, 30).await;
    assert_eq!(detail.session.state, SessionState::Error, "{detail:#?}");
    let message = detail.session.error_message.clone().unwrap();
    assert!(
        message.contains("could not be saved") || message == LOST_RUN_MESSAGE,
        "{message}"
    );
    assert_eq!(open_runs(&detail), 0, "{detail:#?}");
}

/// Sets `PRAGMA max_page_count` on all pooled connections and the writer's
/// (to the current page count, i.e. full, or to `limit`), holding the
/// pooled ones all at once so each is a different one, then hands them back.
fn set_page_limit_on_every_connection(db: &Db, limit: Option<i64>) {
    let pragma = match limit {
        Some(limit) => format!("PRAGMA max_page_count = {limit};"),
        None => "PRAGMA max_page_count = 1;".to_owned(),
    };
    let mut held = Vec::new();
    while let Ok(mut conn) = db.conn() {
        // Below the current size SQLite keeps the current size: "full".
        conn.batch_execute(&pragma).unwrap();
        held.push(conn);
        if held.len() == 8 {
            break;
        }
    }
    assert_eq!(held.len(), 8, "the pool holds 8 connections");
    // And the writer's own connection, where every change is written.
    db.writer().batch_execute(&pragma).unwrap();
}

/// A late end of an older run never ends or overwrites a newer run.
#[tokio::test]
async fn the_end_of_a_run_is_fenced_by_its_run_id() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let id = session.id.clone();
    let (old, newer) = fx
        .db
        .run(move |conn| {
            let old = store::start(conn, &id, "run-old", "first", None, None)?;
            store::cancel_orphan(conn, &id)?;
            let newer = store::start(conn, &id, "run-new", "second", None, None)?;
            let late = store::finish(conn, &old, &TransitionEvent::Succeed, &Ending::default())?;
            assert!(late.is_none(), "the old run's end must not apply");
            let late_failure = store::end_run_as_failed(conn, &id, "run-old", "late")?;
            assert!(late_failure.is_none());
            Ok::<_, AppError>((old, newer))
        })
        .await
        .unwrap();
    let detail = fx.detail(&session.id).await;
    assert_eq!(detail.session.state, SessionState::Working);
    assert_eq!(open_runs(&detail), 1);
    let run_new = detail.runs.iter().find(|r| r.id == newer.run_id).unwrap();
    assert!(run_new.ended_at.is_none());
    let run_old = detail.runs.iter().find(|r| r.id == old.run_id).unwrap();
    assert_eq!(run_old.outcome, Some(Outcome::Cancelled));

    // The newer run's own end applies.
    let ended = fx
        .db
        .run(move |conn| store::finish(conn, &newer, &TransitionEvent::Succeed, &Ending::default()))
        .await
        .unwrap();
    assert!(ended.is_some());
    assert_eq!(
        fx.detail(&session.id).await.session.state,
        SessionState::Idle
    );
}

/// A cancel right after send returns (before the agent even started) ends
/// that run; the next send starts cleanly and nothing of the first lingers.
#[tokio::test]
async fn cancel_right_after_send_ends_that_run_only() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    for _ in 0..5 {
        fx.runner.send(&session.id, "sleep 30").await.unwrap();
        let cancelled = fx.runner.cancel(&session.id).await.unwrap();
        assert_eq!(cancelled.state, SessionState::Idle);
    }
    fx.runner.send(&session.id, "echo after").await.unwrap();
    let detail = fx.settled_within(&session.id, 10).await;
    assert_eq!(detail.session.state, SessionState::Idle);
    assert_eq!(detail.messages.last().unwrap().content, "after");
    let outcomes: Vec<_> = detail.runs.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes.len(), 6);
    assert!(outcomes[..5].iter().all(|o| *o == Some(Outcome::Cancelled)));
    assert_eq!(outcomes[5], Some(Outcome::Succeeded));
}

/// The watchdog: a working session whose run no process here runs becomes
/// an error; a run in progress is left alone.
#[tokio::test]
async fn the_watchdog_ends_runs_with_no_live_process() {
    let fx = Fixture::new().await;
    let lost = fx.session(AgentKind::Shell).await;
    let live = fx.session(AgentKind::Shell).await;
    let id = lost.id.clone();
    fx.db
        .run(move |conn| store::start(conn, &id, "run-lost", "sleep 30", None, None).map(|_| ()))
        .await
        .unwrap();
    fx.runner.send(&live.id, "sleep 30").await.unwrap();

    assert_eq!(fx.runner.end_lost_runs().await.unwrap(), 1);
    let detail = fx.detail(&lost.id).await;
    assert_eq!(detail.session.state, SessionState::Error);
    assert_eq!(
        detail.session.error_message.as_deref(),
        Some(LOST_RUN_MESSAGE)
    );
    assert_eq!(open_runs(&detail), 0);
    assert_eq!(
        fx.detail(&live.id).await.session.state,
        SessionState::Working
    );
    assert_eq!(fx.runner.end_lost_runs().await.unwrap(), 0);

    // Spawned, it does the same on its own within seconds.
    let id = lost.id.clone();
    fx.db
        .run(move |conn| store::start(conn, &id, "run-lost-2", "sleep 30", None, None).map(|_| ()))
        .await
        .unwrap();
    tokio::spawn(Arc::clone(&fx.runner).watchdog(Duration::from_millis(200)));
    let detail = fx.settled_within(&lost.id, 5).await;
    assert_eq!(
        detail.session.error_message.as_deref(),
        Some(LOST_RUN_MESSAGE)
    );
    assert_eq!(
        fx.detail(&live.id).await.session.state,
        SessionState::Working
    );
    fx.runner.shutdown().await;
}

/// `--max-runs`: a send beyond the limit is refused with 429 naming it.
#[tokio::test]
async fn sends_beyond_max_runs_are_refused_with_429() {
    let fx = Fixture::with_config(RunnerConfig {
        max_runs: 2,
        ..RunnerConfig::default()
    })
    .await;
    let sessions = [
        fx.session(AgentKind::Shell).await,
        fx.session(AgentKind::Shell).await,
        fx.session(AgentKind::Shell).await,
    ];
    fx.runner.send(&sessions[0].id, "sleep 30").await.unwrap();
    fx.runner.send(&sessions[1].id, "sleep 30").await.unwrap();
    let refused = fx
        .runner
        .send(&sessions[2].id, "sleep 30")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 429, "{refused}");
    assert!(refused.to_string().contains("--max-runs 2"), "{refused}");
    assert_eq!(
        fx.detail(&sessions[2].id).await.session.state,
        SessionState::Idle
    );
    assert!(
        fx.detail(&sessions[2].id).await.messages.is_empty(),
        "nothing recorded"
    );

    fx.runner.cancel(&sessions[0].id).await.unwrap();
    fx.runner.send(&sessions[2].id, "sleep 30").await.unwrap();
    fx.runner.shutdown().await;
}

/// A message starting with `-` is a message, never a flag.
#[tokio::test]
async fn messages_that_look_like_flags_reach_the_agent_as_messages() {
    let fx = Fixture::new().await;
    let shell = fx.session(AgentKind::Shell).await;
    fx.runner.send(&shell.id, "-c").await.unwrap();
    let detail = fx.settled_within(&shell.id, 10).await;
    // `sh -c -- -c` runs a command named "-c", which does not exist.
    assert_eq!(detail.session.state, SessionState::Error);
    assert!(
        detail
            .session
            .error_message
            .as_deref()
            .unwrap()
            .contains("-c: not found"),
        "{detail:#?}"
    );

    let claude = fx.session(AgentKind::Claude).await;
    fx.runner.send(&claude.id, "--help").await.unwrap();
    let detail = fx.settled_within(&claude.id, 10).await;
    assert_eq!(detail.session.state, SessionState::Idle, "{detail:#?}");
    assert_eq!(detail.messages.last().unwrap().content, "echo: --help");
}

/// Deleting a working session stops its whole process group first.
#[tokio::test]
async fn deleting_a_working_session_stops_its_process_group_first() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    fx.runner
        .send(&session.id, "sleep 60 & sleep 60")
        .await
        .unwrap();
    let mut pid = None;
    for _ in 0..200 {
        pid = fx.detail(&session.id).await.runs[0].pid;
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let pgid = nix::unistd::Pid::from_raw(pid.expect("pid recorded"));

    // The store alone refuses: a working session is not deleted under its run.
    let refused = session::store::delete(&fx.db, &session.id)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 409, "{refused}");

    fx.runner.delete(&session.id).await.unwrap();
    assert!(session::store::get(&fx.db, &session.id).await.is_err());
    for _ in 0..100 {
        if nix::sys::signal::killpg(pgid, None).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process group {pgid} still alive after delete");
}

/// `agentdeck sync` (a second process opening the same file) while the
/// server holds the write lock: opening waits for it instead of failing.
#[tokio::test]
async fn opening_the_database_while_another_process_writes_waits_for_it() {
    if common::skip_on_postgres("opening_the_database_while_another_process_writes_waits_for_it") {
        return;
    }
    let fx = Fixture::new().await;
    let path = fx.db_path();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            conn.batch_execute("COMMIT").unwrap();
        }
    });
    locked_rx.recv().unwrap();
    // Both the opening and a first write happen while the lock is held.
    let second = tokio::task::spawn_blocking(move || Db::open(path.to_str().unwrap()))
        .await
        .unwrap()
        .expect("a second opener waits for the lock, then opens");
    let written = session::store::create(&second, fx.project.id, "from sync", AgentKind::Shell)
        .await
        .expect("a write waits for the lock too");
    holder.join().unwrap();
    assert_eq!(
        session::store::get(&fx.db, &written.id).await.unwrap().name,
        "from sync"
    );
}
