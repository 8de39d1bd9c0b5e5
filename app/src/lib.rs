//! agentdeck's shared crate: the session state model, its badge, the pages
//! and the server functions. Compiled with `ssr` for the server and with
//! `hydrate` for the browser; server-only code sits behind `ssr`.

pub mod access;
pub mod agent;
pub mod approval;
pub mod components;
#[cfg(feature = "ssr")]
pub mod db;
pub mod error;
pub mod hook;
#[cfg(feature = "ssr")]
pub mod instance;
pub mod live;
pub mod notify;
#[cfg(feature = "hydrate")]
mod object_decoder;
pub mod pages;
pub mod permission;
pub mod project;
pub mod run;
pub mod session;
pub mod session_state;
pub mod sync;
mod text_enum;
pub mod transition;

pub use components::SessionStateBadge;
pub use session_state::SessionState;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};
use pages::{NotFound, NotificationsPage, ProjectsPage, SessionPage, SessionsPage};

/// Runs before the module scripts (they are deferred); see [`shell`].
const IDLE_CALLBACK_BACKSTOP: &str = "(() => { const idle = window.requestIdleCallback; \
if (idle) window.requestIdleCallback = (callback, options) => \
idle.call(window, callback, Object.assign({ timeout: 2000 }, options)); })();";

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                // The server sends `Referrer-Policy: no-referrer`; pages
                // relax it to their own origin only, so a form posted
                // without JavaScript can be redirected back to its page.
                <meta name="referrer" content="same-origin" />
                <link rel="icon" href="data:," />
                <link rel="stylesheet" href="/pkg/agentdeck.css" />
                // Leptos' islands loader waits for `requestIdleCallback` with
                // no timeout, so a busy page (a slow machine, a tab loading in
                // the background) could stay unhydrated for good. Give every
                // idle callback the 2 s backstop Leptos' full-hydration loader uses.
                // The nonce lets it past the Content-Security-Policy.
                <script nonce=leptos::nonce::use_nonce() inner_html=IDLE_CALLBACK_BACKSTOP></script>
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The routes. Pages wait for their data before the response starts
/// (`SsrMode::Async`), so a missing project is a real HTTP 404.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="agentdeck" />
        <Router>
            <header class="topbar">
                <a class="brand" href="/">
                    "agentdeck"
                </a>
                <nav class="topnav" aria-label="Main">
                    <a href="/notifications">"Notifications"</a>
                </nav>
            </header>
            <main class="container">
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=ProjectsPage ssr=SsrMode::Async />
                    <Route
                        path=path!("/notifications")
                        view=NotificationsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/projects/:project_id/sessions")
                        view=SessionsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/projects/:project_id/sessions/:session_id")
                        view=SessionPage
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
}
