//! Probes and metrics, open without authentication (metrics naming tenants need the admin token).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Liveness: the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: a config has loaded (at once in standalone mode; in-cluster, once the operator's
/// ConfigMap has been read).
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.runtime.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "waiting for the gateway config\n").into_response();
    }
    if let Some(rows) = state.ledger.behind() {
        let reason = format!("the usage ledger is {rows} rows behind its database\n");
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    }
    let version = state.runtime.load().config.version.clone();
    (StatusCode::OK, format!("ready {version}\n")).into_response()
}

/// Prometheus text; the series naming tenants and budgets only for a scraper with the admin token.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.metrics.queue_waiting(state.scheduler.waiting());
    state.metrics.ledger_backlog(state.ledger.backlog());
    let runtime = state.runtime.load();
    state.metrics.backend_health(runtime.routes().flat_map(|route| {
        route
            .backends
            .iter()
            .map(|b| (route.config.name.clone(), b.config.name.clone(), b.breaker.is_closed()))
    }));
    let with_tenants = crate::auth::admin(&state, &headers).is_ok();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(with_tenants))
        .into_response()
}
