//! Delivers outgoing notifications. One task follows the committed change
//! stream (it only reads the broadcast, so recording a change never waits
//! for it), turns the changes worth a notification into deliveries and
//! queues them in the bounded [`Outbox`]; a few delivery tasks send them
//! over HTTP(S), each attempt bounded in time, retried with backoff, and
//! record every outcome on the target for the dashboard.

use app::{
    db::Db,
    live::LiveEvent,
    notify::{
        outbox::{Job, Outbox},
        request, store, Notification, OutgoingRequest, Watch,
    },
    project::store as projects,
    session::store as sessions,
    transition::Transition,
};
use http_body_util::Full;
use hyper::{body::Bytes, header, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use std::{sync::Arc, time::Duration};
use tokio::sync::{broadcast::error::RecvError, mpsc, Semaphore};

/// How deliveries are sent and retried.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryConfig {
    /// Deliveries in flight at once.
    pub workers: usize,
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// One attempt's bound: connecting, sending and the answer's head.
    pub attempt_timeout: Duration,
    /// The wait before the first retry; each next one waits twice as long.
    pub retry_base: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Starts following changes and delivering what `outbox` is given.
pub fn start(db: Db, outbox: Outbox, jobs: mpsc::Receiver<Job>, config: DeliveryConfig) {
    tokio::spawn(follow_changes(db.clone(), outbox));
    tokio::spawn(deliver_all(db, jobs, config));
}

/// Turns committed changes into queued deliveries, in commit order.
async fn follow_changes(db: Db, outbox: Outbox) {
    let mut changes = db.hub().subscribe_changes();
    let mut watch = Watch::default();
    loop {
        let event = match changes.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "notifications fell behind the change stream; some changes were not notified"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let LiveEvent::Change { change, .. } = &**event else {
            continue;
        };
        if let Some(event) = watch.event(change) {
            if let Err(err) = enqueue(&db, &outbox, event, change).await {
                tracing::warn!(session_id = %change.session_id, error = %err, "cannot prepare a notification");
            }
        }
    }
}

/// Queues `event` for every target that wants it.
async fn enqueue(
    db: &Db,
    outbox: &Outbox,
    event: app::notify::Event,
    change: &Transition,
) -> Result<(), app::error::AppError> {
    let targets: Vec<_> = store::list(db)
        .await?
        .into_iter()
        .filter(|t| t.wants(event))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let session = sessions::get(db, &change.session_id).await?;
    let project = projects::get(db, change.project_id).await?;
    let link = format!("{}{}", outbox.public_url(), session.url());
    let notification = Notification::new(event, change, &session.name, &project.name, link);
    for target in targets {
        tracing::debug!(target_id = target.id, %event, session_id = %change.session_id, "notification queued");
        outbox.offer(Job {
            target,
            notification: notification.clone(),
        });
    }
    Ok(())
}

/// Runs at most `config.workers` deliveries at once; the rest wait in the outbox.
async fn deliver_all(db: Db, mut jobs: mpsc::Receiver<Job>, config: DeliveryConfig) {
    let client = http_client();
    let permits = Arc::new(Semaphore::new(config.workers));
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (db, client) = (db.clone(), client.clone());
        tokio::spawn(async move {
            deliver(&db, &client, config, job).await;
            drop(permit);
        });
    }
}

/// HTTP/1.1 over TCP or TLS (Mozilla's roots, bundled: no system store needed).
fn http_client() -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// Sends one job with retries, recording each outcome on its target.
async fn deliver(db: &Db, client: &HttpClient, config: DeliveryConfig, job: Job) {
    let Job {
        target,
        notification,
    } = job;
    let outgoing = request(target.kind, &target.url, &notification);
    let mut wait = config.retry_base;
    for attempt in 1..=config.attempts {
        let outcome = tokio::time::timeout(config.attempt_timeout, send(client, &outgoing))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "timed out after {} s",
                    config.attempt_timeout.as_secs_f32()
                ))
            });
        let tries = if attempt == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{attempt} attempts")
        };
        let failure = match outcome {
            Ok(status) if status.is_success() => {
                finish(
                    db,
                    target.id,
                    true,
                    format!("{} after {tries}", status_text(status)),
                )
                .await;
                tracing::info!(target_id = target.id, event = %notification.event, attempt, "notification delivered");
                return;
            }
            // The target refuses this request as such: sending it again changes nothing.
            Ok(status)
                if status.is_client_error() && !matches!(status.as_u16(), 408 | 425 | 429) =>
            {
                let result = format!("{} after {tries} (not retried)", status_text(status));
                finish(db, target.id, false, result).await;
                return;
            }
            Ok(status) => status_text(status),
            Err(problem) => problem,
        };
        tracing::warn!(target_id = target.id, event = %notification.event, attempt, problem = %failure, "notification not delivered");
        if attempt == config.attempts {
            finish(db, target.id, false, format!("{failure} after {tries}")).await;
            return;
        }
        let progress = format!(
            "{failure} (attempt {attempt} of {}; retrying)",
            config.attempts
        );
        finish(db, target.id, false, progress).await;
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

async fn finish(db: &Db, id: i32, ok: bool, result: String) {
    if let Err(err) = store::record(db, id, ok, result).await {
        tracing::warn!(target_id = id, error = %err, "cannot record a delivery result");
    }
}

/// "200 OK", "500 Internal Server Error".
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// One attempt: the answer's status (its body is not read). Problems are
/// described without the URL, which may hold a secret.
async fn send(client: &HttpClient, outgoing: &OutgoingRequest) -> Result<StatusCode, String> {
    let mut builder = Request::post(outgoing.url.as_str()).header(
        header::USER_AGENT,
        concat!("agentdeck/", env!("CARGO_PKG_VERSION")),
    );
    for (name, value) in &outgoing.headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(outgoing.body.clone())))
        .map_err(|err| format!("cannot build the request: {err}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|err| describe(&err))?;
    Ok(response.status())
}

/// A failed attempt in a few words: "connection refused", "cannot connect: …".
fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let mut deepest: &dyn std::error::Error = err;
    while let Some(source) = deepest.source() {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return "connection refused".into();
            }
        }
        deepest = source;
    }
    if err.is_connect() {
        format!("cannot connect: {deepest}")
    } else {
        format!("request failed: {deepest}")
    }
}
