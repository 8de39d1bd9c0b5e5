//! The data model on a real SQLite file: migrations, constraints, pragmas,
//! and the project/session stores.

use app::{
    agent::AgentKind,
    db::{schema::sessions, Db},
    error::AppError,
    project, session, SessionState,
};
use diesel::{
    dsl::sql,
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::{BigInt, Integer, Text},
};
use tempfile::TempDir;

mod common;

struct Fixture {
    dir: TempDir,
    db: Db,
    _scratch: Option<app::db::scratch::ScratchDatabase>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db, _scratch) = common::open_test_db(&dir.path().join("data"));
        Self { dir, db, _scratch }
    }

    fn project_dir(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path.to_str().unwrap().to_owned()
    }

    async fn session(&self) -> session::Session {
        let project = project::store::add(&self.db, &self.project_dir("p"), None)
            .await
            .unwrap();
        session::store::create(&self.db, project.id, "first", AgentKind::Shell)
            .await
            .unwrap()
    }
}

fn violation(err: DieselError) -> DatabaseErrorKind {
    match err {
        DieselError::DatabaseError(kind, _) => kind,
        other => panic!("expected a constraint violation, got {other:?}"),
    }
}

#[test]
fn migrations_run_on_a_fresh_file_and_again_on_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("nested/dir/agentdeck.db");
    let url = url.to_str().unwrap();
    let db = Db::open(url).unwrap();
    diesel::sql_query("INSERT INTO projects (name, path, created_at) VALUES ('kept', '/kept', 1)")
        .execute(&mut db.conn().unwrap())
        .unwrap();
    drop(db);

    let reopened = Db::open(url).unwrap();
    let names: Vec<String> = app::db::schema::projects::table
        .select(app::db::schema::projects::name)
        .load(&mut reopened.conn().unwrap())
        .unwrap();
    assert_eq!(names, ["kept"]);
}

#[test]
fn connections_use_wal_foreign_keys_and_a_busy_timeout() {
    if common::skip_on_postgres("connections_use_wal_foreign_keys_and_a_busy_timeout") {
        return;
    }
    let fx = Fixture::new();
    let mut conn = fx.db.conn().unwrap();
    let mode: String = diesel::select(sql::<Text>("journal_mode FROM pragma_journal_mode"))
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i32 = diesel::select(sql::<Integer>("foreign_keys FROM pragma_foreign_keys"))
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(fk, 1);
    let timeout: i64 = diesel::select(sql::<BigInt>("timeout FROM pragma_busy_timeout"))
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(timeout, 5000);
}

#[tokio::test]
async fn a_new_session_is_idle_with_no_error_message() {
    let fx = Fixture::new();
    let created = fx.session().await;
    assert_eq!(created.state, SessionState::Idle);
    assert_eq!(created.error_message, None);

    let stored = session::store::get(&fx.db, &created.id).await.unwrap();
    assert_eq!(stored, created);
    let (state, message): (String, Option<String>) = sessions::table
        .find(&created.id)
        .select((sql::<Text>("state"), sessions::error_message))
        .first(&mut fx.db.conn().unwrap())
        .unwrap();
    assert_eq!((state.as_str(), message), ("idle", None));
}

#[tokio::test]
async fn session_state_round_trips_through_the_database() {
    let fx = Fixture::new();
    let id = fx.session().await.id;
    let mut conn = fx.db.conn().unwrap();
    for (state, message) in [
        (SessionState::Working, None),
        (SessionState::Error, Some("exited with status 3")),
        (SessionState::Idle, None),
    ] {
        diesel::update(sessions::table.find(&id))
            .set((
                sessions::state.eq(state),
                sessions::error_message.eq(message),
            ))
            .execute(&mut conn)
            .unwrap();
        let read: SessionState = sessions::table
            .find(&id)
            .select(sessions::state)
            .first(&mut conn)
            .unwrap();
        assert_eq!(read, state);
    }
}

#[tokio::test]
async fn check_constraints_reject_an_invalid_state_and_a_stray_error_message() {
    let fx = Fixture::new();
    let id = fx.session().await.id;
    let mut conn = fx.db.conn().unwrap();
    let set = |conn: &mut app::db::DbConn, assignment: &str| {
        let placeholder = match conn {
            app::db::DbConn::Pg(_) => "$1",
            app::db::DbConn::Sqlite(_) => "?",
        };
        diesel::sql_query(format!(
            "UPDATE sessions SET {assignment} WHERE id = {placeholder}"
        ))
        .bind::<Text, _>(&id)
        .execute(conn)
    };

    let err = set(&mut conn, "state = 'busy'").unwrap_err();
    assert!(matches!(violation(err), DatabaseErrorKind::CheckViolation));
    let err = set(&mut conn, "error_message = 'boom'").unwrap_err();
    assert!(
        matches!(violation(err), DatabaseErrorKind::CheckViolation),
        "idle with a message"
    );
    let err = set(&mut conn, "state = 'error'").unwrap_err();
    assert!(
        matches!(violation(err), DatabaseErrorKind::CheckViolation),
        "error without a message"
    );
    let err = set(&mut conn, "state = 'error', error_message = ''").unwrap_err();
    assert!(
        matches!(violation(err), DatabaseErrorKind::CheckViolation),
        "empty message"
    );
    set(&mut conn, "state = 'error', error_message = 'boom'").unwrap();

    let stored = session::store::get(&fx.db, &id).await.unwrap();
    assert_eq!(stored.state, SessionState::Error);
    assert_eq!(stored.error_message.as_deref(), Some("boom"));
}

#[test]
fn an_unknown_state_read_from_the_database_is_an_error_naming_it() {
    let fx = Fixture::new();
    let err = diesel::select(sql::<Text>("'paused' AS state"))
        .get_result::<SessionState>(&mut fx.db.conn().unwrap())
        .unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        chain.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    assert!(
        chain.contains("unknown session state \"paused\""),
        "{chain}"
    );
}

#[tokio::test]
async fn projects_need_an_existing_directory_and_are_unique_by_canonical_path() {
    let fx = Fixture::new();
    let dir = fx.project_dir("my app");

    let missing = project::store::add(&fx.db, &format!("{dir}/nope"), None).await;
    assert!(
        matches!(&missing, Err(AppError::Invalid(m)) if m.contains("No directory at")),
        "{missing:?}"
    );

    let file = format!("{dir}/file.txt");
    std::fs::write(&file, "x").unwrap();
    let not_dir = project::store::add(&fx.db, &file, None).await;
    assert!(
        matches!(&not_dir, Err(AppError::Invalid(m)) if m.contains("not a directory")),
        "{not_dir:?}"
    );

    let relative = project::store::add(&fx.db, "relative/path", None).await;
    assert!(
        matches!(&relative, Err(AppError::Invalid(m)) if m.contains("absolute")),
        "{relative:?}"
    );
    let empty = project::store::add(&fx.db, "  ", None).await;
    assert!(
        matches!(&empty, Err(AppError::Invalid(m)) if m.contains("required")),
        "{empty:?}"
    );

    let added = project::store::add(&fx.db, &dir, Some("  ")).await.unwrap();
    assert_eq!(
        added.name, "my app",
        "blank name falls back to the directory name"
    );
    assert_eq!(
        added.path,
        std::fs::canonicalize(&dir).unwrap().to_str().unwrap()
    );

    let again = project::store::add(&fx.db, &format!("{dir}/../my app/"), Some("Other")).await;
    assert!(
        matches!(&again, Err(AppError::Conflict(m)) if m.contains("already exists")),
        "{again:?}"
    );
    assert_eq!(again.unwrap_err().status(), 409);
    assert_eq!(project::store::list(&fx.db).await.unwrap(), [added]);
}

#[tokio::test]
async fn sessions_are_listed_newest_first_and_can_be_renamed_and_deleted() {
    let fx = Fixture::new();
    let project = project::store::add(&fx.db, &fx.project_dir("p"), Some("P"))
        .await
        .unwrap();
    let first = session::store::create(&fx.db, project.id, "first", AgentKind::Shell)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = session::store::create(&fx.db, project.id, "second", AgentKind::Shell)
        .await
        .unwrap();

    let listed = session::store::list_for_project(&fx.db, project.id, None)
        .await
        .unwrap();
    assert_eq!(listed.project, project);
    let names: Vec<_> = listed.sessions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["second", "first"]);

    let renamed = session::store::rename(&fx.db, &first.id, " renamed ")
        .await
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.state, SessionState::Idle);
    let blank = session::store::rename(&fx.db, &first.id, "   ").await;
    assert!(matches!(blank, Err(AppError::Invalid(_))));

    assert_eq!(
        session::store::delete(&fx.db, &second.id).await.unwrap(),
        second.id
    );
    let gone = session::store::delete(&fx.db, &second.id).await;
    assert!(matches!(gone, Err(AppError::NotFound(_))));
    assert!(matches!(
        session::store::get(&fx.db, &second.id).await,
        Err(AppError::NotFound(_))
    ));

    let unknown = session::store::create(&fx.db, 999, "x", AgentKind::Shell).await;
    assert!(matches!(unknown, Err(AppError::NotFound(_))), "{unknown:?}");
    let missing = session::store::list_for_project(&fx.db, 999, None).await;
    assert_eq!(missing.unwrap_err().status(), 404);
}

/// A database made before terminal sessions (migrations up to the run
/// fence) migrates in place: the change log is rebuilt for its new reasons
/// with every row, every seq and the AUTOINCREMENT counter kept.
#[test]
fn the_change_log_rebuild_keeps_every_seq_and_the_counter() {
    use diesel_migrations::MigrationHarness;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    for _ in 0..4 {
        conn.run_next_migration(app::db::MIGRATIONS).unwrap();
    }
    for statement in [
        "INSERT INTO projects (id, name, path, created_at) VALUES (1, 'p', '/p', 0)",
        "INSERT INTO sessions (id, project_id, name, agent, state, created_at, updated_at, state_changed_at) VALUES ('s', 1, 'n', 'shell', 'idle', 0, 0, 0)",
    ] {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    for (from, to, reason) in [
        ("idle", "idle", "created"),
        ("idle", "working", "sent"),
        ("working", "idle", "succeeded"),
        ("idle", "working", "sent"),
        ("working", "error", "failed"),
    ] {
        let message = if to == "error" { "'boom'" } else { "NULL" };
        diesel::sql_query(format!(
            "INSERT INTO session_transitions (session_id, project_id, from_state, to_state, error_message, reason, at) \
             VALUES ('s', 1, '{from}', '{to}', {message}, '{reason}', 1)"
        ))
        .execute(&mut conn)
        .unwrap();
    }
    // The newest entries gone (as a removed project's are): seq 4 and 5
    // must still never be handed out again.
    diesel::sql_query("DELETE FROM session_transitions WHERE seq >= 4")
        .execute(&mut conn)
        .unwrap();
    conn.run_pending_migrations(app::db::MIGRATIONS).unwrap();

    let kept: Vec<(i32, String)> =
        sql::<(Integer, Text)>("SELECT seq, reason FROM session_transitions ORDER BY seq")
            .load(&mut conn)
            .unwrap();
    assert_eq!(
        kept,
        [
            (1, "created".into()),
            (2, "sent".into()),
            (3, "succeeded".into())
        ]
    );
    diesel::sql_query(
        "INSERT INTO session_transitions (session_id, project_id, from_state, to_state, reason, at, attention) \
         VALUES ('s', 1, 'working', 'working', 'attention', 2, 'approval')",
    )
    .execute(&mut conn)
    .unwrap();
    let next: i32 = sql::<Integer>("SELECT max(seq) FROM session_transitions")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(next, 6, "a seq is never handed out twice");
}

/// The tables of a SQLite file (its `sqlite_sequence` too, not diesel's
/// bookkeeping), each with its columns in order.
fn sqlite_tables(conn: &mut SqliteConnection) -> Vec<(String, Vec<String>)> {
    let names: Vec<String> = sql::<Text>(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name != '__diesel_schema_migrations' ORDER BY name",
    )
    .load(conn)
    .unwrap();
    names
        .into_iter()
        .map(|table| {
            let columns = sql::<Text>(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .load(conn)
            .unwrap();
            (table, columns)
        })
        .collect()
}

/// Every row of `tables`, the columns listed as SQL literals: equal
/// snapshots mean every value is still there, to its type.
fn sqlite_rows(conn: &mut SqliteConnection, tables: &[(String, Vec<String>)]) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, columns) in tables {
        let values = columns
            .iter()
            .map(|column| format!("quote(\"{column}\")"))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        rows.extend(
            sql::<Text>(&format!(
                "SELECT '{table}: ' || {values} FROM \"{table}\" ORDER BY 1"
            ))
            .load::<String>(conn)
            .unwrap(),
        );
    }
    rows
}

/// The schema's tables and indexes, by kind and name.
fn sqlite_objects(conn: &mut SqliteConnection) -> std::collections::BTreeSet<String> {
    sql::<Text>("SELECT type || ' ' || name FROM sqlite_master")
        .load::<String>(conn)
        .unwrap()
        .into_iter()
        .collect()
}

/// The issue's "existing SQLite databases migrate in place with nothing
/// lost": a file made by the last release (every migration before
/// instances), holding what that release wrote — including a run left open
/// by a server that crashed — opens with every row and value kept, the new
/// columns empty, the change log's position kept, and the crashed run
/// interrupted by the first recovery (it has no owner: it is from before
/// instances). Opening it again changes nothing.
#[tokio::test]
async fn a_database_made_by_the_last_release_migrates_in_place_with_nothing_lost() {
    use app::{
        approval::{store::RESTART_MESSAGE, Status},
        permission::PermissionMode,
        project::Project,
        run::{
            runner::{Runner, RunnerConfig},
            store, Outcome, Role, Run,
        },
        session::Session,
        session_state::Attention,
        transition::{writer::high_water, Reason, INTERRUPTED_MESSAGE},
    };
    use diesel::{connection::SimpleConnection, sql_types::Nullable};
    use diesel_migrations::MigrationHarness;

    if common::skip_on_postgres(
        "a_database_made_by_the_last_release_migrates_in_place_with_nothing_lost",
    ) {
        return;
    }
    const INSTANCES: &str = "2026-12-03-000007";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("released.db");
    let url = path.to_str().unwrap();

    // The last release's schema: every migration up to instances.
    let mut conn = SqliteConnection::establish(url).unwrap();
    loop {
        let pending = conn.pending_migrations(app::db::MIGRATIONS).unwrap();
        let next = pending.first().expect("the instances migration is pending");
        if next.name().to_string().starts_with(INSTANCES) || pending.len() == 1 {
            assert!(
                next.name().to_string().starts_with(INSTANCES),
                "the next migration is {}, not instances",
                next.name()
            );
            break;
        }
        conn.run_next_migration(app::db::MIGRATIONS).unwrap();
    }

    // What the last release wrote, as it wrote it (its server's settings).
    const T: i64 = 1_764_400_000_000;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
    )
    .unwrap();
    for statement in [
        format!(
            "INSERT INTO projects (name, path, created_at, approve_from_dashboard, approval_wait_secs) \
             VALUES ('released', '/srv/released', {T}, 1, 120)"
        ),
        // A session whose run finished, and one left working by a server
        // that crashed during its run.
        format!(
            "INSERT INTO sessions (id, project_id, name, agent, state, error_message, created_at, \
             updated_at, state_changed_at, external_id, message_count, current_run_id, attention, \
             last_hook_at, ended_at, permission_mode) VALUES \
             ('s-idle', 1, 'finished', 'claude', 'idle', NULL, {T0}, {T4}, {T4}, 'conv-idle', 2, \
              NULL, NULL, NULL, NULL, 'accept_edits'), \
             ('s-work', 1, 'crashed', 'claude', 'working', NULL, {T5}, {T65}, {T6}, NULL, 0, \
              'run-open', 'approval', NULL, NULL, 'ask')",
            T0 = T + 1_000,
            T4 = T + 4_000,
            T5 = T + 5_000,
            T6 = T + 6_000,
            T65 = T + 6_500,
        ),
        format!(
            "INSERT INTO runs (id, session_id, started_at, ended_at, outcome, exit_code, duration_ms, \
             pid, agent_session_id, cost_usd, error_message, denied_tools) VALUES \
             ('run-done', 's-idle', {T2}, {T4}, 'succeeded', 0, 2000, 4242, 'conv-idle', 0.0125, \
              NULL, 'WebFetch,Bash'), \
             ('run-open', 's-work', {T6}, NULL, NULL, NULL, NULL, 4343, 'conv-work', NULL, NULL, NULL)",
            T2 = T + 2_000,
            T4 = T + 4_000,
            T6 = T + 6_000,
        ),
        format!(
            "INSERT INTO messages (session_id, run_id, role, content, created_at) VALUES \
             ('s-idle', 'run-done', 'user', 'fix the tests', {T2}), \
             ('s-idle', 'run-done', 'agent', 'All 12 tests pass.', {T4}), \
             ('s-work', 'run-open', 'user', 'refactor the parser', {T6})",
            T2 = T + 2_000,
            T4 = T + 4_000,
            T6 = T + 6_000,
        ),
        // The change log, in commit order (seq 1…10), with a session
        // created and deleted in between.
        format!(
            "INSERT INTO session_transitions (session_id, project_id, from_state, to_state, \
             error_message, reason, at, attention) VALUES \
             ('s-idle', 1, 'idle', 'idle', NULL, 'created', {}, NULL), \
             ('s-gone', 1, 'idle', 'idle', NULL, 'created', {}, NULL), \
             ('s-gone', 1, 'idle', 'idle', NULL, 'deleted', {}, NULL), \
             ('s-idle', 1, 'idle', 'working', NULL, 'sent', {}, NULL), \
             ('s-idle', 1, 'working', 'working', NULL, 'attention', {}, 'approval'), \
             ('s-idle', 1, 'working', 'working', NULL, 'attention', {}, NULL), \
             ('s-idle', 1, 'working', 'idle', NULL, 'succeeded', {}, NULL), \
             ('s-work', 1, 'idle', 'idle', NULL, 'created', {}, NULL), \
             ('s-work', 1, 'idle', 'working', NULL, 'sent', {}, NULL), \
             ('s-work', 1, 'working', 'working', NULL, 'attention', {}, 'approval')",
            T + 1_000,
            T + 1_500,
            T + 1_600,
            T + 2_000,
            T + 2_500,
            T + 3_000,
            T + 4_000,
            T + 5_000,
            T + 6_000,
            T + 6_500,
        ),
        // One request answered during the finished run, one left pending
        // by the crashed one.
        format!(
            "INSERT INTO approvals (id, session_id, run_id, request_id, tool, input, summary, detail, \
             reason, suggestions, status, always, message, created_at, decided_at) VALUES \
             ('ap-done', 's-idle', 'run-done', 'toolu_1', 'Bash', '{{\"command\":\"cargo test\"}}', \
              'cargo test', NULL, 'run the tests', '[{{\"type\":\"addRules\"}}]', 'allowed', 1, NULL, \
              {T25}, {T3}), \
             ('ap-open', 's-work', 'run-open', 'toolu_2', 'Edit', '{{\"file_path\":\"src/parse.rs\"}}', \
              'src/parse.rs', '- old\n+ new', NULL, NULL, 'pending', 0, NULL, {T65}, NULL)",
            T25 = T + 2_500,
            T3 = T + 3_000,
            T65 = T + 6_500,
        ),
        format!("INSERT INTO unseen_ends (session_id, ended_at) VALUES ('s-idle', {})", T + 4_000),
        format!(
            "INSERT INTO transcript_files (path, agent, size, mtime, read_offset, external_id, cwd, \
             title, first_message, first_at, last_at, message_count, skipped_lines) VALUES \
             ('/home/u/.claude/projects/-srv-released/conv-idle.jsonl', 'claude', 2048, {T4}, 2048, \
              'conv-idle', '/srv/released', 'Fix the tests', 'fix the tests', {T2}, {T4}, 2, 1)",
            T2 = T + 2_000,
            T4 = T + 4_000,
        ),
        format!(
            "INSERT INTO hook_reports (agent, last_at, last_event, last_cwd, outcome, received) \
             VALUES ('claude', {}, 'Stop', '/srv/released', 'own_run', 7)",
            T + 4_000
        ),
        format!(
            "INSERT INTO notify_targets (kind, url, on_failed, on_needs_you, on_finished, from_flag, \
             created_at, last_at, last_ok, last_result) VALUES \
             ('ntfy', 'https://ntfy.sh/agentdeck', 1, 0, 1, 0, {T}, {T4}, 1, '200 OK')",
            T4 = T + 4_000,
        ),
    ] {
        diesel::sql_query(&statement)
            .execute(&mut conn)
            .unwrap_or_else(|err| panic!("{err}: {statement}"));
    }
    let old_tables = sqlite_tables(&mut conn);
    let runs_columns = &old_tables.iter().find(|(t, _)| t == "runs").unwrap().1;
    assert!(
        !old_tables.iter().any(|(t, _)| t == "instances")
            && !runs_columns.iter().any(|c| c == "owner_instance"),
        "the last release's schema has no instances: {old_tables:?}"
    );
    let old_rows = sqlite_rows(&mut conn, &old_tables);
    let old_objects = sqlite_objects(&mut conn);
    for table in [
        "projects",
        "sessions",
        "runs",
        "messages",
        "session_transitions",
        "approvals",
        "unseen_ends",
        "transcript_files",
        "hook_reports",
        "notify_targets",
        "sqlite_sequence",
    ] {
        assert!(
            old_rows
                .iter()
                .any(|row| row.starts_with(&format!("{table}: "))),
            "no {table} row in {old_rows:#?}"
        );
    }
    drop(conn);

    // Today's server opens it: the instances migration runs in place.
    let db = Db::open(url).unwrap();
    let mut conn = SqliteConnection::establish(url).unwrap();
    assert!(conn
        .pending_migrations(app::db::MIGRATIONS)
        .unwrap()
        .is_empty());
    assert_eq!(
        sqlite_rows(&mut conn, &old_tables),
        old_rows,
        "every row of the last release, with every value"
    );
    let objects = sqlite_objects(&mut conn);
    assert!(
        objects.is_superset(&old_objects),
        "lost: {:?}",
        old_objects.difference(&objects).collect::<Vec<_>>()
    );
    assert!(objects.contains("table instances"), "{objects:?}");
    assert!(objects.contains("index runs_open_idx"), "{objects:?}");
    let tables = sqlite_tables(&mut conn);
    for (table, old_columns) in &old_tables {
        let (_, columns) = tables.iter().find(|(name, _)| name == table).unwrap();
        assert_eq!(&columns[..old_columns.len()], &old_columns[..], "{table}");
    }
    let new_columns: Vec<(String, Option<String>, Option<i64>)> =
        sql::<(Text, Nullable<Text>, Nullable<BigInt>)>(
            "SELECT id, owner_instance, cancel_requested_at FROM runs ORDER BY id",
        )
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        new_columns,
        [
            ("run-done".into(), None, None),
            ("run-open".into(), None, None)
        ],
        "runs from before instances have no owner"
    );
    let instances: i64 = sql::<BigInt>("SELECT count(*) FROM instances")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(instances, 0);
    assert_eq!(high_water(&mut db.conn().unwrap()).unwrap(), 10);

    // The app reads what the last release wrote.
    let project = Project {
        id: 1,
        name: "released".into(),
        path: "/srv/released".into(),
        created_at: T,
        approve_from_dashboard: true,
        approval_wait_secs: 120,
    };
    assert_eq!(
        project::store::list(&db).await.unwrap(),
        std::slice::from_ref(&project)
    );
    let idle = Session {
        id: "s-idle".into(),
        project_id: 1,
        name: "finished".into(),
        agent: AgentKind::Claude,
        state: SessionState::Idle,
        error_message: None,
        created_at: T + 1_000,
        updated_at: T + 4_000,
        state_changed_at: T + 4_000,
        external_id: Some("conv-idle".into()),
        message_count: 2,
        attention: None,
        last_hook_at: None,
        ended_at: None,
        permission_mode: PermissionMode::AcceptEdits,
    };
    assert_eq!(session::store::get(&db, "s-idle").await.unwrap(), idle);
    let crashed = session::store::get(&db, "s-work").await.unwrap();
    assert_eq!(
        (crashed.state, crashed.attention, crashed.permission_mode),
        (
            SessionState::Working,
            Some(Attention::Approval),
            PermissionMode::Ask
        )
    );
    let finished_run = Run {
        id: "run-done".into(),
        session_id: "s-idle".into(),
        started_at: T + 2_000,
        ended_at: Some(T + 4_000),
        outcome: Some(Outcome::Succeeded),
        exit_code: Some(0),
        duration_ms: Some(2_000),
        pid: Some(4242),
        agent_session_id: Some("conv-idle".into()),
        cost_usd: Some(0.0125),
        error_message: None,
        denied_tools: Some("WebFetch,Bash".into()),
    };
    let before = store::detail(&db, "s-idle").await.unwrap();
    assert_eq!(before.project, project);
    assert_eq!(before.runs, [finished_run]);
    let said = |detail: &app::run::SessionDetail| -> Vec<(i32, Role, String)> {
        detail
            .messages
            .iter()
            .map(|m| (m.id, m.role, m.content.clone()))
            .collect()
    };
    assert_eq!(
        said(&before),
        [
            (1, Role::User, "fix the tests".into()),
            (2, Role::Agent, "All 12 tests pass.".into())
        ]
    );
    let timeline: Vec<(i32, Reason)> = before
        .transitions
        .iter()
        .map(|t| (t.seq, t.reason))
        .collect();
    assert_eq!(timeline, [(4, Reason::Sent), (7, Reason::Succeeded)]);
    assert_eq!(before.seq, 10);
    let answered: Vec<_> = before
        .approvals
        .iter()
        .map(|a| (a.id.as_str(), a.status, a.always, a.decided_at))
        .collect();
    assert_eq!(
        answered,
        [("ap-done", Status::Allowed, true, Some(T + 3_000))]
    );

    // The first start after the upgrade: the run the crash left has no
    // owner, so it is interrupted; the finished session is left alone.
    let runner = Runner::new(db.clone(), RunnerConfig::default());
    assert_eq!(runner.recover().await.unwrap(), 1);
    let interrupted = store::detail(&db, "s-work").await.unwrap();
    assert_eq!(interrupted.session.state, SessionState::Error);
    assert_eq!(
        interrupted.session.error_message.as_deref(),
        Some(INTERRUPTED_MESSAGE)
    );
    assert_eq!(interrupted.session.attention, None);
    let last = interrupted.transitions.last().unwrap();
    assert_eq!(
        (last.seq, last.reason, last.from_state, last.to_state),
        (
            11,
            Reason::Interrupted,
            SessionState::Working,
            SessionState::Error
        )
    );
    let [open_run] = &interrupted.runs[..] else {
        panic!("{:?}", interrupted.runs)
    };
    assert_eq!(open_run.outcome, Some(Outcome::Interrupted));
    assert!(open_run.ended_at.is_some());
    assert_eq!(open_run.error_message.as_deref(), Some(INTERRUPTED_MESSAGE));
    assert_eq!(
        (
            open_run.started_at,
            open_run.pid,
            open_run.agent_session_id.as_deref()
        ),
        (T + 6_000, Some(4343), Some("conv-work"))
    );
    assert_eq!(
        said(&interrupted),
        [(3, Role::User, "refactor the parser".into())]
    );
    let [request] = &interrupted.approvals[..] else {
        panic!("{:?}", interrupted.approvals)
    };
    assert_eq!(
        (
            request.id.as_str(),
            request.status,
            request.message.as_deref()
        ),
        ("ap-open", Status::Closed, Some(RESTART_MESSAGE))
    );
    let current_run: Option<String> =
        sql::<Nullable<Text>>("SELECT current_run_id FROM sessions WHERE id = 's-work'")
            .get_result(&mut conn)
            .unwrap();
    assert_eq!(current_run, None);

    let after = store::detail(&db, "s-idle").await.unwrap();
    assert_eq!(after.session, idle, "the idle session is untouched");
    assert_eq!(after.runs, before.runs);
    assert_eq!(after.messages, before.messages);
    assert_eq!(after.transitions, before.transitions);
    assert_eq!(after.approvals, before.approvals);

    // Opening it again migrates nothing and changes nothing.
    let upgraded = sqlite_rows(&mut conn, &tables);
    drop((runner, db));
    let db = Db::open(url).unwrap();
    assert!(conn
        .pending_migrations(app::db::MIGRATIONS)
        .unwrap()
        .is_empty());
    assert_eq!(sqlite_tables(&mut conn), tables);
    assert_eq!(sqlite_rows(&mut conn, &tables), upgraded);
    assert_eq!(high_water(&mut db.conn().unwrap()).unwrap(), 11);
    let runner = Runner::new(db.clone(), RunnerConfig::default());
    assert_eq!(
        runner.recover().await.unwrap(),
        0,
        "nothing left to recover"
    );
    assert_eq!(session::store::get(&db, "s-idle").await.unwrap(), idle);
}
