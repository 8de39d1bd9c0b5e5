//! Throwaway PostgreSQL databases, for tests and benchmarks: each gets a
//! database of its own on one cluster, dropped when it is done.

use super::DbError;
use diesel::{connection::SimpleConnection, pg::PgConnection, Connection};

/// The environment variable naming the cluster tests run PostgreSQL cases
/// on (a URL of any database on it, e.g. the one `pg_virtualenv` exports).
pub const TEST_CLUSTER_ENV: &str = "AGENTDECK_TEST_PG_URL";

/// A database created on the cluster `admin_url` points at; dropped (with
/// any connection still open to it) on drop.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates an empty database with a fresh name.
    pub fn create(admin_url: &str) -> Result<Self, DbError> {
        let name = format!("agentdeck_t_{}", uuid::Uuid::new_v4().simple());
        PgConnection::establish(admin_url)?.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// A scratch database on the test cluster, if one is configured.
    pub fn on_test_cluster() -> Option<Self> {
        let admin_url = std::env::var(TEST_CLUSTER_ENV).ok()?;
        Some(Self::create(&admin_url).expect("cannot create a database on the test cluster"))
    }

    /// The URL to open it with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Simulates an outage when `cut`: new connections to the database are
    /// refused (superusers' too) and open ones are ended. Ends it when not.
    pub fn cut_off(&self, cut: bool) -> Result<(), DbError> {
        let mut admin = PgConnection::establish(&self.admin_url)?;
        admin.batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {allow}",
            name = self.name,
            allow = !cut
        ))?;
        if cut {
            admin.batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                self.name
            ))?;
        }
        Ok(())
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let dropped = PgConnection::establish(&self.admin_url).and_then(|mut conn| {
            conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .map_err(|err| diesel::ConnectionError::BadConnection(err.to_string()))
        });
        if let Err(err) = dropped {
            eprintln!("cannot drop the scratch database {}: {err}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{name}?{query}"),
        None => format!("{host_part}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u:p@localhost:5433/postgres", "t1"),
            "postgres://u:p@localhost:5433/t1"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "t1"),
            "postgresql://h/t1?sslmode=disable"
        );
    }
}
