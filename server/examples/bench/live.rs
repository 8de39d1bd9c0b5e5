//! Live pages: commit → event latency against bare_sse at 1, 100 and 1000
//! clients, memory per open page, a reconnect storm after a restart, and
//! (on PostgreSQL) the latency from a commit on one instance to pages on
//! another, against pages on the committing instance.

use crate::{
    http::{now_us, EventStream, Http, Received},
    servers::{Agentdeck, Bare, Binaries, Commits},
    Report,
};
use app::db::scratch::ScratchDatabase;
use serde_json::json;
use std::{path::Path, time::Duration};
use tokio::{sync::watch, task::JoinSet};

/// How a latency run is paced.
#[derive(Clone, Copy)]
pub struct Pace {
    pub events: usize,
    pub interval: Duration,
}

/// A terminal session in a project, moved between idle and working by the
/// same hook posts Claude Code sends: each post is one commit through the
/// real writer, with no agent process.
pub struct Terminal {
    pub project_id: i64,
    pub session_id: String,
    external_id: String,
    cwd: String,
    working: bool,
}

impl Terminal {
    pub async fn create(http: &mut Http, dir: &Path, name: &str) -> Result<Self, String> {
        let cwd = dir.join(name);
        std::fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;
        let cwd = std::fs::canonicalize(&cwd)
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        let project = http
            .json("POST", "/api/projects", &json!({ "path": cwd }), 201)
            .await?;
        let project_id = project["id"].as_i64().ok_or("a project id")?;
        let external_id = format!("{:08x}-0000-4000-8000-{:012x}", project_id, now_us());
        let mut terminal = Self {
            project_id,
            session_id: String::new(),
            external_id,
            cwd,
            working: false,
        };
        let started = terminal
            .post(http, "SessionStart", json!({"source": "startup"}))
            .await?;
        terminal.session_id = started["session_id"]
            .as_str()
            .ok_or_else(|| format!("no session id in {started}"))?
            .to_owned();
        Ok(terminal)
    }

    async fn post(
        &self,
        http: &mut Http,
        event: &str,
        extra: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let mut body = json!({
            "session_id": self.external_id,
            "transcript_path": format!("/nowhere/{}.jsonl", self.external_id),
            "cwd": self.cwd,
            "permission_mode": "default",
            "hook_event_name": event,
        });
        for (key, value) in extra.as_object().into_iter().flatten() {
            body[key] = value.clone();
        }
        http.json("POST", "/api/hooks/claude", &body, 200).await
    }

    /// The next turn's edge: a prompt (→ working) or its end (→ idle).
    pub async fn flip(&mut self, http: &mut Http) -> Result<(), String> {
        let answer = if self.working {
            self.post(http, "Stop", json!({"stop_hook_active": false}))
                .await?
        } else {
            self.post(http, "UserPromptSubmit", json!({"prompt": "go on"}))
                .await?
        };
        if answer["outcome"] != "applied" {
            return Err(format!("a hook changed nothing: {answer}"));
        }
        self.working = !self.working;
        Ok(())
    }

    /// The change-log position the session page would be rendered with.
    pub async fn seq(&self, http: &mut Http) -> Result<i64, String> {
        let detail = http
            .get_json(&format!("/api/sessions/{}", self.session_id))
            .await?;
        detail["seq"]
            .as_i64()
            .ok_or_else(|| "no seq in the detail".into())
    }

    pub fn events_path(&self, since: i64) -> String {
        format!("/api/events?project={}&since={since}", self.project_id)
    }
}

/// Opens `count` streams, a few at a time like tabs opening.
async fn open_streams(addr: &str, path: &str, count: usize) -> Result<Vec<EventStream>, String> {
    let mut streams = Vec::with_capacity(count);
    while streams.len() < count {
        let mut batch = JoinSet::new();
        for _ in 0..(count - streams.len()).min(50) {
            let (addr, path) = (addr.to_owned(), path.to_owned());
            batch.spawn(async move { EventStream::open(&addr, &path, None).await });
        }
        while let Some(opened) = batch.join_next().await {
            streams.push(opened.map_err(|e| e.to_string())??);
        }
    }
    Ok(streams)
}

/// Reads every stream until it has an event with id ≥ the target (sent
/// once known), or the stream ends.
fn read_all(streams: Vec<EventStream>, target: &watch::Sender<i64>) -> JoinSet<Vec<Received>> {
    let mut readers = JoinSet::new();
    for mut stream in streams {
        let mut target = target.subscribe();
        readers.spawn(async move {
            let mut got: Vec<Received> = Vec::new();
            loop {
                let last = got.last().map_or(i64::MIN, |r| r.id);
                if last >= *target.borrow_and_update() {
                    return got;
                }
                tokio::select! {
                    event = stream.next() => match event {
                        Some(event) => got.push(event),
                        None => return got,
                    },
                    changed = target.changed() => if changed.is_err() { return got },
                }
            }
        });
    }
    readers
}

/// Waits for the readers (at most `within`); what each received.
async fn collect(mut readers: JoinSet<Vec<Received>>, within: Duration) -> Vec<Vec<Received>> {
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, readers.join_next()).await {
        all.extend(done.ok());
    }
    readers.abort_all();
    all
}

/// Process CPU time (user + system) so far, in µs.
fn cpu_us() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as u64 * 1_000_000 + tv.tv_usec() as u64;
        t(u.user_time()) + t(u.system_time())
    })
}

/// p50 and p99 of `samples` (µs), in ms.
fn percentiles(samples: &mut [u64]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

/// One latency run's outcome.
struct Run {
    p50_ms: f64,
    p99_ms: f64,
    client_cpu_pct: f64,
    mean_data_len: usize,
}

/// agentdeck: the terminal flips `pace.events` times; every page must get
/// every change after `since`, in order.
async fn agentdeck_run(
    server: &Agentdeck,
    terminal: &mut Terminal,
    streams: Vec<EventStream>,
    since: i64,
    pace: Pace,
    problems: &mut Vec<String>,
) -> Result<Run, String> {
    let clients = streams.len();
    let mut driver = Http::connect(&server.addr).await?;
    let target = watch::Sender::new(i64::MAX);
    let readers = read_all(streams, &target);
    let cpu_before = cpu_us();
    let started = tokio::time::Instant::now();
    for i in 0..pace.events {
        terminal.flip(&mut driver).await?;
        tokio::time::sleep_until(started + pace.interval * (i as u32 + 1)).await;
    }
    let last = terminal.seq(&mut driver).await?;
    target.send_replace(last);
    let received = collect(readers, Duration::from_secs(20)).await;
    let cpu = cpu_us() - cpu_before;
    let elapsed = started.elapsed().as_micros() as f64;
    let expected = committed_after(&server.commits, since, last);
    check_every_change(&received, clients, &expected, "agentdeck", problems);
    let commits = server.commits.lock().expect("commit log").clone();
    let mut samples: Vec<u64> = received
        .iter()
        .flatten()
        .filter_map(|r| Some(r.at_us.saturating_sub(*commits.get(&r.id)?)))
        .collect();
    let lengths: Vec<usize> = received.iter().flatten().map(|r| r.data_len).collect();
    let (p50_ms, p99_ms) = percentiles(&mut samples);
    Ok(Run {
        p50_ms,
        p99_ms,
        client_cpu_pct: cpu as f64 / elapsed * 100.0,
        mean_data_len: lengths.iter().sum::<usize>() / lengths.len().max(1),
    })
}

/// The seqs committed after `since`, up to `last`, in order.
fn committed_after(commits: &Commits, since: i64, last: i64) -> Vec<i64> {
    let mut seqs: Vec<i64> = (commits.lock().expect("commit log").keys())
        .copied()
        .filter(|&seq| seq > since && seq <= last)
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Every client got exactly `expected`, in that order.
fn check_every_change(
    received: &[Vec<Received>],
    clients: usize,
    expected: &[i64],
    server: &str,
    problems: &mut Vec<String>,
) {
    if received.len() != clients {
        problems.push(format!(
            "{server}: {} of {clients} clients finished",
            received.len()
        ));
    }
    for (client, got) in received.iter().enumerate() {
        let ids: Vec<i64> = got.iter().map(|r| r.id).collect();
        if ids != expected {
            problems.push(format!(
                "{server}: client {client} got {} events, not the {} changes in seq order (first {:?}, wanted {:?})",
                ids.len(),
                expected.len(),
                ids.iter().take(5).collect::<Vec<_>>(),
                expected.iter().take(5).collect::<Vec<_>>(),
            ));
            return;
        }
    }
}

/// bare_sse: the same number of events of the same size at the same pace.
async fn bare_run(
    bare: &Bare,
    publish: &str,
    clients: usize,
    published: &mut i64,
    data_len: usize,
    pace: Pace,
    problems: &mut Vec<String>,
) -> Result<Run, String> {
    let streams = open_streams(&bare.addr, "/events", clients).await?;
    let mut driver = Http::connect(&bare.addr).await?;
    // The data is "<µs> <body>": pad the body so the whole matches.
    let body = vec![b'x'; data_len.saturating_sub(17)];
    let target = watch::Sender::new(i64::MAX);
    let readers = read_all(streams, &target);
    let first = *published + 1;
    let cpu_before = cpu_us();
    let started = tokio::time::Instant::now();
    for i in 0..pace.events {
        driver.send("POST", publish, &[], body.clone()).await?;
        *published += 1;
        tokio::time::sleep_until(started + pace.interval * (i as u32 + 1)).await;
    }
    target.send_replace(*published);
    let received = collect(readers, Duration::from_secs(20)).await;
    let cpu = cpu_us() - cpu_before;
    let elapsed = started.elapsed().as_micros() as f64;
    let expected: Vec<i64> = (first..=*published).collect();
    check_every_change(&received, clients, &expected, "bare_sse", problems);
    let mut samples: Vec<u64> = received
        .iter()
        .flatten()
        .filter_map(|r| Some(r.at_us.saturating_sub(r.stamp_us?)))
        .collect();
    let (p50_ms, p99_ms) = percentiles(&mut samples);
    Ok(Run {
        p50_ms,
        p99_ms,
        client_cpu_pct: cpu as f64 / elapsed * 100.0,
        mean_data_len: data_len,
    })
}

/// What the live benchmarks are sized to.
pub struct Sizes {
    pub clients: Vec<usize>,
    pub pace: Pace,
    pub reconnect_clients: usize,
}

/// Latency for each client count (the largest also measures memory per
/// open page), then the reconnect storm.
pub async fn run(
    bins: &Binaries,
    dir: &Path,
    sizes: &Sizes,
    report: &mut Report,
) -> Result<(), String> {
    let mut server = Agentdeck::start_logging(bins, dir, 0, true)?;
    let bare = Bare::start(bins, None)?;
    let mut http = Http::connect(&server.addr).await?;
    let mut terminal = Terminal::create(&mut http, dir, "live").await?;
    let mut published = 0;
    let mut counts = sizes.clients.clone();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    for (i, &clients) in counts.iter().enumerate() {
        eprintln!("live: {clients} clients");
        let since = terminal.seq(&mut http).await?;
        let path = terminal.events_path(since);
        let rss_before = server.rss_kib();
        let streams = open_streams(&server.addr, &path, clients).await?;
        let measure_memory = i == 0;
        if measure_memory {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let per_client = (server.rss_kib() as f64 - rss_before as f64) / clients as f64;
            let bare_before = bare.rss_kib();
            let bare_streams = open_streams(&bare.addr, "/events", clients).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let bare_per_client = (bare.rss_kib() as f64 - bare_before as f64) / clients as f64;
            drop(bare_streams);
            report.value(
                &format!("rss_per_client_kib (at {clients} idle pages)"),
                "rss_per_client_kib",
                per_client,
                Some(bare_per_client),
                Goal::AtMost(20.0),
            );
            report.ratio(
                "rss_per_client_ratio",
                per_client,
                bare_per_client,
                Goal::AtMost(1.1),
            );
        }
        let mut problems = Vec::new();
        let ours = agentdeck_run(
            &server,
            &mut terminal,
            streams,
            since,
            sizes.pace,
            &mut problems,
        )
        .await?;
        let base = bare_run(
            &bare,
            "/publish",
            clients,
            &mut published,
            ours.mean_data_len,
            sizes.pace,
            &mut problems,
        )
        .await?;
        if clients == 1 {
            // What the thread hop from the commit to the streams costs alone.
            let hop = bare_run(
                &bare,
                "/publish-blocking",
                clients,
                &mut published,
                ours.mean_data_len,
                sizes.pace,
                &mut problems,
            )
            .await?;
            report.note(format!(
                "bare_sse publishing from tokio's blocking pool (as agentdeck does after its commit) to 1 client: p50 {:.2} ms p99 {:.2} ms",
                hop.p50_ms, hop.p99_ms
            ));
        }
        report.problems.extend(problems);
        report.note(format!(
            "latency at {clients} clients: agentdeck p50 {:.2} ms p99 {:.2} ms (client CPU {:.0}%), bare_sse p50 {:.2} ms p99 {:.2} ms (client CPU {:.0}%), {} B events",
            ours.p50_ms, ours.p99_ms, ours.client_cpu_pct, base.p50_ms, base.p99_ms, base.client_cpu_pct, ours.mean_data_len
        ));
        report.ratio(
            &format!("latency_p50_ratio_{clients}"),
            ours.p50_ms,
            base.p50_ms,
            Goal::AtMost(1.2),
        );
        report.ratio(
            &format!("latency_p99_ratio_{clients}"),
            ours.p99_ms,
            base.p99_ms,
            Goal::AtMost(1.5),
        );
    }
    drop(bare);
    reconnect(
        bins,
        dir,
        &mut server,
        &mut terminal,
        sizes.reconnect_clients,
        report,
    )
    .await
}

/// `clients` pages follow the project; the server restarts on its port;
/// how long from its "listening" line until every page has the change made
/// right after it.
async fn reconnect(
    bins: &Binaries,
    dir: &Path,
    server: &mut Agentdeck,
    terminal: &mut Terminal,
    clients: usize,
    report: &mut Report,
) -> Result<(), String> {
    eprintln!("live: {clients} clients reconnect after a restart");
    let mut http = Http::connect(&server.addr).await?;
    let since = terminal.seq(&mut http).await?;
    let addr = server.addr.clone();
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("a port")?;
    let streams = open_streams(&addr, &terminal.events_path(since), clients).await?;
    let target = watch::Sender::new(i64::MAX);
    let mut followers = JoinSet::new();
    for stream in streams {
        let (addr, path) = (
            addr.clone(),
            format!("/api/events?project={}", terminal.project_id),
        );
        let mut target = target.subscribe();
        followers.spawn(async move {
            let mut stream = Some(stream);
            let (mut last, mut last_at) = (since, 0);
            loop {
                let Some(open) = stream.as_mut() else {
                    // Reconnect as a page does, from the last id it saw.
                    match EventStream::open(&addr, &path, Some(last)).await {
                        Ok(open) => stream = Some(open),
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                    continue;
                };
                tokio::select! {
                    event = open.next() => match event {
                        Some(event) => {
                            (last, last_at) = (event.id, event.at_us);
                            if last >= *target.borrow() {
                                return Some(event.at_us);
                            }
                        }
                        None => stream = None,
                    },
                    changed = target.changed() => match changed {
                        // The change may have arrived before its seq was known.
                        Ok(()) if last >= *target.borrow() => return Some(last_at),
                        Ok(()) => {}
                        Err(_) => return None,
                    },
                }
            }
        });
    }
    drop(http);
    server.stop();
    let replacement = Agentdeck::start_logging(bins, dir, port, true)?;
    let restarted_us = replacement.listening_us;
    let mut http = Http::connect(&replacement.addr).await?;
    terminal.flip(&mut http).await?;
    target.send_replace(terminal.seq(&mut http).await?);
    let mut caught_up = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, followers.join_next()).await {
        caught_up.extend(done.ok().flatten());
    }
    if caught_up.len() != clients {
        report.problems.push(format!(
            "reconnect: {} of {clients} pages caught up",
            caught_up.len()
        ));
    }
    let last = caught_up.iter().max().copied().unwrap_or(restarted_us);
    let seconds = last.saturating_sub(restarted_us) as f64 / 1e6;
    report.value(
        &format!("reconnect_all_s ({clients} pages)"),
        "reconnect_all_s",
        seconds,
        None,
        Goal::AtMost(0.5),
    );
    *server = replacement;
    Ok(())
}

/// What the cross-instance benchmark is sized to.
pub struct PgSizes {
    pub clients: usize,
    pub pace: Pace,
}

/// Two agentdeck instances, A and B, on one scratch database of the
/// PostgreSQL cluster `admin_url` names; a terminal on A flips. First the
/// pages follow the project on A (the baseline: what one instance's own
/// commits cost), then on B (A's commit reaches B through the notification
/// and B's read of the change log). Latency is A's logged commit instant →
/// the event at the client; every page must get every change, in order.
pub async fn cross_instance(
    bins: &Binaries,
    admin_url: &str,
    dir: &Path,
    sizes: &PgSizes,
    report: &mut Report,
) -> Result<(), String> {
    let clients = sizes.clients;
    eprintln!(
        "live: {clients} clients on PostgreSQL, pages on the writing instance, then on another"
    );
    let database = ScratchDatabase::create(admin_url)
        .map_err(|e| format!("a scratch PostgreSQL database: {e}"))?;
    let a = Agentdeck::start_postgres(bins, &dir.join("a"), database.url(), true)?;
    let b = Agentdeck::start_postgres(bins, &dir.join("b"), database.url(), true)?;
    let mut http = Http::connect(&a.addr).await?;
    let mut terminal = Terminal::create(&mut http, dir, "pg").await?;
    let mut runs = Vec::new();
    for (pages, on) in [(&a, "local"), (&b, "cross")] {
        let since = terminal.seq(&mut http).await?;
        let streams = open_streams(&pages.addr, &terminal.events_path(since), clients).await?;
        let mut problems = Vec::new();
        let run =
            agentdeck_run(&a, &mut terminal, streams, since, sizes.pace, &mut problems).await?;
        report.problems.extend(
            problems
                .into_iter()
                .map(|p| format!("PostgreSQL, pages {on} (on {}): {p}", pages.addr)),
        );
        runs.push(run);
    }
    let (local, cross) = (&runs[0], &runs[1]);
    report.note(format!(
        "PostgreSQL latency at {clients} clients, {} changes: writes on A, pages on B p50 {:.2} ms p99 {:.2} ms; pages on A p50 {:.2} ms p99 {:.2} ms",
        sizes.pace.events, cross.p50_ms, cross.p99_ms, local.p50_ms, local.p99_ms
    ));
    report.ratio(
        "pg_cross_instance_latency_p50_ratio",
        cross.p50_ms,
        local.p50_ms,
        Goal::AtMost(10.0),
    );
    report.ratio(
        "pg_cross_instance_latency_p99_ratio",
        cross.p99_ms,
        local.p99_ms,
        Goal::AtMost(10.0),
    );
    Ok(())
}

pub use crate::Goal;
