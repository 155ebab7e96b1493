//! What a whole reply must pass before it goes out: the JSON schema the client asked for, and
//! the policies' reply guardrails.

use serde_json::Value;

use super::Exchange;
use crate::error::ApiError;
use crate::guardrails::reply::Tally;
use crate::providers::{Completion, UpstreamError};

impl Exchange {
    /// A whole reply as the policies' reply guardrails let it through: redacted, or withheld.
    pub(super) fn guard_reply(&self, body: Completion) -> Result<Completion, ApiError> {
        let Some(guard) = &self.reply_guard else { return Ok(body) };
        let mut reply = body.to_value().map_err(UpstreamError::into_api_error)?;
        let mut tally = Tally::default();
        let checked = guard.complete(&mut reply, &mut tally);
        self.reply_hits(&tally);
        checked.map_err(ApiError::PolicyDenied)?;
        if !tally.redacted_any() {
            return Ok(body);
        }
        Completion::from_value(&reply).map_err(UpstreamError::into_api_error)
    }

    /// Records what the reply guardrails found and did, in the metrics and the request log.
    pub(super) fn reply_hits(&self, tally: &Tally) {
        let mut hits = Vec::new();
        tally.record(&mut hits, &self.metrics);
        self.trail.guardrails(hits);
    }

    /// Checks a complete reply against the requested JSON schema. A refusal passes: it is the
    /// model's documented way of declining, and the SDKs surface it.
    pub(super) fn check_structured(&self, body: &Completion) -> Result<(), String> {
        let Some(schema) = &self.schema else { return Ok(()) };
        let body = body.to_value().map_err(|e| e.to_string())?;
        let message = body.pointer("/choices/0/message");
        if message.and_then(|m| m.get("refusal")).is_some_and(Value::is_string) {
            return Ok(());
        }
        let text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .ok_or_else(|| "the reply has no text content".to_owned())?;
        let reply: Value = serde_json::from_str(text).map_err(|e| format!("the reply is not JSON: {e}"))?;
        match schema.iter_errors(&reply).next() {
            None => Ok(()),
            Some(error) => Err(format!("{error} (at `{}`)", error.instance_path())),
        }
    }
}
