//! agentdeck's benchmarks, each beside a baseline measured in the same run
//! on the same machine: `scripts/bench.sh` runs this after the release
//! build. It prints a table, then one line per metric, last:
//! `RESULT <metric> <measured> <goal> ok|miss`.
//!
//!   bench --agentdeck target/release/agentdeck --bare target/release/examples/bare_sse
//!   bench --smoke …   # tiny sizes; fails unless every page got every change in order
//!   bench --pg-url postgres://USER:PASSWORD@HOST:PORT/DB …   # PostgreSQL rows too
//!
//! The PostgreSQL rows run on scratch databases of the cluster that URL
//! (or AGENTDECK_BENCH_PG_URL) names, any database on it; without one they
//! are skipped, with a note.
//!
//! A full run always exits 0 (it is a benchmark, not a test); a smoke run
//! exits 1 when a correctness check fails.

mod http;
mod live;
mod pages;
mod servers;
mod sync;
mod writes;

use servers::Binaries;
use std::{path::PathBuf, time::Duration};

/// What a metric must reach.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met(self, measured: f64) -> bool {
        match self {
            Self::AtMost(limit) => measured <= limit,
            Self::AtLeast(floor) => measured >= floor,
        }
    }

    fn text(self) -> String {
        match self {
            Self::AtMost(limit) => format!("<={}", trim(limit)),
            Self::AtLeast(floor) => format!(">={}", trim(floor)),
        }
    }
}

/// A number without trailing zeros, at most three decimals.
fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

struct Row {
    label: String,
    metric: String,
    measured: f64,
    baseline: Option<f64>,
    goal: Goal,
}

/// Everything measured, printed at the end.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    /// Correctness failures (a page missing a change, …).
    pub problems: Vec<String>,
}

impl Report {
    pub fn value(
        &mut self,
        label: &str,
        metric: &str,
        measured: f64,
        baseline: Option<f64>,
        goal: Goal,
    ) {
        eprintln!("  {label}: {}", trim(measured));
        self.rows.push(Row {
            label: label.to_owned(),
            metric: metric.to_owned(),
            measured,
            baseline,
            goal,
        });
    }

    /// `ours / baseline` as the metric, both shown.
    pub fn ratio(&mut self, metric: &str, ours: f64, baseline: f64, goal: Goal) {
        let ratio = ours / baseline;
        eprintln!(
            "  {metric}: {} ({} vs {})",
            trim(ratio),
            trim(ours),
            trim(baseline)
        );
        self.rows.push(Row {
            label: format!("{metric} ({} vs {})", trim(ours), trim(baseline)),
            metric: metric.to_owned(),
            measured: ratio,
            baseline: Some(baseline),
            goal,
        });
    }

    pub fn note(&mut self, note: String) {
        eprintln!("  {note}");
        self.notes.push(note);
    }

    fn print(&self) {
        println!("| metric | measured | baseline | goal | |");
        println!("|---|---|---|---|---|");
        for row in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} |",
                row.label,
                trim(row.measured),
                row.baseline.map(trim).unwrap_or_else(|| "—".into()),
                row.goal.text(),
                verdict(row),
            );
        }
        println!();
        for note in &self.notes {
            println!("- {note}");
        }
        for problem in &self.problems {
            println!("PROBLEM {problem}");
        }
        println!();
        for row in &self.rows {
            println!(
                "RESULT {} {} {} {}",
                row.metric,
                trim(row.measured),
                row.goal.text(),
                verdict(row)
            );
        }
    }
}

fn verdict(row: &Row) -> &'static str {
    if row.goal.met(row.measured) {
        "ok"
    } else {
        "miss"
    }
}

/// Sizes for a full run, or tiny ones for the smoke run in `scripts/test.sh`.
struct Plan {
    live: live::Sizes,
    ssr_sessions: usize,
    ssr_time: Duration,
    /// Transitions through the writer (and as raw SQL); the database they
    /// leave is the one the cold start opens.
    transitions: usize,
    hook_time: Duration,
    sync_files: usize,
    /// Transitions through the writer (and as raw SQL) on PostgreSQL.
    pg_transitions: usize,
    pg_live: live::PgSizes,
}

impl Plan {
    fn full() -> Self {
        Self {
            live: live::Sizes {
                clients: vec![1, 100, 1000],
                pace: live::Pace {
                    events: 400,
                    interval: Duration::from_millis(20),
                },
                reconnect_clients: 1000,
            },
            ssr_sessions: 1000,
            ssr_time: Duration::from_secs(3),
            transitions: 100_000,
            hook_time: Duration::from_secs(3),
            sync_files: 1000,
            pg_transitions: 10_000,
            pg_live: live::PgSizes {
                clients: 100,
                pace: live::Pace {
                    events: 300,
                    interval: Duration::from_millis(20),
                },
            },
        }
    }

    fn smoke() -> Self {
        Self {
            live: live::Sizes {
                clients: vec![1, 4],
                pace: live::Pace {
                    events: 20,
                    interval: Duration::from_millis(5),
                },
                reconnect_clients: 4,
            },
            ssr_sessions: 10,
            ssr_time: Duration::from_millis(300),
            transitions: 300,
            hook_time: Duration::from_millis(300),
            sync_files: 10,
            pg_transitions: 300,
            pg_live: live::PgSizes {
                clients: 4,
                pace: live::Pace {
                    events: 20,
                    interval: Duration::from_millis(5),
                },
            },
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut smoke, mut agentdeck, mut bare, mut only) = (false, None, None, None);
    let mut pg_url = std::env::var(PG_URL_ENV).ok().filter(|url| !url.is_empty());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--agentdeck" => agentdeck = args.next().map(PathBuf::from),
            "--bare" => bare = args.next().map(PathBuf::from),
            // One step: live, writes, hooks, ssr, sync or pg (for profiling).
            "--only" => only = args.next(),
            "--pg-url" => pg_url = args.next(),
            other => {
                eprintln!("bench: unknown argument {other:?}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let (Some(agentdeck), Some(bare)) = (agentdeck, bare) else {
        eprintln!(
            "usage: bench [--smoke] [--only STEP] [--pg-url URL] --agentdeck PATH --bare PATH"
        );
        return std::process::ExitCode::from(2);
    };
    let site_root = PathBuf::from("target/site");
    let bins = Binaries {
        agentdeck,
        bare,
        site_root: site_root.join("pkg").is_dir().then_some(site_root),
    };
    raise_open_file_limit();
    let plan = if smoke { Plan::smoke() } else { Plan::full() };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime.block_on(run(&bins, &plan, only.as_deref(), pg_url.as_deref()));
    report.print();
    if smoke && !report.problems.is_empty() {
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// The environment variable naming the PostgreSQL cluster, as `--pg-url` does.
const PG_URL_ENV: &str = "AGENTDECK_BENCH_PG_URL";

async fn run(bins: &Binaries, plan: &Plan, only: Option<&str>, pg_url: Option<&str>) -> Report {
    let mut report = Report::default();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let dir = |name: &str| scratch.path().join(name);
    let wanted = |step: &str| only.is_none_or(|only| only == step);
    // Each step on its own: one that fails is reported, and the rest run.
    let mut outcomes = Vec::new();
    if wanted("live") {
        outcomes.push(live::run(bins, &dir("live"), &plan.live, &mut report).await);
    }
    if wanted("writes") {
        outcomes.push(writes::transitions(&dir("writes"), plan.transitions, &mut report).await);
        outcomes.push(writes::cold_start(bins, &dir("writes"), &mut report).await);
    }
    if wanted("hooks") {
        outcomes.push(writes::hook_ingest(bins, &dir("hooks"), plan.hook_time, &mut report).await);
    }
    if wanted("ssr") {
        outcomes.push(
            pages::ssr(
                bins,
                &dir("ssr"),
                plan.ssr_sessions,
                plan.ssr_time,
                &mut report,
            )
            .await,
        );
    }
    if wanted("sync") {
        outcomes.push(sync::sync(bins, &dir("sync"), plan.sync_files, &mut report).await);
    }
    if wanted("pg") {
        match pg_url {
            Some(url) => {
                outcomes.push(
                    writes::pg_transitions(
                        url,
                        &dir("pg-writes"),
                        plan.pg_transitions,
                        &mut report,
                    )
                    .await,
                );
                outcomes.push(
                    live::cross_instance(bins, url, &dir("pg-live"), &plan.pg_live, &mut report)
                        .await,
                );
            }
            None => report.note(format!(
                "PostgreSQL rows skipped: no cluster (pass --pg-url URL or set {PG_URL_ENV})"
            )),
        }
    }
    report
        .problems
        .extend(outcomes.into_iter().filter_map(Result::err));
    pages::bundle(&mut report);
    report
}

/// Thousands of sockets need more than the usual 1024 open files; the
/// servers started afterwards inherit the raised limit.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
