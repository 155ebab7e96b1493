//! Chat completion chunks as the Responses API's typed stream events, in the order OpenAI sends
//! them: `response.created`, `response.in_progress`; per output item `output_item.added`, its
//! deltas (`content_part.added` and `output_text.delta` for text, `function_call_arguments.delta`
//! for a call), then its `.done` events; `response.completed` (or `response.incomplete`) with the
//! whole response. Every event carries its `type` and a `sequence_number`.

use serde_json::{Value, json};

use super::{Echo, function_call_item, incomplete, message_item, output_text, usage_of_chat};

/// The text item being streamed.
struct OpenText {
    output_index: usize,
    text: String,
}

/// A function call being streamed (by its index among the chunk's `tool_calls`).
struct OpenCall {
    chat_index: u64,
    output_index: usize,
    call_id: String,
    name: String,
    arguments: String,
}

pub struct ChatToResponsesStream {
    echo: Echo,
    item_id: String,
    sequence: u64,
    text: Option<OpenText>,
    calls: Vec<OpenCall>,
    items: usize,
    usage: Option<Value>,
    finish_reason: Option<String>,
}

impl ChatToResponsesStream {
    /// `item_id`: the id of the message item, should the reply have text.
    pub fn new(echo: Echo, item_id: String) -> ChatToResponsesStream {
        ChatToResponsesStream {
            echo,
            item_id,
            sequence: 0,
            text: None,
            calls: Vec::new(),
            items: 0,
            usage: None,
            finish_reason: None,
        }
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<(&'static str, Value)> {
        let response = self.echo.response("in_progress", Vec::new(), None, None);
        vec![
            self.event("response.created", json!({"response": response.clone()})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    /// The events one chat chunk makes.
    pub fn feed(&mut self, chunk: &Value) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        if let Some(usage) = chunk.get("usage").and_then(usage_of_chat) {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk["choices"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["index"].as_u64().unwrap_or(0) == 0))
        else {
            return events;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            if self.text.is_none() {
                let output_index = self.next_item();
                self.text = Some(OpenText { output_index, text: String::new() });
                let item = message_item(&self.item_id, "in_progress", Vec::new());
                events.push(self.event(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": item}),
                ));
                let part = output_text("");
                events.push(
                    self.event(
                        "response.content_part.added",
                        self.at_text(output_index, json!({"part": part})),
                    ),
                );
            }
            if let Some(open) = self.text.as_mut() {
                open.text.push_str(text);
                let output_index = open.output_index;
                let delta = json!({"delta": text, "logprobs": []});
                events.push(self.event("response.output_text.delta", self.at_text(output_index, delta)));
            }
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            events.extend(self.call_delta(call));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        events
    }

    /// The `.done` events of the open items, then `response.completed` (or `response.incomplete`).
    pub fn finish(&mut self) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        let mut output: Vec<(usize, Value)> = Vec::new();
        if let Some(open) = self.text.take() {
            let part = output_text(&open.text);
            let index = open.output_index;
            let done = json!({"text": open.text, "logprobs": []});
            events.push(self.event("response.output_text.done", self.at_text(index, done)));
            events.push(
                self.event("response.content_part.done", self.at_text(index, json!({"part": part.clone()}))),
            );
            let item = message_item(&self.item_id, "completed", vec![part]);
            events.push(
                self.event("response.output_item.done", json!({"output_index": index, "item": item.clone()})),
            );
            output.push((index, item));
        }
        for call in std::mem::take(&mut self.calls) {
            let item = function_call_item(&call.call_id, &call.name, &call.arguments, "completed");
            let done = json!({"item_id": item["id"], "output_index": call.output_index, "arguments": call.arguments});
            events.push(self.event("response.function_call_arguments.done", done));
            events.push(self.event(
                "response.output_item.done",
                json!({"output_index": call.output_index, "item": item.clone()}),
            ));
            output.push((call.output_index, item));
        }
        output.sort_by_key(|(index, _)| *index);
        let reason = incomplete(self.finish_reason.as_deref());
        let status = if reason.is_some() { "incomplete" } else { "completed" };
        let items = output.into_iter().map(|(_, item)| item).collect();
        let response = self.echo.response(status, items, self.usage.clone(), reason);
        let kind = if reason.is_some() { "response.incomplete" } else { "response.completed" };
        events.push(self.event(kind, json!({"response": response})));
        events
    }

    fn call_delta(&mut self, call: &Value) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        let chat_index = call["index"].as_u64().unwrap_or(0);
        let function = &call["function"];
        if !self.calls.iter().any(|c| c.chat_index == chat_index) {
            let output_index = self.next_item();
            let call_id = call["id"].as_str().unwrap_or_default().to_owned();
            let name = function["name"].as_str().unwrap_or_default().to_owned();
            let item = function_call_item(&call_id, &name, "", "in_progress");
            events.push(
                self.event("response.output_item.added", json!({"output_index": output_index, "item": item})),
            );
            self.calls.push(OpenCall { chat_index, output_index, call_id, name, arguments: String::new() });
        }
        let Some(open) = self.calls.iter_mut().find(|c| c.chat_index == chat_index) else { return events };
        if let Some(arguments) = function["arguments"].as_str().filter(|a| !a.is_empty()) {
            open.arguments.push_str(arguments);
            let delta = json!({"item_id": format!("fc_{}", open.call_id), "output_index": open.output_index, "delta": arguments});
            events.push(self.event("response.function_call_arguments.delta", delta));
        }
        events
    }

    fn next_item(&mut self) -> usize {
        self.items += 1;
        self.items - 1
    }

    /// `fields` with the text part's address: item, output index, content index.
    fn at_text(&self, output_index: usize, mut fields: Value) -> Value {
        fields["item_id"] = json!(self.item_id);
        fields["output_index"] = json!(output_index);
        fields["content_index"] = json!(0);
        fields
    }

    fn event(&mut self, kind: &'static str, mut data: Value) -> (&'static str, Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        (kind, data)
    }
}
