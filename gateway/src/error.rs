//! The gateway's error type and its two wire shapes.
//!
//! Every error maps, exhaustively, to an HTTP status, an OpenAI-style `type`/`code`, and whether a
//! client should retry. `/v1/messages` renders the same errors in Anthropic's shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Anthropic's "overloaded" status, which OpenAI's SDKs also retry (as any 5xx).
const OVERLOADED: StatusCode = match StatusCode::from_u16(529) {
    Ok(status) => status,
    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
};

/// Which API's error shape to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

impl Dialect {
    /// The dialect of a request path: Anthropic's under `/v1/messages`, OpenAI's elsewhere.
    pub fn of_path(path: &str) -> Dialect {
        if path.starts_with("/v1/messages") { Dialect::Anthropic } else { Dialect::OpenAi }
    }

    /// The dialect of a request: its path's, or Anthropic's for a path both APIs share
    /// (`/v1/models`) when the caller sends `anthropic-version`, as Anthropic's SDKs do.
    pub fn of_request(path: &str, headers: &http::HeaderMap) -> Dialect {
        if headers.contains_key("anthropic-version") { Dialect::Anthropic } else { Dialect::of_path(path) }
    }
}

/// Everything that can go wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing API key: send it as `Authorization: Bearer <key>`")]
    MissingKey,
    #[error("invalid API key")]
    InvalidKey,
    /// A bearer JWT that does not check out; the reason names the check, never the token.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A JWT that cannot be checked because its issuer's signing keys cannot be fetched.
    #[error("the token's identity provider cannot be reached to check it: {0}")]
    IdentityUnavailable(String),
    #[error("{0}")]
    BadRequest(String, Option<&'static str>),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// A change that contradicts what is there (a tenant that exists, one the console does not manage).
    #[error("{0}")]
    Conflict(String),
    /// A tenant's or route's Rego policy refused the request.
    #[error("{0}")]
    PolicyDenied(String),
    #[error("upstream rate limited the request: {message}")]
    UpstreamRateLimited { message: String, retry_after: Option<u64> },
    #[error("upstream rejected the request: {message}")]
    UpstreamRejected { status: StatusCode, message: String },
    #[error("upstream error: {0}")]
    UpstreamFailed(String),
    /// The upstream said it is overloaded (Anthropic's 529): passed on as 529 `overloaded_error`.
    #[error("upstream overloaded: {0}")]
    UpstreamOverloaded(String),
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    #[error("upstream timed out after {0} ms")]
    UpstreamTimeout(u64),
    #[error("no backend is available for this model")]
    NoBackend,
    #[error("every backend of this model is failing and temporarily ejected; retry after {retry_after} s")]
    BackendsEjected { retry_after: u64 },
    #[error("{message}")]
    RateLimited { message: String, retry_after: Option<u64>, headers: Vec<(header::HeaderName, HeaderValue)> },
    #[error("{message}")]
    BudgetExceeded { message: String, retry_after: Option<u64> },
    #[error(
        "budget {0} cannot be checked right now (its spend is unreadable), so requests under it are refused; retry shortly"
    )]
    BudgetUnavailable(String),
    #[error("budget {0} has room for one more request and another is in flight; retry in a moment")]
    BudgetBusy(String),
    #[error("the gateway is stopping; retry the request")]
    Stopping,
    #[error("the gateway is overloaded: {0}")]
    Overloaded(String),
    #[error(
        "the gateway's usage ledger is {0} rows behind its database, so new requests wait; retry shortly"
    )]
    LedgerBehind(usize),
    #[error("the model's reply does not match the requested JSON schema: {0}")]
    InvalidStructuredOutput(String),
    #[error("admin API disabled: start the gateway with --admin-token or SWITCHBOARD_ADMIN_TOKEN")]
    AdminDisabled,
    #[error("gateway is not ready: {0}")]
    NotReady(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 `invalid_request` saying what is wrong with the request.
    pub fn invalid_request(message: String) -> ApiError {
        ApiError::BadRequest(message, Some("invalid_request"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ModelNotFound(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) | Self::PolicyDenied(_) | Self::AdminDisabled => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::UpstreamRateLimited { .. }
            | Self::RateLimited { .. }
            | Self::BudgetExceeded { .. }
            | Self::BudgetBusy(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamRejected { status, .. } => *status,
            Self::UpstreamFailed(_) | Self::UpstreamUnavailable(_) | Self::InvalidStructuredOutput(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamOverloaded(_) => OVERLOADED,
            Self::NoBackend
            | Self::BackendsEjected { .. }
            | Self::BudgetUnavailable(_)
            | Self::Stopping
            | Self::Overloaded(_)
            | Self::LedgerBehind(_)
            | Self::IdentityUnavailable(_)
            | Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.code`: a short, stable identifier clients can switch on.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::MissingKey => Some("missing_api_key"),
            Self::InvalidKey => Some("invalid_api_key"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::IdentityUnavailable(_) => Some("identity_provider_unavailable"),
            Self::BadRequest(_, code) => *code,
            Self::PayloadTooLarge(_) => Some("request_too_large"),
            Self::BodyTimeout(_) => Some("request_timeout"),
            Self::MethodNotAllowed => Some("method_not_allowed"),
            Self::ModelNotFound(_) => Some("model_not_found"),
            Self::NotFound(_) => Some("not_found"),
            Self::Forbidden(_) => Some("forbidden"),
            Self::Conflict(_) => Some("conflict"),
            Self::PolicyDenied(_) => Some("policy_denied"),
            Self::UpstreamRateLimited { .. } => Some("upstream_rate_limited"),
            Self::UpstreamRejected { .. } => Some("upstream_rejected"),
            Self::UpstreamFailed(_) => Some("upstream_error"),
            Self::UpstreamOverloaded(_) => Some("upstream_overloaded"),
            Self::UpstreamUnavailable(_) => Some("upstream_unavailable"),
            Self::UpstreamTimeout(_) => Some("upstream_timeout"),
            Self::NoBackend => Some("no_backend"),
            Self::BackendsEjected { .. } => Some("no_healthy_backend"),
            Self::RateLimited { .. } => Some("rate_limit_exceeded"),
            Self::BudgetExceeded { .. } => Some("budget_exceeded"),
            Self::BudgetUnavailable(_) => Some("budget_unavailable"),
            Self::BudgetBusy(_) => Some("budget_busy"),
            Self::Overloaded(_) => Some("overloaded"),
            Self::LedgerBehind(_) => Some("ledger_behind"),
            Self::Stopping => Some("gateway_stopping"),
            Self::InvalidStructuredOutput(_) => Some("invalid_structured_output"),
            Self::AdminDisabled => Some("admin_disabled"),
            Self::NotReady(_) => Some("not_ready"),
            Self::Internal(_) => None,
        }
    }

    /// OpenAI's `error.type`.
    fn openai_type(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
                "invalid_request_error"
            }
            StatusCode::PAYLOAD_TOO_LARGE => "invalid_request_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// Anthropic's `error.type`.
    fn anthropic_type(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT | OVERLOADED => "overloaded_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "api_error",
        }
    }

    fn param(&self) -> Option<&'static str> {
        match self {
            Self::ModelNotFound(_) => Some("model"),
            _ => None,
        }
    }

    /// Whether retrying the same request may succeed; SDKs honour `x-should-retry`.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamRateLimited { .. }
                | Self::UpstreamFailed(_)
                | Self::UpstreamOverloaded(_)
                | Self::UpstreamUnavailable(_)
                | Self::UpstreamTimeout(_)
                | Self::NoBackend
                | Self::BackendsEjected { .. }
                | Self::RateLimited { retry_after: Some(_), .. }
                | Self::BudgetUnavailable(_)
                | Self::BudgetBusy(_)
                | Self::Stopping
                | Self::Overloaded(_)
                | Self::LedgerBehind(_)
                | Self::IdentityUnavailable(_)
                | Self::NotReady(_)
        )
    }

    /// Seconds after which a retry may succeed, for `retry-after`.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::UpstreamRateLimited { retry_after, .. }
            | Self::BudgetExceeded { retry_after, .. }
            | Self::RateLimited { retry_after, .. } => *retry_after,
            Self::BackendsEjected { retry_after } => Some(*retry_after),
            Self::Overloaded(_)
            | Self::LedgerBehind(_)
            | Self::BudgetUnavailable(_)
            | Self::BudgetBusy(_)
            | Self::Stopping => Some(1),
            Self::IdentityUnavailable(_) => Some(5),
            _ => None,
        }
    }

    /// The error as the JSON body of the given dialect.
    pub fn body(&self, dialect: Dialect) -> serde_json::Value {
        let message = self.to_string();
        match dialect {
            Dialect::OpenAi => json!({"error": {
                "message": message, "type": self.openai_type(), "param": self.param(), "code": self.code(),
            }}),
            Dialect::Anthropic => {
                json!({"type": "error", "error": {"type": self.anthropic_type(), "message": message}})
            }
        }
    }

    /// The full HTTP response in the given dialect.
    pub fn into_response_for(self, dialect: Dialect) -> Response {
        let mut response = (self.status(), axum::Json(self.body(dialect))).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "x-should-retry",
            HeaderValue::from_static(if self.retryable() { "true" } else { "false" }),
        );
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Self::RateLimited { headers: limits, .. } = &self {
            headers.extend(limits.iter().cloned());
        }
        if matches!(self, Self::MissingKey | Self::InvalidKey) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::InvalidToken(_)) {
            headers
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_for(Dialect::OpenAi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_has_message_type_param_code() {
        let body = ApiError::ModelNotFound("gpt-x".into()).body(Dialect::OpenAi);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["param"], "model");
        assert!(body["error"]["message"].as_str().unwrap().contains("gpt-x"));
    }

    #[test]
    fn anthropic_shape_is_typed_error() {
        let body = ApiError::InvalidKey.body(Dialect::Anthropic);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "authentication_error");
    }

    #[test]
    fn statuses_and_retry_hints() {
        assert_eq!(ApiError::UpstreamTimeout(5).status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ApiError::UpstreamFailed("x".into()).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(ApiError::PayloadTooLarge(1).status(), StatusCode::PAYLOAD_TOO_LARGE);
        let response = ApiError::UpstreamRateLimited { message: "slow down".into(), retry_after: Some(3) }
            .into_response_for(Dialect::OpenAi);
        assert_eq!(response.headers()["retry-after"], "3");
        assert_eq!(response.headers()["x-should-retry"], "true");
        let response = ApiError::InvalidKey.into_response_for(Dialect::OpenAi);
        assert_eq!(response.headers()["x-should-retry"], "false");
    }

    #[test]
    fn an_upstream_529_stays_529_overloaded_error() {
        let error = crate::providers::UpstreamError::Status {
            status: 529,
            message: "Overloaded".into(),
            retry_after: None,
        };
        assert!(error.retryable());
        let error = error.into_api_error();
        assert_eq!(error.status().as_u16(), 529);
        assert_eq!(error.body(Dialect::Anthropic)["error"]["type"], "overloaded_error");
        assert_eq!(error.body(Dialect::OpenAi)["error"]["code"], "upstream_overloaded");
    }
}
