//! Writes: transitions through the real writer against a raw UPDATE +
//! INSERT floor (on SQLite, and on PostgreSQL when the bench has a
//! cluster), a cold start on the database that leaves behind, and hook
//! posts accepted per second.

use crate::{
    http::{now_us, Http},
    live::Terminal,
    servers::{Agentdeck, Binaries},
    Goal, Report,
};
use app::{
    agent::AgentKind,
    db::{scratch::ScratchDatabase, Db, DbConn},
    error::AppError,
    live::LiveEvent,
    transition::{
        writer::{apply_fenced, Applied, RunFence},
        TransitionEvent,
    },
};
use diesel::{connection::SimpleConnection, prelude::*, sql_types::Text};
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// A database (`url`: a SQLite path or a PostgreSQL URL) with one project
/// (a folder in `dir`) and one idle shell session.
async fn one_session(url: &str, dir: &Path) -> Result<(Db, String), String> {
    let project_dir = dir.join("project");
    std::fs::create_dir_all(&project_dir).map_err(|e| e.to_string())?;
    let db = Db::open(url).map_err(|e| e.to_string())?;
    let err = |e: AppError| e.to_string();
    let project = app::project::store::add(&db, &project_dir.display().to_string(), None)
        .await
        .map_err(err)?;
    let session = app::session::store::create(&db, project.id, "bench", AgentKind::Shell)
        .await
        .map_err(err)?;
    Ok((db, session.id))
}

/// The SQLite database file in `dir`.
fn sqlite_url(dir: &Path) -> String {
    dir.join("agentdeck.db").display().to_string()
}

/// `count` transitions (send, succeed, send, …) through the writer as the
/// runner makes them: `Db::write` (a blocking-pool thread, the publish
/// order), an immediate transaction, the fenced conditional update and its
/// change-log row, then the publish to one open page; against the same
/// statements as raw SQL in a loop, on a database with the same settings.
/// The writer's database is left in `dir` for [`cold_start`].
pub async fn transitions(dir: &Path, count: usize, report: &mut Report) -> Result<(), String> {
    eprintln!("writes: {count} transitions");
    let raw_dir = dir.join("raw");
    let (ours, floor) = writer_against_floor(
        &sqlite_url(dir),
        dir,
        &sqlite_url(&raw_dir),
        &raw_dir,
        count,
    )
    .await?;
    report.ratio("transitions_per_s_ratio", ours, floor, Goal::AtLeast(0.5));
    Ok(())
}

/// [`transitions`] on PostgreSQL: the writer on one scratch database of the
/// cluster `admin_url` names, the raw floor on another.
pub async fn pg_transitions(
    admin_url: &str,
    dir: &Path,
    count: usize,
    report: &mut Report,
) -> Result<(), String> {
    eprintln!("writes: {count} transitions on PostgreSQL");
    let scratch = |what: &str| {
        ScratchDatabase::create(admin_url)
            .map_err(|e| format!("a scratch PostgreSQL database for the {what}: {e}"))
    };
    let (ours_db, raw_db) = (scratch("writer")?, scratch("raw floor")?);
    let (ours, floor) =
        writer_against_floor(ours_db.url(), dir, raw_db.url(), &dir.join("raw"), count).await?;
    report.value(
        "pg_transitions_per_s (through the writer)",
        "pg_transitions_per_s",
        ours,
        Some(floor),
        Goal::AtLeast(PG_TRANSITIONS_PER_S),
    );
    report.ratio(
        "pg_transitions_per_s_ratio",
        ours,
        floor,
        Goal::AtLeast(0.5),
    );
    Ok(())
}

/// What `pg_transitions_per_s` must reach. No product goal is set: a sanity
/// bar (a loopback cluster on 2 cores does about 900/s through the writer,
/// 1,300/s as raw SQL); the ratio is the measure.
const PG_TRANSITIONS_PER_S: f64 = 500.0;

/// Transitions per second through the writer on `ours` and as raw SQL on
/// `raw` (each a database URL, its project folder in the directory beside it).
async fn writer_against_floor(
    ours: &str,
    ours_dir: &Path,
    raw: &str,
    raw_dir: &Path,
    count: usize,
) -> Result<(f64, f64), String> {
    let (db, session_id) = one_session(ours, ours_dir).await?;
    let mut page = db.hub().subscribe_changes();
    let drain = tokio::spawn(async move { while page.recv().await.is_ok() {} });
    let started = Instant::now();
    for i in 0..count {
        let run_id = format!("run-{}", i / 2);
        let event = if i % 2 == 0 {
            TransitionEvent::Send
        } else {
            TransitionEvent::Succeed
        };
        let session_id = session_id.clone();
        db.write(move |conn| {
            app::db::write_tx(conn, |conn| {
                let fence = if event == TransitionEvent::Send {
                    RunFence::Start(&run_id)
                } else {
                    RunFence::End(&run_id)
                };
                match apply_fenced(conn, &session_id, &event, fence)? {
                    Applied::Changed(change) => Ok((
                        (),
                        vec![LiveEvent::Change {
                            change,
                            session: None,
                        }],
                    )),
                    other => Err(AppError::Invalid(format!("refused: {other:?}"))),
                }
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    let ours = count as f64 / started.elapsed().as_secs_f64();
    drop(db);
    drain.abort();

    let (raw_db, raw_session) = one_session(raw, raw_dir).await?;
    let floor = tokio::task::spawn_blocking(move || raw_transitions(&raw_db, &raw_session, count))
        .await
        .map_err(|e| e.to_string())??;
    Ok((ours, floor))
}

/// The floor: a transaction (SQLite's BEGIN IMMEDIATE; PostgreSQL's plain
/// BEGIN, its change-log trigger taking the write lock), the conditional
/// UPDATE (one row, or it is an error), the history INSERT, COMMIT; on one
/// connection, no pool.
fn raw_transitions(db: &Db, session_id: &str, count: usize) -> Result<f64, String> {
    let mut pooled = db.conn().map_err(|e| e.to_string())?;
    let conn: &mut DbConn = &mut pooled;
    let pg = db.is_postgres();
    let update = placeholders(
        "UPDATE sessions SET state = ?, state_changed_at = ?, updated_at = ? WHERE id = ? AND state = ?",
        pg,
    );
    let insert = placeholders(
        "INSERT INTO session_transitions (session_id, project_id, from_state, to_state, reason, at) \
         SELECT id, project_id, ?, ?, 'sent', ? FROM sessions WHERE id = ?",
        pg,
    );
    let states = ["idle", "working"];
    let started = Instant::now();
    for i in 0..count {
        let (from, to) = (states[i % 2], states[(i + 1) % 2]);
        let work = |conn: &mut DbConn| {
            let now = now_us() as i64 / 1000;
            let changed = diesel::sql_query(&update)
                .bind::<Text, _>(to)
                .bind::<diesel::sql_types::BigInt, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(now)
                .bind::<Text, _>(session_id)
                .bind::<Text, _>(from)
                .execute(conn)?;
            if changed != 1 {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            diesel::sql_query(&insert)
                .bind::<Text, _>(from)
                .bind::<Text, _>(to)
                .bind::<diesel::sql_types::BigInt, _>(now)
                .bind::<Text, _>(session_id)
                .execute(conn)?;
            Ok::<_, diesel::result::Error>(())
        };
        if pg {
            conn.transaction(work)
        } else {
            app::db::write_tx(conn, work)
        }
        .map_err(|e| format!("raw transition {i}: {e}"))?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    if !pg {
        conn.batch_execute("PRAGMA optimize")
            .map_err(|e| e.to_string())?;
    }
    Ok(rate)
}

/// `sql` with its `?` placeholders as the backend spells them: as they are
/// for SQLite, `$1`, `$2`, … for PostgreSQL.
fn placeholders(sql: &str, pg: bool) -> String {
    if !pg {
        return sql.to_owned();
    }
    let mut numbered = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            numbered.push_str(&format!("${n}"));
        } else {
            numbered.push(c);
        }
    }
    numbered
}

/// Process start to the first 200 on the database [`transitions`] left,
/// median of five starts.
pub async fn cold_start(bins: &Binaries, dir: &Path, report: &mut Report) -> Result<(), String> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let server = Agentdeck::start(bins, dir, 0)?;
        let mut http = Http::connect(&server.addr).await?;
        let (status, _) = http.send("GET", "/api/projects", &[], Vec::new()).await?;
        if status != 200 {
            return Err(format!("cold start: GET /api/projects answered {status}"));
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(http);
        let mut server = server;
        server.stop();
    }
    times.sort_by(f64::total_cmp);
    let changes = {
        let db = Db::open(&sqlite_url(dir)).map_err(|e| e.to_string())?;
        let mut conn = db.conn().map_err(|e| e.to_string())?;
        app::transition::writer::high_water(&mut conn).map_err(|e| e.to_string())?
    };
    report.value(
        &format!("cold_start_ms ({changes} changes)"),
        "cold_start_ms",
        times[times.len() / 2],
        None,
        Goal::AtMost(100.0),
    );
    Ok(())
}

/// Hook posts accepted per second: eight terminal sessions, each posting
/// its next hook as soon as the last one is answered (committed).
pub async fn hook_ingest(
    bins: &Binaries,
    dir: &Path,
    time: Duration,
    report: &mut Report,
) -> Result<(), String> {
    eprintln!("writes: hook posts for {time:?}");
    let server = Agentdeck::start(bins, dir, 0)?;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let mut http = Http::connect(&server.addr).await?;
        let mut terminal = Terminal::create(&mut http, dir, &format!("hooks-{n}")).await?;
        tasks.spawn(async move {
            let started = Instant::now();
            let mut posted = 0u64;
            while started.elapsed() < time {
                terminal.flip(&mut http).await?;
                posted += 1;
            }
            Ok::<_, String>((posted, started.elapsed()))
        });
    }
    let mut rate = 0.0;
    while let Some(done) = tasks.join_next().await {
        let (posted, elapsed) = done.map_err(|e| e.to_string())??;
        rate += posted as f64 / elapsed.as_secs_f64();
    }
    report.value(
        "hook_ingest_per_s (8 sessions)",
        "hook_ingest_per_s",
        rate,
        None,
        Goal::AtLeast(2000.0),
    );
    Ok(())
}
