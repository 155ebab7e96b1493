//! The request body each upstream wire format gets, serialised straight from the admitted request:
//! the few fields a backend needs changed (`model`, `stream`, `stream_options`, and Anthropic's
//! `cache_control` markers, unknown to OpenAI) are replaced while serialising, so the request is
//! never copied. The exchange makes it once per format and reuses it for every attempt.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::UpstreamError;
use crate::chat_request::{ChatRequest, Content, Message};
use crate::completions_request::CompletionsRequest;
use crate::embeddings_request::EmbeddingsRequest;
use crate::payload::Payload;
use crate::translate::anthropic::chat_request_to_messages;
use crate::translate::gemini::chat_request_to_gemini;

/// The wire formats upstreams speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    OpenAiChat,
    AnthropicMessages,
    OpenAiEmbeddings,
    OpenAiCompletions,
    GeminiGenerateContent,
}

/// `request` in `format`, for the upstream's `model`. A stream asks OpenAI upstreams for the usage
/// chunk always, so that streams are costed exactly (the gateway drops that chunk again for
/// clients that did not ask for it).
pub fn encode(
    format: WireFormat,
    request: Payload<'_>,
    model: &str,
    stream: bool,
) -> Result<Bytes, UpstreamError> {
    let encoded = match (format, request) {
        (WireFormat::OpenAiChat, Payload::Chat(request)) => {
            serde_json::to_vec(&OpenAiChat { request, model, stream })
        }
        (WireFormat::GeminiGenerateContent, Payload::Chat(request)) => {
            let body = chat_request_to_gemini(&request.to_value())
                .map_err(|e| UpstreamError::Untranslatable(e.to_string()))?;
            serde_json::to_vec(&body)
        }
        (WireFormat::OpenAiEmbeddings, Payload::Embeddings(request)) => {
            serde_json::to_vec(&EmbeddingsRequest { model: model.to_owned(), ..request.clone() })
        }
        (WireFormat::OpenAiCompletions, Payload::Completions(request)) => {
            let mut body = CompletionsRequest { model: model.to_owned(), ..request.clone() };
            if stream {
                body.stream = Some(true);
                body.rest.insert("stream_options".into(), serde_json::json!({"include_usage": true}));
            }
            serde_json::to_vec(&body)
        }
        (WireFormat::AnthropicMessages, Payload::Chat(request)) => {
            let mut body = chat_request_to_messages(&request.to_value(), model)
                .map_err(|e| UpstreamError::Untranslatable(e.to_string()))?;
            body["stream"] = Value::Bool(stream);
            serde_json::to_vec(&body)
        }
        (format, request) => {
            let message =
                format!("an upstream speaking {format:?} serves no {} requests", request.operation());
            return Err(UpstreamError::Untranslatable(message));
        }
    };
    encoded.map(Bytes::from).map_err(|e| UpstreamError::Protocol(e.to_string()))
}

/// A request with the upstream's model and stream settings, without `cache_control`.
struct OpenAiChat<'a> {
    request: &'a ChatRequest,
    model: &'a str,
    stream: bool,
}

impl Serialize for OpenAiChat<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let request = self.request;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry("messages", &Messages(&request.messages))?;
        if self.stream {
            map.serialize_entry("stream", &true)?;
            map.serialize_entry("stream_options", &IncludeUsage)?;
        } else if let Some(stream) = request.stream {
            map.serialize_entry("stream", &stream)?;
        }
        for (name, value) in
            [("max_tokens", request.max_tokens), ("max_completion_tokens", request.max_completion_tokens)]
        {
            if let Some(value) = value {
                map.serialize_entry(name, &value)?;
            }
        }
        if let Some(user) = &request.user {
            map.serialize_entry("user", user)?;
        }
        // Not streaming: the client's own `stream_options`, if any, goes as it came. `thinking`
        // (an Anthropic client's, kept for Anthropic upstreams) is `reasoning_effort` here.
        let replaced = |key: &str| (key == "stream_options" && self.stream) || key == "thinking";
        rest(&mut map, &request.rest, replaced)?;
        map.end()
    }
}

/// The entries of `fields` but `cache_control` and those `replaced`, without `cache_control` inside.
fn rest<M: SerializeMap>(
    map: &mut M,
    fields: &Map<String, Value>,
    replaced: impl Fn(&str) -> bool,
) -> Result<(), M::Error> {
    for (key, value) in fields {
        if key != "cache_control" && !replaced(key) {
            map.serialize_entry(key, &WithoutCacheControl(value))?;
        }
    }
    Ok(())
}

struct Messages<'a>(&'a [Message]);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(WireMessage))
    }
}

struct WireMessage<'a>(&'a Message);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("role", &message.role)?;
        match &message.content {
            Some(Content::Text(text)) => map.serialize_entry("content", text)?,
            Some(Content::Parts(parts)) => map.serialize_entry("content", &Items(parts))?,
            None => {}
        }
        rest(&mut map, &message.rest, |_| false)?;
        map.end()
    }
}

/// `{"include_usage": true}`.
struct IncludeUsage;

impl Serialize for IncludeUsage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("include_usage", &true)?;
        map.end()
    }
}

/// A value with every `cache_control` key left out, at any depth.
struct WithoutCacheControl<'a>(&'a Value);

/// Values, each without `cache_control`, as an array.
struct Items<'a>(&'a [Value]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(WithoutCacheControl))
    }
}

impl Serialize for WithoutCacheControl<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(fields) => {
                let mut map = serializer.serialize_map(None)?;
                rest(&mut map, fields, |_| false)?;
                map.end()
            }
            Value::Array(items) => Items(items).serialize(serializer),
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strip_cache_control(body: &mut Value) {
        match body {
            Value::Object(map) => {
                map.remove("cache_control");
                map.values_mut().for_each(strip_cache_control);
            }
            Value::Array(items) => items.iter_mut().for_each(strip_cache_control),
            _ => {}
        }
    }

    /// What the gateway sent before it had typed requests: a modified copy of the request.
    fn copied(request: &Value, model: &str, stream: bool) -> Value {
        let mut body = request.clone();
        body["model"] = json!(model);
        if stream {
            body["stream"] = json!(true);
        }
        strip_cache_control(&mut body);
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn typed(request: &Value) -> ChatRequest {
        serde_json::from_value(request.clone()).unwrap()
    }

    fn encoded(format: WireFormat, request: &Value, model: &str, stream: bool) -> Value {
        let request = typed(request);
        serde_json::from_slice(&encode(format, Payload::Chat(&request), model, stream).unwrap()).unwrap()
    }

    #[test]
    fn openai_bodies_are_what_a_modified_copy_of_the_request_was() {
        let requests = [
            json!({"model": "alias", "messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "alias", "messages": [], "stream": false, "stream_options": {"include_usage": false}}),
            json!({"a": 1, "model": "alias", "stream": true, "zz": [{"cache_control": {"type": "ephemeral"}, "b": 2}],
                   "cache_control": {"type": "ephemeral"}, "max_tokens": 5, "user": "u",
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "x",
                                                              "cache_control": {"type": "ephemeral"}}]},
                                {"role": "assistant", "tool_calls": [{"id": "t", "cache_control": {}}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.5, "n": 1}),
        ];
        for request in &requests {
            for stream in [false, true] {
                let ours = encoded(WireFormat::OpenAiChat, request, "upstream-model", stream);
                assert_eq!(
                    ours,
                    copied(request, "upstream-model", stream),
                    "request {request}, stream {stream}"
                );
            }
        }
    }

    #[test]
    fn openai_bodies_carry_no_cache_control_markers() {
        let request = json!({
            "model": "alias",
            "messages": [{"role": "system", "content": [
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}},
                "cache_control": {"type": "ephemeral"}}],
        });
        assert_eq!(
            encoded(WireFormat::OpenAiChat, &request, "m", false),
            json!({
                "model": "m",
                "messages": [{"role": "system", "content": [{"type": "text", "text": "hi"}]}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            })
        );
    }

    #[test]
    fn anthropic_bodies_say_whether_they_stream() {
        let request =
            json!({"model": "alias", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        for stream in [false, true] {
            let body = encoded(WireFormat::AnthropicMessages, &request, "claude", stream);
            assert_eq!((body["model"].as_str(), body["stream"].as_bool()), (Some("claude"), Some(stream)));
        }
    }
}
