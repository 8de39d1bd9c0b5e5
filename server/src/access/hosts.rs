//! The Host allow-list: the names this server answers to, so a hostile
//! page that points its own domain at this machine (DNS rebinding) is refused.

use super::Guard;
use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use std::{net::IpAddr, sync::Arc};

/// The names a request's `Host` may carry. A hostile page that points its
/// own domain at this machine (DNS rebinding) still sends its domain, and is
/// refused.
pub(super) struct AllowedHosts {
    names: Vec<String>,
    addrs: Vec<IpAddr>,
}

impl AllowedHosts {
    /// Loopback names always; the bound address (every interface's when
    /// bound to all of them, as found at start); and the extra names.
    pub(super) fn new(extra: &[String], bound: IpAddr) -> Self {
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
pub(super) fn request_host(request: &Request) -> &str {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
