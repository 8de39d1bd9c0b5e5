//! The baseline for the live-stream and page benchmarks (`scripts/bench.sh`):
//! a bare axum server that broadcasts Server-Sent Events from a tokio
//! broadcast channel, with none of agentdeck's layers, database or replay.
//!
//! - `POST /publish` sends one event to every open `GET /events` stream: its
//!   id counts from 1, its data is the send instant (µs since the epoch), a
//!   space, and the request body.
//! - `POST /publish-blocking` does the same from tokio's blocking pool, as
//!   agentdeck publishes right after its SQLite commit there: the thread
//!   hop on its own, without a database.
//! - `GET /page` serves the file named by `BARE_PAGE` (tower-http), the
//!   static twin of a page agentdeck renders.
//!
//!   cargo run --release -p server --example bare_sse   # prints its URL

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    Router,
};
use futures_util::Stream;
use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::broadcast;
use tower_http::services::ServeFile;

#[derive(Clone)]
struct Hub {
    sender: broadcast::Sender<Arc<(u64, String)>>,
    next_id: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let hub = Hub {
        sender: broadcast::channel(1024).0,
        next_id: Arc::default(),
    };
    let mut app = Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .route("/publish-blocking", post(publish_blocking));
    if let Ok(page) = std::env::var("BARE_PAGE") {
        app = app.route_service("/page", ServeFile::new(page));
    }
    // The same listen backlog as agentdeck's, so a burst of connections
    // meets the same queue.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind("127.0.0.1:0".parse().expect("an address"))?;
    let listener = socket.listen(1024)?;
    println!("bare_sse listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app.with_state(hub)).await
}

async fn events(State(hub): State<Hub>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(hub.sender.subscribe(), |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let (id, data) = &*event;
                    let sse = Event::default().id(id.to_string()).data(data);
                    return Some((Ok(sse), receiver));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn publish(State(hub): State<Hub>, body: String) {
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let sent_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let _ = hub.sender.send(Arc::new((id, format!("{sent_us} {body}"))));
}

async fn publish_blocking(State(hub): State<Hub>, body: String) {
    let _ = tokio::task::spawn_blocking(move || {
        let id = hub.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let sent_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let _ = hub.sender.send(Arc::new((id, format!("{sent_us} {body}"))));
    })
    .await;
}
