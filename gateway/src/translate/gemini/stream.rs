//! The chunks of `streamGenerateContent?alt=sse` as chat completion chunks: the role first, each
//! text part as a content delta, each function call as one whole tool call delta, the finish
//! reason when a candidate has one, and (from [`GeminiToChatStream::finish`]) the usage chunk,
//! from the last `usageMetadata` seen (each chunk carries the counts so far).

use serde_json::{Value, json};

use super::{finish_reason, usage_of};

pub struct GeminiToChatStream {
    model: String,
    id: String,
    created: u64,
    started: bool,
    /// Tool calls sent so far, per candidate (for their indexes and ids).
    calls: Vec<u64>,
    usage: Option<Value>,
}

impl GeminiToChatStream {
    pub fn new(model: &str, id: String, created: u64) -> GeminiToChatStream {
        GeminiToChatStream {
            model: model.to_owned(),
            id,
            created,
            started: false,
            calls: Vec::new(),
            usage: None,
        }
    }

    /// The chat chunks one Gemini chunk makes.
    pub fn feed(&mut self, chunk: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(0, json!({"role": "assistant", "content": ""}), None));
        }
        if let Some(usage) = usage_of(&chunk["usageMetadata"]) {
            self.usage = Some(usage);
        }
        for (position, candidate) in chunk["candidates"].as_array().into_iter().flatten().enumerate() {
            let index = candidate["index"].as_u64().unwrap_or(position as u64);
            let slot = usize::try_from(index).unwrap_or(usize::MAX).min(127);
            if self.calls.len() <= slot {
                self.calls.resize(slot + 1, 0);
            }
            for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
                if part["thought"] == true {
                    continue;
                }
                if let Some(text) = part["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(self.chunk(index, json!({"content": text}), None));
                }
                if let Some(call) = part.get("functionCall") {
                    let number = self.calls[slot];
                    self.calls[slot] += 1;
                    let id =
                        call["id"].as_str().map_or_else(|| format!("call_{index}_{number}"), str::to_owned);
                    let arguments = call.get("args").cloned().unwrap_or_else(|| json!({})).to_string();
                    let delta = json!({"tool_calls": [{"index": number, "id": id, "type": "function",
                                       "function": {"name": call["name"], "arguments": arguments}}]});
                    out.push(self.chunk(index, delta, None));
                }
            }
            if let Some(reason) = finish_reason(candidate["finishReason"].as_str(), self.calls[slot] > 0) {
                out.push(self.chunk(index, json!({}), Some(reason)));
            }
        }
        out
    }

    /// The usage chunk (`choices: []`), once the stream has ended.
    pub fn finish(&self) -> Option<Value> {
        let usage = self.usage.clone()?;
        Some(json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage}))
    }

    fn chunk(&self, index: u64, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    }
}
