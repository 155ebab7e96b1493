//! Statistics and costs over HTTP: `GET /admin/v1/stats` and `/admin/v1/costs` (admin token, every
//! tenant), `GET /v1/usage/stats` and `/v1/usage/costs` (a tenant key, its own tenant only).

use axum::Extension;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use super::params::{self, Params};
use crate::auth::Authenticated;
use crate::db::now_ms;
use crate::error::ApiError;
use crate::state::AppState;
use crate::stats::costs::{CSV_HEADER, CostQuery};
use crate::stats::{GroupBy, Resolution, StatsQuery};

/// Buckets in one answer at most.
const MAX_POINTS: i64 = 1_500;
/// Series in one answer at most, and unless `limit` says otherwise.
const MAX_SERIES: u32 = 100;
const DEFAULT_SERIES: u32 = 10;
/// The range when none is given: a day of statistics, a month of costs.
const DEFAULT_STATS_RANGE_MS: i64 = 86_400_000;
const DEFAULT_COSTS_RANGE_MS: i64 = 30 * 86_400_000;
/// The longest range of costs in one answer.
const MAX_COSTS_RANGE_MS: i64 = 366 * 86_400_000;

pub async fn admin_stats(State(state): State<AppState>, params: Params) -> Response {
    stats(&state, params, None).await
}

pub async fn tenant_stats(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    params: Params,
) -> Response {
    stats(&state, params, Some(&auth.caller.tenant)).await
}

pub async fn admin_costs(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    costs(&state, &headers, params, None).await
}

pub async fn tenant_costs(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    costs(&state, &headers, params, Some(&auth.caller.tenant)).await
}

async fn stats(state: &AppState, params: Params, own_tenant: Option<&str>) -> Response {
    let query = match stats_query(params, own_tenant) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    match state.stats.series(&query).await {
        Ok(series) => Json(json!({
            "since_ms": query.since_ms,
            "until_ms": query.until_ms,
            "bucket": query.bucket,
            "group_by": query.group_by,
            "series": series,
        }))
        .into_response(),
        Err(error) => params::unavailable("request statistics", &error),
    }
}

async fn costs(state: &AppState, headers: &HeaderMap, params: Params, own_tenant: Option<&str>) -> Response {
    let (query, csv) = match cost_query(params, headers, own_tenant) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    let rows = match state.stats.costs(&query).await {
        Ok(rows) => rows,
        Err(error) => return params::unavailable("cost report", &error),
    };
    if !csv {
        return Json(json!({"since_ms": query.since_ms, "until_ms": query.until_ms, "data": rows}))
            .into_response();
    }
    let body: String = std::iter::once(CSV_HEADER.to_owned()).chain(rows.iter().map(|r| r.csv())).collect();
    let disposition = HeaderValue::from_static("attachment; filename=\"switchboard-costs.csv\"");
    let content_type = HeaderValue::from_static("text/csv; charset=utf-8");
    ([(CONTENT_TYPE, content_type), (axum::http::header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

/// `since_ms` and `until_ms` (default: `default_range` back from now), in order, not negative.
fn range(since: Option<i64>, until: Option<i64>, default_range: i64) -> Result<(i64, i64), ApiError> {
    let until = until.unwrap_or_else(now_ms);
    let since = since.unwrap_or(until.saturating_sub(default_range));
    if since < 0 || since >= until {
        return Err(ApiError::invalid_request("since_ms must be at least 0 and before until_ms".into()));
    }
    Ok((since, until))
}

fn stats_query(params: Params, own_tenant: Option<&str>) -> Result<StatsQuery, ApiError> {
    let (mut since, mut until, mut bucket, mut tenant) = (None, None, None, None);
    let mut query =
        StatsQuery { limit: DEFAULT_SERIES, ..StatsQuery::new(0, 0, Resolution::Hour, GroupBy::None) };
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "since_ms" => since = Some(params::integer(&name, &value)?),
            "until_ms" => until = Some(params::integer(&name, &value)?),
            "bucket" => bucket = Some(enum_value::<Resolution>(&name, &value, "minute, hour or day")?),
            "group_by" => {
                query.group_by = enum_value(&name, &value, "none, tenant, model, route or persona")?;
            }
            "tenant" => tenant = Some(params::name(&name, value)?),
            "model" => query.model = Some(params::name(&name, value)?),
            "route" => query.route = Some(params::name(&name, value)?),
            "persona" => query.persona = Some(params::name(&name, value)?),
            "limit" => query.limit = params::limit(&value, MAX_SERIES)?,
            "rank_by" => query.rank_by = enum_value(&name, &value, "requests, cost or errors")?,
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    (query.since_ms, query.until_ms) = range(since, until, DEFAULT_STATS_RANGE_MS)?;
    let span = query.until_ms - query.since_ms;
    query.bucket = bucket.unwrap_or(if span <= 6 * 3_600_000 {
        Resolution::Minute
    } else if span <= 31 * 86_400_000 {
        Resolution::Hour
    } else {
        Resolution::Day
    });
    if span / query.bucket.ms() > MAX_POINTS {
        return Err(ApiError::invalid_request(format!(
            "at most {MAX_POINTS} buckets: choose a larger bucket or a shorter range"
        )));
    }
    query.tenant = params::tenant(tenant, own_tenant, "statistics")?;
    Ok(query)
}

fn cost_query(
    params: Params,
    headers: &HeaderMap,
    own_tenant: Option<&str>,
) -> Result<(CostQuery, bool), ApiError> {
    let (mut since, mut until, mut tenant, mut format) = (None, None, None, None);
    let mut query = CostQuery::default();
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "since_ms" => since = Some(params::integer(&name, &value)?),
            "until_ms" => until = Some(params::integer(&name, &value)?),
            "tenant" => tenant = Some(params::name(&name, value)?),
            "model" => query.model = Some(params::name(&name, value)?),
            "persona" => query.persona = Some(params::name(&name, value)?),
            "format" => match value.as_str() {
                "csv" | "json" => format = Some(value),
                _ => return Err(ApiError::invalid_request("format must be csv or json".into())),
            },
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    (query.since_ms, query.until_ms) = range(since, until, DEFAULT_COSTS_RANGE_MS)?;
    if query.until_ms - query.since_ms > MAX_COSTS_RANGE_MS {
        return Err(ApiError::invalid_request("at most 366 days of costs at once".into()));
    }
    query.tenant = params::tenant(tenant, own_tenant, "costs")?;
    let accepts_csv = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    let csv = format.map_or(accepts_csv, |f| f == "csv");
    Ok((query, csv))
}

/// A lower-case enum value, or a 400 listing the allowed ones.
fn enum_value<T: serde::de::DeserializeOwned>(name: &str, value: &str, allowed: &str) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| ApiError::invalid_request(format!("{name} must be {allowed}")))
}
