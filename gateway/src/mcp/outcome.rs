//! What a tool call answers: a result, or a tool error the caller (often a model) can read and
//! act on, and the JSON views of persona state shared by tools and resources.
//!
//! Tool failures are tool results with `isError: true`, not JSON-RPC errors: MCP clients show a
//! tool error's text to the model, which can then fix its arguments or wait; a protocol error is
//! usually rendered opaquely. Only an unknown tool name is a protocol error (see `server`).

use k8s_openapi::jiff::Timestamp;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::persona::affect::{Bond, Compatibility, Mood};

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not match the tool's input schema (or a rule the schema cannot say).
    #[error("invalid arguments for `{tool}`: {problem}")]
    InvalidArguments { tool: &'static str, problem: String },
    /// Unknown, or not visible to the caller's tenant: the two look the same, so persona names of
    /// other tenants do not leak.
    #[error("unknown persona `{0}`: call `list_personas` for the personas you can use")]
    UnknownPersona(String),
    #[error("persona `{0}` has memory disabled (its Persona's `spec.memory.enabled` is false)")]
    MemoryDisabled(String),
    #[error("{0}")]
    Refused(String),
    /// What the chat path (or the rate limiter) refused with, in the OpenAI API's terms.
    #[error("{0}")]
    Api(ApiError),
    /// The persona store failed; the details are logged, not sent.
    #[error("the persona store is unavailable; try again shortly")]
    Store(#[source] sqlx::Error),
}

impl ToolError {
    /// A short, stable identifier clients can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidArguments { .. } => "invalid_arguments",
            Self::UnknownPersona(_) => "persona_not_found",
            Self::MemoryDisabled(_) => "memory_disabled",
            Self::Refused(_) => "invalid_request",
            Self::Api(error) => error.code().unwrap_or("internal_error"),
            Self::Store(_) => "store_unavailable",
        }
    }

    /// The HTTP status the same failure has on the OpenAI API, for the request metrics.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidArguments { .. } | Self::MemoryDisabled(_) | Self::Refused(_) => 400,
            Self::UnknownPersona(_) => 404,
            Self::Api(error) => error.status().as_u16(),
            Self::Store(_) => 503,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api(
                ApiError::RateLimited { retry_after, .. }
                | ApiError::BudgetExceeded { retry_after, .. }
                | ApiError::UpstreamRateLimited { retry_after, .. },
            ) => *retry_after,
            Self::Api(ApiError::BackendsEjected { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }

    /// The tool result: the message as text, and `{error: {code, message, retryAfterSeconds?}}`
    /// as structured content.
    pub fn into_result(self) -> CallToolResult {
        if let Self::Store(source) = &self {
            tracing::warn!(error = %source, "MCP tool call failed on the persona store");
        }
        let message = self.to_string();
        let mut error = json!({"code": self.code(), "message": message});
        if let Some(seconds) = self.retry_after() {
            error["retryAfterSeconds"] = json!(seconds);
        }
        let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
        result.structured_content = Some(json!({ "error": error }));
        result
    }
}

impl From<sqlx::Error> for ToolError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error)
    }
}

/// A successful result: `value` as structured content, and as JSON text for clients that read
/// only text content.
pub fn structured(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

pub fn mood_json(mood: &Mood) -> Value {
    json!({"valence": mood.valence, "arousal": mood.arousal, "description": mood.describe()})
}

pub fn bond_json(bond: &Bond) -> Value {
    json!({
        "affinity": bond.affinity,
        "trust": bond.trust,
        "familiarity": bond.familiarity,
        "interactions": bond.interactions,
        "lastInteraction": bond.last_interaction_ms.map(rfc3339),
    })
}

pub fn compatibility_json(compatibility: &Compatibility) -> Value {
    json!({
        "score": compatibility.score,
        "sharedInterests": compatibility.shared_interests,
        "sharedTraits": compatibility.shared_traits,
    })
}

/// Unix milliseconds as an RFC 3339 UTC timestamp with millisecond precision (`null` outside
/// jiff's range, which no clock of ours reaches).
pub fn rfc3339(ms: i64) -> Value {
    Timestamp::from_millisecond(ms).map_or(Value::Null, |at| Value::String(format!("{at:.3}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_633_600_123), "2025-12-02T00:00:00.123Z");
        assert_eq!(rfc3339(i64::MAX), Value::Null);
    }

    #[test]
    fn errors_carry_a_code_and_retry_hint() {
        let limited = ToolError::Api(ApiError::RateLimited {
            message: "rate limit reached; retry in 7 s".into(),
            retry_after: Some(7),
            headers: vec![],
        });
        assert_eq!(limited.status(), 429);
        let result = limited.into_result();
        assert_eq!(result.is_error, Some(true));
        let error = &result.structured_content.as_ref().map(|v| v["error"].clone()).unwrap_or_default();
        assert_eq!(error["code"], "rate_limit_exceeded");
        assert_eq!(error["retryAfterSeconds"], 7);
        assert!(error["message"].as_str().is_some_and(|m| m.contains("retry in 7 s")));

        let unknown = ToolError::UnknownPersona("zed".into()).into_result();
        let text = serde_json::to_value(&unknown.content).unwrap_or_default().to_string();
        assert!(text.contains("unknown persona `zed`"), "{text}");
    }
}
