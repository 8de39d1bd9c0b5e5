//! The database: connection pool, SQLite settings, embedded migrations, and
//! the bridge that keeps blocking Diesel calls off the async runtime.
//!
//! SQLite specifics live here and in `migrations/` only; queries elsewhere
//! stay portable so a PostgreSQL backend can follow.

pub mod schema;

use crate::{
    error::AppError,
    live::{hub::EventHub, LiveEvent},
};
use diesel::{
    connection::SimpleConnection,
    r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection},
    result::Error as DieselError,
    sqlite::SqliteConnection,
    Connection,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::Semaphore;

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Applies the per-connection settings a server needs: wait for writers
/// instead of failing, enforce foreign keys, and WAL with NORMAL sync
/// (survives a process crash; only an OS crash can drop the last commits).
#[derive(Debug, Clone, Copy)]
struct SqliteSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&connection_settings())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

fn connection_settings() -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        BUSY_TIMEOUT.as_millis()
    )
}

/// A handle on the database, cheap to clone and share between requests.
/// It carries the event hub that committed changes are published to.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    hub: EventHub,
    /// The one connection every [`Db::write`] runs on, held from the start
    /// of a change's transaction until it is published, so the hub sees
    /// changes in commit (`seq`) order. SQLite admits one writer at a time
    /// anyway. Being the only writer, its page cache stays valid between
    /// writes: a pooled connection finds its cache stale after any other
    /// connection's commit and reads the pages again (a third of a hook's
    /// cost, measured by `scripts/bench.sh`).
    writer: Arc<Mutex<SqliteConnection>>,
    /// The database file, to reopen the writer's connection.
    path: Arc<str>,
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
    /// Opens (creating if needed) the SQLite database at `url` and runs any
    /// pending migrations. `url` is a file path, optionally prefixed `sqlite://`.
    pub fn open(url: &str) -> Result<Self, DbError> {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        // WAL is a property of the file: set it once, before the pool opens
        // its connections in parallel (switching concurrently fails as "locked").
        // It waits for other writers too: `agentdeck sync` may start while a
        // server holds the write lock.
        let mut first = SqliteConnection::establish(path)?;
        first.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
            BUSY_TIMEOUT.as_millis()
        ))?;
        drop(first);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .connection_customizer(Box::new(SqliteSettings))
            .build(ConnectionManager::<SqliteConnection>::new(path))?;
        let db = Self {
            pool,
            hub: EventHub::default(),
            writer: Arc::new(Mutex::new(writer_connection(path)?)),
            path: path.into(),
            permits: Arc::new(Semaphore::new(POOL_SIZE as usize)),
        };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|err| DbError::Migration(err.to_string()))?;
        Ok(())
    }

    /// Where committed changes are published.
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// A pooled connection, for blocking code (startup, tests).
    pub fn conn(&self) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs blocking database work on the blocking thread pool, so the async
    /// runtime never waits on SQLite.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, E> + Send + 'static,
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
        F: FnOnce(&mut SqliteConnection) -> Result<(T, Vec<LiveEvent>), AppError> + Send + 'static,
        T: Send + 'static,
    {
        let (hub, writer, path) = (
            self.hub.clone(),
            Arc::clone(&self.writer),
            self.path.clone(),
        );
        self.on_blocking_pool(move || {
            let mut conn = writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let outcome = work(&mut conn);
            // A connection left inside a transaction (a failure diesel could
            // not roll back) is replaced, or every later write would fail.
            if outcome.is_err() && !is_outside_transaction(&mut conn) {
                match writer_connection(&path) {
                    Ok(fresh) => *conn = fresh,
                    Err(err) => {
                        tracing::error!(error = %err, "cannot reopen the writer connection")
                    }
                }
            }
            let (value, changes) = outcome?;
            // The commit instant of each change, for `scripts/bench.sh`
            // (commit → page latency); logged after the publish, so the
            // log line does not delay it. Free unless tracing asks for it.
            let traced = tracing::enabled!(tracing::Level::TRACE).then(|| {
                let seqs: Vec<i32> = changes.iter().filter_map(LiveEvent::seq).collect();
                (now_micros(), seqs)
            });
            hub.publish(changes);
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
    pub fn writer(&self) -> std::sync::MutexGuard<'_, SqliteConnection> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Opens the writer's connection with the pool's settings.
fn writer_connection(path: &str) -> Result<SqliteConnection, DbError> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(&connection_settings())?;
    Ok(conn)
}

/// Whether `conn` is outside any transaction and usable.
fn is_outside_transaction(conn: &mut SqliteConnection) -> bool {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    matches!(
        AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth(),
        Ok(None)
    )
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
