//! The baseline for the live-stream benchmarks: a bare axum server that
//! broadcasts Server-Sent Events from a tokio broadcast channel, with none
//! of agentdeck's layers, database or replay. `POST /publish` sends one
//! event to every open `GET /events` stream.
//!
//!   cargo run --release -p server --example bare_sse   # prints its URL

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    Router,
};
use futures_util::Stream;
use std::{convert::Infallible, time::Duration};
use tokio::sync::broadcast;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (sender, _) = broadcast::channel::<String>(1024);
    let app = Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("bare_sse listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn events(
    State(sender): State<broadcast::Sender<String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(sender.subscribe(), |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(data) => return Some((Ok(Event::default().data(data)), receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn publish(State(sender): State<broadcast::Sender<String>>, body: String) {
    let _ = sender.send(body);
}
