//! Applying hooks: each report, in one transaction, finds (or creates) its
//! session, goes through the one state writer fenced against agentdeck's
//! own runs, and lands in the change log like every other change. Also the
//! queries of the terminal-process watchdog and of `hooks status`.

use super::{process::AgentProcess, Effect, HookReport, Ingested, Outcome, Report, Sender};
use crate::db::DbConn;
use crate::{
    agent::AgentKind,
    db::{
        now_millis,
        schema::{agent_processes, hook_reports, messages, projects, runs, sessions},
        Db,
    },
    error::AppError,
    live::LiveEvent,
    run::{store::add_message, Role},
    session::Session,
    session_state::{Attention, SessionState},
    sync::transcript::{name_from_prompt, TranscriptInfo},
    transition::{
        writer::{self, record_lifecycle, Applied, RunFence},
        Reason, TransitionEvent,
    },
};
use diesel::prelude::*;
use std::path::Path;

/// Applies one hook report from `sender`, committing before anything is
/// published.
pub async fn ingest(db: &Db, report: Report, sender: Sender) -> Result<Ingested, AppError> {
    db.write(move |conn| {
        crate::db::write_tx(conn, |conn| {
            let now = now_millis();
            let mut events = Vec::new();
            let (outcome, session_id) = reach(conn, &report, &sender, now, &mut events)?;
            record_report(conn, &report, outcome, now)?;
            Ok((
                Ingested {
                    outcome,
                    session_id,
                },
                events,
            ))
        })
    })
    .await
}

/// Finds the report's session and applies its effect.
fn reach(
    conn: &mut DbConn,
    report: &Report,
    sender: &Sender,
    now: i64,
    events: &mut Vec<LiveEvent>,
) -> Result<(Outcome, Option<String>), AppError> {
    if sender.own_run.is_some() {
        return Ok((Outcome::OwnRun, None));
    }
    let known: Option<(Session, Option<String>)> = sessions::table
        .filter(sessions::agent.eq(report.agent))
        .filter(sessions::external_id.eq(&report.external_id))
        .select((Session::as_select(), sessions::current_run_id))
        .first(conn)
        .optional()?;
    let new = known.is_none();
    let session = match known {
        // agentdeck runs this session's current turn: its runner records it.
        Some((_, Some(_))) => return Ok((Outcome::OwnRun, None)),
        Some((session, None)) => session,
        None if is_own_conversation(conn, report)? => return Ok((Outcome::OwnRun, None)),
        None if report.effect == Effect::Nothing => return Ok((Outcome::Ignored, None)),
        None => {
            let Some(project_id) = report
                .cwd
                .as_deref()
                .map(|cwd| project_for(conn, cwd))
                .transpose()?
                .flatten()
            else {
                return Ok((Outcome::NoProject, None));
            };
            let session = Session {
                external_id: Some(report.external_id.clone()),
                last_hook_at: Some(now),
                ..Session::new(project_id, session_name(report), report.agent, now)
            };
            diesel::insert_into(sessions::table)
                .values(&session)
                .execute(conn)?;
            let change = record_lifecycle(conn, &session, Reason::Created)?;
            events.push(LiveEvent::lifecycle(change, session.clone()));
            session
        }
    };
    diesel::update(sessions::table.find(&session.id))
        .set(sessions::last_hook_at.eq(now))
        .execute(conn)?;
    record_process(conn, &session.id, sender)?;
    let before = events.len();
    let changed = apply(conn, &session, report, now, events)?;
    let outcome = if report.effect == Effect::Nothing && events.len() == before {
        Outcome::Ignored
    } else if new || changed || events.len() > before {
        Outcome::Applied
    } else {
        Outcome::Unchanged
    };
    Ok((outcome, Some(session.id)))
}

/// Applies the report's effect to `session`; returns whether it wrote
/// anything beside change-log entries (a message).
fn apply(
    conn: &mut DbConn,
    session: &Session,
    report: &Report,
    now: i64,
    events: &mut Vec<LiveEvent>,
) -> Result<bool, AppError> {
    let id = session.id.as_str();
    let transition = |conn: &mut DbConn, events: &mut Vec<LiveEvent>, event: TransitionEvent| {
        match writer::apply_fenced(conn, id, &event, RunFence::Terminal)? {
            Applied::Changed(change) => {
                events.push(LiveEvent::change(change));
                Ok::<_, AppError>(true)
            }
            Applied::Refused { .. } | Applied::NotFound => Ok(false),
        }
    };
    // The agent moved on: whatever it asked was answered in the terminal.
    if !matches!(report.effect, Effect::NeedsYou(_) | Effect::Nothing) {
        let closed =
            crate::approval::store::close_terminal_requests(conn, id, "Answered in the terminal")?;
        if !closed.is_empty() {
            if let Some(change) = writer::record_attention(conn, id, None, RunFence::Terminal)? {
                events.push(LiveEvent::change(change));
            }
        }
    }
    match &report.effect {
        Effect::Started { fresh } => {
            set_ended(conn, id, None)?;
            // A fresh start in this session: no turn of an earlier process
            // is still going.
            if *fresh && session.state == SessionState::Working {
                transition(conn, events, TransitionEvent::End)?;
            }
            Ok(false)
        }
        Effect::Prompt(prompt) => {
            set_ended(conn, id, None)?;
            transition(conn, events, TransitionEvent::Send)?;
            if is_replay(conn, id, Role::User, prompt)? {
                return Ok(false);
            }
            add_message(conn, id, None, Role::User, prompt, now)?;
            // Named after its first prompt, like an imported session.
            let placeholder = placeholder_name(report);
            let name = session_name(report);
            if session.name == placeholder && name != placeholder {
                let renamed: Session = diesel::update(sessions::table.find(id))
                    .set(sessions::name.eq(name))
                    .returning(crate::db::columns_of::<Session>())
                    .get_result(conn)?;
                let change = record_lifecycle(conn, &renamed, Reason::Renamed)?;
                events.push(LiveEvent::lifecycle(change, renamed));
            }
            Ok(true)
        }
        Effect::TurnEnded(answer) => {
            let ended = transition(conn, events, TransitionEvent::Succeed)?;
            if let Some(answer) = answer.as_deref().filter(|a| ended && !a.trim().is_empty()) {
                add_message(conn, id, None, Role::Agent, answer, now)?;
            }
            Ok(false)
        }
        Effect::TurnFailed(message) => {
            transition(conn, events, TransitionEvent::Fail(message.clone()))?;
            Ok(false)
        }
        Effect::SessionEnded => {
            set_ended(conn, id, Some(now))?;
            transition(conn, events, TransitionEvent::End)?;
            Ok(false)
        }
        Effect::NeedsYou(attention) => {
            set_attention(conn, id, Some(*attention), events)?;
            Ok(false)
        }
        Effect::Attended => {
            set_attention(conn, id, None, events)?;
            Ok(false)
        }
        Effect::Nothing => Ok(false),
    }
}

fn set_attention(
    conn: &mut DbConn,
    session_id: &str,
    attention: Option<Attention>,
    events: &mut Vec<LiveEvent>,
) -> Result<(), AppError> {
    if let Some(change) = writer::set_attention(conn, session_id, attention, RunFence::Terminal)? {
        events.push(LiveEvent::change(change));
    }
    Ok(())
}

fn set_ended(conn: &mut DbConn, session_id: &str, at: Option<i64>) -> Result<(), AppError> {
    diesel::update(sessions::table.find(session_id))
        .set(sessions::ended_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Keeps the agent process the session's hooks come from (a hook sent
/// without one, over HTTP, leaves no process to watch).
fn record_process(conn: &mut DbConn, session_id: &str, sender: &Sender) -> Result<(), AppError> {
    let (Some(pid), Some(host)) = (sender.pid, sender.host.as_deref()) else {
        diesel::delete(agent_processes::table.find(session_id)).execute(conn)?;
        return Ok(());
    };
    let values = (
        agent_processes::pid.eq(pid),
        agent_processes::started.eq(sender.started),
        agent_processes::host.eq(host),
    );
    crate::db::on_backend!(conn, |inner| diesel::insert_into(agent_processes::table)
        .values((agent_processes::session_id.eq(session_id), values))
        .on_conflict(agent_processes::session_id)
        .do_update()
        .set(values)
        .execute(inner))?;
    Ok(())
}

/// Whether `text` is already the session's latest message from `role`:
/// a hook delivered twice (a retried command, a replay) adds it once.
fn is_replay(
    conn: &mut DbConn,
    session_id: &str,
    role: Role,
    text: &str,
) -> Result<bool, AppError> {
    let latest: Option<(Role, String)> = messages::table
        .filter(messages::session_id.eq(session_id))
        .order(messages::id.desc())
        .select((messages::role, messages::content))
        .first(conn)
        .optional()?;
    Ok(latest.is_some_and(|(r, content)| r == role && content == text))
}

/// The name of a session a hook creates: from its first prompt the way
/// imported sessions are named (a slash command names nothing), else the
/// agent and a short id.
fn session_name(report: &Report) -> String {
    report
        .first_prompt
        .as_deref()
        .filter(|prompt| !prompt.trim_start().starts_with('/'))
        .and_then(name_from_prompt)
        .unwrap_or_else(|| placeholder_name(report))
}

/// The name a session gets before any prompt is known.
fn placeholder_name(report: &Report) -> String {
    TranscriptInfo {
        external_id: Some(report.external_id.clone()),
        ..TranscriptInfo::default()
    }
    .name(report.agent)
}

/// Whether the report is about the conversation of a run agentdeck itself
/// started (a new Claude conversation has its id before it starts).
fn is_own_conversation(conn: &mut DbConn, report: &Report) -> Result<bool, AppError> {
    let own: Option<String> = runs::table
        .inner_join(sessions::table)
        .filter(runs::agent_session_id.eq(&report.external_id))
        .filter(sessions::agent.eq(report.agent))
        .select(runs::id)
        .first(conn)
        .optional()?;
    Ok(own.is_some())
}

/// The project whose directory is `cwd` or contains it (the deepest one).
fn project_for(conn: &mut DbConn, cwd: &str) -> Result<Option<i32>, AppError> {
    let canonical = std::fs::canonicalize(cwd).ok();
    let candidates = [Some(Path::new(cwd)), canonical.as_deref()];
    let projects: Vec<(i32, String)> = projects::table
        .select((projects::id, projects::path))
        .load(conn)?;
    Ok(projects
        .into_iter()
        .filter(|(_, path)| {
            candidates
                .iter()
                .flatten()
                .any(|dir| dir.starts_with(Path::new(path)))
        })
        .max_by_key(|(_, path)| path.len())
        .map(|(id, _)| id))
}

/// Keeps the last hook of each agent, for `hooks status`.
fn record_report(
    conn: &mut DbConn,
    report: &Report,
    outcome: Outcome,
    now: i64,
) -> Result<(), AppError> {
    let values = (
        hook_reports::agent.eq(report.agent),
        hook_reports::last_at.eq(now),
        hook_reports::last_event.eq(&report.event),
        hook_reports::last_cwd.eq(&report.cwd),
        hook_reports::outcome.eq(outcome),
    );
    crate::db::on_backend!(conn, |inner| diesel::insert_into(hook_reports::table)
        .values((values, hook_reports::received.eq(1)))
        .on_conflict(hook_reports::agent)
        .do_update()
        .set((
            values,
            hook_reports::received.eq(hook_reports::received + 1),
        ))
        .execute(inner))?;
    Ok(())
}

/// The last hook of each agent that sent any.
pub async fn reports(db: &Db) -> Result<Vec<HookReport>, AppError> {
    db.run(|conn| {
        hook_reports::table
            .order(hook_reports::agent.asc())
            .select(HookReport::as_select())
            .load(conn)
            .map_err(AppError::from)
    })
    .await
}

/// How often terminal sessions' agent processes are checked: a killed
/// terminal shows as an error within about this long.
pub const PROCESS_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The message of a turn whose agent process is gone.
pub fn gone_message(agent: AgentKind, pid: i32) -> String {
    format!(
        "{} exited during the turn (process {pid} is gone)",
        agent.label()
    )
}

/// Ends, as errors, the turns of working terminal sessions on `host` whose
/// agent process is gone. Returns how many it ended.
pub async fn end_gone_turns(db: &Db, host: &str) -> Result<usize, AppError> {
    let host = host.to_owned();
    let working: Vec<(String, AgentKind, i32, Option<i64>)> = db
        .run(move |conn| {
            sessions::table
                .inner_join(agent_processes::table)
                .filter(sessions::state.eq(SessionState::Working))
                .filter(sessions::current_run_id.is_null())
                .filter(agent_processes::host.eq(&host))
                .select((
                    sessions::id,
                    sessions::agent,
                    agent_processes::pid,
                    agent_processes::started,
                ))
                .load(conn)
                .map_err(AppError::from)
        })
        .await?;
    let mut ended = 0;
    for (session_id, agent, pid, started) in working {
        if (AgentProcess { pid, started }).is_running() {
            continue;
        }
        let message = gone_message(agent, pid);
        let id = session_id.clone();
        let changed = db
            .write(move |conn| {
                let event = TransitionEvent::Fail(message);
                match writer::apply_fenced(conn, &id, &event, RunFence::Process(pid))? {
                    Applied::Changed(change) => Ok((true, vec![LiveEvent::change(change)])),
                    Applied::Refused { .. } | Applied::NotFound => Ok((false, Vec::new())),
                }
            })
            .await?;
        if changed {
            tracing::warn!(%session_id, pid, "terminal session's agent process is gone; recorded as an error");
            ended += 1;
        }
    }
    Ok(ended)
}

/// Runs [`end_gone_turns`] every `interval` until the process ends.
pub async fn watch_processes(db: Db, host: String, interval: std::time::Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = end_gone_turns(&db, &host).await {
            tracing::warn!(error = %err, "could not check terminal sessions' processes");
        }
    }
}
