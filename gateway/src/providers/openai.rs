//! OpenAI-compatible Chat Completions upstreams: OpenAI, llama.cpp, vLLM and the like.

use futures::StreamExt;
use serde_json::json;

use crate::translate::anthropic::strip_cache_control;

use super::{Call, Chunk, ChunkStream, Completion, Reply, UpstreamError, body_bytes, send_checked, sse};

pub struct OpenAi {
    pub(super) client: reqwest::Client,
    /// The endpoint's full URL.
    pub(super) url: reqwest::Url,
    pub(super) api_key: Option<String>,
}

impl OpenAi {
    pub(super) async fn send(&self, mut call: Call) -> Result<Reply, UpstreamError> {
        // Anthropic-style cache markers (from /v1/messages clients) are unknown to OpenAI's API.
        strip_cache_control(&mut call.body);
        if call.stream {
            // Always ask for usage so streamed requests are costed exactly; the gateway strips the
            // usage chunk again if the client did not ask for it.
            call.body["stream_options"] = json!({"include_usage": true});
        }
        let mut request = self.client.post(self.url.clone()).timeout(call.timeout).json(&call.body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = send_checked(request, call.timeout).await?;
        if !call.stream {
            let body = body_bytes(response, call.timeout).await?;
            return Completion::parse(body).map(Reply::Complete);
        }
        let timeout = call.timeout;
        let chunks = sse::events(response)
            .take_while(|event| {
                futures::future::ready(!matches!(event, Ok(e) if e.data.trim_ascii() == b"[DONE]"))
            })
            .filter_map(move |event| {
                futures::future::ready(match event {
                    Ok(event) if event.data.trim_ascii().is_empty() => None,
                    Ok(event) => Some(Chunk::parse(event.data)),
                    Err(error) => Some(Err(UpstreamError::from_reqwest(&error, timeout))),
                })
            });
        Ok(Reply::Stream(Box::pin(chunks) as ChunkStream))
    }
}
