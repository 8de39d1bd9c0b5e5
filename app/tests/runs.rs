//! Agent runs end to end below HTTP: a real SQLite file, real processes,
//! and fake `claude`/`codex` executables that print the real wire formats.

mod common;

use app::{
    agent::AgentKind,
    error::AppError,
    run::{
        runner::{Runner, RunnerConfig},
        store, Outcome, Role, SessionDetail,
    },
    session::Session,
    transition::{Reason, INTERRUPTED_MESSAGE, MAX_ERROR_CHARS},
    SessionState,
};
use common::Fixture;
use nix::{sys::signal::killpg, unistd::Pid};
use std::{sync::Arc, time::Duration};

impl Fixture {
    /// Sends and waits for the run to end.
    async fn run(&self, session: &Session, message: &str) -> SessionDetail {
        let sent = self.runner.send(&session.id, message).await.unwrap();
        assert_eq!(sent.state, SessionState::Working);
        assert_eq!(sent.error_message, None);
        self.settled(&session.id).await
    }

    /// Polls until the running process's pid is recorded.
    async fn pid(&self, session_id: &str) -> i32 {
        for _ in 0..200 {
            let detail = store::detail(&self.db, session_id).await.unwrap();
            if let Some(pid) = detail.runs.last().and_then(|r| r.pid) {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no pid recorded");
    }

    fn agent_args(&self) -> String {
        std::fs::read_to_string(self.project_dir.join(".fake-agent-args")).unwrap_or_default()
    }
}

fn error_of(detail: &SessionDetail) -> &str {
    assert_eq!(detail.session.state, SessionState::Error, "{detail:#?}");
    detail.session.error_message.as_deref().unwrap()
}

fn answer_of(detail: &SessionDetail) -> &str {
    assert_eq!(detail.session.state, SessionState::Idle, "{detail:#?}");
    assert_eq!(detail.session.error_message, None);
    let last = detail.messages.last().unwrap();
    assert_eq!(last.role, Role::Agent);
    &last.content
}

/// Whether any process of the group still exists.
fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

async fn wait_group_gone(pgid: i32) {
    for _ in 0..100 {
        if !group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("process group {pgid} is still alive");
}

#[tokio::test]
async fn a_successful_shell_run_returns_to_idle_and_stores_the_answer() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let detail = fx.run(&session, "echo hello from $(basename $PWD)").await;
    assert_eq!(answer_of(&detail), "hello from project");
    let run = &detail.runs[0];
    assert_eq!(
        (run.outcome, run.exit_code),
        (Some(Outcome::Succeeded), Some(0))
    );
    assert!(run.duration_ms.is_some() && run.ended_at.is_some());
    assert_eq!(detail.messages[0].role, Role::User);
    let reasons: Vec<_> = detail.transitions.iter().map(|t| t.reason).collect();
    assert_eq!(reasons, [Reason::Sent, Reason::Succeeded]);
    assert!(detail.transitions[0].seq < detail.transitions[1].seq);
}

#[tokio::test]
async fn a_failing_command_records_its_status_and_stderr_tail() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let detail = fx
        .run(
            &session,
            "echo some output; echo 'disk is full' >&2; exit 3",
        )
        .await;
    assert_eq!(error_of(&detail), "exited with status 3: disk is full");
    assert_eq!(detail.runs[0].exit_code, Some(3));
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Failed));
    assert_eq!(detail.transitions.last().unwrap().reason, Reason::Failed);

    // Sending again clears the error while working, then succeeds.
    let retried = fx.run(&session, "true").await;
    assert_eq!(retried.session.state, SessionState::Idle);
    assert_eq!(retried.session.error_message, None);
}

#[tokio::test]
async fn an_unknown_command_is_an_error_naming_it() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let detail = fx.run(&session, "no-such-command-xyz --flag").await;
    let error = error_of(&detail);
    assert!(
        error.contains("status 127") && error.contains("no-such-command-xyz"),
        "{error}"
    );
}

#[tokio::test]
async fn spawn_failures_are_clear_errors() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    std::fs::remove_dir(&fx.project_dir).unwrap();
    let detail = fx.run(&session, "true").await;
    assert!(
        error_of(&detail).contains("no longer exists"),
        "{}",
        error_of(&detail)
    );

    let missing = Fixture::with_config(RunnerConfig::default()).await;
    let runner = Runner::new(
        missing.db.clone(),
        RunnerConfig {
            claude_bin: Some("/nonexistent/claude".into()),
            ..RunnerConfig::default()
        },
    );
    let claude = missing.session(AgentKind::Claude).await;
    runner.send(&claude.id, "hi").await.unwrap();
    let detail = missing.settled(&claude.id).await;
    assert!(
        error_of(&detail).contains("/nonexistent/claude does not exist"),
        "{}",
        error_of(&detail)
    );
}

#[tokio::test]
async fn a_run_past_its_timeout_is_stopped_and_recorded_as_an_error() {
    let fx = Fixture::with_config(RunnerConfig {
        run_timeout: Duration::from_millis(700),
        ..RunnerConfig::default()
    })
    .await;
    let session = fx.session(AgentKind::Shell).await;
    let detail = fx.run(&session, "sleep 30").await;
    assert!(
        error_of(&detail).contains("timed out"),
        "{}",
        error_of(&detail)
    );
    wait_group_gone(detail.runs[0].pid.unwrap()).await;
}

#[tokio::test]
async fn cancel_stops_the_whole_process_group_and_returns_to_idle() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    fx.runner
        .send(&session.id, "sleep 60 & sleep 60; wait")
        .await
        .unwrap();
    let pgid = fx.pid(&session.id).await;
    assert!(group_alive(pgid));

    let cancelled = fx.runner.cancel(&session.id).await.unwrap();
    assert_eq!(
        (cancelled.state, cancelled.error_message),
        (SessionState::Idle, None)
    );
    wait_group_gone(pgid).await;
    let detail = store::detail(&fx.db, &session.id).await.unwrap();
    assert_eq!(detail.transitions.last().unwrap().reason, Reason::Cancelled);
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Cancelled));

    let again = fx.runner.cancel(&session.id).await;
    assert!(matches!(again, Err(AppError::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn a_megabyte_of_stderr_is_stored_as_at_most_1000_characters() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let detail = fx
        .run(
            &session,
            "yes 'ünïcødé — error 🦀' | head -c 1048576 >&2; exit 1",
        )
        .await;
    let error = error_of(&detail);
    assert!(
        error.chars().count() <= MAX_ERROR_CHARS,
        "{} chars",
        error.chars().count()
    );
    assert!(error.starts_with("exited with status 1: "), "{error}");
    assert!(error.ends_with("[…]"));
}

#[tokio::test]
async fn sends_are_validated_before_anything_starts() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let empty = fx.runner.send(&session.id, "  \n ").await.unwrap_err();
    assert_eq!(empty.status(), 422);
    let huge = fx
        .runner
        .send(&session.id, &"x".repeat(app::run::MAX_MESSAGE_BYTES + 1))
        .await
        .unwrap_err();
    assert_eq!(huge.status(), 413);
    let unknown = fx.runner.send("no-such-session", "true").await.unwrap_err();
    assert_eq!(unknown.status(), 404);
    let detail = store::detail(&fx.db, &session.id).await.unwrap();
    assert!(detail.runs.is_empty() && detail.messages.is_empty() && detail.transitions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_100_concurrent_sends_exactly_one_starts_a_run() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    let sends = (0..100).map(|_| {
        let (runner, id) = (Arc::clone(&fx.runner), session.id.clone());
        tokio::spawn(async move { runner.send(&id, "sleep 1").await })
    });
    let results = futures_join(sends).await;
    let started = results.iter().filter(|r| r.is_ok()).count();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(AppError::Conflict(m)) if m.contains("session is busy")))
        .count();
    assert_eq!((started, busy), (1, 99));
    let detail = fx.settled(&session.id).await;
    assert_eq!(detail.runs.len(), 1);
    assert_eq!(
        detail
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .count(),
        1
    );
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}

#[tokio::test]
async fn recovery_marks_sessions_left_working_as_interrupted() {
    let fx = Fixture::new().await;
    let orphan = fx.session(AgentKind::Shell).await;
    let bystander = fx.session(AgentKind::Shell).await;
    // A run recorded as started by a server that then died: no process here.
    let id = orphan.id.clone();
    fx.db
        .run(move |conn| store::start(conn, &id, "run-1", "sleep 30", None, None).map(|_| ()))
        .await
        .unwrap();

    assert_eq!(fx.runner.recover().await.unwrap(), 1);
    let detail = store::detail(&fx.db, &orphan.id).await.unwrap();
    assert_eq!(error_of(&detail), INTERRUPTED_MESSAGE);
    assert_eq!(
        detail.transitions.last().unwrap().reason,
        Reason::Interrupted
    );
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Interrupted));
    let untouched = store::detail(&fx.db, &bystander.id).await.unwrap();
    assert_eq!(untouched.session.state, SessionState::Idle);
    assert!(untouched.transitions.is_empty());
    assert_eq!(
        fx.runner.recover().await.unwrap(),
        0,
        "recovery is idempotent"
    );
}

#[tokio::test]
async fn shutdown_interrupts_runs_and_leaves_no_process_behind() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    fx.runner.send(&session.id, "sleep 60").await.unwrap();
    let pgid = fx.pid(&session.id).await;
    fx.runner.shutdown().await;
    wait_group_gone(pgid).await;
    let detail = store::detail(&fx.db, &session.id).await.unwrap();
    assert_eq!(error_of(&detail), INTERRUPTED_MESSAGE);
    assert_eq!(
        detail.transitions.last().unwrap().reason,
        Reason::Interrupted
    );
    assert_eq!(detail.runs[0].outcome, Some(Outcome::Interrupted));
}

#[tokio::test]
async fn claude_success_continues_the_conversation_with_resume() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Claude).await;
    let first = fx.run(&session, "success one").await;
    assert_eq!(answer_of(&first), "Done: success one");
    let claude_id = first
        .session
        .external_id
        .clone()
        .expect("claude session id stored");
    assert_eq!(first.runs[0].cost_usd, Some(0.0123));
    assert_eq!(
        first.runs[0].agent_session_id.as_deref(),
        Some(claude_id.as_str())
    );

    let second = fx.run(&session, "success two").await;
    assert_eq!(answer_of(&second), "Done: success two");
    assert_eq!(
        fx.agent_args(),
        format!("--session-id {claude_id}\n--resume {claude_id}\n")
    );
}

#[tokio::test]
async fn claude_failures_take_the_message_from_the_best_source() {
    let fx = Fixture::new().await;
    let cases = [
        (
            "is-error",
            "error_during_execution: API Error: Overloaded (API status 529)",
        ),
        (
            "stdout-error",
            "claude exited with status 1: Invalid API key · Please run /login",
        ),
        (
            "crash",
            "claude exited with status 2: fatal: the agent crashed mid-stream",
        ),
    ];
    for (message, expected) in cases {
        let session = fx.session(AgentKind::Claude).await;
        let detail = fx.run(&session, message).await;
        assert_eq!(error_of(&detail), expected, "{message}");
    }
}

#[tokio::test]
async fn claude_malformed_lines_are_skipped_and_a_lingering_process_is_stopped() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Claude).await;
    let detail = fx.run(&session, "malformed").await;
    assert_eq!(answer_of(&detail), "ok despite noise");

    let clock = std::time::Instant::now();
    let detail = fx.run(&session, "linger").await;
    assert_eq!(answer_of(&detail), "finished but lingering");
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "waited for the lingering process"
    );
    wait_group_gone(detail.runs.last().unwrap().pid.unwrap()).await;
}

#[tokio::test]
async fn codex_success_failure_and_resume() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Codex).await;
    let first = fx.run(&session, "hello").await;
    assert_eq!(answer_of(&first), "Codex answer");
    assert_eq!(
        first.session.external_id.as_deref(),
        Some("thread-fake-123")
    );

    let failed = fx.run(&session, "fail now").await;
    assert_eq!(error_of(&failed), "model overloaded, try again later");
    assert_eq!(fx.agent_args(), "resume thread-fake-123\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_moment_a_run_is_seen_ended_is_accepted() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Shell).await;
    for i in 0..20 {
        // The moment the end is committed (polled as fast as it goes), the
        // runner may still be tidying the run up: the next send waits for
        // that, it is not "busy".
        let sent = fx.runner.send(&session.id, "true").await;
        assert!(sent.is_ok(), "send {i}: {sent:?}");
        loop {
            let session = app::session::store::get(&fx.db, &session.id).await.unwrap();
            if session.state != SessionState::Working {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}
