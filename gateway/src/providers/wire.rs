//! The request body each upstream wire format gets, serialised straight from the admitted request:
//! the few fields a backend needs changed (`model`, `stream`, `stream_options`, and Anthropic's
//! `cache_control` markers, unknown to OpenAI) are replaced while serialising, so the request is
//! never copied. The exchange makes it once per format and reuses it for every attempt.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::UpstreamError;
use crate::translate::anthropic::chat_request_to_messages;

/// The wire formats upstreams speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    OpenAiChat,
    AnthropicMessages,
}

/// `request` (OpenAI form) in `format`, for the upstream's `model`. A stream asks OpenAI upstreams
/// for the usage chunk always, so that streams are costed exactly (the gateway drops that chunk
/// again for clients that did not ask for it).
pub fn encode(
    format: WireFormat,
    request: &Value,
    model: &str,
    stream: bool,
) -> Result<Bytes, UpstreamError> {
    let fields =
        request.as_object().ok_or_else(|| UpstreamError::Protocol("the request is not an object".into()))?;
    let encoded =
        match format {
            WireFormat::OpenAiChat => serde_json::to_vec(&OpenAiChat { fields, model, stream }),
            WireFormat::AnthropicMessages => {
                let mut body = chat_request_to_messages(request, model).map_err(|e| {
                    UpstreamError::Status { status: 400, message: e.to_string(), retry_after: None }
                })?;
                body["stream"] = Value::Bool(stream);
                serde_json::to_vec(&body)
            }
        };
    encoded.map(Bytes::from).map_err(|e| UpstreamError::Protocol(e.to_string()))
}

/// An OpenAI-form request with the upstream's model and stream settings, without `cache_control`.
struct OpenAiChat<'a> {
    fields: &'a Map<String, Value>,
    model: &'a str,
    stream: bool,
}

/// The fields an OpenAI upstream gets whatever the client sent, in key order (the order
/// `serde_json`'s map keeps, so the output is what a modified copy would have serialised to).
const REPLACED: [&str; 3] = ["model", "stream", "stream_options"];

impl Serialize for OpenAiChat<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut replaced = REPLACED.iter().copied().peekable();
        for (key, value) in self.fields {
            while let Some(name) = replaced.next_if(|name| *name <= key.as_str()) {
                self.replacement(name, &mut map)?;
            }
            // The replaced fields are written by `replacement`, the client's own included.
            if key == "cache_control" || REPLACED.contains(&key.as_str()) {
                continue;
            }
            map.serialize_entry(key, &WithoutCacheControl(value))?;
        }
        for name in replaced {
            self.replacement(name, &mut map)?;
        }
        map.end()
    }
}

impl OpenAiChat<'_> {
    fn replacement<M: SerializeMap>(&self, name: &str, map: &mut M) -> Result<(), M::Error> {
        match name {
            "model" => map.serialize_entry("model", self.model),
            "stream" if self.stream => map.serialize_entry("stream", &true),
            "stream_options" if self.stream => map.serialize_entry("stream_options", &IncludeUsage),
            // Not streaming: the client's own field, if any, is serialised in its place.
            _ => match self.fields.get(name) {
                Some(value) => map.serialize_entry(name, &WithoutCacheControl(value)),
                None => Ok(()),
            },
        }
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

impl Serialize for WithoutCacheControl<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(fields) => {
                let mut map = serializer.serialize_map(None)?;
                for (key, value) in fields.iter().filter(|(key, _)| *key != "cache_control") {
                    map.serialize_entry(key, &WithoutCacheControl(value))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&WithoutCacheControl(item))?;
                }
                seq.end()
            }
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

    /// What the gateway sent before: a modified copy of the request, serialised.
    fn copied(request: &Value, model: &str, stream: bool) -> Vec<u8> {
        let mut body = request.clone();
        body["model"] = json!(model);
        if stream {
            body["stream"] = json!(true);
        }
        strip_cache_control(&mut body);
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        serde_json::to_vec(&body).unwrap()
    }

    #[test]
    fn openai_bodies_are_byte_for_byte_what_a_modified_copy_serialises_to() {
        let requests = [
            json!({"model": "alias", "messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "alias", "messages": [], "stream": false, "stream_options": {"include_usage": false}}),
            json!({"a": 1, "model": "alias", "stream": true, "zz": [{"cache_control": {"type": "ephemeral"}, "b": 2}],
                   "cache_control": {"type": "ephemeral"},
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "x",
                                                              "cache_control": {"type": "ephemeral"}}]}]}),
            json!({"messages": [{"role": "user", "content": "no model, no stream"}], "temperature": 0.5}),
            json!({"model": "m", "stream": null, "stream_options": null, "n": 1}),
        ];
        for request in &requests {
            for stream in [false, true] {
                let ours = encode(WireFormat::OpenAiChat, request, "upstream-model", stream).unwrap();
                let theirs = copied(request, "upstream-model", stream);
                assert_eq!(
                    std::str::from_utf8(&ours).unwrap(),
                    std::str::from_utf8(&theirs).unwrap(),
                    "request {request}, stream {stream}"
                );
            }
        }
    }

    #[test]
    fn openai_bodies_carry_no_cache_control_markers() {
        let request = json!({
            "messages": [{"role": "system", "content": [
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}},
                "cache_control": {"type": "ephemeral"}}],
        });
        let body: Value =
            serde_json::from_slice(&encode(WireFormat::OpenAiChat, &request, "m", false).unwrap()).unwrap();
        assert_eq!(
            body,
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
            let body: Value = serde_json::from_slice(
                &encode(WireFormat::AnthropicMessages, &request, "claude", stream).unwrap(),
            )
            .unwrap();
            assert_eq!((body["model"].as_str(), body["stream"].as_bool()), (Some("claude"), Some(stream)));
        }
    }
}
