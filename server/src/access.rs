//! Who may use this server, and its defences against hostile pages.
//!
//! agentdeck runs commands as the user who started it, so anyone who can
//! reach it must hold its access token, unless it is a tokenless loopback
//! server. Every request passes, in this order: the Host allow-list (DNS
//! rebinding), authentication (bearer header, login cookie, or a `?token=`
//! link swapped for the cookie), the read-only rule, and the cross-site write
//! check (CSRF). Every answer carries a Content-Security-Policy whose script
//! nonce is fresh per request.

use crate::cli::AccessArgs;
use app::{
    access::Access,
    project::ListProjects,
    run::{LoadConversation, LoadSessionDetail, LoadTimeline},
    session::ProjectSessions,
};
use axum::{
    extract::{rejection::FormRejection, Query, Request, State},
    http::{
        header::{self, HeaderMap, HeaderValue},
        request::Parts,
        Method, StatusCode,
    },
    middleware::Next,
    response::{Html, IntoResponse, Response},
    routing::get,
    Form, Json, Router,
};
use leptos::{nonce::Nonce, prelude::provide_context, server_fn::ServerFn};
use serde::Deserialize;
use std::{
    fmt,
    fs::{DirBuilder, OpenOptions},
    io::{self, Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    ops::ControlFlow::{self, Break, Continue},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};
use subtle::ConstantTimeEq;

/// The login cookie's name.
const COOKIE: &str = "agentdeck_token";

/// Where the login form posts.
const LOGIN_PATH: &str = "/login";

/// What a read-only token is refused with.
const READ_ONLY_REFUSAL: &str = "read-only access: this token can view but not change anything";

/// Kept from before tokens existed: scripts and tests match on it.
const CROSS_SITE_REFUSAL: &str =
    "cross-origin request refused: agentdeck only accepts changes from its own pages";

/// Server functions that only read. They are POSTed like every server
/// function, yet a read-only viewer's live pages need them to reload their
/// snapshots. Any server function not listed here is a write: a new one is
/// refused to read-only tokens until it is added.
const READING_SERVER_FNS: [&str; 5] = [
    ListProjects::PATH,
    ProjectSessions::PATH,
    LoadConversation::PATH,
    LoadSessionDetail::PATH,
    LoadTimeline::PATH,
];

// ---------------------------------------------------------------------------
// Tokens

/// An access token: printed only where the user asked for it (the login URL
/// at start, `agentdeck token`), never by `Debug`, so it stays out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Shortest token accepted from the user: keeps out the guessable ones.
    const MIN_LEN: usize = 16;

    /// Checks a token given by the user. The reason never quotes the token.
    pub fn new(value: String) -> Result<Self, String> {
        if value.len() < Self::MIN_LEN {
            return Err(format!(
                "a token needs at least {} characters (`agentdeck token` makes a random one)",
                Self::MIN_LEN
            ));
        }
        // It travels in URLs and cookies unescaped.
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        {
            return Err("a token may hold only letters, digits and - . _ ~".into());
        }
        Ok(Self(value))
    }

    /// A new token: 256 bits from the OS random number generator, as hex.
    fn generate() -> Result<Self, AccessError> {
        random_hex::<32>().map(Self).map_err(AccessError::Random)
    }

    /// The token's text, for the places that must show or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time: how long a refusal takes says nothing
    /// about how much of a guess was right.
    fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `N` random bytes as lowercase hex.
fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why access could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot make a token: the OS random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("token file {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error(
        "token file {path} can be read by other users (mode {mode:03o}): run `chmod 600 {path}`, \
         or `agentdeck token --rotate` if it may have leaked",
        path = path.display()
    )]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error(
        "token file {} does not hold a usable token ({reason}): \
         replace it with `agentdeck token --rotate`",
        path.display()
    )]
    NotAToken { path: PathBuf, reason: String },
    #[error("the read-only token must differ from the full token")]
    SameTokens,
}

/// The token files in the data directory: `token` for full access,
/// `read-only-token` for viewing. Private to the user (0600), so a restart
/// keeps the token and other local users cannot read it.
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the token for `access` is kept.
    pub fn path(&self, access: Access) -> PathBuf {
        self.dir.join(match access {
            Access::Full => "token",
            Access::ReadOnly => "read-only-token",
        })
    }

    /// The stored token, if there is one.
    pub fn load(&self, access: Access) -> Result<Option<Secret>, AccessError> {
        let path = self.path(access);
        let file_error = |source| AccessError::File {
            path: path.clone(),
            source,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(file_error(err)),
        };
        if !meta.is_file() {
            return Err(AccessError::NotAToken {
                path,
                reason: "not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AccessError::NotPrivate { path, mode });
        }
        let mut text = String::new();
        std::fs::File::open(&path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .map_err(file_error)?;
        Secret::new(text.trim().to_owned())
            .map(Some)
            .map_err(|reason| AccessError::NotAToken { path, reason })
    }

    /// The stored token, made and stored first if there is none.
    pub fn load_or_create(&self, access: Access) -> Result<Secret, AccessError> {
        if let Some(token) = self.load(access)? {
            return Ok(token);
        }
        let token = Secret::generate()?;
        match self.write(&self.path(access), &token) {
            Ok(()) => Ok(token),
            // Another process made it in the meantime: use theirs.
            Err(AccessError::File { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                self.load(access)?.ok_or_else(|| AccessError::File {
                    path: self.path(access),
                    source,
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Replaces the stored token with a new one (atomically: a server
    /// starting meanwhile reads the old or the new, never half of one).
    pub fn rotate(&self, access: Access) -> Result<Secret, AccessError> {
        let path = self.path(access);
        let staged = path.with_extension("new");
        let token = Secret::generate()?;
        match std::fs::remove_file(&staged) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(AccessError::File {
                    path: staged,
                    source: err,
                })
            }
            _ => {}
        }
        self.write(&staged, &token)?;
        std::fs::rename(&staged, &path).map_err(|source| AccessError::File { path, source })?;
        Ok(token)
    }

    /// Writes a new file, readable by the user only from its first byte.
    fn write(&self, path: &Path, token: &Secret) -> Result<(), AccessError> {
        let file_error = |source| AccessError::File {
            path: path.to_owned(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| AccessError::File {
                path: self.dir.clone(),
                source,
            })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(file_error)?;
        writeln!(file, "{}", token.expose())
            .and_then(|()| file.sync_all())
            .map_err(file_error)
    }
}

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

/// The names a request's `Host` may carry. A hostile page that points its
/// own domain at this machine (DNS rebinding) still sends its domain, and is
/// refused.
struct AllowedHosts {
    names: Vec<String>,
    addrs: Vec<IpAddr>,
}

impl AllowedHosts {
    /// Loopback names always; the bound address (every interface's when
    /// bound to all of them, as found at start); and the extra names.
    fn new(extra: &[String], bound: IpAddr) -> Self {
        let mut hosts = Self {
            names: Vec::new(),
            addrs: Vec::new(),
        };
        if bound.is_unspecified() {
            hosts.addrs.extend(interface_addrs());
        } else {
            hosts.addrs.push(bound);
        }
        for name in extra {
            match Host::parse(name.trim()) {
                Host::Addr(addr) => hosts.addrs.push(addr),
                Host::Name(name) if !name.is_empty() => hosts.names.push(name),
                Host::Name(_) => {}
            }
        }
        hosts
    }

    fn allows(&self, host: &str) -> bool {
        match Host::parse(host) {
            Host::Addr(addr) => addr.is_loopback() || self.addrs.contains(&addr),
            Host::Name(name) => name == "localhost" || self.names.contains(&name),
        }
    }

    fn only_loopback(&self) -> bool {
        self.names.is_empty() && self.addrs.iter().all(IpAddr::is_loopback)
    }
}

/// The addresses of this machine's interfaces.
fn interface_addrs() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        tracing::warn!(
            "cannot list network interfaces: only loopback names and --allowed-host \
             are accepted as Host"
        );
        return Vec::new();
    };
    interfaces
        .filter_map(|interface| {
            let addr = interface.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// What a `Host` value (or an `--allowed-host`) names.
enum Host {
    Addr(IpAddr),
    /// Lowercased, without a trailing dot.
    Name(String),
}

impl Host {
    /// Reads `name`, `name:port`, `addr`, `addr:port`, `[v6]:port` or a bare
    /// IPv6 address (as given on the command line).
    fn parse(host: &str) -> Self {
        if let Ok(addr) = host.parse() {
            return Self::Addr(addr);
        }
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.split(':').next().unwrap_or(""),
        };
        match name.parse() {
            Ok(addr) => Self::Addr(addr),
            Err(_) => Self::Name(name.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

/// The host a request was addressed to: `Host`, or the authority of an
/// HTTP/2 request.
fn request_host(request: &Request) -> &str {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
}

// ---------------------------------------------------------------------------
// Middleware, outermost first

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

/// Refuses requests addressed to a name this server does not answer to.
pub async fn refuse_foreign_hosts(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request_host(&request);
    if guard.hosts.allows(host) {
        return next.run(request).await;
    }
    let error = if guard.hosts.only_loopback() {
        format!(
            "refused: this server answers to localhost only, not {host:?}; \
             to reach it by that name, start it with --allowed-host NAME"
        )
    } else {
        format!(
            "refused: this server does not answer to {host:?}; \
             to reach it by that name, start it with --allowed-host NAME"
        )
    };
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

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

// ---------------------------------------------------------------------------
// Login

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
fn signed_in(token: &str, target: &str) -> Response {
    // A valid token holds only URL-safe characters, so it is a valid cookie.
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = see_other(target).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The login page: the token field and nothing about what it protects.
fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
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

    fn secret(text: &str) -> Secret {
        Secret::new(text.to_owned()).unwrap()
    }

    #[test]
    fn generated_tokens_are_256_bit_hex_and_differ() {
        let (a, b) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(Secret::new(a.expose().to_owned()).is_ok());
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

    #[test]
    fn host_names_are_compared_without_port_case_or_brackets() {
        let hosts = AllowedHosts::new(
            &["Deck.Example".into(), "10.1.2.3".into(), "fd00::7".into()],
            "192.168.5.5".parse().unwrap(),
        );
        for allowed in [
            "localhost",
            "localhost:3000",
            "127.0.0.1:80",
            "[::1]:8080",
            "deck.example",
            "DECK.EXAMPLE.:3000",
            "10.1.2.3:3000",
            "192.168.5.5",
            "[fd00::7]:3000",
        ] {
            assert!(hosts.allows(allowed), "{allowed}");
        }
        for refused in [
            "",
            "evil.example",
            "deck.example.evil",
            "localhost.evil",
            "10.1.2.4",
            "[::2]",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
        assert!(!hosts.only_loopback());
        assert!(AllowedHosts::new(&[], "127.0.0.1".parse().unwrap()).only_loopback());
    }

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
