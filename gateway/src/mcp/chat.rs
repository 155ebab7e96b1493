//! The `chat` tool: one persona turn, run exactly as `/v1/chat/completions` runs it.
//!
//! The tool builds the OpenAI-form request a chat completions client would send for
//! `model: "persona/<name>"` and hands it to the same [`crate::pipeline::run`], so rate limits,
//! budgets, the concurrency queue, routing with fallback, the ledger (endpoint `mcp`) and the
//! persona's memory and mood all apply as they do on the OpenAI API.

use http::HeaderMap;
use serde_json::{Value, json};
use switchboard_crds::config::PersonaConfig;

use super::calls::Call;
use super::outcome::ToolError;
use super::tools::{ChatArgs, ToolName, required};
use crate::error::ApiError;
use crate::exchange::{Endpoint, Served, ServedReply};
use crate::persona::turn::MODEL_PREFIX;
use crate::pipeline;

impl Call<'_> {
    pub async fn chat(&self, args: ChatArgs, headers: &HeaderMap) -> Result<Value, ToolError> {
        let ran = match self.persona(&args.persona) {
            Ok(persona) => self.run_chat(persona, args, headers).await.map(|ran| (persona, ran)),
            Err(error) => Err(error),
        };
        // Once the exchange has begun it counts the request in the metrics; before, the tool does.
        let (persona, (exchange, served)) =
            ran.inspect_err(|error| self.count(ToolName::Chat, error.status()))?;
        let body = match served.map_err(ToolError::Api)? {
            Served { reply: ServedReply::Complete(body), .. } => body,
            // Not asked for; dropping the stream accounts the exchange.
            Served { reply: ServedReply::Stream(_), .. } => {
                let error = ApiError::Internal("the backend streamed an unrequested reply".into());
                return Err(ToolError::Api(error));
            }
        };
        let usage = exchange.usage_of(&body);
        let body = body.to_value().map_err(|e| ToolError::Api(e.into_api_error()))?;
        let message = body.pointer("/choices/0/message");
        let text = |field: &str| message.and_then(|m| m.get(field)).and_then(Value::as_str);
        // A refusal is the model's documented way of declining: it is the reply then.
        let reply = text("content").or_else(|| text("refusal")).unwrap_or_default();
        Ok(json!({
            "persona": persona.name,
            "reply": reply,
            "model": persona.model,
            "requestId": exchange.id,
            "finishReason": body.pointer("/choices/0/finish_reason"),
            "usage": {
                "inputTokens": usage.input + usage.cached_input + usage.cache_write,
                "outputTokens": usage.output,
                "totalTokens": usage.total(),
            },
        }))
    }

    /// The persona turn's request, run through the pipeline.
    async fn run_chat(
        &self,
        persona: &PersonaConfig,
        args: ChatArgs,
        headers: &HeaderMap,
    ) -> Result<pipeline::Ran, ToolError> {
        let message = required(ToolName::Chat, "message", &args.message)?;
        let mut messages: Vec<Value> = args
            .history
            .iter()
            .map(|turn| json!({"role": turn.role.as_str(), "content": turn.content}))
            .collect();
        messages.push(json!({"role": "user", "content": message}));
        let mut request = json!({
            "model": format!("{MODEL_PREFIX}{}", persona.name),
            "messages": messages,
            "stream": false,
        });
        if let Some(subject) = args.subject.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            request["user"] = json!(subject);
        }
        pipeline::run(self.state, self.auth.clone(), Ok(request), Endpoint::Mcp, headers)
            .await
            .map_err(ToolError::Api)
    }
}
