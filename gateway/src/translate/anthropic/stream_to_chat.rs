//! Provider side streaming: Anthropic SSE events -> OpenAI `chat.completion.chunk` objects.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{
    TokenUsage, TranslateError, chat_id_from_message_id, finish_reason_from_stop, now_unix, structured,
};

/// What an Anthropic content block index turned into on the chat side.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// A tool call, with its index in OpenAI's `tool_calls` array.
    Tool(u64),
    /// A structured output's forced tool call: its input is the reply's text.
    Answer,
    Thinking,
    Other,
}

/// Turns an Anthropic Messages event stream into chat completion chunks, one event at a time, so an
/// Anthropic route can serve streaming chat clients without buffering.
///
/// The caller parses the SSE framing and feeds each event's name and JSON data. The last output
/// (on `message_stop`) is a usage chunk with `"choices": []`, in the same usage shape as
/// [`messages_response_to_chat`](super::messages_response_to_chat); forward it only if the client
/// asked for `stream_options.include_usage`, but always use it for metering.
#[derive(Debug, Clone)]
pub struct MessagesToChatStream {
    model: String,
    id: String,
    created: u64,
    started: bool,
    usage: TokenUsage,
    blocks: HashMap<u64, Block>,
    next_tool_index: u64,
}

impl MessagesToChatStream {
    /// Starts a translation; `model` is the client-facing model name put on every chunk.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            id: chat_id_from_message_id(""),
            created: now_unix(),
            started: false,
            usage: TokenUsage::default(),
            blocks: HashMap::new(),
            next_tool_index: 0,
        }
    }

    /// Translates one Anthropic event (`event:` name and parsed `data:`) into zero or more chunks.
    ///
    /// `message_start` -> the role chunk; text and `input_json_delta` deltas -> content and
    /// `tool_calls` deltas; `message_delta` -> the `finish_reason` chunk; `message_stop` -> the
    /// usage chunk; `ping`, block stops and unknown events -> nothing; `error` ->
    /// [`TranslateError::Upstream`]. An empty event name falls back to the data's `type`.
    pub fn feed(&mut self, event: &str, data: &Value) -> Result<Vec<Value>, TranslateError> {
        let kind = if event.is_empty() {
            data.get("type").and_then(Value::as_str).unwrap_or_default()
        } else {
            event
        };
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                let message = data.get("message").unwrap_or(&Value::Null);
                if let Some(id) = message.get("id").and_then(Value::as_str) {
                    self.id = chat_id_from_message_id(id);
                }
                self.usage = TokenUsage::from_anthropic(message.get("usage").unwrap_or(&Value::Null));
                self.start(&mut out);
            }
            "content_block_start" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or_default();
                let block = data.get("content_block").unwrap_or(&Value::Null);
                self.start(&mut out);
                self.block_start(index, block, &mut out);
            }
            "content_block_delta" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or_default();
                let delta = data.get("delta").unwrap_or(&Value::Null);
                self.start(&mut out);
                self.block_delta(index, delta, &mut out);
            }
            "message_delta" => {
                self.usage.merge_anthropic(data.get("usage").unwrap_or(&Value::Null));
                let stop_reason =
                    data.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str);
                self.start(&mut out);
                let answered =
                    self.next_tool_index == 0 && self.blocks.values().any(|b| matches!(b, Block::Answer));
                let finish = match finish_reason_from_stop(stop_reason) {
                    "tool_calls" if answered => "stop",
                    reason => reason,
                };
                out.push(self.chunk(json!({}), Some(finish)));
            }
            "message_stop" => out.push(self.usage_chunk()),
            "error" => {
                let error = data.get("error").unwrap_or(&Value::Null);
                let field = |key: &str, default: &str| {
                    error.get(key).and_then(Value::as_str).unwrap_or(default).to_owned()
                };
                return Err(TranslateError::Upstream {
                    error_type: field("type", "api_error"),
                    message: field("message", "upstream stream failed"),
                });
            }
            // ping, content_block_stop, and event types added to the API later.
            _ => {}
        }
        Ok(out)
    }

    /// The usage seen so far, in the chat shape of the final usage chunk. For metering a stream that
    /// broke off before `message_stop` (input and cache numbers arrive with `message_start`).
    pub fn usage(&self) -> Value {
        self.usage.to_chat()
    }

    /// Emits the role chunk once, even if the upstream skipped `message_start`.
    fn start(&mut self, out: &mut Vec<Value>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn block_start(&mut self, index: u64, block: &Value, out: &mut Vec<Value>) {
        let str_field = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default();
        let kind = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                self.push_text(str_field("text"), out);
                Block::Text
            }
            Some("thinking") => {
                self.push_reasoning(str_field("thinking"), out);
                Block::Thinking
            }
            Some("tool_use") if structured::is_answer(block) => {
                if let Some(Value::Object(input)) =
                    block.get("input").filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                {
                    self.push_text(&Value::Object(input.clone()).to_string(), out);
                }
                Block::Answer
            }
            Some("tool_use") => {
                let tool_index = self.next_tool_index;
                self.next_tool_index += 1;
                // Streams start with `input: {}` and send the JSON as deltas; anything else is whole.
                let arguments = match block.get("input") {
                    Some(Value::Object(input)) if !input.is_empty() => {
                        Value::Object(input.clone()).to_string()
                    }
                    _ => String::new(),
                };
                let call = json!({
                    "index": tool_index,
                    "id": str_field("id"),
                    "type": "function",
                    "function": {"name": str_field("name"), "arguments": arguments},
                });
                out.push(self.chunk(json!({"tool_calls": [call]}), None));
                Block::Tool(tool_index)
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, kind);
    }

    fn block_delta(&mut self, index: u64, delta: &Value, out: &mut Vec<Value>) {
        let str_field = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or_default();
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => self.push_text(str_field("text"), out),
            Some("thinking_delta") => self.push_reasoning(str_field("thinking"), out),
            Some("input_json_delta") => {
                let partial = str_field("partial_json");
                match (self.blocks.get(&index), partial.is_empty()) {
                    (Some(Block::Tool(tool_index)), false) => {
                        let call = json!({"index": tool_index, "function": {"arguments": partial}});
                        out.push(self.chunk(json!({"tool_calls": [call]}), None));
                    }
                    (Some(Block::Answer), false) => self.push_text(partial, out),
                    _ => {}
                }
            }
            // signature_delta, citations_delta: nothing in chat completions carries them.
            _ => {}
        }
    }

    fn push_text(&self, text: &str, out: &mut Vec<Value>) {
        if !text.is_empty() {
            out.push(self.chunk(json!({"content": text}), None));
        }
    }

    fn push_reasoning(&self, text: &str, out: &mut Vec<Value>) {
        if !text.is_empty() {
            out.push(self.chunk(json!({"reasoning_content": text}), None));
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        })
    }

    fn usage_chunk(&self) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": self.usage(),
        })
    }
}
