//! `agentdeck`: the server binary. Reads the command line, opens the
//! database, and serves the dashboard until asked to stop.

// Leptos view types nest deeply; their async rendering needs more than 128.
#![recursion_limit = "256"]

mod access;
mod api;
mod cli;
mod events;
mod routes;

use access::TokenStore;
use app::access::Access;
use app::{db::Db, run::runner::Runner};
use app::{project, sync::scan::Syncer};
use axum::serve::ListenerExt;
use clap::Parser;
use cli::{Cli, Command, DataArgs, ServeArgs, SyncArgs, TokenArgs};
use leptos::config::{Env, LeptosOptions};
use std::{net::SocketAddr, path::Path, sync::Arc};
use tokio::net::TcpSocket;

/// Pending connections the listener queues: enough for a reconnect storm
/// of many browser tabs after a restart (tokio's default is 128).
const LISTEN_BACKLOG: u32 = 1024;

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

    let Cli { command } = Cli::parse();
    let result = match command {
        Command::Serve(args) => serve(args).await,
        Command::Sync(args) => sync(args).await,
        Command::Token(args) => token(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Fatal(message)) => {
            eprintln!("agentdeck: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Opens the database the flags point at.
async fn open_db(data: &DataArgs) -> Result<Db, Fatal> {
    let database_url = data.database_url();
    let db = tokio::task::spawn_blocking({
        let url = database_url.clone();
        move || Db::open(&url)
    })
    .await?
    .map_err(|err| Fatal(format!("{err} ({database_url})")))?;
    tracing::info!(database = %database_url, "database ready");
    Ok(db)
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

/// `agentdeck token`: prints the stored token, made first if missing, or a
/// new one replacing it.
fn token(args: TokenArgs) -> Result<(), Fatal> {
    let store = TokenStore::new(args.data.data_dir());
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

async fn serve(args: ServeArgs) -> Result<(), Fatal> {
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
            "marked runs left over by a previous server as interrupted"
        );
    }

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

    let site_root = args.site_root();
    if !site_root.join("pkg").is_dir() {
        tracing::warn!(site_root = %site_root.display(), "no pkg/ in the site root: pages will load without styles or interactivity; build with `cargo leptos build --release`");
    }
    let options = LeptosOptions::builder()
        .output_name("agentdeck")
        .site_root(site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(local)
        .env(Env::PROD)
        .build();

    let access = access::configure(&args.access, &TokenStore::new(args.data.data_dir()), local)?;

    println!("agentdeck listening on http://{local}");
    access.announce(local);
    let hub = db.hub().clone();
    let app = routes::router(db, Arc::clone(&runner), syncer, options, access.guard);
    // Live events are small writes: without TCP_NODELAY, Nagle's algorithm
    // holds them back waiting for ACKs.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // `into_make_service`: each connection gets a cheap clone of the router.
    // Served as a plain `Router`, axum rebuilds the whole route table for
    // every connection (~35 KiB each here), which open live pages hold.
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("stopping: interrupting runs in progress");
            runner.shutdown().await;
            hub.close();
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
