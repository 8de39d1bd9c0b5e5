//! Notification targets in the database, with the rules the dashboard and
//! the JSON API share: http(s) URLs of bounded length, at most
//! [`MAX_TARGETS`], one target per kind and URL, `--notify` targets kept
//! by the flag rather than removable.

use super::{validate_url, Events, Target, TargetKind, MAX_TARGETS};
use crate::db::DbConn;
use crate::{
    db::{now_millis, schema::notify_targets, Db},
    error::AppError,
};
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};

/// Every target, oldest first.
pub async fn list(db: &Db) -> Result<Vec<Target>, AppError> {
    db.run(|conn| {
        notify_targets::table
            .select(Target::as_select())
            .order(notify_targets::id.asc())
            .load(conn)
            .map_err(AppError::from)
    })
    .await
}

/// One target, or `NotFound`.
pub async fn get(db: &Db, id: i32) -> Result<Target, AppError> {
    db.run(move |conn| find(conn, id)).await
}

fn find(conn: &mut DbConn, id: i32) -> Result<Target, AppError> {
    notify_targets::table
        .find(id)
        .select(Target::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::NotFound(format!("notification target {id} does not exist")))
}

/// A kind as a form or the API names it; empty or missing: infer from the URL.
pub fn parse_kind(raw: Option<&str>) -> Result<Option<TargetKind>, AppError> {
    match raw.map(str::trim).filter(|k| !k.is_empty() && *k != "auto") {
        None => Ok(None),
        Some(kind) => kind
            .parse()
            .map(Some)
            .map_err(|err: crate::text_enum::UnknownValue| AppError::Invalid(err.to_string())),
    }
}

/// The kind and URL a target is stored with: `kind`, or the one the URL implies.
fn resolve(kind: Option<TargetKind>, raw_url: &str) -> Result<(TargetKind, String), AppError> {
    let (inferred, url) = TargetKind::infer(raw_url);
    validate_url(&url)?;
    Ok((kind.unwrap_or(inferred), url))
}

/// Adds a target from the dashboard or the API.
pub async fn add(
    db: &Db,
    kind: Option<TargetKind>,
    raw_url: &str,
    events: Events,
) -> Result<Target, AppError> {
    let (kind, url) = resolve(kind, raw_url)?;
    db.run(move |conn| {
        crate::db::write_tx(conn, |conn| {
            let count: i64 = notify_targets::table.count().get_result(conn)?;
            if count >= MAX_TARGETS as i64 {
                return Err(AppError::Invalid(format!(
                    "at most {MAX_TARGETS} notification targets: remove one first"
                )));
            }
            diesel::insert_into(notify_targets::table)
                .values((
                    notify_targets::kind.eq(kind),
                    notify_targets::url.eq(&url),
                    notify_targets::on_failed.eq(events.on_failed),
                    notify_targets::on_needs_you.eq(events.on_needs_you),
                    notify_targets::on_finished.eq(events.on_finished),
                    notify_targets::created_at.eq(now_millis()),
                ))
                .returning(crate::db::columns_of::<Target>())
                .get_result(conn)
                .map_err(|err| match err {
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        AppError::Conflict(format!("a {kind} target with that URL already exists"))
                    }
                    other => other.into(),
                })
        })
    })
    .await
}

/// Turns a target's events on or off.
pub async fn set_events(db: &Db, id: i32, events: Events) -> Result<Target, AppError> {
    db.run(move |conn| {
        diesel::update(notify_targets::table.find(id))
            .set((
                notify_targets::on_failed.eq(events.on_failed),
                notify_targets::on_needs_you.eq(events.on_needs_you),
                notify_targets::on_finished.eq(events.on_finished),
            ))
            .returning(crate::db::columns_of::<Target>())
            .get_result(conn)
            .optional()?
            .ok_or_else(|| AppError::NotFound(format!("notification target {id} does not exist")))
    })
    .await
}

/// Removes a dashboard target; a `--notify` one is refused (409): it would
/// come back at the next start.
pub async fn remove(db: &Db, id: i32) -> Result<(), AppError> {
    db.run(move |conn| {
        crate::db::write_tx(conn, |conn| {
            let target = find(conn, id)?;
            if target.from_flag {
                return Err(AppError::Conflict(format!(
                    "notification target {id} comes from `agentdeck serve --notify`: \
                     remove the flag and restart the server instead"
                )));
            }
            diesel::delete(notify_targets::table.find(id)).execute(conn)?;
            Ok(())
        })
    })
    .await
}

/// Records the outcome of a delivery (or of one attempt, while retrying).
pub async fn record(db: &Db, id: i32, ok: bool, result: String) -> Result<(), AppError> {
    db.run(move |conn| {
        diesel::update(notify_targets::table.find(id))
            .set((
                notify_targets::last_at.eq(Some(now_millis())),
                notify_targets::last_ok.eq(Some(ok)),
                notify_targets::last_result.eq(Some(result)),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await
}

/// Makes the `--notify` targets exist (each once, `from_flag`), and lets
/// the dashboard remove those the flags no longer name. `flags` are the
/// flag values (`KIND=URL` or a URL); a bad one is an error naming its
/// position, never its URL.
pub async fn ensure_flag_targets(db: &Db, flags: &[String]) -> Result<Vec<Target>, AppError> {
    let mut wanted = Vec::new();
    for (n, flag) in flags.iter().enumerate() {
        let (kind, url) = TargetKind::parse_flag(flag);
        validate_url(&url)
            .map_err(|err| AppError::Invalid(format!("--notify value {}: {err}", n + 1)))?;
        wanted.push((kind, url));
    }
    db.run(move |conn| {
        crate::db::write_tx(conn, |conn| {
            diesel::update(notify_targets::table.filter(notify_targets::from_flag.eq(true)))
                .set(notify_targets::from_flag.eq(false))
                .execute(conn)?;
            let mut targets = Vec::new();
            for (kind, url) in &wanted {
                crate::db::on_backend!(conn, |inner| diesel::insert_into(notify_targets::table)
                    .values((
                        notify_targets::kind.eq(kind),
                        notify_targets::url.eq(url),
                        notify_targets::from_flag.eq(true),
                        notify_targets::created_at.eq(now_millis()),
                    ))
                    .on_conflict((notify_targets::kind, notify_targets::url))
                    .do_nothing()
                    .execute(inner))?;
                let target = diesel::update(
                    notify_targets::table
                        .filter(notify_targets::kind.eq(kind))
                        .filter(notify_targets::url.eq(url)),
                )
                .set(notify_targets::from_flag.eq(true))
                .returning(crate::db::columns_of::<Target>())
                .get_result(conn)?;
                targets.push(target);
            }
            Ok(targets)
        })
    })
    .await
}
