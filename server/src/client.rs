//! Talking to a running agentdeck from the command line: where it is, the
//! token it wants, and one HTTP/1.1 request at a time. `agentdeck hook`
//! and the commands that drive the server (`send`, `approve`, ...) share it.

use crate::access::TokenStore;
use app::access::Access;
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::Path;

/// The file the server writes its URL to at start, in the data directory:
/// where commands find it by default.
pub const URL_FILE: &str = "server-url";

/// Where commands look when nothing says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3000";

/// A server to talk to: its base URL and the token to show it.
pub struct Target {
    pub base: String,
    pub token: Option<String>,
}

impl Target {
    /// `url` (from `--url` / `AGENTDECK_URL`) when given, else the URL the
    /// server running with this data directory wrote, else the default
    /// port; the token from `AGENTDECK_TOKEN` or the data directory.
    pub fn discover(url: Option<String>, data_dir: Option<&Path>) -> Self {
        let base = url
            .filter(|u| !u.trim().is_empty())
            .or_else(|| {
                let text = std::fs::read_to_string(data_dir?.join(URL_FILE)).ok()?;
                Some(text.trim().to_owned()).filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token(data_dir),
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nothing listens there (or it cannot be reached).
    #[error("agentdeck is not running at {base}: {reason}")]
    Unreachable { base: String, reason: String },
    /// The URL or the conversation went wrong.
    #[error("{0}")]
    Failed(String),
}

/// An answer: its status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Sends one request to `target` (`path` under its base URL) with the
/// token, the extra headers and the body (JSON), and reads the answer.
pub async fn request(
    target: &Target,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Result<Answer, RequestError> {
    let base = &target.base;
    let (authority, prefix) = http_target(base).map_err(RequestError::Failed)?;
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{prefix}{path}"))
        .header(hyper::header::HOST, &authority);
    if body.is_some() {
        request = request.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(token) = &target.token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|err| RequestError::Failed(format!("cannot build the request: {err}")))?;

    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|err| RequestError::Unreachable {
            base: base.clone(),
            reason: match err.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                _ => err.to_string(),
            },
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| RequestError::Failed(format!("cannot talk to {base}: {err}")))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| RequestError::Failed(format!("no answer from {base}: {err}")))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|err| RequestError::Failed(format!("the answer from {base} broke off: {err}")))?;
    Ok(Answer { status, body })
}

/// `host:port` and path prefix of an `http://` URL.
pub fn http_target(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!(
            "{url}: only http:// URLs are supported (reach a remote server through an ssh tunnel)"
        )
    })?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(format!("{url} has no host"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let prefix = path.trim_end_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("/{prefix}")
    };
    Ok((authority, prefix))
}

/// `AGENTDECK_TOKEN`, else the full-access token stored in the data directory.
fn token(data_dir: Option<&Path>) -> Option<String> {
    if let Some(token) = std::env::var("AGENTDECK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Some(token);
    }
    let store = TokenStore::new(data_dir?.to_owned());
    Some(store.load(Access::Full).ok()??.expose().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        assert_eq!(
            http_target("http://127.0.0.1:4000").unwrap(),
            ("127.0.0.1:4000".into(), String::new())
        );
        assert_eq!(
            http_target("http://box/deck/").unwrap(),
            ("box:80".into(), "/deck".into())
        );
        assert!(http_target("https://box")
            .unwrap_err()
            .contains("only http://"));
        assert!(http_target("http:///x").is_err());
    }

    #[test]
    fn the_url_flag_wins_then_the_recorded_url_then_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let found =
            |url: Option<&str>| Target::discover(url.map(str::to_owned), Some(dir.path())).base;
        assert_eq!(found(None), DEFAULT_URL);
        std::fs::write(dir.path().join(URL_FILE), "http://127.0.0.1:4567/\n").unwrap();
        assert_eq!(found(None), "http://127.0.0.1:4567");
        assert_eq!(found(Some("  ")), "http://127.0.0.1:4567");
        assert_eq!(found(Some("http://box:1")), "http://box:1");
    }
}
