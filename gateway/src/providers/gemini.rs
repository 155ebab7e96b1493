//! Google Gemini upstreams (`generateContent`, and `streamGenerateContent?alt=sse` for streams),
//! translated to and from the canonical chat form ([`crate::translate::gemini`]). The model is
//! part of the URL, so each call builds its endpoint from the backend's base.

use bytes::Bytes;
use futures::StreamExt;
use http::HeaderMap;
use serde_json::Value;
use switchboard_crds::config::BackendConfig;

use super::{
    Call, Chunk, ChunkStream, Completion, MAX_COUNT_BYTES, Reply, TokenCount, Upstream, UpstreamError, body,
    body_bytes, secret_header, sse,
};
use crate::translate::gemini::{GeminiToChatStream, chat_request_to_gemini, gemini_response_to_chat};

pub struct Gemini {
    /// The API's base (`…/v1beta`): its client, key and authority; calls go to `…/models/<model>:<method>`.
    pub(super) base: Upstream,
    url: String,
    headers: HeaderMap,
}

impl Gemini {
    pub(super) fn new(backend: &BackendConfig, api_key: Option<String>) -> Result<Gemini, String> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &api_key {
            headers.insert("x-goog-api-key", secret_header(key)?);
        }
        let base = Upstream::new(backend, "", api_key, headers.clone())?;
        let url = backend.base_url.clone().unwrap_or_default();
        Ok(Gemini { base, url, headers })
    }

    /// The endpoint of `model`'s `method`; a model name that is not a plain path segment is refused.
    fn upstream_for(&self, model: &str, method: &str) -> Result<Upstream, UpstreamError> {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if model.is_empty() || !model.chars().all(plain) {
            return Err(UpstreamError::Untranslatable(format!("{model:?} is not a Gemini model name")));
        }
        let url = format!("{}/models/{model}:{method}", self.url);
        let endpoint = self
            .base
            .client
            .endpoint(&url, self.headers.clone())
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        Ok(Upstream { client: self.base.client.clone(), endpoint, api_key: None })
    }

    /// Gemini's own count of the request's input tokens (`countTokens`).
    pub(super) async fn count_tokens(&self, count: TokenCount<'_>) -> Result<u64, UpstreamError> {
        let model = count.model;
        let mut request = chat_request_to_gemini(&count.request.to_value())
            .map_err(|e| UpstreamError::Untranslatable(e.to_string()))?;
        // `countTokens` takes the contents, instruction and tools of a generate request, not its config.
        if let Some(object) = request.as_object_mut() {
            object.remove("generationConfig");
            object.remove("toolConfig");
            object.insert("model".into(), Value::String(format!("models/{model}")));
        }
        let body = Bytes::from(serde_json::json!({"generateContentRequest": request}).to_string());
        let upstream = self.upstream_for(model, "countTokens")?;
        let response = upstream.post_body(body, count.timeout, count.limits, &[]).await?;
        let bytes = body::read_limited(response, MAX_COUNT_BYTES, count.timeout).await?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Counted {
            total_tokens: u64,
        }
        let counted: Counted = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("invalid token count: {e}")))?;
        Ok(counted.total_tokens.min(crate::usage::MAX_TOKENS))
    }

    pub(super) async fn send(&self, call: Call<'_>) -> Result<Reply, UpstreamError> {
        let method = if call.stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        let response = self.upstream_for(call.model, method)?.post(&call).await?;
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        let created = crate::db::now_ms().max(0) as u64 / 1000;
        let model = call.model.to_owned();
        if !call.stream {
            let body = body_bytes(response, &call).await?;
            let reply: Value = serde_json::from_slice(&body)
                .map_err(|e| UpstreamError::Protocol(format!("invalid response body: {e}")))?;
            return Completion::from_value(&gemini_response_to_chat(&reply, &model, &id, created))
                .map(Reply::Complete);
        }
        let events = sse::events(response.body, &call);
        let chunks = async_stream::stream! {
            let mut translator = GeminiToChatStream::new(&model, id, created);
            let mut events = Box::pin(events);
            while let Some(event) = events.next().await {
                let data = match event.and_then(|event| parse(&event.data)) {
                    Ok(data) => data,
                    Err(error) => {
                        yield Err(error);
                        return;
                    }
                };
                for chunk in translator.feed(&data) {
                    yield Chunk::from_value(&chunk);
                }
            }
            if let Some(usage) = translator.finish() {
                yield Chunk::from_value(&usage);
            }
        };
        Ok(Reply::Stream(Box::pin(chunks) as ChunkStream))
    }
}

/// One streamed event's JSON; an `error` object sent mid-stream is the upstream failing.
fn parse(data: &Bytes) -> Result<Value, UpstreamError> {
    let value: Value = serde_json::from_slice(data)
        .map_err(|e| UpstreamError::Protocol(format!("invalid stream event: {e}")))?;
    if let Some(error) = value.get("error") {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("stream error").to_owned();
        return Err(UpstreamError::Status { status: 502, message, retry_after: None });
    }
    Ok(value)
}
