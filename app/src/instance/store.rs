//! The instance registry and run ownership, in the database. Time is read
//! on the database's clock, so instances on machines whose clocks differ
//! still agree on whose heartbeat is stale.

use super::Instance;
use crate::{
    db::{
        now_millis,
        schema::{instances, runs},
        DbConn,
    },
    error::AppError,
    live::tail::CANCEL_CHANNEL,
};
use diesel::{prelude::*, sql_types::BigInt};
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

/// Instances that stopped (or went silent) this long ago and own no open
/// run are forgotten when another one registers.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The database's clock, in milliseconds since the Unix epoch (SQLite is a
/// file on this machine: its clock is this machine's).
pub fn db_now(conn: &mut DbConn) -> Result<i64, AppError> {
    Ok(match conn {
        DbConn::Sqlite(_) => now_millis(),
        DbConn::Pg(inner) => diesel::select(diesel::dsl::sql::<BigInt>(
            "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        ))
        .get_result(inner)?,
    })
}

/// Registers `me` as running, and forgets instances long gone.
pub fn register(conn: &mut DbConn, me: &Instance) -> Result<(), AppError> {
    let now = db_now(conn)?;
    let forget_before = now - FORGET_AFTER.as_millis() as i64;
    let owning = runs::table
        .filter(runs::ended_at.is_null())
        .filter(runs::owner_instance.is_not_null())
        .select(runs::owner_instance.assume_not_null());
    diesel::delete(
        instances::table
            .filter(instances::heartbeat_at.lt(forget_before))
            .filter(instances::id.ne_all(owning)),
    )
    .execute(conn)?;
    // Registering again (a second recovery) only refreshes the row.
    let refreshed = diesel::update(instances::table.find(&me.id))
        .set((
            instances::heartbeat_at.eq(now),
            instances::stopped_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    if refreshed == 1 {
        return Ok(());
    }
    diesel::insert_into(instances::table)
        .values((
            instances::id.eq(&me.id),
            instances::host.eq(&me.host),
            instances::pid.eq(i32::try_from(me.pid).unwrap_or(i32::MAX)),
            instances::started_at.eq(now),
            instances::heartbeat_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records that `me` is alive. `false` when its row is gone or marked
/// stopped (it must register again before it owns anything).
pub fn heartbeat(conn: &mut DbConn, me: &Instance) -> Result<bool, AppError> {
    let now = db_now(conn)?;
    let beaten = diesel::update(
        instances::table
            .find(&me.id)
            .filter(instances::stopped_at.is_null()),
    )
    .set(instances::heartbeat_at.eq(now))
    .execute(conn)?;
    Ok(beaten == 1)
}

/// Records that `me` stopped: its runs (if any were left) are orphans now.
pub fn mark_stopped(conn: &mut DbConn, me: &Instance) -> Result<(), AppError> {
    let now = db_now(conn)?;
    diesel::update(instances::table.find(&me.id))
        .set(instances::stopped_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// An instance as the registry holds it.
#[derive(Debug, Clone, Queryable)]
struct Registered {
    id: String,
    host: String,
    pid: i32,
    heartbeat_at: i64,
    stopped_at: Option<i64>,
}

/// What `me` can tell about the instances in the registry: who is alive,
/// and each one's host.
struct Registry {
    live: HashSet<String>,
    hosts: HashMap<String, String>,
}

fn registry(conn: &mut DbConn, me: &Instance, lease: Duration) -> Result<Registry, AppError> {
    let now = db_now(conn)?;
    let stale_before = now - lease.as_millis() as i64;
    let rows: Vec<Registered> = instances::table
        .select((
            instances::id,
            instances::host,
            instances::pid,
            instances::heartbeat_at,
            instances::stopped_at,
        ))
        .load(conn)?;
    let mut live = HashSet::from([me.id.clone()]);
    let mut hosts = HashMap::new();
    for row in rows {
        // On this host a process that is gone is known to be gone now,
        // without waiting for its lease (a reused pid only delays that).
        let gone_here = row.host == me.host && !process_exists(row.pid);
        if row.stopped_at.is_none() && row.heartbeat_at >= stale_before && !gone_here {
            live.insert(row.id.clone());
        }
        hosts.insert(row.id, row.host);
    }
    Ok(Registry { live, hosts })
}

fn process_exists(pid: i32) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// An open run whose owner is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub run_id: String,
    pub session_id: String,
    /// The owner's host; `None` for a run from before instances.
    pub host: Option<String>,
}

/// The open runs whose owner is not alive (seen from `me`, which is).
pub fn orphaned_runs(
    conn: &mut DbConn,
    me: &Instance,
    lease: Duration,
) -> Result<Vec<Orphan>, AppError> {
    let registry = registry(conn, me, lease)?;
    let open: Vec<(String, String, Option<String>)> = runs::table
        .filter(runs::ended_at.is_null())
        .select((runs::id, runs::session_id, runs::owner_instance))
        .load(conn)?;
    Ok(open
        .into_iter()
        .filter(|(_, _, owner)| owner.as_ref().is_none_or(|o| !registry.live.contains(o)))
        .map(|(run_id, session_id, owner)| Orphan {
            run_id,
            session_id,
            host: owner.and_then(|o| registry.hosts.get(&o).cloned()),
        })
        .collect())
}

/// How many instances other than `me` are alive.
pub fn others_alive(conn: &mut DbConn, me: &Instance, lease: Duration) -> Result<usize, AppError> {
    Ok(registry(conn, me, lease)?.live.len() - 1)
}

/// Who runs run `run_id`'s process, seen from `me`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `me`, or a run from a test that records no owner.
    Here,
    /// Another instance that is alive, on this host.
    Elsewhere { host: String },
    /// Nobody: its owner stopped or went silent, or the run has ended.
    Gone,
}

pub fn owner_of(
    conn: &mut DbConn,
    me: &Instance,
    lease: Duration,
    run_id: &str,
) -> Result<Owner, AppError> {
    let Some(Some(owner)) = open_run_owner(conn, run_id)? else {
        return Ok(Owner::Gone);
    };
    if owner == me.id {
        return Ok(Owner::Here);
    }
    let registry = registry(conn, me, lease)?;
    Ok(match registry.live.contains(&owner) {
        true => Owner::Elsewhere {
            host: registry.hosts.get(&owner).cloned().unwrap_or_default(),
        },
        false => Owner::Gone,
    })
}

/// The recorded owner of run `run_id` while it is open: `None` when it has
/// ended (or does not exist), `Some(None)` when it records no owner.
pub fn open_run_owner(conn: &mut DbConn, run_id: &str) -> Result<Option<Option<String>>, AppError> {
    Ok(runs::table
        .find(run_id)
        .filter(runs::ended_at.is_null())
        .select(runs::owner_instance)
        .first(conn)
        .optional()?)
}

/// Asks the owner of run `run_id` to cancel it: the request is recorded on
/// the run (the owner polls for it) and, on PostgreSQL, notified (delivered
/// on commit). `false` when the run has ended meanwhile.
pub fn request_cancel(conn: &mut DbConn, run_id: &str) -> Result<bool, AppError> {
    crate::db::write_tx(conn, |conn| {
        let now = db_now(conn)?;
        let requested = diesel::update(runs::table.find(run_id).filter(runs::ended_at.is_null()))
            .set(runs::cancel_requested_at.eq(now))
            .execute(conn)?;
        if requested == 1 {
            if let DbConn::Pg(inner) = conn {
                diesel::sql_query(format!("SELECT pg_notify('{CANCEL_CHANNEL}', $1)"))
                    .bind::<diesel::sql_types::Text, _>(run_id)
                    .execute(inner)?;
            }
        }
        Ok(requested == 1)
    })
}

/// `me`'s open runs that another instance asked to cancel.
pub fn cancel_requests(conn: &mut DbConn, me: &Instance) -> Result<Vec<String>, AppError> {
    Ok(runs::table
        .filter(runs::owner_instance.eq(&me.id))
        .filter(runs::ended_at.is_null())
        .filter(runs::cancel_requested_at.is_not_null())
        .select(runs::id)
        .load(conn)?)
}
