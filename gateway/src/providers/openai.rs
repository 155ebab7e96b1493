//! OpenAI-compatible upstreams (OpenAI, llama.cpp, vLLM and the like): Chat Completions, legacy
//! completions and embeddings.

use futures::StreamExt;

use super::{Call, Chunk, ChunkStream, Completion, Reply, Upstream, UpstreamError, body_bytes, sse};
use crate::payload::Payload;

pub struct OpenAi {
    pub(super) chat: Upstream,
    /// Boxed: rarely used, and an upstream's headers are large.
    pub(super) embeddings: Box<Upstream>,
    pub(super) completions: Box<Upstream>,
}

impl OpenAi {
    /// Sends a chat or a legacy completion (whole or streamed), or an embeddings request. Replies
    /// and chunks of every kind are relayed as they came, read for their usage and text length.
    pub(super) async fn send(&self, call: Call<'_>) -> Result<Reply, UpstreamError> {
        let upstream = match call.request {
            Payload::Chat(_) => &self.chat,
            Payload::Embeddings(_) => &self.embeddings,
            Payload::Completions(_) => &self.completions,
        };
        let response = upstream.post(&call).await?;
        if !call.stream {
            let body = body_bytes(response, &call).await?;
            return Completion::parse(body).map(Reply::Complete);
        }
        let chunks = sse::events(response.body, &call)
            .take_while(|event| {
                futures::future::ready(!matches!(event, Ok(e) if e.data.trim_ascii() == b"[DONE]"))
            })
            .filter_map(move |event| {
                futures::future::ready(match event {
                    Ok(event) if event.data.trim_ascii().is_empty() => None,
                    Ok(event) => Some(Chunk::parse(event.data)),
                    Err(error) => Some(Err(error)),
                })
            });
        Ok(Reply::Stream(Box::pin(chunks) as ChunkStream))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use switchboard_crds::config::BackendConfig;
    use switchboard_crds::resources::ProviderKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::{Call, Provider, Reply, WireFormat, encode};
    use crate::payload::Payload;

    /// Key order, number spelling and escapes that a parse into a `Value` and back would change.
    const BODY: &str = r#"{"usage":{"prompt_tokens":7,"completion_tokens":2},"id":"c1","choices":[{"message":{"content":"caf\u00e9 ok","role":"assistant"},"logprobs":{"content":[{"logprob":-1.0e-7}]}}]}"#;

    /// An upstream that answers one request with `BODY`.
    async fn upstream() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 64 * 1024];
            let _ = socket.read(&mut request).await.unwrap();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
                BODY.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            // Drain what is left of the request until the client hangs up: closing with unread
            // bytes would reset the connection before the client has read the reply.
            let _ = socket.read_to_end(&mut Vec::new()).await;
        });
        format!("http://{addr}/v1")
    }

    #[tokio::test]
    async fn a_complete_reply_keeps_the_upstreams_text_byte_for_byte() {
        let backend = BackendConfig {
            name: "b".into(),
            provider: ProviderKind::Openai,
            base_url: Some(upstream().await),
            api_key: None,
            weight: 1,
            priority: 0,
            request_timeout_ms: 5000,
            connect_timeout_ms: 5000,
            first_token_timeout_ms: None,
        };
        let provider = Provider::new(&backend, None).unwrap();
        let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let request = crate::chat_request::ChatRequest::parse(request).unwrap();
        let request = Payload::Chat(&request);
        let call = Call {
            request,
            model: "m",
            body: encode(WireFormat::OpenAiChat, request, "m", false).unwrap(),
            stream: false,
            timeout: Duration::from_secs(5),
            limits: Default::default(),
            trace: &[],
        };
        let Ok(Reply::Complete(reply)) = provider.send(call).await else {
            panic!("expected a complete reply")
        };
        assert_eq!(std::str::from_utf8(reply.json()).unwrap(), BODY);
        assert_eq!(reply.usage().map(|usage| (usage.input, usage.output)), Some((7, 2)));
        assert_eq!(reply.content_len(), "café ok".len());
    }
}
