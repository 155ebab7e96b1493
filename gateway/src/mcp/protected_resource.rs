//! `/mcp` as an OAuth 2.1 protected resource, as the MCP authorization spec asks: its metadata
//! (RFC 9728) names the identity providers the tenants trust; a token is accepted only if it was
//! issued for this server (its URL in `aud`, RFC 8707), so that a token a client holds for another
//! MCP server or API is worthless here; and every 401 points to the metadata
//! (`WWW-Authenticate: Bearer resource_metadata="..."`) and says in its body, a JSON-RPC error
//! that MCP clients show, why it was refused.
//! Tenant API keys keep working as on every other route.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::PATH;
use super::errors::refused;
use crate::auth::{audit_refusal, authenticate};
use crate::error::ApiError;
use crate::identity::Audience;
use crate::state::AppState;

/// Where the metadata is: this path, and this path followed by the resource's path (`/mcp`).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// The most identity providers the metadata lists.
const MAX_AUTHORIZATION_SERVERS: usize = 32;

/// Middleware for `/mcp`: the caller, by API key or by a token for this resource.
pub async fn require_caller(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let resource = resource_uri(&state, request.headers());
    match authenticate(&state, request.headers(), Audience::Resource(&resource)).await {
        Ok(authenticated) => {
            request.extensions_mut().insert(authenticated);
            next.run(request).await
        }
        Err(error) => {
            audit_refusal(&state, &request, &error);
            challenge(error, &resource)
        }
    }
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let runtime = state.runtime.load();
    let servers: Vec<&str> = runtime.identities.issuers().take(MAX_AUTHORIZATION_SERVERS).collect();
    Json(json!({
        "resource": resource_uri(&state, &headers),
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard MCP server",
    }))
    .into_response()
}

/// The URL MCP clients reach this server at: `--mcp-resource`, else the request's own (its
/// `Host`, already checked against DNS rebinding, and `X-Forwarded-Proto` behind a TLS proxy).
fn resource_uri(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(configured) = &state.mcp_resource {
        return configured.clone();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let https = headers.get("x-forwarded-proto").and_then(|p| p.to_str().ok()) == Some("https");
    format!("{}://{host}{PATH}", if https { "https" } else { "http" })
}

/// The metadata's URL for `resource` (RFC 9728 section 3.1: the well-known path goes between the
/// host and the resource's path).
fn metadata_url(resource: &str) -> String {
    let (origin, path) = match resource.find("://").map(|i| i + 3) {
        Some(start) => match resource[start..].find('/') {
            Some(slash) => resource.split_at(start + slash),
            None => (resource, ""),
        },
        None => (resource, ""),
    };
    format!("{origin}{METADATA_PATH}{path}")
}

/// The refusal as a JSON-RPC error naming its reason; a 401 also names the metadata and, for a
/// refused token, the reason in `WWW-Authenticate`.
fn challenge(error: ApiError, resource: &str) -> Response {
    let mut value = format!("Bearer resource_metadata=\"{}\"", quoted(&metadata_url(resource)));
    if let ApiError::InvalidToken(reason) = &error {
        value.push_str(&format!(", error=\"invalid_token\", error_description=\"{}\"", quoted(reason)));
    }
    let unauthorized = error.status() == axum::http::StatusCode::UNAUTHORIZED;
    let body = refused(&error.to_string());
    let (mut parts, _) = error.into_response().into_parts();
    if unauthorized && let Ok(value) = HeaderValue::from_str(&value) {
        parts.headers.insert(header::WWW_AUTHENTICATE, value);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Text safe inside an RFC 9110 quoted-string: printable ASCII, no quote or backslash.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '\'' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_puts_the_well_known_path_before_the_resource_path() {
        assert_eq!(
            metadata_url("https://llm.example.com/mcp"),
            "https://llm.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn reasons_are_quoted_safely() {
        assert_eq!(quoted("namespace \"a\" is\\ not\n"), "namespace 'a' is' not'");
    }
}
