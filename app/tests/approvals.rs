//! Approvals end to end below HTTP: a real SQLite file, the runner, and a
//! fake `claude` that speaks the control protocol exactly (a `user` line
//! in, `can_use_tool` out, the matching `control_response` awaited, exit
//! only after stdin closes).

mod common;

use app::{
    agent::AgentKind,
    approval::{
        store::{self as approvals, RESTART_MESSAGE, RUN_ENDED_MESSAGE},
        Answer, Approval, Status,
    },
    error::AppError,
    run::{runner::Runner, store, Role, SessionDetail},
    session::Session,
    session_state::Attention,
    SessionState,
};
use common::Fixture;
use std::time::Duration;

impl Fixture {
    /// Sends `message` to a new Claude session and waits until it asks
    /// `count` requests; the session and its pending requests.
    async fn asking(&self, message: &str, count: usize) -> (Session, Vec<Approval>) {
        let session = self.session(AgentKind::Claude).await;
        self.runner.send(&session.id, message).await.unwrap();
        let pending = self.pending(&session.id, count).await;
        (session, pending)
    }

    /// Polls until the session has `count` pending requests.
    async fn pending(&self, session_id: &str, count: usize) -> Vec<Approval> {
        for _ in 0..400 {
            let pending: Vec<Approval> = self
                .requests(session_id)
                .await
                .into_iter()
                .filter(Approval::is_pending)
                .collect();
            if pending.len() == count {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{session_id} never had {count} pending requests");
    }

    async fn requests(&self, session_id: &str) -> Vec<Approval> {
        let id = session_id.to_owned();
        self.db
            .run(move |conn| approvals::for_session(conn, &id))
            .await
            .unwrap()
    }

    async fn answer(&self, approval: &Approval, answer: Answer) -> Result<Approval, AppError> {
        approvals::answer(&self.db, self.runner.broker(), &approval.id, answer).await
    }
}

fn agent_answer(detail: &SessionDetail) -> &str {
    assert_eq!(detail.session.state, SessionState::Idle, "{detail:#?}");
    let last = detail.messages.last().unwrap();
    assert_eq!(last.role, Role::Agent);
    &last.content
}

#[tokio::test]
async fn an_allowed_request_runs_the_tool_and_marks_the_session_until_answered() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask:touch allowed.txt", 1).await;
    let request = &pending[0];
    assert_eq!(
        (request.tool.as_str(), request.summary.as_str()),
        ("Bash", "touch allowed.txt")
    );
    assert_eq!(request.detail.as_deref(), Some("probe"));
    assert!(request.can_allow_always());
    // The session stays working, marked "Needs approval".
    let waiting = fx.detail(&session.id).await.session;
    assert_eq!(waiting.state, SessionState::Working);
    assert_eq!(waiting.attention, Some(Attention::Approval));
    assert!(!fx.project_dir.join("allowed.txt").exists());

    let allowed = fx
        .answer(request, Answer::Allow { always: false })
        .await
        .unwrap();
    assert_eq!(allowed.status, Status::Allowed);
    let detail = fx.settled(&session.id).await;
    assert_eq!(
        agent_answer(&detail),
        "allowed: ran touch allowed.txt (exit 0)"
    );
    assert!(fx.project_dir.join("allowed.txt").exists());
    assert_eq!(detail.session.attention, None);
    // The Claude run was started in "Ask me" mode, the message on stdin.
    let mode = std::fs::read_to_string(fx.project_dir.join(".fake-agent-mode")).unwrap();
    assert_eq!(mode.trim(), "default");

    // The first answer won: another one, from another tab, gets 409.
    let late = fx.answer(request, Answer::Deny { message: None }).await;
    assert!(
        matches!(late, Err(AppError::Conflict(ref m)) if m.contains("already answered (Allowed)")),
        "{late:?}"
    );
    let unknown = approvals::answer(
        &fx.db,
        fx.runner.broker(),
        "nope",
        Answer::Allow { always: false },
    )
    .await;
    assert!(matches!(unknown, Err(AppError::NotFound(_))), "{unknown:?}");
}

#[tokio::test]
async fn a_denied_request_tells_the_agent_why_and_the_turn_goes_on() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask:touch denied.txt", 1).await;
    let message = Some("  not in this repo  ".to_owned());
    let denied = fx
        .answer(&pending[0], Answer::Deny { message })
        .await
        .unwrap();
    assert_eq!(denied.status, Status::Denied);
    assert_eq!(denied.message.as_deref(), Some("not in this repo"));
    let detail = fx.settled(&session.id).await;
    assert_eq!(agent_answer(&detail), "denied: not in this repo");
    assert!(!fx.project_dir.join("denied.txt").exists());
    // The run's permission denials are recorded for the page.
    assert_eq!(
        detail.runs.last().unwrap().denied_tools.as_deref(),
        Some("Bash")
    );
}

#[tokio::test]
async fn allow_always_sends_the_agents_suggested_rules_back() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask:echo hi", 1).await;
    fx.answer(&pending[0], Answer::Allow { always: true })
        .await
        .unwrap();
    let detail = fx.settled(&session.id).await;
    assert_eq!(
        agent_answer(&detail),
        "allowed (always): ran echo hi (exit 0)"
    );
    let rules = std::fs::read_to_string(fx.project_dir.join(".fake-agent-permissions")).unwrap();
    assert!(rules.contains(r#""ruleContent": "echo hi""#), "{rules}");
    assert_eq!(
        fx.requests(&session.id).await[0].outcome(),
        "Allowed always"
    );
}

#[tokio::test]
async fn two_requests_in_one_turn_keep_the_session_waiting_until_both_are_answered() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask-twice:touch one;touch two", 2).await;
    fx.answer(
        &pending[1],
        Answer::Deny {
            message: Some("not two".into()),
        },
    )
    .await
    .unwrap();
    // One answered, one still open: still "Needs approval".
    let waiting = fx.detail(&session.id).await;
    assert_eq!(waiting.session.state, SessionState::Working);
    assert_eq!(waiting.session.attention, Some(Attention::Approval));
    fx.answer(&pending[0], Answer::Allow { always: false })
        .await
        .unwrap();
    let detail = fx.settled(&session.id).await;
    assert_eq!(
        agent_answer(&detail),
        "allowed: ran touch one (exit 0)\ndenied: not two"
    );
    assert!(fx.project_dir.join("one").exists() && !fx.project_dir.join("two").exists());
}

#[tokio::test]
async fn cancel_while_a_request_is_pending_interrupts_the_agent_and_closes_it() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask:touch never.txt", 1).await;
    let cancelled = fx.runner.cancel(&session.id).await.unwrap();
    assert_eq!(cancelled.state, SessionState::Idle);
    assert_eq!(cancelled.attention, None);
    let closed = &fx.requests(&session.id).await[0];
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(
        closed.message.as_deref(),
        Some("The run was cancelled before an answer")
    );
    let detail = fx.detail(&session.id).await;
    assert_eq!(
        detail.runs.last().unwrap().outcome,
        Some(app::run::Outcome::Cancelled)
    );
    // The fake exits 1 after an interrupt, like the real CLI: it got it
    // (a kill would leave no exit code).
    assert_eq!(detail.runs.last().unwrap().exit_code, Some(1));
    let late = fx
        .answer(&pending[0], Answer::Allow { always: false })
        .await;
    assert!(matches!(late, Err(AppError::Conflict(_))), "{late:?}");
    assert!(!fx.project_dir.join("never.txt").exists());
}

#[tokio::test]
async fn a_server_restart_while_a_request_is_pending_closes_it_as_interrupted() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask:touch x", 1).await;
    // A new server on the same database: the old one's run is gone.
    let restarted = Runner::new(fx.db.clone(), Default::default());
    restarted.recover().await.unwrap();
    let detail = fx.detail(&session.id).await;
    assert_eq!(detail.session.state, SessionState::Error);
    assert_eq!(detail.session.attention, None);
    let closed = &fx.requests(&session.id).await[0];
    assert_eq!(
        (closed.status, closed.message.as_deref()),
        (Status::Closed, Some(RESTART_MESSAGE))
    );
    // Answering it now is a conflict, not a lost answer.
    let late = approvals::answer(
        &fx.db,
        restarted.broker(),
        &pending[0].id,
        Answer::Allow { always: false },
    )
    .await;
    assert!(matches!(late, Err(AppError::Conflict(_))), "{late:?}");
    fx.runner.shutdown().await;
}

#[tokio::test]
async fn malformed_control_lines_are_survived_and_answered_with_errors() {
    let fx = Fixture::new().await;
    let (session, pending) = fx.asking("ask-malformed", 1).await;
    assert_eq!(pending[0].summary, "echo survived");
    fx.answer(&pending[0], Answer::Allow { always: false })
        .await
        .unwrap();
    let detail = fx.settled(&session.id).await;
    assert_eq!(agent_answer(&detail), "allowed: ran echo survived (exit 0)");
}

#[tokio::test]
async fn a_request_the_agent_withdraws_is_closed() {
    let fx = Fixture::new().await;
    let session = fx.session(AgentKind::Claude).await;
    fx.runner.send(&session.id, "ask-withdraw").await.unwrap();
    let detail = fx.settled(&session.id).await;
    assert_eq!(agent_answer(&detail), "withdrew the request");
    let closed = &fx.requests(&session.id).await[0];
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(
        closed.message.as_deref(),
        Some("The agent withdrew the request")
    );
}

#[tokio::test]
async fn an_unanswered_request_ends_with_the_run_timeout() {
    let fx = Fixture::with_config(app::run::runner::RunnerConfig {
        run_timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let (session, _) = fx.asking("ask:true", 1).await;
    let detail = fx.settled(&session.id).await;
    assert_eq!(detail.session.state, SessionState::Error);
    assert!(detail
        .session
        .error_message
        .unwrap()
        .starts_with("timed out"));
    let closed = &fx.requests(&session.id).await[0];
    assert_eq!(
        (closed.status, closed.message.as_deref()),
        (Status::Closed, Some(RUN_ENDED_MESSAGE))
    );
    assert_eq!(
        store::detail(&fx.db, &session.id)
            .await
            .unwrap()
            .session
            .attention,
        None
    );
}
