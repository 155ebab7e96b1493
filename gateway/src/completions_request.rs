//! A legacy OpenAI `POST /v1/completions` request, checked: the fields the gateway reads typed
//! (model, prompt, output limit, stream, end user) and every other field kept as sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat_request::{Invalid, fields_of};
use crate::embeddings_request::{self, Input};
use crate::error::ApiError;
use crate::validate::{self, MAX_OUTPUT_TOKENS};

/// OpenAI's default output limit of a completion, when the request sets none.
pub const DEFAULT_MAX_TOKENS: u64 = 16;

/// A checked completions request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionsRequest {
    pub model: String,
    /// One prompt, several, or pre-tokenised ones (the forms embeddings take).
    pub prompt: Input,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl CompletionsRequest {
    /// Checks a request body: a 400 naming the field for anything malformed or out of range.
    pub fn parse(body: Value) -> Result<CompletionsRequest, Invalid> {
        let fields = fields_of(&body)?;
        let invalid = |error| Invalid::of(&body, error);
        embeddings_request::check_input(fields.get("prompt"))
            .map_err(|problem| invalid(ApiError::invalid_request(format!("`prompt` {problem}"))))?;
        let ranges: [(&str, u64, u64); 4] =
            [("max_tokens", 1, MAX_OUTPUT_TOKENS), ("n", 1, 128), ("best_of", 1, 128), ("logprobs", 0, 20)];
        for (field, min, max) in ranges {
            validate::integer(fields, field, min, max).map_err(invalid)?;
        }
        validate::number(fields, "temperature", 0.0, 2.0).map_err(invalid)?;
        validate::number(fields, "top_p", 0.0, 1.0).map_err(invalid)?;
        validate::user(fields).map_err(invalid)?;
        if fields.get("stream").is_some_and(|s| !s.is_boolean() && !s.is_null()) {
            return Err(invalid(ApiError::invalid_request("`stream` must be a boolean".into())));
        }
        let model = fields.get("model").and_then(Value::as_str).map(str::to_owned);
        serde_json::from_value(body)
            .map_err(|e| Invalid { error: ApiError::invalid_request(format!("invalid request: {e}")), model })
    }

    pub fn stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// A field the gateway does not read typed.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.rest.get(name).filter(|value| !value.is_null())
    }

    /// How many completions the request asks for: `best_of` (or `n`) for each prompt.
    pub fn choices(&self) -> u64 {
        let per_prompt = ["n", "best_of"].iter().filter_map(|f| self.field(f)?.as_u64()).max().unwrap_or(1);
        per_prompt.saturating_mul(u64::try_from(self.prompt.count()).unwrap_or(u64::MAX))
    }

    /// The output limit of each completion: the request's, or OpenAI's default.
    pub fn max_tokens(&self) -> u64 {
        self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prompts_limits_and_answers_are_read() {
        let body = json!({"model": "m", "prompt": ["a", "b"], "n": 2, "best_of": 3, "suffix": "x"});
        let request = CompletionsRequest::parse(body.clone()).unwrap();
        assert_eq!((request.choices(), request.max_tokens()), (6, DEFAULT_MAX_TOKENS));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
        let request =
            CompletionsRequest::parse(json!({"model": "m", "prompt": [1, 2], "max_tokens": 5})).unwrap();
        assert_eq!((request.choices(), request.max_tokens()), (1, 5));
    }

    #[test]
    fn what_does_not_check_is_a_400_naming_the_field() {
        for (body, field) in [
            (json!({"prompt": "x"}), "`model`"),
            (json!({"model": "m"}), "`prompt`"),
            (json!({"model": "m", "prompt": "x", "max_tokens": 0}), "`max_tokens`"),
            (json!({"model": "m", "prompt": "x", "n": 1000}), "`n`"),
            (json!({"model": "m", "prompt": "x", "temperature": 3}), "`temperature`"),
            (json!({"model": "m", "prompt": "x", "stream": "yes"}), "`stream`"),
        ] {
            let error = CompletionsRequest::parse(body.clone()).unwrap_err().error;
            assert_eq!(error.status(), 400, "{body}");
            assert!(error.to_string().contains(field), "{body}: {error}");
        }
    }
}
