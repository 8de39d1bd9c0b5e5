//! `GET /api/events`: the change stream as Server-Sent Events. Each change
//! carries its `seq` as the SSE id, so a reconnecting browser resumes with
//! `Last-Event-ID` (or `?since=`) and misses nothing.

use crate::api::{ApiError, ApiState};
use app::{
    error::AppError,
    live::{follow::follow, Scope},
};
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures_util::Stream;
use serde::Deserialize;
use std::{convert::Infallible, time::Duration};

/// What a page asks to follow: one project's sessions, one session, or all.
#[derive(Deserialize)]
pub struct EventsQuery {
    since: Option<i32>,
    project: Option<i32>,
    session: Option<String>,
}

/// Streams the scope's changes after `since`, then live.
pub async fn events(
    State(api): State<ApiState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query?;
    if let Some(since) = query.since.filter(|since| *since < 0) {
        return Err(AppError::Invalid(format!(
            "since must be a change-log position (0 or more), not {since}"
        ))
        .into());
    }
    let scope = match (query.project, query.session) {
        (None, None) => Scope::All,
        (Some(project), None) => Scope::Project(project),
        (None, Some(session)) => Scope::Session(session),
        (Some(_), Some(_)) => {
            return Err(AppError::Invalid("ask for a project or a session, not both".into()).into())
        }
    };
    // A browser reconnecting on its own sends the last id it saw.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let since = last_event_id.or(query.since).map(|since| since.max(0));

    let follower = follow(api.db.clone(), scope, since);
    let stream = futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        let data = serde_json::to_string(&*event).unwrap_or_default();
        let sse = match event.seq() {
            Some(seq) => Event::default().id(seq.to_string()).data(data),
            None => Event::default().data(data),
        };
        Some((Ok(sse), follower))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
