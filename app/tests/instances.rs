//! Several instances on one database: two `Db` handles (each with its own
//! writer, pool, hub and tailer) and their runners stand for two servers.
//! On SQLite they share one file; on PostgreSQL (`AGENTDECK_TEST_PG_URL`)
//! one scratch database, with LISTEN/NOTIFY.

mod common;

use app::{
    agent::AgentKind,
    db::{scratch::ScratchDatabase, Db},
    instance::{store as instances, Instance, Timings},
    live::{follow::follow, LiveEvent, Scope},
    project::{self, Project},
    run::{
        runner::{Runner, RunnerConfig},
        store,
    },
    session, SessionState,
};
use common::with_fake_agents;
use std::{sync::Arc, time::Duration};
use tempfile::TempDir;
use tokio::time::{timeout, Instant};

/// Two instances on one database, and a project.
struct Pair {
    _dir: TempDir,
    scratch: Option<ScratchDatabase>,
    a: Db,
    b: Db,
    project: Project,
}

impl Pair {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let scratch = ScratchDatabase::on_test_cluster();
        let url = match &scratch {
            Some(scratch) => scratch.url().to_owned(),
            None => dir.path().join("agentdeck.db").to_str().unwrap().to_owned(),
        };
        let (a, b) = (Db::open(&url).unwrap(), Db::open(&url).unwrap());
        a.start_tailing();
        b.start_tailing();
        let project_dir = dir.path().join("project");
        std::fs::create_dir(&project_dir).unwrap();
        let project = project::store::add(&a, project_dir.to_str().unwrap(), None)
            .await
            .unwrap();
        Self {
            _dir: dir,
            scratch,
            a,
            b,
            project,
        }
    }

    /// A runner on `db` with a short lease, its ownership kept alive.
    async fn runner(&self, db: &Db, lease: Duration) -> Arc<Runner> {
        let runner = Runner::new(
            db.clone(),
            with_fake_agents(RunnerConfig {
                timings: Timings::with_lease(lease),
                ..RunnerConfig::default()
            }),
        );
        runner.recover().await.unwrap();
        tokio::spawn(Arc::clone(&runner).keep_alive());
        runner
    }

    async fn shell_session(&self, db: &Db, name: &str) -> session::Session {
        session::store::create(db, self.project.id, name, AgentKind::Shell)
            .await
            .unwrap()
    }
}

async fn high_water(db: &Db) -> i32 {
    db.run(app::transition::writer::high_water).await.unwrap()
}

async fn state_of(db: &Db, session_id: &str) -> session::Session {
    session::store::get(db, session_id).await.unwrap()
}

/// Polls `db` until the session is in `state` (at most `within`).
async fn wait_for_state(
    db: &Db,
    session_id: &str,
    state: SessionState,
    within: Duration,
) -> session::Session {
    let deadline = Instant::now() + within;
    loop {
        let session = state_of(db, session_id).await;
        if session.state == state {
            return session;
        }
        assert!(
            Instant::now() < deadline,
            "session still {} after {within:?}: {session:#?}",
            session.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The pid of run `run_id`'s agent (its process group), once recorded.
async fn pid_of_run(db: &Db, session_id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let detail = store::detail(db, session_id).await.unwrap();
        if let Some(pid) = detail.runs.last().and_then(|run| run.pid) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid recorded: {detail:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn process_exists(pid: i32) -> bool {
    // A zombie has a /proc entry but no command line left.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| !cmd.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_committing_at_once_each_follower_sees_every_seq_once_in_order() {
    let pair = Pair::new().await;
    let since = high_water(&pair.a).await;
    let mut followers = [
        follow(pair.a.clone(), Scope::All, Some(since)),
        follow(pair.b.clone(), Scope::All, Some(since)),
    ];
    const EACH: usize = 40;
    let writers: Vec<_> = [pair.a.clone(), pair.b.clone()]
        .into_iter()
        .enumerate()
        .map(|(instance, db)| {
            let project = pair.project.id;
            tokio::spawn(async move {
                for i in 0..EACH {
                    let name = format!("i{instance}-s{i}");
                    session::store::create(&db, project, &name, AgentKind::Shell)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let end = high_water(&pair.a).await;
    let all: Vec<i32> = pair
        .a
        .run(move |conn| {
            use app::db::schema::session_transitions::dsl::*;
            use diesel::prelude::*;
            session_transitions
                .filter(seq.gt(since))
                .order(seq.asc())
                .select(seq)
                .load::<i32>(conn)
                .map_err(app::error::AppError::from)
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2 * EACH, "every create is one change");
    for (name, follower) in ["a", "b"].iter().zip(followers.iter_mut()) {
        let mut seen = Vec::new();
        while seen.last() != Some(&end) {
            let event = timeout(Duration::from_secs(10), follower.next())
                .await
                .unwrap_or_else(|_| panic!("follower on {name} stalled after {seen:?}"))
                .expect("stream open");
            if let LiveEvent::Change { change, .. } = &**event {
                seen.push(change.seq);
            }
        }
        assert_eq!(seen, all, "follower on {name}: every seq once, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_committed_on_one_instance_reaches_the_others_pages_fast() {
    let pair = Pair::new().await;
    let since = high_water(&pair.b).await;
    let mut on_b = follow(pair.b.clone(), Scope::All, Some(since));
    // The first event makes the follower catch up once; then it is live.
    let started = Instant::now();
    let created = pair.shell_session(&pair.a, "from-a").await;
    let event = timeout(Duration::from_secs(5), on_b.next())
        .await
        .expect("B's page gets A's change without waiting for the poll")
        .unwrap();
    match &**event {
        LiveEvent::Change { change, session } => {
            assert_eq!(change.session_id, created.id);
            assert_eq!(session.as_ref().map(|s| s.name.as_str()), Some("from-a"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Live now: the next change arrives by the hub, well within a poll
    // interval on PostgreSQL (a notification wakes B's tailer).
    let renamed_at = Instant::now();
    session::store::rename(&pair.a, &created.id, "renamed")
        .await
        .unwrap();
    let committed = renamed_at.elapsed();
    let event = timeout(Duration::from_secs(5), on_b.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&**event, LiveEvent::Change { change, .. } if change.reason == app::transition::Reason::Renamed)
    );
    let latency = renamed_at.elapsed();
    eprintln!(
        "cross-instance change: {latency:?} after the write began, {:?} after it returned (first after {:?})",
        latency.saturating_sub(committed),
        started.elapsed()
    );
    if pair.a.is_postgres() {
        assert!(
            latency < app::live::tail::POLL_INTERVAL,
            "a notification should beat the poll: {latency:?}"
        );
    }
}

/// How many listener connections are open on the database, after
/// terminating them when `kill`.
async fn listeners(db: &Db, kill: bool) -> i64 {
    let counted = if kill {
        "count(pg_terminate_backend(pid))"
    } else {
        "count(*)"
    };
    let query = format!(
        "SELECT {counted}::bigint AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = '{}'",
        app::live::tail::LISTENER_NAME
    );
    db.run(move |conn| {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let app::db::DbConn::Pg(inner) = conn else {
            unreachable!("PostgreSQL only")
        };
        diesel::sql_query(query)
            .get_result::<Count>(inner)
            .map(|c| c.n)
            .map_err(app::error::AppError::from)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_listener_connection_loses_nothing() {
    let pair = Pair::new().await;
    if !pair.a.is_postgres() {
        eprintln!("a_killed_listener_connection_loses_nothing: PostgreSQL only, skipped");
        return;
    }
    let since = high_water(&pair.b).await;
    let mut on_b = follow(pair.b.clone(), Scope::All, Some(since));
    let first = pair.shell_session(&pair.a, "before").await;
    let event = timeout(Duration::from_secs(5), on_b.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.seq(), Some(high_water(&pair.a).await), "{first:?}");

    // Kill every listener connection (both instances'), then commit at once,
    // before they are back: the change must still arrive, in order.
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(&pair.a, false).await < 2 {
        assert!(Instant::now() < deadline, "the listeners never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = listeners(&pair.a, true).await;
    assert_eq!(killed, 2, "one listener per instance");
    let mut expected = Vec::new();
    for i in 0..5 {
        pair.shell_session(&pair.a, &format!("after-{i}")).await;
        expected.push(high_water(&pair.a).await);
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let event = timeout(Duration::from_secs(10), on_b.next())
            .await
            .unwrap_or_else(|_| panic!("lost changes after the listener died: saw {seen:?}"))
            .unwrap();
        seen.extend(event.seq());
    }
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_starting_leaves_a_live_instances_run_alone() {
    let pair = Pair::new().await;
    let a = pair.runner(&pair.a, Duration::from_secs(30)).await;
    let session = pair.shell_session(&pair.a, "long").await;
    a.send(&session.id, "sleep 30").await.unwrap();
    pid_of_run(&pair.a, &session.id).await;

    // B starts (recovery) and reaps: A is alive, its run is not an orphan.
    let b = pair.runner(&pair.b, Duration::from_secs(30)).await;
    assert_eq!(b.recover().await.unwrap(), 0);
    assert_eq!(b.interrupt_orphans().await.unwrap(), 0);
    // B's watchdog must not take A's run for lost either.
    assert_eq!(b.end_lost_runs().await.unwrap(), 0);
    assert_eq!(
        state_of(&pair.b, &session.id).await.state,
        SessionState::Working
    );

    a.cancel(&session.id).await.unwrap();
    assert_eq!(
        state_of(&pair.b, &session.id).await.state,
        SessionState::Idle
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_on_another_instance_stops_the_owners_process_group() {
    let pair = Pair::new().await;
    let a = pair.runner(&pair.a, Duration::from_secs(30)).await;
    let b = pair.runner(&pair.b, Duration::from_secs(30)).await;
    let session = pair.shell_session(&pair.a, "long").await;
    // A background child in the same group must stop too.
    a.send(&session.id, "sleep 60 & sleep 60").await.unwrap();
    let pid = pid_of_run(&pair.a, &session.id).await;
    assert!(process_exists(pid));

    let started = Instant::now();
    let cancelled = b.cancel(&session.id).await.unwrap();
    let took = started.elapsed();
    assert_eq!(cancelled.state, SessionState::Idle, "{cancelled:#?}");
    eprintln!("cancel from the other instance took {took:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let detail = store::detail(&pair.b, &session.id).await.unwrap();
    assert_eq!(
        detail.runs.last().unwrap().outcome,
        Some(app::run::Outcome::Cancelled),
        "the owner recorded the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_instances_run_is_interrupted_after_its_lease() {
    let pair = Pair::new().await;
    let lease = Duration::from_secs(2);
    // An instance on another machine that registered, started a run, and
    // then went silent (killed, or cut off from the database).
    let gone = Instance {
        id: "instance-on-build-box".into(),
        host: "build-box".into(),
        pid: 4242,
    };
    let session = pair.shell_session(&pair.a, "remote").await;
    let (me, id) = (gone.clone(), session.id.clone());
    let started = pair
        .a
        .write(move |conn| {
            instances::register(conn, &me)?;
            let started = store::start(conn, &id, "run-remote", "sleep 60", None, Some(&me.id))?;
            let change = LiveEvent::change(started.transition.clone());
            Ok((started, vec![change]))
        })
        .await
        .unwrap();

    let b = pair.runner(&pair.b, lease).await;
    // Within the lease the run is left alone…
    assert_eq!(
        state_of(&pair.b, &session.id).await.state,
        SessionState::Working
    );
    // …after it (plus a reaper interval), it is interrupted, naming the host.
    let silent_since = Instant::now();
    let ended = wait_for_state(&pair.b, &session.id, SessionState::Error, lease * 3).await;
    assert!(silent_since.elapsed() >= lease / 2, "reaped too early");
    assert_eq!(
        ended.error_message.as_deref(),
        Some("Interrupted: the instance on build-box stopped")
    );
    let detail = store::detail(&pair.b, &session.id).await.unwrap();
    assert_eq!(detail.runs[0].outcome, Some(app::run::Outcome::Interrupted));
    // A late end from the silent owner is fenced off: nothing changes.
    let late = pair
        .a
        .run(move |conn| {
            store::finish(
                conn,
                &started,
                &app::transition::TransitionEvent::Succeed,
                &store::Ending::default(),
            )
        })
        .await
        .unwrap();
    assert_eq!(late, None);
    assert_eq!(
        state_of(&pair.a, &session.id).await.state,
        SessionState::Error
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runs_output_lines_reach_another_instances_session_page() {
    let pair = Pair::new().await;
    if !pair.a.is_postgres() {
        eprintln!(
            "a_runs_output_lines_reach_another_instances_session_page: PostgreSQL only, skipped"
        );
        return;
    }
    let a = pair.runner(&pair.a, Duration::from_secs(30)).await;
    let session = pair.shell_session(&pair.a, "talky").await;
    let since = high_water(&pair.b).await;
    let mut on_b = follow(
        pair.b.clone(),
        Scope::Session(session.id.clone()),
        Some(since),
    );
    // The listener must be up before the lines are sent (they are best effort).
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(&pair.a, false).await < 2 {
        assert!(Instant::now() < deadline, "the listeners never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.send(&session.id, "echo one; echo two; sleep 0.5; echo three")
        .await
        .unwrap();
    let mut lines = Vec::new();
    let mut ended = false;
    while !ended || lines.len() < 3 {
        let event = timeout(Duration::from_secs(10), on_b.next())
            .await
            .unwrap_or_else(|_| panic!("B's page got only {lines:?} (ended: {ended})"))
            .unwrap();
        match &**event {
            LiveEvent::Output { line, n, .. } => lines.push((*n, line.clone())),
            LiveEvent::Change { change, .. } => {
                ended = change.reason == app::transition::Reason::Succeeded;
            }
            _ => {}
        }
    }
    assert_eq!(
        lines,
        [
            (1, "one".to_owned()),
            (2, "two".to_owned()),
            (3, "three".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_degrades_to_errors_stops_the_cut_off_instances_agents_and_recovers() {
    let pair = Pair::new().await;
    let Some(scratch) = &pair.scratch else {
        eprintln!("an_outage…: PostgreSQL only, skipped");
        return;
    };
    let lease = Duration::from_secs(3);
    let a = pair.runner(&pair.a, lease).await;
    let session = pair.shell_session(&pair.a, "long").await;
    a.send(&session.id, "sleep 60").await.unwrap();
    let pid = pid_of_run(&pair.a, &session.id).await;

    scratch.cut_off(true).unwrap();
    let cut_at = Instant::now();
    // Requests fail with an error, promptly; nothing panics or hangs.
    let refused = timeout(
        Duration::from_secs(15),
        session::store::create(&pair.a, pair.project.id, "during", AgentKind::Shell),
    )
    .await
    .expect("a write during the outage must fail, not hang");
    assert!(refused.is_err(), "{refused:?}");
    // Cut off for most of its lease, A stops its own agent: no second owner.
    while process_exists(pid) {
        assert!(
            cut_at.elapsed() < lease + Duration::from_secs(3),
            "the agent of an instance cut off from the database is still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "agent stopped {:?} after the database was cut off",
        cut_at.elapsed()
    );

    scratch.cut_off(false).unwrap();
    // Back: writes work again, and the run is not left working.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let created =
            session::store::create(&pair.a, pair.project.id, "after", AgentKind::Shell).await;
        if created.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never recovered: {created:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ended = wait_for_state(
        &pair.b,
        &session.id,
        SessionState::Error,
        Duration::from_secs(20),
    )
    .await;
    eprintln!("after the outage: {:?}", ended.error_message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_session_on_another_instance_stops_the_owners_agent_first() {
    let pair = Pair::new().await;
    let a = pair.runner(&pair.a, Duration::from_secs(30)).await;
    let b = pair.runner(&pair.b, Duration::from_secs(30)).await;
    let session = pair.shell_session(&pair.a, "doomed").await;
    a.send(&session.id, "sleep 60").await.unwrap();
    let pid = pid_of_run(&pair.a, &session.id).await;
    b.delete(&session.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(pid) {
        assert!(
            Instant::now() < deadline,
            "the deleted session's agent {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(session::store::get(&pair.a, &session.id).await.is_err());
}
