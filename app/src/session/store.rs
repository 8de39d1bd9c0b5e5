//! Session persistence. State changes are not made here: they belong to the
//! single state writer that comes with agent runs.

use super::{ActiveSession, Overview, ProjectSummary, ProjectWithSessions, Session, StateCounts};
use crate::db::DbConn;
use crate::{
    agent::AgentKind,
    db::{
        now_millis,
        schema::{projects, sessions, unseen_ends},
        Db,
    },
    error::AppError,
    live::LiveEvent,
    permission::PermissionMode,
    project::{
        store::{find as find_project, validate_name},
        Project,
    },
    session_state::SessionState,
    transition::{
        writer::{high_water, record_lifecycle},
        Reason,
    },
};
use diesel::prelude::*;
use std::collections::HashMap;

/// A project and its sessions (all, or those in `state`), newest first.
pub async fn list_for_project(
    db: &Db,
    project_id: i32,
    state: Option<SessionState>,
) -> Result<ProjectWithSessions, AppError> {
    db.run(move |conn| {
        crate::db::read_tx(conn, |conn| {
            let project = find_project(conn, project_id)?;
            let mut query = sessions::table
                .filter(sessions::project_id.eq(project_id))
                .into_boxed();
            if let Some(state) = state {
                query = query.filter(sessions::state.eq(state));
            }
            let sessions = query
                .order((sessions::updated_at.desc(), sessions::id.desc()))
                .select(Session::as_select())
                .load(conn)?;
            let counts = counts_by_project(conn, Some(project_id))?
                .remove(&project_id)
                .unwrap_or_default();
            let unseen = unseen_ends::table
                .inner_join(sessions::table)
                .filter(sessions::project_id.eq(project_id))
                .select(unseen_ends::session_id)
                .load(conn)?;
            let seq = high_water(conn)?;
            Ok(ProjectWithSessions {
                project,
                sessions,
                counts,
                seq,
                unseen,
            })
        })
    })
    .await
}

/// Most active sessions the overview lists.
pub const MAX_ACTIVE: i64 = 500;

/// Every project with its counts, and the sessions across them that are
/// working, failed or waiting for the person (newest change first), read
/// in one transaction with the `seq` they match.
pub async fn overview(db: &Db) -> Result<Overview, AppError> {
    db.run(|conn| {
        crate::db::read_tx(conn, |conn| {
            let mut counts = counts_by_project(conn, None)?;
            let projects = projects::table
                .select(Project::as_select())
                .order((projects::name.asc(), projects::id.asc()))
                .load(conn)?
                .into_iter()
                .map(|project: Project| ProjectSummary {
                    counts: counts.remove(&project.id).unwrap_or_default(),
                    project,
                })
                .collect();
            let active = sessions::table
                .inner_join(projects::table)
                .filter(
                    sessions::state
                        .ne(SessionState::Idle)
                        .or(sessions::attention.is_not_null()),
                )
                .order((sessions::state_changed_at.desc(), sessions::id.desc()))
                .limit(MAX_ACTIVE)
                .select((Session::as_select(), projects::name))
                .load(conn)?
                .into_iter()
                .map(|(session, project_name)| ActiveSession {
                    session,
                    project_name,
                })
                .collect();
            let seq = high_water(conn)?;
            Ok(Overview {
                projects,
                active,
                seq,
            })
        })
    })
    .await
}

/// Every session across projects (or those in `state`), newest change
/// first, each with its project's name: what `agentdeck ls` prints.
pub async fn across_projects(
    db: &Db,
    state: Option<SessionState>,
) -> Result<Vec<ActiveSession>, AppError> {
    db.run(move |conn| {
        let mut query = sessions::table.inner_join(projects::table).into_boxed();
        if let Some(state) = state {
            query = query.filter(sessions::state.eq(state));
        }
        Ok(query
            .order((sessions::state_changed_at.desc(), sessions::id.desc()))
            .select((Session::as_select(), projects::name))
            .load::<(Session, String)>(conn)?
            .into_iter()
            .map(|(session, project_name)| ActiveSession {
                session,
                project_name,
            })
            .collect())
    })
    .await
}

/// Sessions per state (and waiting for the person) in each project, or in one.
fn counts_by_project(
    conn: &mut DbConn,
    project: Option<i32>,
) -> Result<HashMap<i32, StateCounts>, AppError> {
    let mut query = sessions::table
        .group_by((sessions::project_id, sessions::state))
        .select((
            sessions::project_id,
            sessions::state,
            diesel::dsl::count_star(),
            diesel::dsl::count(sessions::attention),
        ))
        .into_boxed();
    if let Some(project) = project {
        query = query.filter(sessions::project_id.eq(project));
    }
    let rows: Vec<(i32, SessionState, i64, i64)> = query.load(conn)?;
    let mut counts: HashMap<i32, StateCounts> = HashMap::new();
    for (project_id, state, count, waiting) in rows {
        let entry = counts.entry(project_id).or_default();
        entry.add(state, count);
        entry.needs_you += waiting;
    }
    Ok(counts)
}

/// One session, or `NotFound`.
pub async fn get(db: &Db, session_id: &str) -> Result<Session, AppError> {
    let id = session_id.to_owned();
    db.run(move |conn| find(conn, &id)).await
}

/// Looks a session up on an open connection.
pub fn find(conn: &mut DbConn, session_id: &str) -> Result<Session, AppError> {
    sessions::table
        .find(session_id)
        .select(Session::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(session_id))
}

/// Creates a session: `idle` with no error message (seed: createSession).
pub async fn create(
    db: &Db,
    project_id: i32,
    name: &str,
    agent: AgentKind,
) -> Result<Session, AppError> {
    create_with_mode(db, project_id, name, agent, None).await
}

/// [`create`] in permission `mode` (the agent's default when `None`).
pub async fn create_with_mode(
    db: &Db,
    project_id: i32,
    name: &str,
    agent: AgentKind,
    mode: Option<PermissionMode>,
) -> Result<Session, AppError> {
    let name = validate_name(name, "Session name")?;
    let mode = match mode {
        Some(mode) => fitting_mode(mode, agent)?,
        None => PermissionMode::default_for(agent),
    };
    db.write(move |conn| {
        crate::db::write_tx(conn, |conn| {
            find_project(conn, project_id)?;
            let session = Session {
                permission_mode: mode,
                ..Session::new(project_id, name, agent, now_millis())
            };
            diesel::insert_into(sessions::table)
                .values(&session)
                .execute(conn)?;
            let change = record_lifecycle(conn, &session, Reason::Created)?;
            Ok((session.clone(), vec![LiveEvent::lifecycle(change, session)]))
        })
    })
    .await
}

/// `mode`, if `agent` has it; else a clear 422 naming the modes it has.
fn fitting_mode(mode: PermissionMode, agent: AgentKind) -> Result<PermissionMode, AppError> {
    if mode.fits(agent) {
        return Ok(mode);
    }
    let choices = PermissionMode::choices(agent);
    Err(AppError::Invalid(if choices.is_empty() {
        format!("{} sessions have no permission modes", agent.label())
    } else {
        format!(
            "{} has no permission mode {mode}: choose one of {}",
            agent.label(),
            choices
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

/// Changes a session's permission mode: only while it is not working
/// (a run keeps the mode it started with), 409 otherwise.
pub async fn set_permission_mode(
    db: &Db,
    session_id: &str,
    mode: PermissionMode,
) -> Result<Session, AppError> {
    let id = session_id.to_owned();
    db.write(move |conn| {
        crate::db::write_tx(conn, |conn| {
            let session = find(conn, &id)?;
            let mode = fitting_mode(mode, session.agent)?;
            let changed = diesel::update(
                sessions::table
                    .find(&id)
                    .filter(sessions::state.ne(SessionState::Working)),
            )
            .set((
                sessions::permission_mode.eq(mode),
                sessions::updated_at.eq(now_millis()),
            ))
            .returning(crate::db::columns_of::<Session>())
            .get_result(conn)
            .optional()?;
            let session = changed.ok_or_else(|| {
                AppError::Conflict(
                    "the session is working: change its permission mode once the run ends".into(),
                )
            })?;
            Ok((session, Vec::new()))
        })
    })
    .await
}

/// Renames a session.
pub async fn rename(db: &Db, session_id: &str, name: &str) -> Result<Session, AppError> {
    let name = validate_name(name, "Session name")?;
    let id = session_id.to_owned();
    db.write(move |conn| {
        crate::db::write_tx(conn, |conn| {
            let session = diesel::update(sessions::table.find(&id))
                .set((
                    sessions::name.eq(&name),
                    sessions::updated_at.eq(now_millis()),
                ))
                .returning(crate::db::columns_of::<Session>())
                .get_result(conn)
                .optional()?
                .ok_or_else(|| not_found(&id))?;
            let change = record_lifecycle(conn, &session, Reason::Renamed)?;
            Ok((session.clone(), vec![LiveEvent::lifecycle(change, session)]))
        })
    })
    .await
}

/// Deletes a session that is not working; returns its id. A working
/// session is refused (409): its run must be stopped first (the runner's
/// delete does that).
pub async fn delete(db: &Db, session_id: &str) -> Result<String, AppError> {
    let id = session_id.to_owned();
    db.write(move |conn| {
        crate::db::write_tx(conn, |conn| {
            let session = find(conn, &id)?;
            let deleted = diesel::delete(
                sessions::table
                    .find(&id)
                    .filter(sessions::state.ne(SessionState::Working)),
            )
            .execute(conn)?;
            if deleted == 0 {
                return Err(AppError::Conflict(
                    "session is working: cancel its run before deleting it".into(),
                ));
            }
            let change = record_lifecycle(conn, &session, Reason::Deleted)?;
            Ok((id.clone(), vec![LiveEvent::change(change)]))
        })
    })
    .await
}

fn not_found(session_id: &str) -> AppError {
    AppError::NotFound(format!("session {session_id} does not exist"))
}

/// The session was opened: its run's end has been seen.
pub async fn mark_seen(db: &Db, session_id: &str) -> Result<(), AppError> {
    let id = session_id.to_owned();
    db.run(move |conn| {
        diesel::delete(unseen_ends::table.find(&id)).execute(conn)?;
        Ok(())
    })
    .await
}
