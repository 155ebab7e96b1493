//! Query strings of the read APIs (request log, statistics, costs): names checked, numbers
//! parsed, a tenant key held to its own tenant.

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The longest name a filter compares with (resource and model names are far shorter).
const MAX_NAME_BYTES: usize = 512;

/// The parameters, or the rejection as a 400.
pub fn parse(params: Params) -> Result<HashMap<String, String>, ApiError> {
    params.map(|Query(params)| params).map_err(|rejection| ApiError::BadRequest(rejection.body_text(), None))
}

/// A name to filter by: no control characters (PostgreSQL refuses NUL in text, and no name has
/// one) and a bounded length.
pub fn name(parameter: &str, value: String) -> Result<String, ApiError> {
    if value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(format!(
            "{parameter} must be a name: at most {MAX_NAME_BYTES} bytes, no control characters"
        )));
    }
    Ok(value)
}

/// A page or series size from 1 to `max`.
pub fn limit<T>(value: &str, max: T) -> Result<T, ApiError>
where
    T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display + Copy,
{
    let within = |limit: &T| *limit >= T::from(1) && *limit <= max;
    value
        .parse()
        .ok()
        .filter(within)
        .ok_or_else(|| ApiError::invalid_request(format!("limit must be 1 to {max}")))
}

pub fn integer(parameter: &str, value: &str) -> Result<i64, ApiError> {
    value.parse().map_err(|_| ApiError::invalid_request(format!("{parameter} must be an integer")))
}

/// The tenant a caller may read: a tenant key (`own`) its own only, the admin any or all.
pub fn tenant(asked: Option<String>, own: Option<&str>, what: &str) -> Result<Option<String>, ApiError> {
    match own {
        None => Ok(asked),
        Some(own) if asked.as_deref().is_none_or(|asked| asked == own) => Ok(Some(own.to_owned())),
        Some(_) => Err(ApiError::Forbidden(format!("a tenant key reads its own tenant's {what} only"))),
    }
}

/// The database's words stay in the log: they can name tables, hosts and users.
pub fn unavailable(what: &str, error: &sqlx::Error) -> Response {
    tracing::error!(%error, "cannot read the {what}");
    ApiError::Internal(format!("the {what} is unavailable; retry later")).into_response()
}
