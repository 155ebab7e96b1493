//! `GET /admin/v1/routes`: every ProviderRoute with its models and prices, its backends with their
//! live health on this replica (circuit-breaker state; attempts, backend failures and latency over
//! the last five minutes), and the route's last 15 minutes from the request statistics (requests,
//! errors, latency and time-to-first-token percentiles, all replicas), and in a cluster the
//! conditions the operator wrote on each.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use switchboard_crds::ProviderRoute;

use super::params;
use crate::db::now_ms;
use crate::serving::conditions::Listed;
use crate::state::AppState;
use crate::stats::{GroupBy, Resolution, StatsQuery};

/// The window of the routes' recent statistics.
const RECENT_MS: i64 = 15 * 60_000;

pub async fn list(State(state): State<AppState>) -> Response {
    let runtime = state.runtime.load();
    let now = now_ms();
    let instant = Instant::now();
    let routes: Vec<_> = runtime.routes().collect();
    let recent = StatsQuery {
        limit: u32::try_from(routes.len()).unwrap_or(u32::MAX).max(1),
        ..StatsQuery::new(now - RECENT_MS, now + 1, Resolution::Minute, GroupBy::Route)
    };
    let conditions = Listed::read::<ProviderRoute>(state.conditions.as_ref()).await;
    let recent = match state.stats.series(&recent).await {
        Ok(series) => series,
        Err(error) => return params::unavailable("request statistics", &error),
    };
    let data: Vec<Value> = routes
        .iter()
        .map(|route| {
            let config = &route.config;
            let models: Vec<Value> = config
                .models
                .iter()
                .map(|m| {
                    json!({"name": m.name, "upstream_model": m.upstream_model,
                        "usd_per_million": {"input": m.pricing.input.to_string(), "output": m.pricing.output.to_string(),
                            "cached_input": m.pricing.cached_input.to_string(), "cache_write": m.pricing.cache_write.to_string()}})
                })
                .collect();
            let backends: Vec<Value> = route
                .backends
                .iter()
                .map(|b| {
                    let recent = b.recent.summary(instant);
                    json!({"name": b.config.name, "provider": b.provider.kind(), "address": b.provider.address(),
                        "weight": b.config.weight, "priority": b.config.priority,
                        "breaker": b.breaker.state_name(), "healthy": b.breaker.is_closed(),
                        "last_5_minutes": {"attempts": recent.attempts, "failures": recent.failures,
                            "error_rate": recent.error_rate(), "mean_latency_ms": recent.mean_latency_ms(),
                            "max_latency_ms": recent.latency_ms_max}})
                })
                .collect();
            let last = recent.iter().find(|s| s.key.as_deref() == Some(config.name.as_str())).map(|s| {
                let total = &s.total;
                json!({"requests": total.requests, "errors": total.errors, "server_errors": total.server_errors,
                    "error_rate": if total.requests > 0 { total.errors as f64 / total.requests as f64 } else { 0.0 },
                    "latency_ms": total.latency_ms, "ttft_ms": total.ttft_ms})
            });
            json!({
                "name": config.name,
                "models": models,
                "backends": backends,
                "healthy_backends": route.backends.iter().filter(|b| b.breaker.is_closed()).count(),
                "retries": config.retries.attempts,
                "timeout_ms": config.timeout_ms,
                "last_15_minutes": last,
                "conditions": conditions.of(&config.name),
            })
        })
        .collect();
    Json(json!({"data": data, "conditions_error": conditions.error})).into_response()
}
