//! What the browser is told: a Content-Security-Policy with a fresh script
//! nonce, never to store data answers, and that another site's writes are
//! refused (CSRF). Also what a page being rendered learns of its request.

use super::{hosts::request_host, token::random_hex, Guard};
use app::access::Access;
use axum::{
    extract::{Request, State},
    http::{
        header::{self, HeaderValue},
        request::Parts,
        Method, StatusCode,
    },
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use leptos::{nonce::Nonce, prelude::provide_context};
use std::sync::Arc;

/// Kept from before tokens existed: scripts and tests match on it.
const CROSS_SITE_REFUSAL: &str =
    "cross-origin request refused: agentdeck only accepts changes from its own pages";

/// The script nonce of the request being answered: in the CSP header, and
/// given to Leptos for its inline scripts.
#[derive(Clone)]
pub struct CspNonce(Arc<str>);

/// Sets a Content-Security-Policy on every answer: scripts only from this
/// server or carrying this request's nonce, no framing, no plugins, forms
/// posting only here.
pub async fn content_security_policy(mut request: Request, next: Next) -> Response {
    let nonce: Arc<str> = random_hex::<16>()
        .expect("the OS random number generator failed")
        .into();
    request
        .extensions_mut()
        .insert(CspNonce(Arc::clone(&nonce)));
    let mut response = next.run(request).await;
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Refuses a write that another site's page may have made the browser send
/// (CSRF). Accepted: `Origin` is this server; or, without `Origin`,
/// `Sec-Fetch-Site` says same-origin or typed by the user. A request with
/// neither (curl, scripts) needs a bearer token, or a tokenless loopback
/// server, where no cookie could be riding along.
pub async fn refuse_cross_site_writes(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let allowed = if let Some(origin) = headers.get(header::ORIGIN) {
        let host = request_host(&request);
        origin.to_str().is_ok_and(|origin| {
            ["http://", "https://"].iter().any(|scheme| {
                origin
                    .strip_prefix(scheme)
                    .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host))
            })
        })
    } else if let Some(site) = headers.get("sec-fetch-site") {
        matches!(site.as_bytes(), b"same-origin" | b"none")
    } else {
        guard.tokens.is_none() || headers.contains_key(header::AUTHORIZATION)
    };
    if allowed {
        return next.run(request).await;
    }
    let body = Json(serde_json::json!({ "error": CROSS_SITE_REFUSAL }));
    (StatusCode::FORBIDDEN, body).into_response()
}

/// Cache-Control for data answers (JSON, event streams): never stored, so
/// nothing a token unlocked stays on disk in a browser or proxy cache.
pub fn no_store_for_data(response: &Response) -> Option<HeaderValue> {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    (content_type.starts_with("application/json") || content_type.starts_with("text/event-stream"))
        .then(|| HeaderValue::from_static("no-store"))
}

// ---------------------------------------------------------------------------
// Leptos

/// Gives the page being rendered its request's access (pages hide what a
/// read-only viewer cannot use; see `app::access::current`) and the CSP
/// nonce (Leptos puts it on its inline scripts). Call from the Leptos
/// context closure; outside a request it does nothing.
pub fn provide_request_context() {
    let Some(parts) = leptos::prelude::use_context::<Parts>() else {
        return;
    };
    if let Some(access) = parts.extensions.get::<Access>() {
        provide_context(*access);
    }
    if let Some(CspNonce(nonce)) = parts.extensions.get::<CspNonce>() {
        provide_context(Nonce::from_value(Arc::clone(nonce)));
    }
}
