//! The MCP server at `/mcp`: the personas, their memory and their relationships as MCP tools and
//! resources, over Streamable HTTP (protocol revisions 2025-11-25 and 2026-07-28).
//!
//! The protocol is the `rmcp` crate's (the official Rust SDK): JSON-RPC, version negotiation
//! (`initialize` and `server/discover`), per-request `_meta` validation, `Mcp-*` header checks and
//! the transport. This module supplies the handler ([`server`]) and the policy around it:
//!
//! - stateless: no MCP sessions (rmcp's legacy session mode is off), plain JSON responses; all
//!   state a tool touches is in the ledger's database, so replicas are interchangeable;
//! - behind authentication, so a tool call knows its caller: tenant API keys as on every tenant
//!   route, or tokens issued for this server ([`protected_resource`], OAuth 2.1 as the MCP
//!   authorization spec describes);
//! - behind a `Host`/`Origin` check against DNS rebinding ([`host`]), which replaces rmcp's
//!   loopback-only default so that in-cluster names work.
//!
//! Layer order for `/mcp`, outermost first: body size limit (rmcp's, the gateway's
//! `--max-request-bytes`) -> Host/Origin check -> authentication -> JSON-RPC-shaped errors
//! ([`errors`]) -> rmcp -> [`server::McpServer`].

mod calls;
mod chat;
mod errors;
pub mod host;
mod outcome;
mod prompts;
pub mod protected_resource;
mod resources;
pub mod server;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use self::server::McpServer;
use crate::state::AppState;

pub const PATH: &str = "/mcp";

/// `/mcp`, to merge into the gateway's router.
pub fn router(state: AppState) -> Router<AppState> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(state.limits.max_request_bytes)
        // Host and Origin are checked by `host::check`, in front of authentication.
        .disable_allowed_hosts();
    let server = McpServer::new(state.clone());
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let policy = Arc::new(state.mcp_hosts.clone());
    let metadata = get(protected_resource::metadata);
    let well_known = Router::new()
        .route(protected_resource::METADATA_PATH, metadata.clone())
        .route(&format!("{}{PATH}", protected_resource::METADATA_PATH), metadata)
        .route_layer(from_fn_with_state(policy.clone(), host::check));
    Router::new()
        .nest_service(PATH, service)
        .route_layer(axum::middleware::from_fn(errors::json_rpc_errors))
        .route_layer(from_fn_with_state(state, protected_resource::require_caller))
        .route_layer(from_fn_with_state(policy, host::check))
        .merge(well_known)
}
