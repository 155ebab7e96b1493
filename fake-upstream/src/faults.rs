//! Faults a broken or hostile upstream commits, one per behaviour name, for the gateway's
//! resilience tests: credentials echoed into errors, impossible usage, bodies, lines and events
//! without end. Each answers in the wire format of the API it was called on.
//!
//! | name | what the fake does |
//! |---|---|
//! | `leak-key-first` | a stream whose first event is an error quoting the caller's credential (`Bearer <key>` / `x-api-key: <key>`); not streamed: a 401 quoting it |
//! | `leak-key-mid` | the same error event after one content event |
//! | `leak-key-long` | a 401 whose message quotes the credential across the 500th character |
//! | `usage-max` | a normal-looking reply (streamed or not) reporting 2^64-1 output tokens |
//! | `usage-negative` | the same with -5 output tokens |
//! | `sse-no-blank` | a 200 stream of `data:` lines that never ends an event, until the client leaves |
//! | `long-line-<MiB>` | a 200 stream whose first line is `<MiB>` MiB long |
//! | `big-body-<MiB>` | a 200 JSON reply of `<MiB>` MiB (streamed out, never held) |
//! | `big-error-<MiB>` | a 500 error body of `<MiB>` MiB |
//! | `ignore-max-tokens` | a reply (streamed one word a chunk, or not) four times as long as `max_tokens` allows, its usage saying so |
//! | `drip-<ms>` | a 200 stream that never ends: one content event every `<ms>` ms, until the client leaves |

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::errors::{self, Api};

const MIB: usize = 1024 * 1024;
/// Size of the pieces large bodies are sent in.
const PIECE: usize = 64 * 1024;

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    LeakKeyFirst,
    LeakKeyMid,
    LeakKeyLong,
    UsageMax,
    UsageNegative,
    SseNoBlank,
    LongLine(usize),
    BigBody(usize),
    BigError(usize),
    Drip(u64),
    IgnoreMaxTokens,
}

impl Fault {
    /// The fault a behaviour name selects, if it names one.
    pub(crate) fn parse(name: &str) -> Option<Fault> {
        let sized = |prefix: &str| name.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok());
        Some(match name {
            "leak-key-first" => Fault::LeakKeyFirst,
            "leak-key-mid" => Fault::LeakKeyMid,
            "leak-key-long" => Fault::LeakKeyLong,
            "usage-max" => Fault::UsageMax,
            "usage-negative" => Fault::UsageNegative,
            "sse-no-blank" => Fault::SseNoBlank,
            "ignore-max-tokens" => Fault::IgnoreMaxTokens,
            _ => {
                if let Some(mib) = sized("long-line-") {
                    Fault::LongLine(mib)
                } else if let Some(mib) = sized("big-body-") {
                    Fault::BigBody(mib)
                } else if let Some(ms) = sized("drip-") {
                    Fault::Drip(ms as u64)
                } else {
                    Fault::BigError(sized("big-error-")?)
                }
            }
        })
    }

    /// The response committing this fault.
    pub(crate) fn respond(self, api: Api, headers: &HeaderMap, body: &Value) -> Response {
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        let model = body.get("model").and_then(Value::as_str).unwrap_or("fault");
        match self {
            Fault::LeakKeyFirst | Fault::LeakKeyMid if stream => {
                let mut events = Vec::new();
                if self == Fault::LeakKeyMid {
                    events.push(content_event(api, model, "partial "));
                }
                events.push(error_event(api, &leak_message(headers)));
                sse(futures::stream::iter(events).map(Ok))
            }
            Fault::LeakKeyFirst | Fault::LeakKeyMid => {
                error(api, StatusCode::UNAUTHORIZED, &leak_message(headers))
            }
            Fault::LeakKeyLong => {
                // The credential starts at character 495, so a cut at 500 leaves its head.
                let leak = leak_message(headers);
                let key_at = leak.rfind(' ').map_or(0, |space| space + 1);
                let message = format!("{}{leak}", "x".repeat(495usize.saturating_sub(key_at)));
                error(api, StatusCode::UNAUTHORIZED, &message)
            }
            Fault::UsageMax => reply(api, model, stream, 1, json!(u64::MAX)),
            Fault::UsageNegative => reply(api, model, stream, 1, json!(-5)),
            Fault::IgnoreMaxTokens => {
                let limit = ["max_completion_tokens", "max_tokens"]
                    .iter()
                    .find_map(|field| body.get(*field).and_then(Value::as_u64))
                    .unwrap_or(16);
                let words = usize::try_from(limit.saturating_mul(4).min(100_000)).unwrap_or(100_000);
                reply(api, model, stream, words, json!(words))
            }
            Fault::SseNoBlank => {
                let line = Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n");
                sse(futures::stream::repeat(line).map(Ok))
            }
            Fault::LongLine(mib) => {
                let pieces = repeated(b'a', mib * MIB);
                sse(futures::stream::iter([Bytes::from_static(b"data: ")]).chain(pieces).map(Ok))
            }
            Fault::BigBody(mib) => {
                let head = format!(
                    r#"{{"id":"big","object":"chat.completion","model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":""#
                );
                let tail =
                    r#""},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
                let body = futures::stream::iter([Bytes::from(head)])
                    .chain(repeated(b'a', mib * MIB))
                    .chain(futures::stream::iter([Bytes::from_static(tail.as_bytes())]));
                with_type(
                    Response::new(Body::from_stream(body.map(Ok::<_, std::io::Error>))),
                    "application/json",
                )
            }
            Fault::Drip(ms) => {
                let first = content_event(api, model, "tick");
                let delta = match api {
                    Api::OpenAi => frame(None, &chunk(model, json!({"content": " tick"}), None)),
                    Api::Anthropic => frame(
                        Some("content_block_delta"),
                        &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " tick"}}),
                    ),
                };
                let period = std::time::Duration::from_millis(ms);
                let ticks = futures::stream::unfold(delta, move |delta| async move {
                    tokio::time::sleep(period).await;
                    Some((delta.clone(), delta))
                });
                sse(futures::stream::iter([first]).chain(ticks).map(Ok))
            }
            Fault::BigError(mib) => {
                let mut response =
                    Response::new(Body::from_stream(repeated(b'e', mib * MIB).map(Ok::<_, std::io::Error>)));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                with_type(response, "text/plain")
            }
        }
    }
}

/// An error message quoting the credential the request came with, as a careless proxy would.
fn leak_message(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    match header("authorization") {
        bearer if !bearer.is_empty() => format!("invalid credentials in header Authorization: {bearer}"),
        _ => format!("invalid credentials in header x-api-key: {}", header("x-api-key")),
    }
}

fn error(api: Api, status: StatusCode, message: &str) -> Response {
    match api {
        Api::OpenAi => errors::openai(status, "invalid_request_error", message, None, None),
        Api::Anthropic => errors::anthropic(status, message),
    }
}

/// A stream's error event in the API's shape.
fn error_event(api: Api, message: &str) -> Bytes {
    match api {
        Api::OpenAi => frame(None, &json!({"error": {"message": message, "type": "server_error"}})),
        Api::Anthropic => frame(
            Some("error"),
            &json!({"type": "error", "error": {"type": "authentication_error", "message": message}}),
        ),
    }
}

/// A stream's event carrying `text`, with what must come before it in Anthropic's stream.
fn content_event(api: Api, model: &str, text: &str) -> Bytes {
    match api {
        Api::OpenAi => frame(None, &chunk(model, json!({"content": text}), None)),
        Api::Anthropic => {
            let start = json!({"type": "message_start", "message": {"id": "msg_fault", "type": "message", "role": "assistant",
                "model": model, "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}});
            let block = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
            let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}});
            let mut events = frame(Some("message_start"), &start).to_vec();
            events.extend_from_slice(&frame(Some("content_block_start"), &block));
            events.extend_from_slice(&frame(Some("content_block_delta"), &delta));
            Bytes::from(events)
        }
    }
}

/// A reply of `words` words (streamed one a chunk) reporting `output_tokens` as its output.
fn reply(api: Api, model: &str, stream: bool, words: usize, output_tokens: Value) -> Response {
    let pieces: Vec<&str> = (0..words).map(|i| if i == 0 { "word" } else { " word" }).collect();
    let text = pieces.concat();
    match (api, stream) {
        (Api::OpenAi, false) => {
            json_response(json!({"id": "chatcmpl-fault", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": output_tokens, "total_tokens": 3}}))
        }
        (Api::OpenAi, true) => {
            let usage = json!({"prompt_tokens": 3, "completion_tokens": output_tokens, "total_tokens": 3});
            let mut events: Vec<Bytes> = pieces
                .iter()
                .map(|piece| frame(None, &chunk(model, json!({"content": piece}), None)))
                .collect();
            events.push(frame(None, &chunk(model, json!({}), Some(usage))));
            events.push(Bytes::from_static(b"data: [DONE]\n\n"));
            sse(futures::stream::iter(events).map(Ok))
        }
        (Api::Anthropic, false) => {
            json_response(json!({"id": "msg_fault", "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": output_tokens}}))
        }
        (Api::Anthropic, true) => {
            let delta = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": output_tokens}});
            let mut events = vec![content_event(api, model, pieces.first().copied().unwrap_or_default())];
            for piece in pieces.iter().skip(1) {
                let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}});
                events.push(frame(Some("content_block_delta"), &delta));
            }
            events
                .push(frame(Some("content_block_stop"), &json!({"type": "content_block_stop", "index": 0})));
            events.push(frame(Some("message_delta"), &delta));
            events.push(frame(Some("message_stop"), &json!({"type": "message_stop"})));
            sse(futures::stream::iter(events).map(Ok))
        }
    }
}

fn chunk(model: &str, delta: Value, usage: Option<Value>) -> Value {
    let finish = if usage.is_some() { json!("stop") } else { Value::Null };
    json!({"id": "chatcmpl-fault", "object": "chat.completion.chunk", "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage})
}

fn frame(name: Option<&str>, data: &Value) -> Bytes {
    let event = name.map(|name| format!("event: {name}\n")).unwrap_or_default();
    Bytes::from(format!("{event}data: {data}\n\n"))
}

/// `len` bytes of `byte`, in pieces.
fn repeated(byte: u8, len: usize) -> impl futures::Stream<Item = Bytes> + Send {
    let piece = Bytes::from(vec![byte; PIECE]);
    futures::stream::iter((0..len).step_by(PIECE).map(move |at| piece.slice(..PIECE.min(len - at))))
}

fn sse(events: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static) -> Response {
    with_type(Response::new(Body::from_stream(events)), "text/event-stream")
}

fn json_response(body: Value) -> Response {
    with_type(Response::new(Body::from(body.to_string())), "application/json")
}

fn with_type(mut response: Response, content_type: &'static str) -> Response {
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_faults_and_other_names_none() {
        assert_eq!(Fault::parse("leak-key-mid"), Some(Fault::LeakKeyMid));
        assert_eq!(Fault::parse("big-body-3"), Some(Fault::BigBody(3)));
        assert_eq!(Fault::parse("long-line-50"), Some(Fault::LongLine(50)));
        assert_eq!(Fault::parse("drip-100"), Some(Fault::Drip(100)));
        assert_eq!(Fault::parse("big-error-x"), None);
        assert_eq!(Fault::parse("gpt-4o"), None);
    }
}
