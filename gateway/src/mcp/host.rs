//! DNS-rebinding protection for `/mcp`: which `Host` and `Origin` headers are accepted.
//!
//! A DNS-rebinding attack makes a browser send requests to a server on the victim's machine or
//! network under the attacker's host name (`Host: evil.example`), which a server that only
//! checks "is this loopback" cannot tell apart. The MCP transport spec therefore asks servers to
//! validate `Host`/`Origin`. `/mcp` needs a tenant key anyway, which a rebinding page does not
//! have, so this is defence in depth; it must still not get in the way of in-cluster use, where
//! clients address the gateway by its Service name, a pod IP or an Ingress host name.
//!
//! Accepted without configuration: `localhost` (and `*.localhost`), IP literals (no DNS name, so
//! nothing to rebind), single-label names (`switchboard-gateway`, resolved through the client's
//! own search domains) and Kubernetes Service names (`*.svc`, `*.svc.cluster.local`). Anything
//! else, such as an Ingress host name, must be listed with `--mcp-allowed-hosts`
//! (comma-separated names; `*.example.com` matches subdomains; `*` accepts any host).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    any: bool,
    /// Exact names, lowercase.
    names: Vec<String>,
    /// `*.example.com` entries, kept as `.example.com`.
    suffixes: Vec<String>,
}

impl HostPolicy {
    /// The built-in rules plus a comma-separated list of names.
    pub fn with_extra(list: &str) -> HostPolicy {
        let mut policy = HostPolicy::default();
        for entry in list.split(',').map(normalize).filter(|e| !e.is_empty()) {
            if entry == "*" {
                policy.any = true;
            } else if let Some(suffix) = entry.strip_prefix('*') {
                policy.suffixes.push(suffix.to_owned());
            } else {
                policy.names.push(entry);
            }
        }
        policy
    }

    /// Whether requests addressed to `host` (a name or IP literal, without port) are accepted.
    pub fn allows(&self, host: &str) -> bool {
        let host = normalize(host);
        if self.any || host.parse::<IpAddr>().is_ok() {
            return true;
        }
        if host.is_empty() {
            return false;
        }
        host == "localhost"
            || !host.contains('.')
            || [".localhost", ".svc", ".svc.cluster.local"].iter().any(|s| host.ends_with(s))
            || self.names.contains(&host)
            || self.suffixes.iter().any(|s| host.ends_with(s.as_str()) && host.len() > s.len())
    }

    /// Checks the request's `Host` (or HTTP/2 `:authority`) and, when present, `Origin`.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), String> {
        let host = match headers.get(header::HOST) {
            Some(value) => value.to_str().ok().and_then(host_of_authority),
            None => uri.authority().map(|a| a.host().to_owned()),
        };
        match host {
            Some(host) if self.allows(&host) => {}
            Some(host) => {
                return Err(format!("Host `{host}` is not allowed for /mcp (see --mcp-allowed-hosts)"));
            }
            None => return Err("a valid Host header is required".into()),
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let host = origin.to_str().ok().and_then(|o| o.parse::<Uri>().ok()).and_then(|u| {
                u.scheme().is_some().then(|| u.authority().map(|a| a.host().to_owned())).flatten()
            });
            match host {
                Some(host) if self.allows(&host) => {}
                _ => {
                    let origin = String::from_utf8_lossy(origin.as_bytes());
                    return Err(format!(
                        "Origin `{origin}` is not allowed for /mcp (see --mcp-allowed-hosts)"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn host_of_authority(text: &str) -> Option<String> {
    text.parse::<http::uri::Authority>().ok().map(|a| a.host().to_owned())
}

fn normalize(host: &str) -> String {
    host.trim().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

/// Middleware: refuses requests whose `Host` or `Origin` the policy does not accept (403).
pub async fn check(State(policy): State<Arc<HostPolicy>>, request: Request, next: Next) -> Response {
    match policy.check(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(problem) => {
            tracing::warn!(%problem, "refused an MCP request (possible DNS rebinding)");
            ApiError::Forbidden(problem).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("")));
        if let Some(origin) = origin {
            headers.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("")),
            );
        }
        headers
    }

    #[test]
    fn loopback_ips_and_cluster_names_pass_without_configuration() {
        let policy = HostPolicy::with_extra("");
        for host in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "::1",
            "[::1]",
            "10.0.3.7",
            "app.localhost",
            "switchboard-gateway",
            "switchboard-gateway.switchboard.svc",
            "switchboard-gateway.switchboard.svc.cluster.local",
        ] {
            assert!(policy.allows(host), "{host}");
        }
        for host in ["evil.example.com", "localhost.evil.com", "svc.evil.com", ""] {
            assert!(!policy.allows(host), "{host}");
        }
    }

    #[test]
    fn extra_names_and_wildcards() {
        let policy = HostPolicy::with_extra(" llm.example.com , *.corp.example ");
        assert!(policy.allows("LLM.example.com"));
        assert!(policy.allows("mcp.corp.example"));
        assert!(!policy.allows("corp.example"));
        assert!(!policy.allows("evil.example.com"));
        assert!(HostPolicy::with_extra("*").allows("anything.example"));
    }

    #[test]
    fn host_and_origin_are_both_checked() {
        let policy = HostPolicy::with_extra("");
        let uri = Uri::from_static("/");
        assert!(policy.check(&uri, &headers("127.0.0.1:8080", Some("http://127.0.0.1:8080"))).is_ok());
        assert!(policy.check(&uri, &headers("localhost:8080", None)).is_ok());
        let rebinding = policy.check(&uri, &headers("evil.example.com", Some("http://evil.example.com")));
        assert!(rebinding.is_err_and(|e| e.contains("evil.example.com")));
        assert!(policy.check(&uri, &headers("127.0.0.1:8080", Some("http://evil.example.com"))).is_err());
        assert!(policy.check(&uri, &headers("127.0.0.1:8080", Some("null"))).is_err());
        // HTTP/2 requests carry the authority in the URI instead of a Host header.
        let h2 = Uri::from_static("http://[::1]:8080/mcp");
        assert!(policy.check(&h2, &HeaderMap::new()).is_ok());
        assert!(policy.check(&Uri::from_static("/"), &HeaderMap::new()).is_err());
    }
}
