//! What an exchange carries: the request of one of the model APIs, read the same way by
//! admission (estimates, budgets, policies) whichever API it is.

use serde_json::Value;
use switchboard_crds::resources::ModelKind;

use crate::chat_request::{ChatRequest, Message};
use crate::completions_request::CompletionsRequest;
use crate::embeddings_request::EmbeddingsRequest;
use crate::error::ApiError;
use crate::usage::input_tokens_at_most;

/// Output tokens reserved against budgets and token limits when a chat request sets no `max_tokens`.
const DEFAULT_OUTPUT_RESERVATION: u64 = 4096;

/// A request as admitted: a chat (Chat Completions, Messages, Responses, MCP, personas), a
/// legacy completion, or an embedding.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    Chat(&'a ChatRequest),
    Completions(&'a CompletionsRequest),
    Embeddings(&'a EmbeddingsRequest),
}

impl<'a> Payload<'a> {
    /// The GenAI operation the request asks for.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Chat(_) => "chat",
            Self::Completions(_) => "text_completion",
            Self::Embeddings(_) => "embeddings",
        }
    }

    pub fn model(&self) -> &'a str {
        match self {
            Self::Chat(request) => &request.model,
            Self::Completions(request) => &request.model,
            Self::Embeddings(request) => &request.model,
        }
    }

    pub fn stream(&self) -> bool {
        match self {
            Self::Chat(request) => request.stream(),
            Self::Completions(request) => request.stream(),
            Self::Embeddings(_) => false,
        }
    }

    pub fn include_usage(&self) -> bool {
        let options = match self {
            Self::Chat(request) => request.field("stream_options"),
            Self::Completions(request) => request.field("stream_options"),
            Self::Embeddings(_) => None,
        };
        options.and_then(|o| o.get("include_usage")).and_then(Value::as_bool) == Some(true)
    }

    /// The output tokens the client asked for at most, if it said.
    pub fn asked_output(&self) -> Option<u64> {
        match self {
            Self::Chat(request) => request.asked_output(),
            Self::Completions(request) => Some(request.max_tokens()),
            Self::Embeddings(_) => None,
        }
    }

    /// How many answers the request asks for (`n`): each may be as long as the output limit.
    pub fn choices(&self) -> u64 {
        match self {
            Self::Chat(request) => request.field("n").and_then(Value::as_u64).unwrap_or(1).max(1),
            Self::Completions(request) => request.choices(),
            Self::Embeddings(_) => 1,
        }
    }

    /// The most output tokens the request may produce in all answers together, if it set a limit.
    pub fn total_output(&self) -> Option<u64> {
        self.asked_output().map(|tokens| tokens.saturating_mul(self.choices()))
    }

    /// Output tokens reserved against budgets and token limits: what the client asked for (or a
    /// default) in every answer it asked for; none for an embedding, which has no output tokens.
    pub fn reserved_output(&self) -> u64 {
        match self {
            Self::Chat(request) => {
                let per_answer = request.asked_output().unwrap_or(DEFAULT_OUTPUT_RESERVATION);
                per_answer.saturating_mul(self.choices())
            }
            Self::Completions(request) => request.max_tokens().saturating_mul(self.choices()),
            Self::Embeddings(_) => 0,
        }
    }

    /// Bytes of prompt text, for estimates.
    pub fn prompt_chars(&self) -> usize {
        match self {
            Self::Chat(request) => request.messages.iter().map(Message::text_len).sum(),
            Self::Completions(request) => request.prompt.text_len(),
            Self::Embeddings(request) => request.text_len(),
        }
    }

    /// The most input tokens the request can be charged for (the budget reservation).
    pub fn input_tokens_at_most(&self) -> u64 {
        match self {
            Self::Chat(request) => input_tokens_at_most(request),
            Self::Completions(request) => {
                let suffix = request.field("suffix").and_then(Value::as_str).map_or(0, str::len) as u64;
                request.prompt.tokens_at_most().saturating_add(suffix)
            }
            Self::Embeddings(request) => request.tokens_at_most(),
        }
    }

    /// The end user, as the client names them.
    pub fn user(&self) -> Option<&'a str> {
        match self {
            Self::Chat(request) => request.user.as_deref(),
            Self::Completions(request) => request.user.as_deref(),
            Self::Embeddings(request) => request.user.as_deref(),
        }
    }

    /// The client's `metadata`, for policies.
    pub fn metadata(&self) -> Option<&'a Value> {
        match self {
            Self::Chat(request) => request.field("metadata"),
            Self::Completions(request) => request.field("metadata"),
            Self::Embeddings(request) => request.rest.get("metadata").filter(|value| !value.is_null()),
        }
    }

    /// The chat request, when it is one (structured outputs, the cache, captured content).
    pub fn chat(&self) -> Option<&'a ChatRequest> {
        match self {
            Self::Chat(request) => Some(request),
            Self::Completions(_) | Self::Embeddings(_) => None,
        }
    }

    /// Refuses a model of the other kind, saying which API serves it.
    pub fn check_kind(&self, kind: ModelKind) -> Result<(), ApiError> {
        let model = self.model();
        let problem = match (self, kind) {
            (Self::Chat(_) | Self::Completions(_), ModelKind::Embedding) => {
                format!("model {model:?} is an embedding model: call POST /v1/embeddings")
            }
            (Self::Embeddings(_), ModelKind::Chat) => {
                format!("model {model:?} is a chat model, not an embedding model")
            }
            _ => return Ok(()),
        };
        Err(ApiError::BadRequest(problem, Some("model_not_supported")))
    }
}

impl Governed for CompletionsRequest {
    fn payload(&self) -> Payload<'_> {
        Payload::Completions(self)
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        self.prompt.texts_mut().collect()
    }

    fn cap_output(&mut self, cap: u64) {
        self.max_tokens = Some(self.max_tokens().min(cap));
    }
}

/// A request the policies govern: read as a [`Payload`], its text redacted in place, its output
/// capped.
pub trait Governed {
    fn payload(&self) -> Payload<'_>;
    fn texts_mut(&mut self) -> Vec<&mut String>;
    /// Lowers the output the request asks for to `cap` tokens at most.
    fn cap_output(&mut self, cap: u64);
}

impl Governed for ChatRequest {
    fn payload(&self) -> Payload<'_> {
        Payload::Chat(self)
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        self.messages.iter_mut().flat_map(Message::texts_mut).collect()
    }

    fn cap_output(&mut self, cap: u64) {
        let mut capped = false;
        for asked in [&mut self.max_completion_tokens, &mut self.max_tokens].into_iter().flatten() {
            capped = true;
            *asked = (*asked).min(cap);
        }
        if !capped {
            self.max_tokens = Some(cap);
        }
    }
}

impl Governed for EmbeddingsRequest {
    fn payload(&self) -> Payload<'_> {
        Payload::Embeddings(self)
    }

    fn texts_mut(&mut self) -> Vec<&mut String> {
        self.input.texts_mut().collect()
    }

    /// An embedding has no output to cap.
    fn cap_output(&mut self, _cap: u64) {}
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_answer_asked_for_is_reserved() {
        let request = |extra: Value| {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            ChatRequest::parse(body).unwrap()
        };
        let one = request(json!({"max_tokens": 10}));
        let many = request(json!({"max_tokens": 10, "n": 4}));
        let unlimited = request(json!({"n": 3}));
        assert_eq!(Payload::Chat(&one).reserved_output(), 10);
        assert_eq!(
            (Payload::Chat(&many).reserved_output(), Payload::Chat(&many).total_output()),
            (40, Some(40))
        );
        assert_eq!(Payload::Chat(&unlimited).reserved_output(), 3 * DEFAULT_OUTPUT_RESERVATION);
        assert_eq!(Payload::Chat(&unlimited).total_output(), None);
    }
}
