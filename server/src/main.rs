//! `agentdeck`: the server binary. Reads the command line, opens the
//! database, and serves the dashboard until asked to stop.

// Leptos view types nest deeply; their async rendering needs more than 128.
#![recursion_limit = "256"]

mod access;
mod api;
mod cli;
mod client;
mod events;
mod hooks;
mod notify;
mod remote;
mod routes;
mod site;

use access::TokenStore;
use app::access::Access;
use app::{
    db::{Db, DbError, Location},
    run::runner::Runner,
};
use app::{project, sync::scan::Syncer};
use axum::{extract::ConnectInfo, Extension, Router};
use clap::Parser;
use cli::{
    Cli, Command, DataArgs, HookAgents, HookArgs, HooksAction, HooksArgs, LsArgs, ServeArgs,
    SyncArgs, TokenArgs,
};
use events::StreamLimits;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use leptos::config::{Env, LeptosOptions};
use nix::sys::{
    resource::{getrlimit, setrlimit, Resource},
    stat::{umask, Mode},
};
use std::{
    fs::Permissions,
    future::Future,
    io,
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::net::{TcpListener, TcpSocket};
use tower::Layer;

/// Pending connections the listener queues: enough for a reconnect storm
/// of many browser tabs after a restart (tokio's default is 128).
const LISTEN_BACKLOG: u32 = 1024;

/// Largest request head (request line and headers) read from a client;
/// beyond it the answer is 431. Browsers send a few KiB. (hyper's
/// `max_buf_size` alone is not a bound: it is only checked while a head is
/// incomplete, and one read can bring in a whole larger head.)
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most headers in one request (hyper's default, stated here as a limit).
const MAX_HEADERS: usize = 100;

/// How long a stopping server waits for requests in flight to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A startup failure: printed as one line, exit status 1.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(err: E) -> Self {
        Self(err.to_string())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AGENTDECK_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    // Everything agentdeck creates (its data directory, the database, the
    // token) is private to this user: directories 0700, files 0600.
    let user_umask = umask(Mode::from_bits_truncate(0o077));
    let Cli { command } = Cli::parse();
    let result = match command {
        Command::Serve(args) => serve(args, user_umask).await,
        Command::Sync(args) => sync(args).await,
        Command::Ls(args) => ls(args).await,
        Command::Token(args) => token(args),
        Command::Hooks(args) => hooks(args).await,
        Command::Send(args) => remote::send(args).await.map_err(Fatal),
        Command::Approve(args) => remote::approve(args).await.map_err(Fatal),
        Command::Deny(args) => remote::deny(args).await.map_err(Fatal),
        Command::Approvals(args) => remote::approvals(args).await.map_err(Fatal),
        Command::Hook(args) => {
            hook(args).await;
            // Now, not at the runtime's shutdown: a stdin that never closed
            // would keep its reader thread (and this process) alive.
            std::process::exit(0)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Fatal(message)) => {
            eprintln!("agentdeck: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The URL this server is reached at from this machine.
fn local_url(local: SocketAddr) -> String {
    let host = if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    format!("http://{host}")
}

/// Writes where this server listens into the data directory, for
/// `agentdeck hook` to find it.
fn remember_url(data: &DataArgs, local: SocketAddr) {
    let Ok(dir) = data.data_dir() else { return };
    // With PostgreSQL nothing else may have made the directory yet.
    let written =
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .and_then(|()| {
                std::fs::write(
                    dir.join(client::URL_FILE),
                    format!("{}\n", local_url(local)),
                )
            });
    if let Err(err) = written {
        tracing::warn!(%err, "cannot record the server's URL for agentdeck hook");
    }
}

/// Opens the database the flags point at (a SQLite file is created if
/// missing, under the private umask).
async fn open_db(data: &DataArgs) -> Result<Db, Fatal> {
    let location = data.database()?;
    if let Location::Sqlite(path) = &location {
        make_private(path);
    }
    let database = location.display();
    let db = tokio::task::spawn_blocking(move || Db::open_at(location))
        .await?
        .map_err(|err| match err {
            // Names the URL already (its password hidden).
            DbError::Connect { .. } => Fatal(err.to_string()),
            err => Fatal(format!("{err} ({database})")),
        })?;
    tracing::info!(%database, "database ready");
    Ok(db)
}

/// Makes an existing database file readable by this user only (one made by
/// an older agentdeck may be 0644). SQLite gives the `-wal` and `-shm` files
/// it creates the database file's mode; existing ones are fixed here too.
fn make_private(database: &Path) {
    let mut files = vec![database.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            if let Err(err) = std::fs::set_permissions(&file, Permissions::from_mode(0o600)) {
                tracing::warn!(file = %file.display(), %err, "cannot make the database private to this user");
            }
        }
    }
}

/// `agentdeck sync`: imports transcripts for one project or all, prints a summary per project.
async fn sync(args: SyncArgs) -> Result<(), Fatal> {
    let db = open_db(&args.data).await?;
    let syncer = Syncer::new(db.clone(), args.data.sync_config());
    let projects = project::store::list(&db)
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    let wanted = match &args.project {
        Some(path) => {
            let path = std::fs::canonicalize(path)
                .map_err(|err| Fatal(format!("cannot open {}: {err}", path.display())))?;
            let found: Vec<_> = projects
                .into_iter()
                .filter(|p| Path::new(&p.path) == path)
                .collect();
            if found.is_empty() {
                return Err(Fatal(format!(
                    "{} is not a project; add it in the dashboard first",
                    path.display()
                )));
            }
            found
        }
        None => projects,
    };
    for project in wanted {
        let summary = syncer
            .sync(&project)
            .await
            .map_err(|e| Fatal(e.to_string()))?;
        println!("{}: {summary}", project.path);
    }
    Ok(())
}

/// `agentdeck hook claude|codex`: forwards one hook, never failing the agent.
async fn hook(args: HookArgs) {
    let agent = args.agent.parse().unwrap_or(app::agent::AgentKind::Claude);
    let data_dir = args.data.data_dir().ok();
    hooks::forward::run(hooks::forward::Forward {
        agent,
        url: args.url,
        data_dir: data_dir.as_deref(),
        argument: args.notify,
    })
    .await;
}

/// `agentdeck hooks install|uninstall|status`.
async fn hooks(args: HooksArgs) -> Result<(), Fatal> {
    use hooks::install::{self, Agent, Targets};
    let home = dirs::home_dir().ok_or_else(|| Fatal("no home directory (set HOME)".into()))?;
    let targets = Targets::from_home(
        &home,
        std::env::var_os("CLAUDE_CONFIG_DIR").map(PathBuf::from),
        std::env::var_os("CODEX_HOME").map(PathBuf::from),
    );
    let exe = std::env::current_exe()
        .map_err(|err| Fatal(format!("cannot tell where this agentdeck is: {err}")))?;
    let agents = |chosen: &HookAgents| {
        let mut agents = Vec::new();
        if chosen.claude {
            agents.push(Agent::Claude);
        }
        if chosen.codex {
            agents.push(Agent::Codex);
        }
        agents
    };
    let outcomes = match &args.action {
        HooksAction::Install(chosen) => {
            install::install(&targets, &agents(chosen), &exe, chosen.dry_run)
        }
        HooksAction::Uninstall(chosen) => {
            install::uninstall(&targets, &agents(chosen), chosen.dry_run)
        }
        HooksAction::Status(status_args) => {
            let mut status = install::status(&targets, &exe);
            // The database says when each agent last reported; a missing
            // one just means nothing has reported yet.
            if status_args
                .data
                .database()
                .is_ok_and(|location| match location {
                    Location::Sqlite(path) => path.exists(),
                    Location::Postgres(_) => true,
                })
            {
                let reports = app::hook::store::reports(&open_db(&status_args.data).await?)
                    .await
                    .map_err(|err| Fatal(err.to_string()))?;
                for agent in &mut status.agents {
                    let kind = match agent.agent {
                        Agent::Claude => app::agent::AgentKind::Claude,
                        Agent::Codex => app::agent::AgentKind::Codex,
                    };
                    agent.last_report = reports.iter().find(|r| r.agent == kind).cloned();
                }
            }
            print!("{}", status.render());
            return Ok(());
        }
    };
    for outcome in outcomes.map_err(|err| Fatal(err.to_string()))? {
        println!("{}", outcome.render());
    }
    Ok(())
}

/// `agentdeck ls`: every session across projects, newest change first.
async fn ls(args: LsArgs) -> Result<(), Fatal> {
    let state = args
        .state
        .map(|s| s.parse::<app::SessionState>())
        .transpose()
        .map_err(|err| Fatal(err.to_string()))?;
    let db = open_db(&args.data).await?;
    let sessions = app::session::store::across_projects(&db, state)
        .await
        .map_err(|err| Fatal(err.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sessions)?);
        return Ok(());
    }
    let now = app::db::now_millis() as f64;
    for app::session::ActiveSession {
        session,
        project_name,
    } in sessions
    {
        let attention = session.attention.map_or("", |a| a.label());
        let since = app::components::since_label(session.state, now, session.state_changed_at);
        println!(
            "{:<8} {:<15} {:<20} {}  ({since}, {})",
            session.state.as_str(),
            attention,
            project_name,
            session.name,
            session.id
        );
    }
    Ok(())
}

/// `agentdeck token`: prints the stored token, made first if missing, or a
/// new one replacing it.
fn token(args: TokenArgs) -> Result<(), Fatal> {
    let store = TokenStore::new(args.data.data_dir().map_err(Fatal)?);
    let kind = if args.read_only {
        Access::ReadOnly
    } else {
        Access::Full
    };
    let token = if args.rotate {
        store.rotate(kind)?
    } else {
        store.load_or_create(kind)?
    };
    println!("{}", token.expose());
    if args.rotate {
        eprintln!(
            "agentdeck: new token stored in {}; restart the server to use it (the old one works until then)",
            store.path(kind).display()
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs, user_umask: Mode) -> Result<(), Fatal> {
    raise_open_files_limit();
    let db = open_db(&args.data).await?;
    let syncer = Syncer::new(db.clone(), args.data.sync_config());

    let runner = Runner::new(db.clone(), args.runner_config());
    let interrupted = runner
        .recover()
        .await
        .map_err(|err| Fatal(err.to_string()))?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "marked runs of instances that stopped as interrupted"
        );
    }
    tokio::spawn(Arc::clone(&runner).watchdog(app::run::runner::WATCHDOG_INTERVAL));
    tokio::spawn(Arc::clone(&runner).keep_alive());
    // Other instances' changes (and `agentdeck sync`'s) reach these pages too.
    db.start_tailing();
    tokio::spawn(app::hook::store::watch_processes(
        db.clone(),
        app::hook::process::this_host(),
        app::hook::store::PROCESS_WATCH_INTERVAL,
    ));

    let addr = SocketAddr::new(args.bind, args.port);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|err| Fatal(format!("cannot listen on {addr}: {err}")))?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let local = listener.local_addr()?;

    let site = args.site();
    site.log();
    let options = LeptosOptions::builder()
        .output_name("agentdeck")
        .site_root(site.leptos_root())
        .site_pkg_dir("pkg")
        .site_addr(local)
        .env(Env::PROD)
        .build();

    let access = access::configure(
        &args.access,
        &TokenStore::new(args.data.data_dir().map_err(Fatal)?),
        local,
    )?;
    let public_url = match &args.public_url {
        Some(url) => {
            app::notify::validate_url(url).map_err(|err| Fatal(format!("--public-url: {err}")))?;
            url.clone()
        }
        None => local_url(local),
    };
    let flag_targets = app::notify::store::ensure_flag_targets(&db, &args.notify)
        .await
        .map_err(|err| Fatal(err.to_string()))?;
    if !flag_targets.is_empty() {
        tracing::info!(
            targets = flag_targets.len(),
            "notification targets from --notify"
        );
    }
    let (outbox, jobs) = app::notify::outbox::Outbox::new(&public_url);
    notify::start(
        db.clone(),
        outbox.clone(),
        jobs,
        notify::DeliveryConfig {
            retry_base: Duration::from_millis(args.notify_retry_ms),
            ..notify::DeliveryConfig::default()
        },
    );
    let hub = db.hub().clone();
    let app = routes::router(
        db,
        Arc::clone(&runner),
        outbox,
        syncer,
        options,
        access.guard.clone(),
    )
    .layer(Extension(StreamLimits::new(
        args.max_streams,
        args.max_streams_per_client,
    )));

    // Agents run with the user's own umask: the files they make in a
    // project are the user's, not agentdeck's private data.
    umask(user_umask);
    let stop = shutdown_signal()?;
    remember_url(&args.data, local);
    println!("agentdeck listening on http://{local}");
    access.announce(local);
    let header_timeout = Duration::from_secs(args.header_timeout);
    let connections = accept(listener, app, header_timeout, stop).await;
    tracing::info!("stopping: interrupting runs in progress");
    runner.shutdown().await;
    hub.close();
    // Event streams end with the hub; other requests get a moment to finish.
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown())
        .await
        .is_err()
    {
        tracing::info!("closing connections still busy after {SHUTDOWN_GRACE:?}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves connections until Ctrl-C or SIGTERM, then stops accepting and
/// returns the connections still open, for a graceful stop.
///
/// Each connection is HTTP/1.1 (browsers speak HTTP/2 only over TLS) with
/// bounds `axum::serve` does not offer: the request head must arrive within
/// `header_timeout` and fit in [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`], so a slowloris client
/// cannot hold connections open. hyper starts that timer whenever it waits
/// for a request head: on a new connection and again after each response on
/// a kept-alive one, so it is the idle timeout too. While a response is being
/// sent (an event stream) no head is awaited and the timer does not run.
async fn accept(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> GracefulShutdown {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let connections = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut stop => return connections,
        };
        // Live events are small writes: without TCP_NODELAY, Nagle's
        // algorithm holds them back waiting for ACKs.
        let _ = tcp.set_nodelay(true);
        // A cheap clone of the router (an `Arc`) per connection, carrying the
        // peer's address for handlers. (Serving a plain `Router` through
        // `axum::serve` rebuilt the whole route table for every connection,
        // ~35 KiB each here, which open live pages hold.)
        let service = Extension(ConnectInfo(peer)).layer(app.clone());
        let connection =
            http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, %err, "connection closed");
            }
        });
    }
}

/// A failed `accept`: a client that gave up is no concern; anything else
/// (out of file descriptors) is logged and retried after a pause, since
/// connections closing will free what is missing.
async fn accept_failed(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%err, "cannot accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Raises the soft limit on open files to the hard one: every open page
/// holds a connection, and the usual soft limit (1024) would refuse new
/// ones near a thousand pages.
fn raise_open_files_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(err) => tracing::debug!(limit = soft, %err, "cannot raise the open files limit"),
        },
        Ok((soft, _)) => tracing::debug!(limit = soft, "open files limit"),
        Err(err) => tracing::debug!(%err, "cannot read the open files limit"),
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed at once, so a
/// signal that arrives before the future is first polled still counts.
fn shutdown_signal() -> Result<impl Future<Output = ()>, Fatal> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}
