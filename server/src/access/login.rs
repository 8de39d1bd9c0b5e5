//! The login form: where a person without a login link pastes the token,
//! and the cookie that signs them in.

use super::Guard;
use axum::{
    extract::{rejection::FormRejection, Query, State},
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    response::{Html, IntoResponse, Response},
    routing::get,
    Form, Router,
};
use serde::Deserialize;
use std::sync::Arc;

/// The login cookie's name.
pub(super) const COOKIE: &str = "agentdeck_token";

/// Where the login form posts.
pub(super) const LOGIN_PATH: &str = "/login";

/// `GET /login` shows the form, `POST /login` checks it.
pub fn login_routes(guard: Arc<Guard>) -> Router {
    Router::new()
        .route(LOGIN_PATH, get(login_form).post(log_in))
        .with_state(guard)
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    let next = same_site_path(query.next.as_deref().unwrap_or("/"));
    login_page(next, None, StatusCode::OK)
}

async fn log_in(
    State(guard): State<Arc<Guard>>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_page(
            "/",
            Some("Paste the access token."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let next = same_site_path(&form.next);
    let Some(tokens) = &guard.tokens else {
        return see_other(next).into_response();
    };
    let token = form.token.trim();
    match tokens.access_for(token) {
        Some(_) => signed_in(token, next),
        None => login_page(
            next,
            Some("That token is not valid."),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// `next` if it is a path on this server, else `/`: the login form must
/// not become a redirector to other sites.
fn same_site_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control);
    if local {
        next
    } else {
        "/"
    }
}

fn see_other(target: &str) -> impl IntoResponse {
    let location = HeaderValue::from_str(target).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)])
}

/// Sets the login cookie (out of reach of scripts, never sent along by
/// another site's requests) and goes on to `target`.
pub(super) fn signed_in(token: &str, target: &str) -> Response {
    // A valid token holds only URL-safe characters, so it is a valid cookie.
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = see_other(target).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The login page: the token field and nothing about what it protects.
pub(super) fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"form-error\" role=\"alert\">{}</p>",
                html_escape::encode_text(e)
            )
        })
        .unwrap_or_default();
    // Same-origin referrers (the header says no-referrer): under
    // no-referrer Chromium posts the form with `Origin: null`, which the
    // CSRF check rightly refuses.
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta name=\"referrer\" content=\"same-origin\">\
         <title>Log in · agentdeck</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/pkg/agentdeck.css\"></head>\
         <body><header class=\"topbar\"><span class=\"brand\">agentdeck</span></header>\
         <main class=\"container\"><h1>Log in</h1>\
         <p>This dashboard needs its access token. It was printed when the server started; \
         <code>agentdeck token</code> prints it again.</p>\
         <form class=\"card\" method=\"post\" action=\"{LOGIN_PATH}\"><div class=\"fields\">\
         <label class=\"field grow\"><span>Access token</span>\
         <input name=\"token\" type=\"password\" required autofocus \
         autocomplete=\"current-password\" spellcheck=\"false\"></label>\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <button class=\"primary\" type=\"submit\">Log in</button></div>{error}</form>\
         </main></body></html>",
        html_escape::encode_double_quoted_attribute(next)
    );
    (status, Html(page)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_redirects_stay_on_this_server() {
        for (next, expected) in [
            (
                "/projects/1/sessions?state=idle",
                "/projects/1/sessions?state=idle",
            ),
            ("//evil.example/", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("", "/"),
            ("/a\r\nSet-Cookie: x=y", "/"),
        ] {
            assert_eq!(same_site_path(next), expected, "{next}");
        }
    }
}
