//! The runner: starts an agent process for each sent message, watches it,
//! and records how it ended through the single state writer. It also
//! cancels runs, and interrupts them on shutdown and after a crash.

use super::{
    adapter::{self, Exit, Output, PermissionAsk, Step},
    process::{self, LineReader},
    store::{self, Ending, Started},
    MAX_MESSAGE_BYTES,
};
use crate::db::DbConn;
use crate::{
    agent::{find_on_path, AgentChoice, AgentKind},
    approval::{
        store::{self as approvals, Broker},
        Approval,
    },
    db::Db,
    error::AppError,
    instance::{
        store::{self as instance_store, Owner as InstanceOwner},
        Instance, Timings,
    },
    live::LiveEvent,
    session::{store::get as get_session, Session},
    transition::{writer::Applied, Transition, TransitionEvent},
};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::watch;

/// How long output may still arrive after the agent process exits (a
/// background child can hold the pipe open) before the group is stopped.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// How long Claude may take to exit after its `result` once stdin is
/// closed, before its group is stopped (it exits at once when well).
const EXIT_AFTER_RESULT: Duration = Duration::from_secs(2);

/// Runs in progress at once unless configured otherwise (`--max-runs`).
pub const DEFAULT_MAX_RUNS: usize = 16;

/// Where the agents are and how long runs may take.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The Claude Code executable; found on PATH when unset.
    pub claude_bin: Option<PathBuf>,
    /// The Codex executable; found on PATH when unset.
    pub codex_bin: Option<PathBuf>,
    /// A run still going after this long is stopped and recorded as an error.
    pub run_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping a run.
    pub stop_grace: Duration,
    /// Runs in progress at once across all sessions; a send beyond it gets 429.
    pub max_runs: usize,
    /// The lease and intervals of this instance's ownership of its runs.
    pub timings: Timings,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            claude_bin: None,
            codex_bin: None,
            run_timeout: Duration::from_secs(30 * 60),
            stop_grace: Duration::from_secs(3),
            max_runs: DEFAULT_MAX_RUNS,
            timings: Timings::default(),
        }
    }
}

/// Why a run is being stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancel,
    Shutdown,
    /// The database was out of reach for most of a lease: another instance
    /// may take the run for orphaned, so it must not go on here.
    LostDatabase,
}

/// A run in progress in this process.
struct ActiveRun {
    run_id: String,
    stop: watch::Sender<Option<Stop>>,
    done: watch::Receiver<bool>,
    /// Its end is being recorded: once committed the session is free, so a
    /// send waits for it rather than calling the session busy.
    ending: bool,
}

/// The transition a stop from outside records.
fn stop_event(stop: Option<Stop>) -> TransitionEvent {
    match stop {
        Some(Stop::Shutdown | Stop::LostDatabase) => TransitionEvent::Interrupt,
        Some(Stop::Cancel) | None => TransitionEvent::Cancel,
    }
}

/// How often, and how many times, recording a run's end is tried before
/// the smallest possible record of it is made instead.
const END_RETRY_DELAYS: [Duration; 5] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The error of a working session whose run no process here is running.
pub const LOST_RUN_MESSAGE: &str =
    "The run has no live process in this server (its end was never recorded); it was ended as an error";

/// How often the watchdog looks for working sessions with no live run.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_secs(2);

/// Starts, watches and stops agent runs.
pub struct Runner {
    db: Db,
    config: RunnerConfig,
    /// This process, as the owner of its runs.
    instance: Instance,
    broker: Arc<Broker>,
    active: Mutex<HashMap<String, ActiveRun>>,
}

impl Runner {
    pub fn new(db: Db, config: RunnerConfig) -> Arc<Self> {
        Arc::new(Self {
            db,
            config,
            instance: Instance::new(),
            broker: Broker::new(),
            active: Mutex::new(HashMap::new()),
        })
    }

    /// This instance: the owner of the runs it starts.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Where answers to approval requests go to reach their run or hook.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The executable for `agent`, or why there is none.
    pub fn program(&self, agent: AgentKind) -> Result<PathBuf, String> {
        let (configured, flag) = match agent {
            AgentKind::Shell => return Ok(PathBuf::from("/bin/sh")),
            AgentKind::Claude => (&self.config.claude_bin, "--claude-bin"),
            AgentKind::Codex => (&self.config.codex_bin, "--codex-bin"),
        };
        match configured {
            Some(path) if path.is_file() => Ok(path.clone()),
            Some(path) => Err(format!(
                "{agent} is not available: {} does not exist",
                path.display()
            )),
            None => find_on_path(agent.as_str()).ok_or_else(|| {
                format!("{agent} is not available: not found on PATH (or set {flag})")
            }),
        }
    }

    /// The agents the "New session" form offers.
    pub fn choices(&self) -> Vec<AgentChoice> {
        AgentKind::ALL
            .into_iter()
            .map(|kind| AgentChoice {
                kind,
                unavailable: self.program(kind).err(),
            })
            .collect()
    }

    /// Sends `message`: the session becomes `working` (or the call fails with
    /// 409 if it already is) and the agent starts in the background.
    pub async fn send(
        self: &Arc<Self>,
        session_id: &str,
        message: &str,
    ) -> Result<Session, AppError> {
        if message.trim().is_empty() {
            return Err(AppError::Invalid(
                "Message is empty: type what the agent should do".into(),
            ));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(AppError::TooLarge(format!(
                "Message is too large: {} bytes, the limit is {MAX_MESSAGE_BYTES}",
                message.len()
            )));
        }
        // The run is registered before its start commits, so a cancel that
        // lands right after the commit finds it, and the watchdog never
        // sees a working session whose run is unknown here.
        let run_id = uuid::Uuid::new_v4().to_string();
        let (stop_tx, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let (mut stop_tx, mut done_rx) = (Some(stop_tx), Some(done_rx));
        let mut waited = false;
        loop {
            // The previous run's end, when it is being recorded right now.
            let previous_ending = {
                let mut active = self.active_runs();
                match active.get(session_id) {
                    Some(run) if run.ending && !waited => Some(run.done.clone()),
                    Some(_) => return Err(store::busy()),
                    None => {
                        if active.len() >= self.config.max_runs {
                            return Err(AppError::TooMany(format!(
                                "{} runs are in progress, the most this server runs at once (--max-runs {}): \
                                 wait for one to finish",
                                active.len(),
                                self.config.max_runs
                            )));
                        }
                        let (Some(stop), Some(done)) = (stop_tx.take(), done_rx.take()) else {
                            unreachable!("registered once")
                        };
                        let run = ActiveRun {
                            run_id: run_id.clone(),
                            stop,
                            done,
                            ending: false,
                        };
                        active.insert(session_id.to_owned(), run);
                        None
                    }
                }
            };
            let Some(mut done) = previous_ending else {
                break;
            };
            let _ =
                tokio::time::timeout(Duration::from_secs(5), done.wait_for(|finished| *finished))
                    .await;
            waited = true;
        }
        let (id, text, run) = (session_id.to_owned(), message.to_owned(), run_id.clone());
        let owner = self.instance.id.clone();
        let started = self
            .db
            .write(move |conn| {
                let agent = crate::session::store::find(conn, &id)?.agent;
                // A new Claude conversation gets its id from us, up front.
                let new_conversation =
                    (agent == AgentKind::Claude).then(|| uuid::Uuid::new_v4().to_string());
                let started = store::start(
                    conn,
                    &id,
                    &run,
                    &text,
                    new_conversation.as_deref(),
                    Some(&owner),
                )?;
                let change = LiveEvent::change(started.transition.clone());
                Ok((started, vec![change]))
            })
            .await;
        let started = match started {
            Ok(started) => started,
            Err(err) => {
                self.forget(session_id, &run_id);
                let _ = done_tx.send(true);
                return Err(err);
            }
        };
        tracing::info!(session_id = %started.session.id, run_id = %started.run_id, "run started");
        let session = started.session.clone();
        tokio::spawn(Arc::clone(self).drive(started, stop_rx, done_tx));
        Ok(session)
    }

    /// Cancels the session's run and waits until it is recorded.
    pub async fn cancel(&self, session_id: &str) -> Result<Session, AppError> {
        let handle = self
            .active_runs()
            .get(session_id)
            .map(|run| (run.stop.clone(), run.done.clone()));
        match handle {
            Some((stop, mut done)) => {
                let _ = stop.send(Some(Stop::Cancel));
                let _ = done.wait_for(|finished| *finished).await;
            }
            None => {
                if let Some(host) = self.cancel_elsewhere(session_id).await? {
                    tracing::info!(%session_id, %host, "run cancelled by the instance that runs it");
                    return get_session(&self.db, session_id).await;
                }
                let id = session_id.to_owned();
                let applied = self
                    .db
                    .write(move |conn| {
                        let applied = store::cancel_orphan(conn, &id)?;
                        let changes = match &applied {
                            Applied::Changed(change) => vec![LiveEvent::change(change.clone())],
                            _ => Vec::new(),
                        };
                        Ok((applied, changes))
                    })
                    .await?;
                match applied {
                    Applied::Changed(_) => {}
                    Applied::NotFound => {
                        return Err(AppError::NotFound(format!(
                            "session {session_id} does not exist"
                        )))
                    }
                    Applied::Refused { current } => {
                        return Err(AppError::Conflict(format!(
                            "nothing to cancel: the session is {current}, not working"
                        )))
                    }
                }
            }
        }
        get_session(&self.db, session_id).await
    }

    /// When the session's run belongs to another live instance: asks that
    /// instance to cancel it, waits until its end is recorded, and returns
    /// the owner's host. `None` when the run is not another live instance's.
    async fn cancel_elsewhere(&self, session_id: &str) -> Result<Option<String>, AppError> {
        let (me, lease, id) = (
            self.instance.clone(),
            self.config.timings.lease,
            session_id.to_owned(),
        );
        let target = self
            .db
            .run(move |conn| {
                let Some(run_id) = store::current_run(conn, &id)? else {
                    return Ok::<_, AppError>(None);
                };
                let owner = instance_store::owner_of(conn, &me, lease, &run_id)?;
                let InstanceOwner::Elsewhere { host } = owner else {
                    return Ok(None);
                };
                Ok(instance_store::request_cancel(conn, &run_id)?.then_some((run_id, host)))
            })
            .await?;
        let Some((run_id, host)) = target else {
            return Ok(None);
        };
        // The owner stops the process group (SIGTERM, then SIGKILL after the
        // grace) and records the end; wait for that, as a local cancel does.
        let deadline = Instant::now() + self.config.stop_grace + Duration::from_secs(5);
        loop {
            let (id, run) = (session_id.to_owned(), run_id.clone());
            let still_running = self
                .db
                .run(move |conn| {
                    Ok::<_, AppError>(
                        store::current_run(conn, &id)?.as_deref() == Some(run.as_str()),
                    )
                })
                .await?;
            if !still_running {
                return Ok(Some(host));
            }
            if Instant::now() >= deadline {
                return Err(AppError::Internal(format!(
                    "the cancel was sent to the instance on {host}, which runs this session's agent, \
                     but it has not confirmed it yet; the run ends there when it does"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Registers this instance, then interrupts the runs whose owner is
    /// gone (a server that stopped or crashed; never a live instance's).
    /// Call once at startup, before serving.
    pub async fn recover(&self) -> Result<usize, AppError> {
        let me = self.instance.clone();
        self.db
            .run(move |conn| instance_store::register(conn, &me))
            .await?;
        self.interrupt_orphans().await
    }

    /// Interrupts the open runs whose owner is gone; how many sessions
    /// that took out of `working`.
    pub async fn interrupt_orphans(&self) -> Result<usize, AppError> {
        let (me, lease) = (self.instance.clone(), self.config.timings.lease);
        let transitions = self
            .db
            .write(move |conn| {
                let transitions = store::interrupt_orphans(conn, &me, lease)?;
                let changes = transitions.iter().cloned().map(LiveEvent::change).collect();
                Ok((transitions, changes))
            })
            .await?;
        for t in &transitions {
            tracing::warn!(session_id = %t.session_id, error = ?t.error_message, "run interrupted: its instance stopped");
        }
        Ok(transitions.len())
    }

    /// Keeps this instance's ownership until the server stops: a heartbeat,
    /// cancels requested on other instances (woken by their notification,
    /// polled as well), and a reaper for other instances' orphaned runs.
    /// When the database stays out of reach for two thirds of the lease,
    /// this instance stops its own agents before another one may take their
    /// runs for orphaned. Spawn it once, after [`Runner::recover`].
    pub async fn keep_alive(self: Arc<Self>) {
        let timings = self.config.timings;
        let mut closing = self.db.hub().closing();
        let mut beat = tokio::time::interval(timings.heartbeat);
        let mut reap = tokio::time::interval(timings.reap);
        let mut poll = tokio::time::interval(timings.cancel_poll);
        for ticks in [&mut beat, &mut reap, &mut poll] {
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        let mut last_beat = Instant::now();
        let mut stopped_for_outage = false;
        // Every database call here is bounded: with the database gone, a
        // connection attempt would wait for the pool's timeout and hold up
        // the heartbeat that decides to stop the agents.
        let bound = timings.heartbeat.max(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = closing.changed() => return,
                _ = beat.tick() => {
                    let beaten = bounded(bound, self.heartbeat()).await;
                    match beaten {
                        Ok(()) => {
                            last_beat = Instant::now();
                            stopped_for_outage = false;
                        }
                        Err(err) if last_beat.elapsed() >= timings.lease * 2 / 3 => {
                            if !stopped_for_outage {
                                tracing::error!(error = %err, "the database has been out of reach for most of the lease; stopping this instance's agents");
                                self.stop_all(Stop::LostDatabase);
                                stopped_for_outage = true;
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
                    }
                }
                _ = reap.tick() => {
                    if let Err(err) = bounded(bound, self.interrupt_orphans()).await {
                        tracing::warn!(error = %err, "could not look for orphaned runs");
                    }
                }
                _ = poll.tick() => drop(bounded(bound, async { self.cancel_requested().await; Ok(()) }).await),
                _ = self.db.cancel_wakeups().notified() => {
                    drop(bounded(bound, async { self.cancel_requested().await; Ok(()) }).await)
                }
            }
        }
    }

    /// One heartbeat; registers again if this instance's row is gone.
    async fn heartbeat(&self) -> Result<(), AppError> {
        let me = self.instance.clone();
        self.db
            .run(move |conn| {
                if !instance_store::heartbeat(conn, &me)? {
                    tracing::warn!(instance = %me.id, "this instance was not registered (or marked stopped); registering again");
                    instance_store::register(conn, &me)?;
                }
                Ok(())
            })
            .await
    }

    /// Stops the runs another instance asked to cancel.
    async fn cancel_requested(&self) {
        let me = self.instance.clone();
        let requested = match self
            .db
            .run(move |conn| instance_store::cancel_requests(conn, &me))
            .await
        {
            Ok(requested) => requested,
            Err(err) => {
                tracing::warn!(error = %err, "could not read cancel requests");
                return;
            }
        };
        let active = self.active_runs();
        for run in active
            .values()
            .filter(|run| requested.contains(&run.run_id))
        {
            tracing::info!(run_id = %run.run_id, "cancel requested by another instance");
            let _ = run.stop.send(Some(Stop::Cancel));
        }
    }

    /// Asks every run to stop, without waiting.
    fn stop_all(&self, why: Stop) {
        for run in self.active_runs().values() {
            let _ = run.stop.send(Some(why));
        }
    }

    /// Stops every run (their process groups included) and records them as
    /// interrupted. Call on graceful shutdown.
    pub async fn shutdown(&self) {
        let runs: Vec<_> = self
            .active_runs()
            .values()
            .map(|run| (run.stop.clone(), run.done.clone()))
            .collect();
        for (stop, _) in &runs {
            let _ = stop.send(Some(Stop::Shutdown));
        }
        for (_, mut done) in runs {
            let _ = done.wait_for(|finished| *finished).await;
        }
        let me = self.instance.clone();
        if let Err(err) = self
            .db
            .run(move |conn| instance_store::mark_stopped(conn, &me))
            .await
        {
            tracing::warn!(error = %err, "could not record this instance's stop");
        }
    }

    fn active_runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, ActiveRun>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the session's entry if it is still this run's.
    fn forget(&self, session_id: &str, run_id: &str) {
        let mut active = self.active_runs();
        if active
            .get(session_id)
            .is_some_and(|run| run.run_id == run_id)
        {
            active.remove(session_id);
        }
    }

    /// Records how the run ended. A failed write (busy or full database, a
    /// constraint) is retried with backoff; if it keeps failing, the
    /// smallest write that takes the session out of `working` is made
    /// instead, saying the outcome could not be saved. Failing even that,
    /// the watchdog ends the run once this server no longer holds it.
    async fn record_end(&self, started: &Started, event: TransitionEvent, ending: Ending) {
        let (session_id, run_id) = (started.session.id.as_str(), started.run_id.as_str());
        let finish = {
            let (started, event) = (started.clone(), event.clone());
            move |conn: &mut DbConn| store::finish(conn, &started, &event, &ending)
        };
        let err = match self.write_end(run_id, finish).await {
            Ok(()) => {
                tracing::info!(%session_id, %run_id, reason = %event.reason(), "run ended");
                return;
            }
            Err(err) => err,
        };
        let message = format!(
            "The run ended ({}) but its outcome could not be saved ({err}); see the server log",
            event.reason()
        );
        let as_failed = {
            let (session, run) = (session_id.to_owned(), run_id.to_owned());
            move |conn: &mut DbConn| store::end_run_as_failed(conn, &session, &run, &message)
        };
        match self.write_end(run_id, as_failed).await {
            Ok(()) => {
                tracing::error!(%session_id, %run_id, "run ended, but only as an error: its outcome could not be saved")
            }
            Err(err) => {
                tracing::error!(%session_id, %run_id, error = %err, "recording the run's end failed again; the watchdog will end it")
            }
        }
    }

    /// Runs a write that ends run `run_id` (publishing the change it makes),
    /// retried with backoff ([`END_RETRY_DELAYS`]); the last error if no try
    /// succeeded.
    async fn write_end<F>(&self, run_id: &str, end: F) -> Result<(), AppError>
    where
        F: Fn(&mut DbConn) -> Result<Option<Transition>, AppError> + Clone + Send + 'static,
    {
        let mut last_error = None;
        for delay in std::iter::once(Duration::ZERO).chain(END_RETRY_DELAYS) {
            tokio::time::sleep(delay).await;
            let end = end.clone();
            let written = self
                .db
                .write(move |conn| {
                    let change = end(conn)?;
                    Ok(((), change.into_iter().map(LiveEvent::change).collect()))
                })
                .await;
            match written {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::warn!(%run_id, error = %err, "recording the run's end failed; retrying");
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| AppError::Internal("no attempt was made".into())))
    }

    /// Ends, as errors, the runs of working sessions that no process of this
    /// server is running (their end could not be recorded, or a bug lost
    /// them): nothing stays `working` for good. Returns how many it ended.
    pub async fn end_lost_runs(&self) -> Result<usize, AppError> {
        let me = self.instance.id.clone();
        let working = self
            .db
            .run(move |conn| store::working_runs(conn, &me))
            .await?;
        let lost: Vec<(String, String)> = {
            let active = self.active_runs();
            working
                .into_iter()
                .filter(|(session, run)| active.get(session).is_none_or(|a| &a.run_id != run))
                .collect()
        };
        let mut ended = 0;
        for (session_id, run_id) in lost {
            let (session, run) = (session_id.clone(), run_id.clone());
            let change = self
                .db
                .write(move |conn| {
                    let change = store::end_run_as_failed(conn, &session, &run, LOST_RUN_MESSAGE)?;
                    Ok((
                        change.is_some(),
                        change.into_iter().map(LiveEvent::change).collect(),
                    ))
                })
                .await?;
            if change {
                self.db.end_output(&session_id, &run_id);
                tracing::warn!(%session_id, %run_id, "working session had no live run; recorded as an error");
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Runs [`Runner::end_lost_runs`] every [`WATCHDOG_INTERVAL`] until the
    /// server stops. Spawn it once, after [`Runner::recover`].
    pub async fn watchdog(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = self.end_lost_runs().await {
                tracing::warn!(error = %err, "watchdog could not check working sessions");
            }
        }
    }

    /// Deletes a session. A working one has its run cancelled first (its
    /// whole process group stopped and the cancel recorded), so deleting
    /// never leaves an agent running unwatched.
    pub async fn delete(&self, session_id: &str) -> Result<String, AppError> {
        if self.runs_agentdeck_run(session_id).await? {
            self.cancel(session_id).await?;
        }
        crate::session::store::delete(&self.db, session_id).await
    }

    /// Removes a project with its sessions, cancelling agentdeck's runs in
    /// it first as [`Self::delete`] does for one session.
    pub async fn remove_project(&self, project_id: i32) -> Result<i32, AppError> {
        let working = crate::session::store::list_for_project(
            &self.db,
            project_id,
            Some(crate::SessionState::Working),
        )
        .await?;
        for session in working.sessions {
            if self.runs_agentdeck_run(&session.id).await? {
                self.cancel(&session.id).await?;
            }
        }
        crate::project::store::remove(&self.db, project_id).await
    }

    /// Whether the session is in one of agentdeck's runs, here or on
    /// another instance (a terminal session's turn is not one).
    async fn runs_agentdeck_run(&self, session_id: &str) -> Result<bool, AppError> {
        if self.active_runs().contains_key(session_id) {
            return Ok(true);
        }
        let id = session_id.to_owned();
        Ok(self
            .db
            .run(move |conn| store::current_run(conn, &id))
            .await?
            .is_some())
    }

    async fn drive(
        self: Arc<Self>,
        started: Started,
        mut stop: watch::Receiver<Option<Stop>>,
        done: watch::Sender<bool>,
    ) {
        let clock = Instant::now();
        let (event, mut ending) = self.execute(&started, &mut stop).await;
        ending.duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        if let Some(run) = self.active_runs().get_mut(&started.session.id) {
            run.ending = run.run_id == started.run_id;
        }
        self.record_end(&started, event, ending).await;
        // After the end is recorded: a page opened before still shows the output.
        self.db.end_output(&started.session.id, &started.run_id);
        self.forget(&started.session.id, &started.run_id);
        let _ = done.send(true);
    }

    /// Runs the agent to its end; returns the transition to record.
    async fn execute(
        &self,
        started: &Started,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> (TransitionEvent, Ending) {
        let agent = started.session.agent;
        let fail = |message: String| (TransitionEvent::Fail(message), Ending::default());
        let program = match self.program(agent) {
            Ok(program) => program,
            Err(message) => return fail(message),
        };
        let args = adapter::arguments(
            agent,
            &started.message,
            started.session.external_id.as_deref(),
            started.new_agent_session_id.as_deref(),
            started.session.permission_mode,
        );
        if stop.borrow().is_some() {
            // Cancelled (or the server is stopping) before the agent started.
            return (stop_event(*stop.borrow()), Ending::default());
        }
        let controlled = adapter::uses_control_protocol(agent);
        let mut child = match process::spawn(
            &program,
            &args,
            Path::new(&started.project.path),
            &started.run_id,
            controlled,
        ) {
            Ok(child) => child,
            Err(message) => return fail(message),
        };
        // A child already reaped has no pid: then there is no group to
        // signal (and pid 0 would mean our own group).
        let Some(pgid) = child.id() else {
            return fail("the agent exited before it could be watched".into());
        };
        let run_id = started.run_id.clone();
        if let Err(err) = self
            .db
            .run(move |conn| store::set_pid(conn, &run_id, pgid))
            .await
        {
            tracing::warn!(error = %err, "could not record the run's pid");
        }

        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            process::terminate_group(&mut child, pgid, self.config.stop_grace).await;
            return fail("cannot read the agent's output".into());
        };
        // Claude reads its message and every answer from stdin, and exits
        // once stdin closes: dropping `to_agent` closes it.
        let mut to_agent = child.stdin.take().map(process::LineWriter::spawn);
        if let Some(writer) = &to_agent {
            writer.send(adapter::claude_user_line(&started.message));
        }
        let (mut out, mut err) = (LineReader::new(stdout), LineReader::new(stderr));
        let (session_id, run_id) = (started.session.id.as_str(), started.run_id.as_str());
        let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel::<Approval>();
        // Requests waiting for the person: the agent's request id → ours.
        let mut asked: HashMap<String, String> = HashMap::new();
        let mut output = Output::new(agent);
        let (mut out_open, mut err_open) = (true, true);
        let mut exit: Option<Exit> = None;
        let mut stopped: Option<Stop> = None;
        let mut timed_out = false;
        let timeout = tokio::time::sleep(self.config.run_timeout);
        let drain = tokio::time::sleep(Duration::MAX);
        tokio::pin!(timeout, drain);

        while out_open || err_open || exit.is_none() {
            tokio::select! {
                line = out.next_line(), if out_open => match line {
                    Some(line) => {
                        let step = output.stdout_line(&line);
                        for text in output.take_display() {
                            self.db.publish_output(session_id, run_id, &text);
                        }
                        match step {
                            Step::Continue => {}
                            Step::Ended if to_agent.is_none() => break,
                            Step::Ended => {
                                // The turn is over: close stdin so the agent
                                // exits, and give it a moment to do so.
                                to_agent = None;
                                if exit.is_none() {
                                    drain.as_mut().reset(tokio::time::Instant::now() + EXIT_AFTER_RESULT);
                                }
                            }
                            Step::Ask(ask) => {
                                let answer_now = self.ask(started, ask, &answers_tx, &mut asked).await;
                                if let (Some(line), Some(writer)) = (answer_now, &to_agent) {
                                    writer.send(line);
                                }
                            }
                            Step::Withdrawn(request_id) => {
                                if let Some(id) = asked.remove(&request_id) {
                                    self.broker.forget(&id);
                                    let why = match stopped {
                                        Some(Stop::Cancel) => "The run was cancelled before an answer",
                                        Some(Stop::Shutdown) => "The server stopped before an answer",
                                        Some(Stop::LostDatabase) => "The server lost its database before an answer",
                                        None => "The agent withdrew the request",
                                    };
                                    let closed = approvals::close_published(&self.db, &id, why, false).await;
                                    if let Err(err) = closed {
                                        tracing::warn!(approval_id = %id, error = %err, "could not close a withdrawn request");
                                    }
                                }
                            }
                            Step::Unsupported { request_id, error } => {
                                tracing::warn!(%run_id, %error, "refused a control request");
                                if let Some(writer) = &to_agent {
                                    writer.send(adapter::control_error(&request_id, &error));
                                }
                            }
                        }
                    }
                    None => out_open = false,
                },
                line = err.next_line(), if err_open => match line {
                    Some(line) => {
                        self.db.publish_output(session_id, run_id, &line);
                        output.stderr_line(&line);
                    }
                    None => err_open = false,
                },
                Some(approval) = answers.recv() => {
                    if asked.remove(&approval.request_id).is_some() {
                        if let Some(writer) = &to_agent {
                            let decision = approvals::agent_decision(&approval);
                            writer.send(adapter::control_success(&approval.request_id, decision));
                            tracing::info!(%run_id, approval_id = %approval.id, status = %approval.status, "answer sent to the agent");
                        }
                    }
                }
                status = child.wait(), if exit.is_none() => {
                    exit = Some(status.map_or(Exit::Code(-1), Exit::from));
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                }
                () = &mut drain => break,
                () = &mut timeout => { timed_out = true; break }
                Ok(()) = stop.changed() => {
                    let requested = *stop.borrow_and_update();
                    if requested.is_none() || stopped.is_some() {
                        continue;
                    }
                    stopped = requested;
                    match &to_agent {
                        // Claude withdraws what it asked and ends the turn
                        // with a `result`; the group is stopped if it does not.
                        Some(writer) => {
                            writer.send(adapter::control_interrupt(&format!("interrupt-{run_id}")));
                            drain.as_mut().reset(tokio::time::Instant::now() + self.config.stop_grace);
                        }
                        None => break,
                    }
                }
            }
        }
        drop(to_agent);
        for id in asked.values() {
            self.broker.forget(id);
        }
        if exit.is_none() {
            process::terminate_group(&mut child, pgid, self.config.stop_grace).await;
        } else {
            // The agent is gone; make sure nothing it started lingers.
            process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }

        let mut ending = Ending {
            exit_code: match exit {
                Some(Exit::Code(code)) => Some(code),
                _ => None,
            },
            agent_session_id: output
                .agent_session_id
                .clone()
                .or_else(|| started.new_agent_session_id.clone()),
            cost_usd: output.cost_usd,
            denied_tools: (!output.denied_tools.is_empty()).then(|| output.denied_tools.join(", ")),
            ..Ending::default()
        };
        let event = match (stopped, timed_out) {
            (Some(stop), _) => stop_event(Some(stop)),
            (None, true) => TransitionEvent::Fail(format!(
                "timed out after {}s: the run was stopped (the limit is set by --run-timeout)",
                self.config.run_timeout.as_secs()
            )),
            (None, false) => match output.finish(exit) {
                Ok(answer) => {
                    ending.answer = Some(answer);
                    TransitionEvent::Succeed
                }
                Err(message) => TransitionEvent::Fail(message),
            },
        };
        (event, ending)
    }

    /// Stores the agent's request and waits for the person's answer (it
    /// arrives on `answers`). Returns a line to send the agent at once:
    /// a deny when the request could not be stored.
    async fn ask(
        &self,
        started: &Started,
        ask: PermissionAsk,
        answers: &tokio::sync::mpsc::UnboundedSender<Approval>,
        asked: &mut HashMap<String, String>,
    ) -> Option<String> {
        let new = approvals::NewApproval {
            session_id: started.session.id.clone(),
            run_id: Some(started.run_id.clone()),
            request_id: ask.request_id.clone(),
            tool: ask.tool,
            input: ask.input,
            reason: ask.reason,
            suggestions: ask.suggestions,
        };
        match approvals::open_published(&self.db, new).await {
            Ok(Some(approval)) => {
                tracing::info!(run_id = %started.run_id, approval_id = %approval.id, tool = %approval.tool, "waiting for approval");
                self.broker.wait_for(&approval.id, answers.clone());
                asked.insert(ask.request_id, approval.id);
                None
            }
            outcome => {
                let why = match outcome {
                    Err(err) => format!("agentdeck could not store the request: {err}"),
                    _ => "the run is no longer the session's current one".to_owned(),
                };
                tracing::warn!(run_id = %started.run_id, %why, "denied a request at once");
                let deny =
                    serde_json::json!({ "behavior": "deny", "message": why, "interrupt": false });
                Some(adapter::control_success(&ask.request_id, deny))
            }
        }
    }
}

/// `work`, or an error once `limit` has passed.
async fn bounded<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(AppError::Internal(format!(
            "no answer from the database within {limit:?}"
        )))
    })
}
