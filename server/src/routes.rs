//! The HTTP surface: Leptos pages and server functions, the JSON API,
//! static files, and the layers every request goes through.

use crate::{
    access::{self, Guard},
    api::{self, ApiState},
    events,
    site::{self, Site},
};
use app::{
    db::Db, error::AppError, notify::outbox::Outbox, run::runner::Runner, shell,
    sync::scan::Syncer, App,
};
use axum::{
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use leptos::{
    config::LeptosOptions, prelude::provide_context, server_fn::error::SERVER_FN_ERROR_HEADER,
};
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::sync::Arc;
use tower_http::{
    compression::CompressionLayer, set_header::SetResponseHeaderLayer, trace::TraceLayer,
};

/// Largest request body accepted (a message is at most 100 kB; the rest is headroom
/// so an oversized message gets a clear 413 from the domain check).
const MAX_BODY_BYTES: usize = 1 << 20;

// A hook body the agent may send must get past the body limit.
const _: () = assert!(app::hook::MAX_HOOK_BYTES <= MAX_BODY_BYTES);

/// Builds the application router around an open database and the runner.
pub fn router(
    db: Db,
    runner: Arc<Runner>,
    outbox: Outbox,
    syncer: Arc<Syncer>,
    options: LeptosOptions,
    guard: Arc<Guard>,
) -> Router {
    let routes = generate_route_list(App);
    let embedded_site = Site::of(&options.site_root) == Site::Embedded;
    let api_state = ApiState {
        db: db.clone(),
        runner: Arc::clone(&runner),
        syncer: Arc::clone(&syncer),
        outbox: outbox.clone(),
    };
    let context = {
        let (db, runner, outbox) = (db.clone(), Arc::clone(&runner), outbox.clone());
        move || {
            provide_context(db.clone());
            provide_context(Arc::clone(&runner));
            provide_context(Arc::clone(runner.broker()));
            provide_context(outbox.clone());
            provide_context(Arc::clone(&syncer));
            provide_context(crate::hooks::installation_probe());
            access::provide_request_context();
        }
    };
    let pages = Router::new()
        .nest("/api", api::router(api_state.clone()))
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(
            context, shell,
        ))
        .with_state(options)
        .layer(middleware::from_fn(explain_failed_form_posts))
        .layer(CompressionLayer::new());
    // Files of a site embedded in the binary are answered before any route,
    // already compressed; the rest of the site root (none) gets the 404 page.
    let pages = if embedded_site {
        pages.layer(middleware::from_fn(site::serve_embedded))
    } else {
        pages
    };
    // The event stream is left out of compression: it is never compressed,
    // yet the layer's body would still cost memory for every open page.
    // Layers run outermost (last) first: headers every answer gets, then
    // Host allow-list → authentication → cross-site check → handlers.
    Router::new()
        .route("/api/events", get(events::events))
        .with_state(api_state)
        .merge(pages)
        .merge(access::login_routes(Arc::clone(&guard)))
        .layer(middleware::from_fn(refuse_oversized_bodies))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&guard),
            access::refuse_cross_site_writes,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&guard),
            access::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            guard,
            access::refuse_foreign_hosts,
        ))
        .layer(middleware::from_fn(access::content_security_policy))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            access::no_store_for_data,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Spans name the path only: a query may carry a login token.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
}

/// A body declared larger than [`MAX_BODY_BYTES`] is refused with 413 before
/// any handler reads it, with the same JSON error on every route: a server
/// function would otherwise fail while reading it and answer 500.
async fn refuse_oversized_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > MAX_BODY_BYTES as u64) {
        let body = axum::Json(serde_json::json!({
            "error": format!("request body too large: {length} bytes, the limit is {MAX_BODY_BYTES} bytes")
        }));
        return (StatusCode::PAYLOAD_TOO_LARGE, body).into_response();
    }
    next.run(request).await
}

/// A form posted without JavaScript that a server function refused would
/// otherwise show the browser the error's JSON. Such a post asks for HTML,
/// so it gets a page that says what went wrong and how to go back; the
/// status stays the error's (422, 409, ...).
async fn explain_failed_form_posts(request: Request, next: Next) -> Response {
    let wants_html = request.method() == Method::POST
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    let response = next.run(request).await;
    if !wants_html || !response.headers().contains_key(SERVER_FN_ERROR_HEADER) {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<AppError>(&body)
        .map(|err| err.to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Not saved · agentdeck</title>\
         <link rel=\"stylesheet\" href=\"/pkg/agentdeck.css\"></head>\
         <body><main class=\"container\"><h1>Not saved</h1>\
         <p class=\"form-error\" role=\"alert\">{}</p>\
         <p>Go back with your browser's Back button: what you typed is still in the form.</p>\
         <p><a href=\"/\">Projects</a></p></main></body></html>",
        html_escape::encode_text(&message)
    );
    (status, axum::response::Html(page)).into_response()
}
