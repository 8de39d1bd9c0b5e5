//! The fixture the integration tests share: a temporary directory with a
//! real SQLite file, one project, and a runner that starts the fake agents
//! in `tests/fixtures/bin` (executables that print the real wire formats).

// Each test crate uses only part of this module.
#![allow(dead_code)]

use app::{
    agent::AgentKind,
    db::{scratch::ScratchDatabase, Db},
    project::{self, Project},
    run::{
        runner::{Runner, RunnerConfig},
        store, SessionDetail,
    },
    session::{self, Session},
    SessionState,
};
use std::{path::PathBuf, sync::Arc, time::Duration};
use tempfile::TempDir;

/// A database for one test: a scratch PostgreSQL database when the test
/// cluster is configured (`AGENTDECK_TEST_PG_URL`), else a SQLite file in
/// `dir`. Keep the scratch guard alive as long as the database is used.
pub fn open_test_db(dir: &std::path::Path) -> (Db, Option<ScratchDatabase>) {
    match ScratchDatabase::on_test_cluster() {
        Some(scratch) => (Db::open(scratch.url()).unwrap(), Some(scratch)),
        None => (
            Db::open(dir.join("agentdeck.db").to_str().unwrap()).unwrap(),
            None,
        ),
    }
}

/// Whether the tests run on PostgreSQL: SQLite-only cases (its pragmas, its
/// file opened by another process) say so and return.
pub fn skip_on_postgres(test: &str) -> bool {
    let on_postgres = std::env::var_os(app::db::scratch::TEST_CLUSTER_ENV).is_some();
    if on_postgres {
        eprintln!("{test}: SQLite only, skipped on PostgreSQL");
    }
    on_postgres
}

/// The fake agent executable called `name` (`claude` or `codex`).
pub fn fake_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bin")
        .join(name)
}

/// `config`, except that the runner starts the fake agents and stops runs
/// after a short grace period.
pub fn with_fake_agents(config: RunnerConfig) -> RunnerConfig {
    RunnerConfig {
        claude_bin: Some(fake_bin("claude")),
        codex_bin: Some(fake_bin("codex")),
        stop_grace: Duration::from_millis(500),
        ..config
    }
}

pub struct Fixture {
    /// Holds the database file and the project directory; removed on drop.
    pub dir: TempDir,
    pub project_dir: PathBuf,
    pub db: Db,
    pub runner: Arc<Runner>,
    pub project: Project,
    /// The PostgreSQL database `db` is on, when the tests run there.
    pub scratch: Option<ScratchDatabase>,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_config(RunnerConfig::default()).await
    }

    /// A fixture whose runner has `config`, except that it starts the fake
    /// agents and stops runs after a short grace period.
    pub async fn with_config(config: RunnerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let project_dir = dir.path().join("project");
        std::fs::create_dir(&project_dir).unwrap();
        let (db, scratch) = open_test_db(dir.path());
        let runner = Runner::new(db.clone(), with_fake_agents(config));
        let project = project::store::add(&db, project_dir.to_str().unwrap(), None)
            .await
            .unwrap();
        Self {
            dir,
            project_dir,
            db,
            runner,
            project,
            scratch,
        }
    }

    /// The SQLite file, for opening it as another process would.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("agentdeck.db")
    }

    /// A new session "s" in the project.
    pub async fn session(&self, agent: AgentKind) -> Session {
        self.named_session("s", agent).await
    }

    pub async fn named_session(&self, name: &str, agent: AgentKind) -> Session {
        session::store::create(&self.db, self.project.id, name, agent)
            .await
            .unwrap()
    }

    /// `count` new shell sessions, named s0, s1, …
    pub async fn shell_sessions(&self, count: usize) -> Vec<Session> {
        let mut sessions = Vec::new();
        for i in 0..count {
            sessions.push(self.named_session(&format!("s{i}"), AgentKind::Shell).await);
        }
        sessions
    }

    pub async fn detail(&self, session_id: &str) -> SessionDetail {
        store::detail(&self.db, session_id).await.unwrap()
    }

    /// Polls until the session leaves `working` (at most 10 s).
    pub async fn settled(&self, session_id: &str) -> SessionDetail {
        self.settled_within(session_id, 10).await
    }

    /// Polls until the session leaves `working` (at most `secs` seconds).
    pub async fn settled_within(&self, session_id: &str, secs: u64) -> SessionDetail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let detail = self.detail(session_id).await;
            if detail.session.state != SessionState::Working {
                return detail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {session_id} still working after {secs} s: {detail:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
