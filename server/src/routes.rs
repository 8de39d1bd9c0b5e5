//! The HTTP surface: Leptos pages and server functions, static files, and
//! the layers every response goes through.

use app::{db::Db, shell, App};
use axum::Router;
use leptos::{config::LeptosOptions, prelude::provide_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::{compression::CompressionLayer, trace::TraceLayer};

/// Builds the application router around an open database.
pub fn router(db: Db, options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    let context = move || provide_context(db.clone());
    Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(
            context, shell,
        ))
        .with_state(options)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}
