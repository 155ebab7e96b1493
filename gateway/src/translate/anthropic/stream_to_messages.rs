//! Client side streaming: OpenAI `chat.completion.chunk` objects -> Anthropic SSE events.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{TokenUsage, stop_reason_from_finish};

/// Anthropic's error types; anything else in an upstream error frame is reported as `api_error`.
const ANTHROPIC_ERROR_TYPES: [&str; 8] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
];

/// The content block currently open on the Anthropic side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(u64),
    Tool(u64),
}

/// Turns a chat completion chunk stream into Anthropic Messages stream events, one chunk at a time,
/// so Anthropic SDK clients can stream from any route.
///
/// The output is `(event name, data)` pairs; write each as `event: {name}\ndata: {json}\n\n`. The
/// event sequence follows Anthropic's: `message_start`, `ping`, then for each block
/// `content_block_start` / `content_block_delta`* / `content_block_stop` with consecutive indexes,
/// then `message_delta` and `message_stop` from [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct ChatToMessagesStream {
    model: String,
    message_id: String,
    started: bool,
    finished: bool,
    next_index: u64,
    open: Option<Open>,
    /// OpenAI tool call index -> Anthropic block index.
    tools: HashMap<u64, u64>,
    finish_reason: Option<String>,
    refused: bool,
    usage: TokenUsage,
}

impl ChatToMessagesStream {
    /// Starts a translation; `model` is the name the client asked for and `message_id` the `msg_...`
    /// id to report (the chunks' own ids are not known before the first one arrives).
    pub fn new(model: &str, message_id: &str) -> Self {
        Self {
            model: model.to_owned(),
            message_id: message_id.to_owned(),
            started: false,
            finished: false,
            next_index: 0,
            open: None,
            tools: HashMap::new(),
            finish_reason: None,
            refused: false,
            usage: TokenUsage::default(),
        }
    }

    /// Translates one chunk (or a usage-only chunk, or an error frame) into Anthropic events.
    ///
    /// The first call also emits `message_start` (usage `input_tokens` stays 0 until a usage chunk
    /// says otherwise; the final `message_delta` carries the real numbers) and `ping`. A frame with
    /// a top-level `error` becomes an Anthropic `error` event and ends the stream.
    pub fn feed(&mut self, chunk: &Value) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = TokenUsage::from_chat(usage);
        }
        self.start(&mut out);
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            self.close_open(&mut out);
            let error_type = error.get("type").and_then(Value::as_str).unwrap_or_default();
            let error_type =
                if ANTHROPIC_ERROR_TYPES.contains(&error_type) { error_type } else { "api_error" };
            let message = error.get("message").and_then(Value::as_str).unwrap_or("upstream stream failed");
            out.push(("error", json!({"type": "error", "error": {"type": error_type, "message": message}})));
            self.finished = true;
            return out;
        }
        let choices = chunk.get("choices").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        // Anthropic has one candidate per message; `n > 1` is not offered on /v1/messages.
        for choice in choices.iter().filter(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0) {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                self.text(text, &mut out);
            }
            if let Some(refusal) = delta.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty()) {
                self.refused = true;
                self.text(refusal, &mut out);
            }
            let tool_calls =
                delta.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            for (position, call) in tool_calls.iter().enumerate() {
                self.tool_call(call, position as u64, &mut out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_owned());
                self.close_open(&mut out);
            }
        }
        out
    }

    /// Ends the stream: closes any open block and emits `message_delta` (stop reason and the final
    /// usage, including `input_tokens` and cache numbers) and `message_stop`. Call it once the chat
    /// stream is over (`[DONE]` or end of body); later calls return nothing.
    pub fn finish(&mut self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.start(&mut out);
        self.close_open(&mut out);
        let stop_reason = match stop_reason_from_finish(self.finish_reason.as_deref(), !self.tools.is_empty())
        {
            "end_turn" if self.refused => "refusal",
            other => other,
        };
        out.push((
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": self.usage.to_anthropic(),
            }),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        self.finished = true;
        out
    }

    fn start(&mut self, out: &mut Vec<(&'static str, Value)>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut usage = self.usage;
        usage.output = 0;
        out.push((
            "message_start",
            json!({
                "type": "message_start",
                "message": {
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": usage.to_anthropic(),
                },
            }),
        ));
        out.push(("ping", json!({"type": "ping"})));
    }

    fn close_open(&mut self, out: &mut Vec<(&'static str, Value)>) {
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            out.push(("content_block_stop", json!({"type": "content_block_stop", "index": index})));
        }
    }

    fn open_block(&mut self, block: Value, out: &mut Vec<(&'static str, Value)>) -> u64 {
        self.close_open(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    fn text(&mut self, text: &str, out: &mut Vec<(&'static str, Value)>) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                let index = self.open_block(json!({"type": "text", "text": ""}), out);
                self.open = Some(Open::Text(index));
                index
            }
        };
        let delta = json!({"type": "text_delta", "text": text});
        out.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }

    fn tool_call(&mut self, call: &Value, position: u64, out: &mut Vec<(&'static str, Value)>) {
        let tool_index = call.get("index").and_then(Value::as_u64).unwrap_or(position);
        let function = call.get("function").unwrap_or(&Value::Null);
        let index = match self.tools.get(&tool_index) {
            Some(&index) => index,
            None => {
                let id = match call.get("id").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => format!("toolu_{}_{tool_index}", self.message_id.trim_start_matches("msg_")),
                };
                let name = function.get("name").and_then(Value::as_str).unwrap_or_default();
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let index = self.open_block(block, out);
                self.open = Some(Open::Tool(index));
                self.tools.insert(tool_index, index);
                index
            }
        };
        // Interleaved tool call deltas (rare) still go to their own block index.
        if let Some(arguments) = function.get("arguments").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            let delta = json!({"type": "input_json_delta", "partial_json": arguments});
            out.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
    }
}
