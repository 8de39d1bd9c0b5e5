//! Who may use this server, and its defences against hostile pages.
//!
//! agentdeck runs commands as the user who started it, so anyone who can
//! reach it must hold its access token, unless it is a tokenless loopback
//! server. Every request passes, in this order: the Host allow-list (DNS
//! rebinding), authentication (bearer header, login cookie, or a `?token=`
//! link swapped for the cookie), the read-only rule, and the cross-site write
//! check (CSRF). Every answer carries a Content-Security-Policy whose script
//! nonce is fresh per request.

mod browser;
mod hosts;
mod login;
mod token;

pub use browser::{
    content_security_policy, no_store_for_data, provide_request_context, refuse_cross_site_writes,
};
pub use hosts::refuse_foreign_hosts;
pub use login::login_routes;
pub(crate) use token::random_hex;
pub use token::{AccessError, Secret, TokenStore};

use self::{
    hosts::AllowedHosts,
    login::{login_page, signed_in, COOKIE, LOGIN_PATH},
};
use crate::cli::AccessArgs;
use app::{
    access::Access,
    agent::AgentChoices,
    hook::LoadHookStatus,
    notify::ListNotifyTargets,
    project::ListProjects,
    run::{LoadConversation, LoadSessionDetail, LoadTimeline},
    session::{LoadOverview, ProjectSessions},
};
use axum::{
    extract::{Request, State},
    http::{
        header::{self, HeaderMap, HeaderValue},
        Method, StatusCode,
    },
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use leptos::server_fn::ServerFn;
use std::{
    io::{self, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    ops::ControlFlow::{self, Break, Continue},
    sync::Arc,
};

/// What a read-only token is refused with.
const READ_ONLY_REFUSAL: &str = "read-only access: this token can view but not change anything";

/// Server functions that only read. They are POSTed like every server
/// function, yet a read-only viewer's live pages need them to reload their
/// snapshots. Any server function not listed here is a write: a new one is
/// refused to read-only tokens until it is added.
const READING_SERVER_FNS: [&str; 9] = [
    AgentChoices::PATH,
    ListProjects::PATH,
    LoadHookStatus::PATH,
    LoadOverview::PATH,
    ProjectSessions::PATH,
    LoadConversation::PATH,
    LoadSessionDetail::PATH,
    LoadTimeline::PATH,
    ListNotifyTargets::PATH,
];

// ---------------------------------------------------------------------------
// The rules, decided once at start

/// What the middleware enforces: the tokens (none on a tokenless loopback
/// server) and the host names this server answers to.
pub struct Guard {
    tokens: Option<Tokens>,
    hosts: AllowedHosts,
}

struct Tokens {
    full: Secret,
    read_only: Option<Secret>,
}

impl Tokens {
    /// The access `candidate` grants, if it is one of the tokens.
    fn access_for(&self, candidate: &str) -> Option<Access> {
        // Both are compared, so timing does not tell which one nearly matched.
        let full = self.full.matches(candidate);
        let read_only = self
            .read_only
            .as_ref()
            .is_some_and(|t| t.matches(candidate));
        match (full, read_only) {
            (true, _) => Some(Access::Full),
            (false, true) => Some(Access::ReadOnly),
            (false, false) => None,
        }
    }
}

/// The access rules, and the login links to print for tokens the user did
/// not give (generated, or read from the token files).
pub struct Configured {
    pub guard: Arc<Guard>,
    stored: Vec<(Access, Secret)>,
}

/// Decides the rules for a server listening on `local`. A token is in force
/// on any non-loopback address, with `--require-token`, or when one is given;
/// without `--token` it is read from (or made in) the token file.
pub fn configure(
    args: &AccessArgs,
    store: &TokenStore,
    local: SocketAddr,
) -> Result<Configured, AccessError> {
    let wanted = !local.ip().is_loopback()
        || args.require_token
        || args.token.is_some()
        || args.read_only_token.is_some();
    let mut stored = Vec::new();
    let tokens = if wanted {
        let full = match &args.token {
            Some(token) => token.clone(),
            None => {
                let token = store.load_or_create(Access::Full)?;
                stored.push((Access::Full, token.clone()));
                token
            }
        };
        let read_only = match &args.read_only_token {
            Some(token) => Some(token.clone()),
            None => {
                let token = store.load(Access::ReadOnly)?;
                if let Some(token) = &token {
                    stored.push((Access::ReadOnly, token.clone()));
                }
                token
            }
        };
        if read_only.as_ref() == Some(&full) {
            return Err(AccessError::SameTokens);
        }
        Some(Tokens { full, read_only })
    } else {
        None
    };
    let guard = Guard {
        tokens,
        hosts: AllowedHosts::new(&args.allowed_hosts, local.ip()),
    };
    Ok(Configured {
        guard: Arc::new(guard),
        stored,
    })
}

impl Configured {
    /// Prints the login links of stored tokens (after the "listening" line,
    /// which scripts read first) and warns, loudly, what holding them means.
    pub fn announce(&self, local: SocketAddr) {
        if self.stored.is_empty() {
            return;
        }
        let everywhere = local.ip().is_unspecified();
        let shown = if everywhere {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port())
        } else {
            local
        };
        // Warnings first: a script reading the links has them by then.
        for (access, _) in &self.stored {
            match access {
                Access::Full => eprintln!(
                    "agentdeck: WARNING: anyone holding the login link or token below can run \
                     commands on this machine as this user. Keep it secret; \
                     `agentdeck token --rotate` replaces it (then restart)."
                ),
                Access::ReadOnly => eprintln!(
                    "agentdeck: the read-only link below shows every session and its output; \
                     keep it as secret as what your agents print."
                ),
            }
        }
        if everywhere {
            eprintln!(
                "agentdeck: listening on every interface: from another machine use this machine's \
                 address instead of 127.0.0.1; to use a host name, start with --allowed-host NAME."
            );
        }
        let mut out = io::stdout().lock();
        for (access, token) in &self.stored {
            let label = match access {
                Access::Full => "login",
                Access::ReadOnly => "read-only login",
            };
            // Ignored: whoever started us may have stopped reading stdout.
            let _ = writeln!(
                out,
                "agentdeck {label}: http://{shown}/?token={}",
                token.expose()
            );
        }
        let _ = out.flush();
    }
}

// ---------------------------------------------------------------------------
// Authentication and the read-only rule

/// Lets through only requests that carry a token (when one is in force),
/// and marks each with the [`Access`] it was granted. Static `/pkg/` files
/// and the login form need none.
pub async fn authenticate(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(tokens) = &guard.tokens else {
        request.extensions_mut().insert(Access::Full);
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path.starts_with("/pkg/") || path == LOGIN_PATH {
        return next.run(request).await;
    }
    let access = match grant(tokens, &request) {
        Continue(access) => access,
        Break(answer) => return answer,
    };
    if !access.can_write() && !reads_only(request.method(), path) {
        let body = Json(serde_json::json!({ "error": READ_ONLY_REFUSAL }));
        return (StatusCode::FORBIDDEN, body).into_response();
    }
    request.extensions_mut().insert(access);
    next.run(request).await
}

/// The access the request's credential grants (bearer header, else a
/// login link on a page, else the login cookie), or the answer to send
/// instead: a refusal, or for a valid login link the cookie and a redirect.
fn grant(tokens: &Tokens, request: &Request) -> ControlFlow<Response, Access> {
    let path = request.uri().path();
    let for_scripts = is_data_path(path);
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let access = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| tokens.access_for(token.trim()));
        match access {
            Some(access) => Continue(access),
            None => Break(unauthorized(
                for_scripts,
                request,
                "the bearer token is not valid",
            )),
        }
    } else if let (false, &Method::GET, Some((token, rest))) =
        (for_scripts, request.method(), token_in_query(request))
    {
        // A login link: swap the token for a cookie and drop it from the
        // URL, so it stays out of history and Referer.
        let target = if rest.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{rest}")
        };
        Break(match tokens.access_for(token) {
            Some(_) => signed_in(token, &target),
            None => login_page(
                &target,
                Some("That token is not valid."),
                StatusCode::UNAUTHORIZED,
            ),
        })
    } else {
        let mut cookies = login_cookies(request.headers()).peekable();
        let had_cookie = cookies.peek().is_some();
        match cookies.find_map(|token| tokens.access_for(token)) {
            Some(access) => Continue(access),
            None if had_cookie => Break(unauthorized(
                for_scripts,
                request,
                "the saved token is no longer valid (it was replaced); sign in again",
            )),
            None => Break(unauthorized(for_scripts, request, "")),
        }
    }
}

/// Whether scripts rather than people ask for this path (JSON errors, no login page).
fn is_data_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path.starts_with("/rpc/")
}

/// Whether a read-only viewer may make this request.
fn reads_only(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
        || (*method == Method::POST && READING_SERVER_FNS.contains(&path))
}

/// A `token=` query parameter, and the query without it.
fn token_in_query(request: &Request) -> Option<(&str, String)> {
    let query = request.uri().query()?;
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("token", value)) => token = Some(value),
            _ if pair == "token" => token = Some(""),
            _ => rest.push(pair),
        }
    }
    Some((token?, rest.join("&")))
}

/// The values of every `agentdeck_token` cookie.
fn login_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.trim_matches('"'))
        })
}

/// No valid credential: 401, as JSON for scripts, as the login page for people.
fn unauthorized(for_scripts: bool, request: &Request, reason: &str) -> Response {
    if for_scripts {
        let error = match reason {
            "" => "authentication required: send the access token as \
                   `Authorization: Bearer TOKEN` (`agentdeck token` prints it)"
                .to_owned(),
            reason => format!("authentication required: {reason}"),
        };
        let mut response = (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"agentdeck\""),
        );
        return response;
    }
    let next = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let message = (!reason.is_empty()).then(|| capitalized(reason));
    login_page(next, message.as_deref(), StatusCode::UNAUTHORIZED)
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect::<String>() + ".")
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::new(text.to_owned()).unwrap()
    }

    #[test]
    fn tokens_grant_their_access_and_nothing_else() {
        let tokens = Tokens {
            full: secret("full-token-0123456789"),
            read_only: Some(secret("view-token-0123456789")),
        };
        assert_eq!(
            tokens.access_for("full-token-0123456789"),
            Some(Access::Full)
        );
        assert_eq!(
            tokens.access_for("view-token-0123456789"),
            Some(Access::ReadOnly)
        );
        for wrong in [
            "",
            "full-token-012345678",
            "full-token-01234567890",
            "FULL-TOKEN-0123456789",
        ] {
            assert_eq!(tokens.access_for(wrong), None, "{wrong}");
        }
    }
}
