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
