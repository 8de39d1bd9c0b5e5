//! Project persistence and validation.

use super::Project;
use crate::db::DbConn;
use crate::{
    db::{
        now_millis,
        schema::{projects, sessions},
        Db,
    },
    error::AppError,
    live::LiveEvent,
    session::Session,
    transition::{writer::record_lifecycle, Reason},
    SessionState,
};
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use std::path::{Path, PathBuf};

/// Longest project or session name accepted.
pub const MAX_NAME_CHARS: usize = 200;

/// All projects, by name.
pub async fn list(db: &Db) -> Result<Vec<Project>, AppError> {
    db.run(|conn| {
        projects::table
            .select(Project::as_select())
            .order((projects::name.asc(), projects::id.asc()))
            .load(conn)
            .map_err(AppError::from)
    })
    .await
}

/// One project, or `NotFound`.
pub async fn get(db: &Db, id: i32) -> Result<Project, AppError> {
    db.run(move |conn| find(conn, id)).await
}

/// Looks a project up on an open connection.
pub fn find(conn: &mut DbConn, id: i32) -> Result<Project, AppError> {
    projects::table
        .find(id)
        .select(Project::as_select())
        .first(conn)
        .optional()
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::NotFound(format!("project {id} does not exist")))
}

/// Adds a project for the directory at `raw_path` (absolute, or starting
/// with `~`). The path is canonicalised, so two spellings of one directory
/// are one project.
pub async fn add(db: &Db, raw_path: &str, name: Option<&str>) -> Result<Project, AppError> {
    let path = canonical_directory(raw_path)?;
    let path_text = path
        .to_str()
        .ok_or_else(|| AppError::Invalid(format!("{} is not valid UTF-8", path.display())))?
        .to_owned();
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => validate_name(name, "Project name")?,
        None => path
            .file_name()
            .map_or_else(|| path_text.clone(), |n| n.to_string_lossy().into_owned()),
    };
    db.run(move |conn| {
        diesel::insert_into(projects::table)
            .values((
                projects::name.eq(&name),
                projects::path.eq(&path_text),
                projects::created_at.eq(now_millis()),
            ))
            .returning(crate::db::columns_of::<Project>())
            .get_result(conn)
            .map_err(|err| match err {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    AppError::Conflict(format!("a project for {path_text} already exists"))
                }
                other => other.into(),
            })
    })
    .await
}

/// Renames a project.
pub async fn rename(db: &Db, id: i32, name: &str) -> Result<Project, AppError> {
    let name = validate_name(name, "Project name")?;
    db.run(move |conn| {
        diesel::update(projects::table.find(id))
            .set(projects::name.eq(&name))
            .returning(crate::db::columns_of::<Project>())
            .get_result(conn)
            .optional()?
            .ok_or_else(|| AppError::NotFound(format!("project {id} does not exist")))
    })
    .await
}

/// Removes a project with its sessions (their messages, runs and approvals
/// go with them; the directory on disk is left alone); returns its id. A
/// project with a working session is refused (409): the runner's
/// `remove_project` cancels agentdeck's own runs first.
pub async fn remove(db: &Db, id: i32) -> Result<i32, AppError> {
    db.write(move |conn| {
        crate::db::write_tx(conn, |conn| {
            find(conn, id)?;
            let doomed: Vec<Session> = sessions::table
                .filter(sessions::project_id.eq(id))
                .select(Session::as_select())
                .load(conn)?;
            if let Some(working) = doomed.iter().find(|s| s.state == SessionState::Working) {
                return Err(AppError::Conflict(format!(
                    "session {} in this project is working: cancel its run before removing the project",
                    working.name
                )));
            }
            // Each session's deletion is published, so open pages drop it;
            // the log rows themselves go with the project.
            let mut events = Vec::with_capacity(doomed.len());
            for session in &doomed {
                events.push(LiveEvent::change(record_lifecycle(
                    conn,
                    session,
                    Reason::Deleted,
                )?));
            }
            diesel::delete(projects::table.find(id)).execute(conn)?;
            Ok((id, events))
        })
    })
    .await
}

/// Trims and bounds a user-given name.
pub fn validate_name(raw: &str, what: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::Invalid(format!("{what} is required")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::Invalid(format!(
            "{what} is too long: at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

/// Resolves a user-typed path to an existing directory's canonical form.
fn canonical_directory(raw: &str) -> Result<PathBuf, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(AppError::Invalid("Project path is required".into()));
    }
    let expanded = expand_home(raw);
    if !expanded.is_absolute() {
        return Err(AppError::Invalid(format!(
            "Project path must be absolute (start with / or ~): {raw}"
        )));
    }
    let canonical = expanded.canonicalize().map_err(|err| {
        AppError::Invalid(match err.kind() {
            std::io::ErrorKind::NotFound => format!("No directory at {raw}"),
            _ => format!("Cannot open {raw}: {err}"),
        })
    })?;
    if !canonical.is_dir() {
        return Err(AppError::Invalid(format!(
            "{raw} is a file, not a directory"
        )));
    }
    Ok(canonical)
}

fn expand_home(raw: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    match raw.strip_prefix('~') {
        Some("") => home().unwrap_or_else(|| PathBuf::from(raw)),
        Some(rest) if rest.starts_with('/') => home()
            .map(|h| h.join(rest.trim_start_matches('/')))
            .unwrap_or_else(|| PathBuf::from(raw)),
        _ => Path::new(raw).to_owned(),
    }
}

/// Bounds of how long a terminal's approval request waits for the dashboard.
pub const APPROVAL_WAIT_SECS: std::ops::RangeInclusive<i32> = 10..=3600;

/// Lets the dashboard answer the approval requests of the project's
/// terminal Claude sessions (`enabled`), waiting up to `wait_secs` for an
/// answer before the terminal asks instead.
pub async fn set_approvals(
    db: &Db,
    id: i32,
    enabled: bool,
    wait_secs: i32,
) -> Result<Project, AppError> {
    if !APPROVAL_WAIT_SECS.contains(&wait_secs) {
        return Err(AppError::Invalid(format!(
            "The wait must be between {} seconds and {} minutes, not {wait_secs} seconds",
            APPROVAL_WAIT_SECS.start(),
            APPROVAL_WAIT_SECS.end() / 60
        )));
    }
    db.run(move |conn| {
        diesel::update(projects::table.find(id))
            .set((
                projects::approve_from_dashboard.eq(enabled),
                projects::approval_wait_secs.eq(wait_secs),
            ))
            .returning(crate::db::columns_of::<Project>())
            .get_result(conn)
            .optional()?
            .ok_or_else(|| AppError::NotFound(format!("project {id} does not exist")))
    })
    .await
}
