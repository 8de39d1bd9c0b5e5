//! `GET /api/events`: the change stream as Server-Sent Events. Each change
//! carries its `seq` as the SSE id, so a reconnecting browser resumes with
//! `Last-Event-ID` (or `?since=`) and misses nothing. How many streams may be
//! open at once is bounded ([`StreamLimits`]).

use crate::api::{ApiError, ApiState};
use app::{
    error::AppError,
    live::{follow::follow, Scope},
};
use axum::{
    extract::{rejection::QueryRejection, ConnectInfo, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Extension, Json,
};
use futures_util::Stream;
use serde::Deserialize;
use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

/// Seconds a client refused for too many streams is told to wait.
const RETRY_AFTER_SECONDS: &str = "5";

/// What a page asks to follow: one project's sessions, one session, or all.
/// Numbers arrive as text so that a bad one gets a message naming it.
#[derive(Deserialize)]
pub struct EventsQuery {
    since: Option<String>,
    project: Option<String>,
    session: Option<String>,
}

/// Streams the scope's changes after `since` (or from now), then live.
pub async fn events(
    State(api): State<ApiState>,
    Extension(limits): Extension<StreamLimits>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    let invalid = |message: String| ApiError::from(AppError::Invalid(message)).into_response();
    let Query(query) = query.map_err(|rejection| invalid(rejection.body_text()))?;
    let scope = match (query.project, query.session) {
        (None, None) => Scope::All,
        (Some(project), None) => Scope::Project(whole_number(&project).ok_or_else(|| {
            invalid(format!(
                "project must be a project id, not {}",
                quoted(&project)
            ))
        })?),
        (None, Some(session)) => Scope::Session(session),
        (Some(_), Some(_)) => {
            return Err(invalid("ask for a project or a session, not both".into()))
        }
    };
    // A browser reconnecting on its own sends the last id it saw; it wins
    // over the `since` of the URL it first opened.
    let last_event_id = match headers.get("last-event-id") {
        Some(value) if !value.is_empty() => {
            let raw = String::from_utf8_lossy(value.as_bytes());
            Some(whole_number(&raw).ok_or_else(|| {
                invalid(format!(
                    "Last-Event-ID must be a change number (0 or more), not {}",
                    quoted(&raw)
                ))
            })?)
        }
        _ => None,
    };
    let since = match &query.since {
        Some(raw) => Some(whole_number(raw).ok_or_else(|| {
            invalid(format!(
                "since must be a change number (0 or more), not {}",
                quoted(raw)
            ))
        })?),
        None => None,
    };
    let slot = limits.acquire(peer.ip()).map_err(too_many_streams)?;

    // Without either, the stream starts from now: never a replay of all history.
    let follower = follow(api.db.clone(), scope, last_event_id.or(since));
    // The slot travels with the stream and is given back when the stream is
    // dropped: the client went away, or the server is stopping.
    let stream =
        futures_util::stream::unfold((follower, slot), |(mut follower, slot)| async move {
            let event = follower.next().await?;
            let data = event.json();
            let sse = match event.seq() {
                Some(seq) => Event::default().id(seq.to_string()).data(data),
                None => Event::default().data(data),
            };
            Some((Ok(sse), (follower, slot)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// 503 with `Retry-After`: the page's reconnect backoff tries again later.
fn too_many_streams(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// A change number or id: digits only, fitting an `i32` (the range of `seq`
/// and ids); `-1`, `+1`, `1.0` and overflow are refused.
fn whole_number(raw: &str) -> Option<i32> {
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| raw.parse().ok()).flatten()
}

/// `raw` quoted for an error message, cut short if long.
fn quoted(raw: &str) -> String {
    const SHOWN: usize = 40;
    match raw.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
        None => format!("{raw:?}"),
    }
}

/// How many event streams may be open at once, in all and per client
/// address. Every open page holds a stream (a connection, a file descriptor
/// and ~20 KiB), so the bounds keep a flood of tabs or a misbehaving script
/// from exhausting the server. Cheap to clone: shared by every request.
#[derive(Clone)]
pub struct StreamLimits(Arc<Limits>);

struct Limits {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<OpenStreams>,
}

#[derive(Default)]
struct OpenStreams {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One open stream's place in the counts, given back when dropped.
pub struct StreamSlot {
    limits: StreamLimits,
    client: IpAddr,
}

impl StreamLimits {
    /// Limits of `max_total` streams in all and `max_per_client` per address.
    pub fn new(max_total: usize, max_per_client: usize) -> Self {
        Self(Arc::new(Limits {
            max_total,
            max_per_client,
            open: Mutex::default(),
        }))
    }

    /// A slot for one more stream from `client`, or the message saying
    /// which limit is reached.
    pub fn acquire(&self, client: IpAddr) -> Result<StreamSlot, String> {
        // `::ffff:1.2.3.4` on a dual-stack listener is the same client as 1.2.3.4.
        let client = client.to_canonical();
        let limits = &self.0;
        let mut open = limits.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= limits.max_total {
            return Err(format!(
                "too many open event streams (limit {} for this server); close some agentdeck pages or try again shortly",
                limits.max_total
            ));
        }
        let mine = open.per_client.entry(client).or_default();
        if *mine >= limits.max_per_client {
            return Err(format!(
                "too many open event streams (limit {} per client address); close some agentdeck pages or try again shortly",
                limits.max_per_client
            ));
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamSlot {
            limits: self.clone(),
            client,
        })
    }

    /// Streams open now, in all.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.0.open.lock().unwrap().total
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = (self.limits.0.open)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(mine) = open.per_client.get_mut(&self.client) {
            *mine -= 1;
            if *mine == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_digits_within_range() {
        for (raw, parsed) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("007", Some(7)),
            ("2147483647", Some(i32::MAX)),
            ("2147483648", None),
            ("99999999999999999999", None),
            ("-1", None),
            ("+1", None),
            ("1.5", None),
            (" 1", None),
            ("abc", None),
            ("", None),
        ] {
            assert_eq!(whole_number(raw), parsed, "{raw:?}");
        }
    }

    #[test]
    fn long_input_is_cut_short_in_messages() {
        assert_eq!(quoted("abc"), r#""abc""#);
        let long = "x".repeat(10_000);
        assert_eq!(quoted(&long), format!("{:?}…", "x".repeat(40)));
        assert_eq!(quoted(&"é".repeat(50)), format!("{:?}…", "é".repeat(40)));
    }

    #[test]
    fn streams_are_bounded_in_all_and_per_client() {
        let limits = StreamLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();

        let a1 = limits.acquire(a).unwrap();
        let a2 = limits.acquire(mapped).unwrap();
        let err = limits.acquire(a).err().unwrap();
        assert!(err.contains("limit 2 per client"), "{err}");
        let b1 = limits.acquire(b).unwrap();
        let err = limits.acquire(b).err().unwrap();
        assert!(err.contains("limit 3 for this server"), "{err}");

        drop(a1);
        assert_eq!(limits.open(), 2);
        let b2 = limits.acquire(b).unwrap();
        drop((a2, b1, b2));
        assert_eq!(limits.open(), 0);
        assert!(limits.0.open.lock().unwrap().per_client.is_empty());
    }
}
