//! Upstream JSON relayed as the text it arrived as, with what the gateway reads from it.
//!
//! Relaying a reply or a stream chunk to an OpenAI client then costs no parse into a [`Value`]
//! and no re-serialisation (which would also reorder keys and respell numbers); the gateway
//! reads what it meters (usage, the length of the content) with one parse that skips everything
//! else without building it. Building and re-serialising a `Value` per chunk was a quarter of the
//! gateway's work on a stream. The paths that need a value (translation to another API,
//! structured-output checks, MCP, personas) build one with [`Relayed::to_value`].

use std::borrow::Cow;
use std::marker::PhantomData;

use bytes::Bytes;
use serde_json::Value;

use super::UpstreamError;
use super::chunk::ChunkShape;
use crate::redact::Redactor;
use crate::usage::TokenUsage;

/// The longest reply id carried into a trace.
const MAX_ID_BYTES: usize = 256;

/// What the gateway reads from a payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts {
    pub usage: Option<TokenUsage>,
    /// Bytes of content text.
    pub content_len: usize,
    /// A stream's final usage chunk (`choices: []`).
    pub usage_only: bool,
    /// The first choice's `finish_reason`, if it has one.
    pub finish_reason: Option<&'static str>,
}

/// A `finish_reason` as one of the values the OpenAI API defines, else `other`: a name the
/// upstream chose is not carried into traces.
pub fn finish_reason(text: &str) -> &'static str {
    match text {
        "stop" => "stop",
        "length" => "length",
        "tool_calls" => "tool_calls",
        "content_filter" => "content_filter",
        "function_call" => "function_call",
        _ => "other",
    }
}

/// A kind of payload: how its facts are read.
pub trait Shape {
    fn read(json: &[u8]) -> Result<Facts, UpstreamError>;
}

/// An upstream payload of shape `S`, kept as its JSON text.
#[derive(Debug)]
pub struct Relayed<S> {
    json: Bytes,
    facts: Facts,
    shape: PhantomData<fn() -> S>,
}

impl<S> Clone for Relayed<S> {
    fn clone(&self) -> Self {
        Relayed { json: self.json.clone(), facts: self.facts, shape: PhantomData }
    }
}

impl<S: Shape> Relayed<S> {
    /// Reads an upstream's payload: UTF-8 text of a JSON object (serde would also read a struct
    /// from an array, by position, and skips the text of unread fields without checking it).
    pub fn parse(json: Bytes) -> Result<Relayed<S>, UpstreamError> {
        if std::str::from_utf8(&json).is_err() {
            return Err(UpstreamError::Protocol("the upstream sent text that is not UTF-8".into()));
        }
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(UpstreamError::Protocol("the upstream sent JSON that is not an object".into()));
        }
        let facts = S::read(&json)?;
        Ok(Relayed { json, facts, shape: PhantomData })
    }

    /// The payload with the config's secret values removed (see [`Redactor::relayed`]). A
    /// secret outside a JSON string (digits where a number was) leaves no valid payload: then
    /// the payload is withheld.
    pub fn redacted(self, redactor: &Redactor) -> Result<Relayed<S>, UpstreamError> {
        match redactor.relayed(&self.json) {
            Cow::Borrowed(_) => Ok(self),
            Cow::Owned(clean) => Relayed::parse(Bytes::from(clean)).map_err(|_| {
                UpstreamError::Protocol("the upstream's reply contained a secret and was withheld".into())
            }),
        }
    }

    /// A payload the gateway made (a translation, the mock provider).
    pub fn from_value(value: &Value) -> Result<Relayed<S>, UpstreamError> {
        Relayed::parse(Bytes::from(value.to_string()))
    }
}

impl<S> Relayed<S> {
    /// The JSON text, as the upstream sent it.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The payload as a JSON value, for the paths that read or translate it. `parse` reads only
    /// the fields the gateway meters and skips the others unchecked, so a text that is JSON to a
    /// lenient reader but not to a strict one (half a surrogate pair escaped, a number past
    /// `f64` in a skipped field) fails here, where its content is needed.
    pub fn to_value(&self) -> Result<Value, UpstreamError> {
        serde_json::from_slice(&self.json)
            .map_err(|e| UpstreamError::Protocol(format!("the upstream sent JSON that does not parse: {e}")))
    }

    /// The usage the provider reported.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.facts.usage
    }

    /// Bytes of content text.
    pub fn content_len(&self) -> usize {
        self.facts.content_len
    }

    pub fn finish_reason(&self) -> Option<&'static str> {
        self.facts.finish_reason
    }

    /// The payload's `id`, read again (for traces, which want it once per reply).
    pub fn response_id(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Option<String>,
        }
        serde_json::from_slice::<Id>(&self.json).ok()?.id.filter(|id| id.len() <= MAX_ID_BYTES)
    }
}

impl Relayed<ChunkShape> {
    /// The final usage chunk (`choices: []`), which goes only to clients that asked for it.
    pub fn is_usage_only(&self) -> bool {
        self.facts.usage_only
    }
}
