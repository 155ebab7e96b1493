//! An OpenAI `POST /v1/embeddings` request, checked: the fields the gateway reads typed (model,
//! input, encoding, dimensions, end user) and every other field kept as sent, for the upstream.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat_request::{Invalid, fields_of};
use crate::error::ApiError;
use crate::validate;

/// The most inputs one request may embed (OpenAI's own limit).
pub const MAX_INPUTS: usize = 2048;
/// The largest `dimensions` a request may ask for: above every embedding model's size.
pub const MAX_DIMENSIONS: u64 = 65_536;
/// The largest token id an input may hold: above every vocabulary's size.
const MAX_TOKEN_ID: u64 = u32::MAX as u64;

/// A checked embeddings request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Input,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<Encoding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Texts or pre-tokenised inputs: what to embed, or a legacy completion's prompts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// How the vectors are sent back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Float,
    /// Little-endian `f32`s, base64-encoded (what the OpenAI SDKs ask for by default).
    Base64,
}

impl EmbeddingsRequest {
    /// Checks a request body: a 400 naming the field for anything malformed or out of range.
    pub fn parse(body: Value) -> Result<EmbeddingsRequest, Invalid> {
        let fields = fields_of(&body)?;
        let invalid = |message: String| Invalid::of(&body, ApiError::invalid_request(message));
        check_input(fields.get("input")).map_err(|problem| invalid(format!("`input` {problem}")))?;
        match fields.get("encoding_format") {
            None | Some(Value::Null) => {}
            Some(Value::String(format)) if format == "float" || format == "base64" => {}
            Some(_) => return Err(invalid("`encoding_format` must be \"float\" or \"base64\"".into())),
        }
        validate::integer(fields, "dimensions", 1, MAX_DIMENSIONS)
            .map_err(|error| Invalid::of(&body, error))?;
        validate::user(fields).map_err(|error| Invalid::of(&body, error))?;
        let model = fields.get("model").and_then(Value::as_str).map(str::to_owned);
        serde_json::from_value(body)
            .map_err(|e| Invalid { error: ApiError::invalid_request(format!("invalid request: {e}")), model })
    }

    /// How many inputs are embedded.
    pub fn count(&self) -> usize {
        self.input.count()
    }

    /// Bytes of input text, for the usage estimate of a reply without usage.
    pub fn text_len(&self) -> usize {
        self.input.text_len()
    }

    /// The most input tokens the request can be charged for.
    pub fn tokens_at_most(&self) -> u64 {
        self.input.tokens_at_most()
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding_format.unwrap_or(Encoding::Float)
    }
}

impl Input {
    /// How many inputs there are.
    pub fn count(&self) -> usize {
        match self {
            Input::Text(_) | Input::Tokens(_) => 1,
            Input::Texts(texts) => texts.len(),
            Input::TokenLists(lists) => lists.len(),
        }
    }

    /// The text inputs (none for pre-tokenised ones).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let texts: &[String] = match self {
            Input::Text(text) => std::slice::from_ref(text),
            Input::Texts(texts) => texts,
            Input::Tokens(_) | Input::TokenLists(_) => &[],
        };
        texts.iter().map(String::as_str)
    }

    /// The same text, to change in place (guardrails' redaction).
    pub fn texts_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let texts: &mut [String] = match self {
            Input::Text(text) => std::slice::from_mut(text),
            Input::Texts(texts) => texts,
            Input::Tokens(_) | Input::TokenLists(_) => &mut [],
        };
        texts.iter_mut()
    }

    /// Bytes of text and token ids, for estimates.
    pub fn text_len(&self) -> usize {
        self.texts().map(str::len).sum::<usize>().saturating_add(self.token_count())
    }

    /// The most tokens the input can be charged for: a token is at least a byte of text, and a
    /// pre-tokenised input is exactly its tokens.
    pub fn tokens_at_most(&self) -> u64 {
        let texts = self.texts().map(|text| text.len() as u64).fold(0, u64::saturating_add);
        texts.saturating_add(self.token_count() as u64)
    }

    fn token_count(&self) -> usize {
        match self {
            Input::Tokens(tokens) => tokens.len(),
            Input::TokenLists(lists) => lists.iter().map(Vec::len).sum(),
            Input::Text(_) | Input::Texts(_) => 0,
        }
    }
}

/// `input`: a non-empty string, or 1 to [`MAX_INPUTS`] non-empty strings, token ids, or lists
/// of token ids.
pub(crate) fn check_input(input: Option<&Value>) -> Result<(), String> {
    let items = match input {
        Some(Value::String(text)) if !text.is_empty() => return Ok(()),
        Some(Value::Array(items)) if (1..=MAX_INPUTS).contains(&items.len()) => items,
        Some(Value::Array(items)) if !items.is_empty() => {
            return Err(format!("has {} items; at most {MAX_INPUTS} may be embedded at once", items.len()));
        }
        _ => return Err("must be a non-empty string or a non-empty array of them".into()),
    };
    let token = |value: &Value| value.as_u64().is_some_and(|id| id <= MAX_TOKEN_ID);
    let ok = match &items[0] {
        Value::String(_) => items.iter().all(|item| item.as_str().is_some_and(|text| !text.is_empty())),
        Value::Number(_) => items.iter().all(token),
        Value::Array(_) => items
            .iter()
            .all(|item| item.as_array().is_some_and(|tokens| !tokens.is_empty() && tokens.iter().all(token))),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must hold items of one kind: non-empty strings, token ids, or non-empty arrays of token ids"
            .into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_input_form_is_read_and_unknown_fields_kept() {
        let forms = [
            (json!("hello world"), 1, 11),
            (json!(["a", "bc"]), 2, 3),
            (json!([1, 2, 3]), 1, 3),
            (json!([[1, 2], [3]]), 2, 3),
        ];
        for (input, count, at_most) in forms {
            let body =
                json!({"model": "e", "input": input, "encoding_format": "base64", "dimensions": 8, "x": 1});
            let request = EmbeddingsRequest::parse(body.clone()).unwrap();
            assert_eq!((request.count(), request.tokens_at_most()), (count, at_most), "{input}");
            assert_eq!(request.encoding(), Encoding::Base64);
            assert_eq!(serde_json::to_value(&request).unwrap(), body);
        }
    }

    #[test]
    fn what_does_not_check_is_a_400_naming_the_field() {
        let too_many: Vec<&str> = vec!["x"; MAX_INPUTS + 1];
        let bad = [
            (json!({"input": "x"}), "`model`"),
            (json!({"model": "e"}), "`input`"),
            (json!({"model": "e", "input": ""}), "`input`"),
            (json!({"model": "e", "input": []}), "`input`"),
            (json!({"model": "e", "input": too_many}), "2048"),
            (json!({"model": "e", "input": ["a", 1]}), "`input`"),
            (json!({"model": "e", "input": [[]]}), "`input`"),
            (json!({"model": "e", "input": [-1]}), "`input`"),
            (json!({"model": "e", "input": [1e300]}), "`input`"),
            (json!({"model": "e", "input": "x", "encoding_format": "hex"}), "`encoding_format`"),
            (json!({"model": "e", "input": "x", "dimensions": 0}), "`dimensions`"),
            (json!({"model": "e", "input": "x", "dimensions": 1e9}), "`dimensions`"),
            (json!({"model": "e", "input": "x", "user": 7}), "`user`"),
        ];
        for (body, field) in bad {
            let error = EmbeddingsRequest::parse(body.clone()).unwrap_err().error;
            assert_eq!(error.status(), 400, "{body}");
            assert!(error.to_string().contains(field), "{body}: {error}");
        }
    }
}
