//! Anthropic Messages upstreams, translated to and from the canonical OpenAI form.

use futures::StreamExt;
use serde_json::Value;

use super::{
    Call, Chunk, ChunkStream, Completion, MAX_COUNT_BYTES, Reply, TokenCount, Upstream, UpstreamError, body,
    body_bytes, sse,
};
use crate::translate::anthropic::{MessagesToChatStream, messages_response_to_chat};

/// The API version header Anthropic requires.
pub(super) const ANTHROPIC_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    pub(super) messages: Upstream,
    /// Boxed: rarely used, and an upstream's headers are large.
    pub(super) count_tokens: Box<Upstream>,
}

impl Anthropic {
    /// Anthropic's count of the request's input tokens.
    pub(super) async fn count_tokens(&self, count: TokenCount<'_>) -> Result<u64, UpstreamError> {
        let TokenCount { anthropic_body, timeout, limits, .. } = count;
        let response = self.count_tokens.post_body(anthropic_body, timeout, limits, &[]).await?;
        let bytes = body::read_limited(response, MAX_COUNT_BYTES, timeout).await?;
        #[derive(serde::Deserialize)]
        struct Counted {
            input_tokens: u64,
        }
        let counted: Counted = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("invalid token count: {e}")))?;
        Ok(counted.input_tokens.min(crate::usage::MAX_TOKENS))
    }

    pub(super) async fn send(&self, call: Call<'_>) -> Result<Reply, UpstreamError> {
        let model = call.model.to_owned();
        let response = self.messages.post(&call).await?;
        if !call.stream {
            let body = body_bytes(response, &call).await?;
            let message: Value = serde_json::from_slice(&body)
                .map_err(|e| UpstreamError::Protocol(format!("invalid response body: {e}")))?;
            return Completion::from_value(&messages_response_to_chat(&message, &model)).map(Reply::Complete);
        }
        let mut translator = MessagesToChatStream::new(&model);
        let chunks = sse::events(response.body, &call).flat_map(move |event| {
            let out: Vec<Result<Chunk, UpstreamError>> = match event {
                Ok(event) => match serde_json::from_slice::<Value>(&event.data) {
                    Ok(data) => match translator.feed(&event.name, &data) {
                        Ok(chunks) => chunks.iter().map(Chunk::from_value).collect(),
                        Err(e) => vec![Err(UpstreamError::Status {
                            status: 502,
                            message: e.to_string(),
                            retry_after: None,
                        })],
                    },
                    Err(e) => vec![Err(UpstreamError::Protocol(format!("invalid stream event: {e}")))],
                },
                Err(error) => vec![Err(error)],
            };
            futures::stream::iter(out)
        });
        Ok(Reply::Stream(Box::pin(chunks) as ChunkStream))
    }
}
