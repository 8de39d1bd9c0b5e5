//! The database: one connection type for SQLite and PostgreSQL, the pool,
//! each backend's settings and embedded migrations, write and snapshot
//! transactions, and the bridge that keeps blocking Diesel calls off the
//! async runtime.
//!
//! Backend specifics live here and in `migrations/{sqlite,postgres}/` only;
//! queries elsewhere are written once, against [`DbConn`].

pub mod schema;
pub mod scratch;

use crate::{
    error::AppError,
    live::{
        hub::EventHub,
        tail::{self, Wakeups},
        LiveEvent,
    },
};
use diesel::{
    connection::{AnsiTransactionManager, SimpleConnection, TransactionManager},
    pg::PgConnection,
    r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection},
    result::Error as DieselError,
    sqlite::SqliteConnection,
    Connection,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicI32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{watch, Notify, Semaphore};

/// Each backend's migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// A connection to either backend. Queries are written once against it;
/// Diesel dispatches them to the inner connection.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// The backend [`DbConn`] queries are built for (boxed queries name it).
pub type Backend = MultiBackend;

/// The key of the transaction-level advisory lock every PostgreSQL write
/// takes first (`migrations/postgres` takes it too, for any other writer).
/// Writers that hold it one at a time draw change-log `seq`s in commit
/// order, so a follower reading `seq > since` never skips a late commit.
const PG_WRITE_LOCK: i64 = 1_634_166_883;

/// Runs `work` in a write transaction: SQLite's `BEGIN IMMEDIATE` (the write
/// lock up front, so a read never has to upgrade), PostgreSQL's advisory
/// write lock as its first statement. Commits if `work` succeeds.
pub fn write_tx<T, E>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?
        }
        DbConn::Pg(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")?;
            if let Err(err) =
                inner.batch_execute(&format!("SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})"))
            {
                let _ = AnsiTransactionManager::rollback_transaction(inner);
                return Err(err.into());
            }
        }
    }
    finish_tx(conn, work)
}

/// Runs `work` in a read-only snapshot: everything it reads (a page and the
/// `seq` it matches) is from one instant, on either backend.
pub fn read_tx<T, E>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        DbConn::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")?,
        DbConn::Pg(inner) => AnsiTransactionManager::begin_transaction_sql(
            inner,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
    }
    finish_tx(conn, work)
}

/// Commits after `work` succeeds, rolls back after it fails.
fn finish_tx<T, E>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match work(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            <DbConn as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(err)
        }
    }
}

/// The columns `T` is read from, for `RETURNING`: Diesel's multi-backend
/// cannot render `T::as_returning()` for its inner backends, a plain tuple
/// of columns it can.
pub fn columns_of<T: diesel::Selectable<Backend>>() -> T::SelectExpression {
    T::construct_selection()
}

/// Runs `$body` with `$inner` bound to the backend's own connection, for
/// the few statements Diesel's multi-backend cannot express (upserts: it
/// has no `ON CONFLICT`). The body is written once and compiled per backend.
macro_rules! on_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($inner) => $body,
            $crate::db::DbConn::Pg($inner) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Which backend a database URL names: PostgreSQL for `postgres://` and
/// `postgresql://`, else a SQLite file path (optionally `sqlite://`).
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn parse(url: &str) -> Self {
        let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Self::Postgres(url.to_owned())
        } else {
            Self::Sqlite(PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url)))
        }
    }

    /// The location for messages and logs: a PostgreSQL password is hidden.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => redact_password(url),
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// A new connection with the backend's settings applied.
    fn connect(&self) -> Result<DbConn, DbError> {
        match self {
            Self::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                conn.batch_execute(&sqlite_settings())?;
                Ok(DbConn::Sqlite(conn))
            }
            Self::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(|err| DbError::Connect {
                    url: redact_password(url),
                    reason: one_line(&err.to_string()),
                })?;
                // Times are compared as Unix milliseconds; the session zone
                // only matters for diagnostics, but keep it fixed.
                conn.batch_execute("SET TIME ZONE 'UTC'")?;
                Ok(DbConn::Pg(conn))
            }
        }
    }
}

/// `url` with the password of its `user:password@` part replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// libpq's messages span lines ("connection refused\n\tIs the server…").
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Opens pooled connections for a [`Location`]. Diesel's own manager for a
/// multi-connection tries each backend in turn, and SQLite accepts any
/// string: a PostgreSQL outage would surface as a SQLite error.
#[derive(Debug, Clone)]
pub struct Manager(Location);

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        self.0.connect().map_err(|err| match err {
            DbError::Open(err) => diesel::r2d2::Error::ConnectionError(err),
            DbError::Query(err) => diesel::r2d2::Error::QueryError(err),
            other => diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                other.to_string(),
            )),
        })
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection (PostgreSQL may be
/// unreachable for a while: requests fail with an error, not a hang).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure below the domain: opening, migrating or querying the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("cannot open the database: {0}")]
    Open(#[from] diesel::ConnectionError),
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    #[error("database task failed: {0}")]
    Task(String),
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        // Diesel's messages leave out their causes (e.g. which value in a
        // column could not be read): log the whole chain, once each.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !message.contains(&cause_text) {
                message = format!("{message}: {cause_text}");
            }
            source = cause.source();
        }
        tracing::error!(error = %message, "database error");
        AppError::Internal("the database could not complete the request; see the server log".into())
    }
}

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        DbError::from(err).into()
    }
}

/// The per-connection settings a SQLite server needs: wait for writers
/// instead of failing, enforce foreign keys, and WAL with NORMAL sync
/// (survives a process crash; only an OS crash can drop the last commits).
fn sqlite_settings() -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        BUSY_TIMEOUT.as_millis()
    )
}

/// A handle on the database, cheap to clone and share between requests.
/// It carries the event hub that committed changes are published to.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    hub: EventHub,
    /// The one connection every [`Db::write`] runs on, held from the start
    /// of a change's transaction until it is published, so the hub sees
    /// changes in commit (`seq`) order. SQLite admits one writer at a time
    /// anyway. Being the only writer, its page cache stays valid between
    /// writes: a pooled connection finds its cache stale after any other
    /// connection's commit and reads the pages again (a third of a hook's
    /// cost, measured by `scripts/bench.sh`).
    writer: Arc<Mutex<DbConn>>,
    /// Where the database is, to reopen the writer's connection.
    location: Arc<Location>,
    /// The newest `seq` published to the hub; changed under the writer's lock.
    published: Arc<AtomicI32>,
    /// The tailer that publishes other writers' changes ([`Db::start_tailing`]).
    tailing: Arc<Tailing>,
    /// Where live output lines go to reach other instances (PostgreSQL,
    /// once tailing): best effort, dropped when the queue is full.
    forward: Arc<std::sync::OnceLock<std::sync::mpsc::SyncSender<tail::ForwardedOutput>>>,
    /// Tells this handle's forwarded lines apart from other instances'.
    origin: Arc<str>,
    /// One per pooled connection: work waits for a permit here, on the
    /// async side, rather than as a blocked thread waiting for a connection
    /// (a burst of page loads would otherwise start a thread each).
    permits: Arc<Semaphore>,
}

/// Connections in the pool, and so blocking threads doing database work.
const POOL_SIZE: u32 = 8;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Db {
    /// Opens the database `url` names (see [`Location::parse`]), creating a
    /// SQLite file if needed, and runs any pending migrations.
    pub fn open(url: &str) -> Result<Self, DbError> {
        Self::open_at(Location::parse(url))
    }

    /// Opens the database at `location`, as [`Db::open`] does.
    pub fn open_at(location: Location) -> Result<Self, DbError> {
        if let Location::Sqlite(path) = &location {
            prepare_sqlite_file(path)?;
        }
        // Connect once first: a PostgreSQL that is down is one clear error
        // naming it, not a pool timeout.
        let writer = location.connect()?;
        // PostgreSQL connections are opened as needed, not all at the start.
        let min_idle = location.is_postgres().then_some(1);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(min_idle)
            .connection_timeout(CONNECT_TIMEOUT)
            .build(Manager(location.clone()))?;
        let db = Self {
            pool,
            hub: EventHub::default(),
            writer: Arc::new(Mutex::new(writer)),
            location: Arc::new(location),
            published: Arc::default(),
            tailing: Arc::default(),
            forward: Arc::default(),
            origin: uuid::Uuid::new_v4().to_string().into(),
            permits: Arc::new(Semaphore::new(POOL_SIZE as usize)),
        };
        db.migrate()?;
        let high_water = crate::transition::writer::high_water(&mut db.writer())
            .map_err(|err| DbError::Migration(err.to_string()))?;
        db.published.store(high_water, Ordering::Release);
        Ok(db)
    }

    fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.writer();
        let result = match &mut *conn {
            DbConn::Sqlite(inner) => inner.run_pending_migrations(MIGRATIONS).map(drop),
            DbConn::Pg(inner) => inner.run_pending_migrations(PG_MIGRATIONS).map(drop),
        };
        result.map_err(|err| DbError::Migration(err.to_string()))
    }

    /// Whether this is a PostgreSQL database (shared by several instances).
    pub fn is_postgres(&self) -> bool {
        self.location.is_postgres()
    }

    /// Where the database is, for messages (a password hidden).
    pub fn location(&self) -> String {
        self.location.display()
    }

    /// Where committed changes are published.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// A pooled connection, for blocking code (startup, tests).
    pub fn conn(&self) -> Result<PooledConnection<Manager>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking database work on the blocking thread pool, so the async
    /// runtime never waits on SQLite.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.on_blocking_pool(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            work(&mut conn)
        })
        .await
    }

    /// Runs `work` on the blocking thread pool once a permit is free (one
    /// per pooled connection, so bursts wait here rather than as threads).
    async fn on_blocking_pool<T, E>(
        &self,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|err| DbError::Task(err.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| DbError::Task(err.to_string()))?
    }
}

impl Db {
    /// Runs a write that commits change-log entries, then publishes them —
    /// after the commit, before any later change is published. `work` runs
    /// its own transaction and returns its result with the changes to publish.
    pub async fn write<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConn) -> Result<(T, Vec<LiveEvent>), AppError> + Send + 'static,
        T: Send + 'static,
    {
        let (hub, writer, location, published, tailing) = (
            self.hub.clone(),
            Arc::clone(&self.writer),
            Arc::clone(&self.location),
            Arc::clone(&self.published),
            Arc::clone(&self.tailing),
        );
        self.on_blocking_pool(move || {
            let mut conn = lock_writer(&writer);
            let outcome = work(&mut conn);
            if outcome.is_err() {
                reopen_if_unusable(&mut conn, &location);
            }
            let (value, changes) = outcome?;
            // The commit instant of each change, for `scripts/bench.sh`
            // (commit → page latency); logged after the publish, so the
            // log line does not delay it. Free unless tracing asks for it.
            let traced = tracing::enabled!(tracing::Level::TRACE).then(|| {
                let seqs: Vec<i32> = changes.iter().filter_map(LiveEvent::seq).collect();
                (now_micros(), seqs)
            });
            if let Err(err) = tail::publish_committed(&mut conn, &hub, &published, changes) {
                // Committed all the same: the tailer publishes it once it can read it.
                tracing::warn!(error = %err, "cannot read the change log to publish a commit in order; the tailer will");
                reopen_if_unusable(&mut conn, &location);
                tailing.wakeups.changes.notify_one();
            }
            if let Some((committed_us, seqs)) = traced {
                for seq in seqs {
                    tracing::trace!(seq, committed_us, "change committed");
                }
            }
            Ok(value)
        })
        .await
    }

    /// The writer's connection, for blocking code (tests that fault it).
    pub fn writer(&self) -> std::sync::MutexGuard<'_, DbConn> {
        lock_writer(&self.writer)
    }

    /// Starts publishing what other writers commit (other instances on the
    /// same PostgreSQL, `agentdeck sync` on the same SQLite file): a task
    /// that reads the change log when woken — by a PostgreSQL notification,
    /// which a listener thread receives — and every [`tail::POLL_INTERVAL`].
    /// Once per handle (later calls do nothing); it stops when the server
    /// shuts down or the last clone of this handle is dropped.
    pub fn start_tailing(&self) {
        if self.tailing.started.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Location::Postgres(url) = &*self.location {
            let origin = self.origin.to_string();
            tail::spawn_listener(url.clone(), &self.tailing.wakeups, self.hub.clone(), origin);
            if let Some(forward) = tail::spawn_forwarder(url.clone()) {
                let _ = self.forward.set(forward);
            }
        }
        let (hub, writer, location, published) = (
            self.hub.clone(),
            Arc::clone(&self.writer),
            Arc::clone(&self.location),
            Arc::clone(&self.published),
        );
        let wakeups = Arc::clone(&self.tailing.wakeups);
        let mut alive = self.tailing.alive.subscribe();
        let mut closing = self.hub.closing();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = wakeups.changes.notified() => {}
                    _ = tokio::time::sleep(tail::POLL_INTERVAL) => {}
                    _ = alive.changed() => return,
                    _ = closing.changed() => return,
                }
                let (hub, writer, location, published) = (
                    hub.clone(),
                    Arc::clone(&writer),
                    Arc::clone(&location),
                    Arc::clone(&published),
                );
                let caught_up = tokio::task::spawn_blocking(move || {
                    let mut conn = lock_writer(&writer);
                    let result = tail::catch_up(&mut conn, &hub, &published);
                    if result.is_err() {
                        reopen_if_unusable(&mut conn, &location);
                    }
                    result
                })
                .await;
                match caught_up {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::debug!(changes = n, "published changes of other writers"),
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "cannot read the change log; retrying")
                    }
                    Err(err) => tracing::error!(error = %err, "the tailer's read panicked"),
                }
            }
        });
    }

    /// Publishes the next line of a run's output to this instance's pages
    /// and, best effort, to the other instances'.
    pub fn publish_output(&self, session_id: &str, run_id: &str, line: &str) {
        self.hub.publish_output(session_id, run_id, line);
        self.forward_output(session_id, run_id, Some(line));
    }

    /// Ends a run's output here and on the other instances.
    pub fn end_output(&self, session_id: &str, run_id: &str) {
        self.hub.end_output(session_id, run_id);
        self.forward_output(session_id, run_id, None);
    }

    fn forward_output(&self, session_id: &str, run_id: &str, line: Option<&str>) {
        if let Some(forward) = self.forward.get() {
            let _ = forward.try_send(tail::ForwardedOutput {
                origin: self.origin.to_string(),
                session_id: session_id.to_owned(),
                run_id: run_id.to_owned(),
                line: line.map(str::to_owned),
            });
        }
    }

    /// Wake-ups for cancels requested by other instances (PostgreSQL only;
    /// the runner polls as well).
    pub fn cancel_wakeups(&self) -> &Notify {
        &self.tailing.wakeups.cancels
    }
}

/// The tailer's state, shared by a handle's clones.
#[derive(Debug, Default)]
struct Tailing {
    started: AtomicBool,
    wakeups: Arc<Wakeups>,
    /// Dropped with the last clone of the handle, which stops the tailer.
    alive: watch::Sender<()>,
}

fn lock_writer(writer: &Mutex<DbConn>) -> std::sync::MutexGuard<'_, DbConn> {
    writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Replaces a connection left inside a transaction (a failure diesel could
/// not roll back) or broken (a PostgreSQL restart), or every later write
/// on it would fail.
fn reopen_if_unusable(conn: &mut DbConn, location: &Location) {
    if is_outside_transaction(conn) {
        return;
    }
    match location.connect() {
        Ok(fresh) => *conn = fresh,
        Err(err) => tracing::error!(error = %err, "cannot reopen the writer connection"),
    }
}

/// Creates the SQLite file's directory, and switches the file to WAL once,
/// before the pool opens its connections in parallel (switching
/// concurrently fails as "locked"). It waits for other writers too:
/// `agentdeck sync` may start while a server holds the write lock.
fn prepare_sqlite_file(path: &Path) -> Result<(), DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut first = SqliteConnection::establish(&path.to_string_lossy())?;
    first.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
        BUSY_TIMEOUT.as_millis()
    ))?;
    Ok(())
}

/// Whether `conn` is outside any transaction and usable.
fn is_outside_transaction(conn: &mut DbConn) -> bool {
    matches!(
        <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth(),
        Ok(None)
    ) && !conn.is_broken()
}

/// Microseconds since the Unix epoch, for timing across processes.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Stores a text enum (`as_str` + `FromStr`) in a TEXT column on any backend.
/// Text the enum does not know is a deserialisation error naming the value.
macro_rules! text_sql_type {
    ($ty:ty) => {
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                Ok(text.parse::<$ty>()?)
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }
    };
}
pub(crate) use text_sql_type;
