//! The routers, built in one place: the tenant-facing one (the client APIs, `/mcp`) and the
//! admin one (`/admin/v1/*`), served on separate listeners (`--listen`, `--admin-listen`) so that
//! the admin API is never reachable where tenants are; both serve the probes and `/metrics`.
//!
//! Layer order, outermost first: body read within its deadline and size limit -> route -> auth middleware (tenant or admin)
//! -> handler. Every route needs a tenant key except the explicit allowlist of probes and
//! metrics, and the admin routes, which need the admin token. `/mcp` (the MCP server, see
//! [`crate::mcp`]) needs a tenant key too, after a Host/Origin check.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{delete, get, post, put};

use crate::api::{
    admin, audit, budget_changes, budgets, chat, count_tokens, direct, health, members, messages, models,
    personas, requests, responses, routes, stats, subjects, tenant_changes, tenant_limits, tenants,
};
use crate::auth::{require_admin, require_tenant};
use crate::error::{ApiError, Dialect};
use crate::listener::read_body_within;
use crate::signin;
use crate::state::AppState;

/// The tenant-facing router.
pub fn router(state: AppState) -> Router {
    let tenant_api = tenant_api(&state).merge(crate::mcp::router(state.clone()));
    finish(tenant_api, state)
}

/// The admin router, with the console's files.
pub fn admin_router(state: AppState) -> Router {
    finish(admin_api(&state).merge(crate::console::router()), state)
}

fn tenant_api(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(count_tokens::count_tokens))
        .route("/v1/embeddings", post(direct::embeddings))
        .route("/v1/completions", post(direct::completions))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::get).delete(responses::delete))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::get))
        .route("/v1/subjects/{subject}/memories", get(subjects::export).delete(subjects::forget))
        .route("/v1/usage/requests", get(requests::tenant_list))
        .route("/v1/usage/requests/{id}", get(requests::tenant_get))
        .route("/v1/usage/stats", get(stats::tenant_stats))
        .route("/v1/usage/costs", get(stats::tenant_costs))
        .route("/v1/usage/tenant", get(tenants::tenant_get))
        .route_layer(from_fn_with_state(state.clone(), require_tenant))
}

fn admin_api(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/v1/usage", get(admin::usage))
        .route("/admin/v1/audit", get(audit::list))
        .route("/admin/v1/config", get(admin::config))
        .route("/admin/v1/requests", get(requests::admin_list))
        .route("/admin/v1/requests/{id}", get(requests::admin_get))
        .route("/admin/v1/stats", get(stats::admin_stats))
        .route("/admin/v1/costs", get(stats::admin_costs))
        .route("/admin/v1/routes", get(routes::list))
        .route("/admin/v1/budgets", get(budgets::list))
        .route("/admin/v1/budgets/{name}", put(budget_changes::put).delete(budget_changes::delete))
        .route("/admin/v1/personas", get(personas::list))
        .route("/admin/v1/tenants", get(tenants::list).post(tenant_changes::create_tenant))
        .route("/admin/v1/tenants/{name}", get(tenants::admin_get))
        .route("/admin/v1/tenants/{name}/members", get(members::list))
        .route("/admin/v1/tenants/{name}/keys", post(tenant_changes::create_key))
        .route("/admin/v1/tenants/{name}/keys/{key}", delete(tenant_changes::revoke_key))
        .route("/admin/v1/tenants/{name}/rate_limits", put(tenant_limits::put_rate_limits))
        .route(
            "/admin/v1/tenants/{name}/default_budget",
            put(tenant_limits::put_default_budget).delete(tenant_limits::delete_default_budget),
        )
        .route_layer(from_fn_with_state(state.clone(), require_admin))
        // Signing in needs no credential yet.
        .route("/auth/login", get(signin::login))
        .route("/auth/callback", get(signin::callback))
        .route("/auth/me", get(signin::me))
        .route("/auth/access", get(signin::access))
        .route("/auth/logout", post(signin::logout))
}

/// The probes and metrics, the fallbacks for unknown paths and methods, and the body limits.
fn finish(api: Router<AppState>, state: AppState) -> Router {
    api.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.max_request_bytes))
        .layer(from_fn_with_state(
            (state.limits.body_timeout, state.limits.max_request_bytes),
            read_body_within,
        ))
        .with_state(state)
}

/// Unknown paths: 404 in the shape of the API the path belongs to.
async fn not_found(uri: axum::http::Uri) -> Response {
    let error = ApiError::BadRequest(format!("no such endpoint: {}", uri.path()), Some("unknown_url"));
    let mut response = error.into_response_for(Dialect::of_path(uri.path()));
    *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    response
}

/// Known paths with another method: 405 with an error body, like every other refusal.
async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    ApiError::MethodNotAllowed.into_response_for(Dialect::of_path(uri.path()))
}
