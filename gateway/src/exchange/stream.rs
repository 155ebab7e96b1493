//! A relayed stream, metered: usage and output are tracked as chunks pass, the exchange is
//! accounted exactly once when the stream ends, fails, is dropped because the client went away,
//! or is ended by a graceful stop; and a stream under a hard budget ends once it has run far past
//! the output its reservation allowed (an upstream ignoring `max_tokens`).

use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::json;

use super::Exchange;
use crate::providers::{Chunk, ChunkStream, UpstreamError};
use crate::serving::runtime::BackendRuntime;
use crate::usage::TokenUsage;

/// Bytes of streamed text per reserved output token past which a stream under a hard budget is
/// ended. Byte-level tokenizers average about four bytes a token on prose and fewer on code, so a
/// provider honouring `max_tokens` stays below this; one ignoring it is stopped soon after.
pub(super) const CAPPED_BYTES_PER_TOKEN: usize = 5;

/// Meters `chunks` for `exchange`, served by `backend`.
pub fn metered(
    exchange: Arc<Exchange>,
    backend: Arc<BackendRuntime>,
    mut chunks: ChunkStream,
) -> impl Stream<Item = Result<Chunk, UpstreamError>> + Send {
    async_stream::stream! {
        let deadline = exchange.deadline;
        let timeout_ms = exchange.target.route.config.timeout_ms;
        // One wait for a graceful stop's deadline for the whole stream, not one per chunk.
        let drain = exchange.drain.clone();
        let stopping = drain.reached();
        tokio::pin!(stopping);
        let mut meter = Meter { exchange, backend, usage: None, output_chars: 0, outcome: Some("client_disconnected") };
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline.into(), chunks.next()) => next,
                () = &mut stopping => Ok(Some(Err(UpstreamError::Stopping))),
            };
            let item = match next {
                Ok(Some(Ok(chunk))) => chunk.redacted(&meter.exchange.redactor),
                Ok(Some(Err(error))) => Err(error.redacted(&meter.exchange.redactor)),
                Ok(None) => break,
                Err(_) => Err(UpstreamError::Timeout(timeout_ms)),
            };
            match &item {
                Ok(chunk) => meter.observe(chunk),
                Err(error) => meter.outcome = Some(error.kind()),
            }
            let failed = item.is_err();
            yield item;
            if failed {
                return;
            }
            if meter.exchange.output_cap.is_some_and(|cap| meter.output_chars > cap) {
                // Ended as the provider should have: at the length limit.
                meter.outcome = Some("output_capped");
                yield Chunk::from_value(&json!({
                    "id": format!("chatcmpl-{}", meter.exchange.id), "object": "chat.completion.chunk",
                    "model": meter.exchange.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                }));
                return;
            }
        }
        meter.outcome = None;
    }
}

struct Meter {
    exchange: Arc<Exchange>,
    backend: Arc<BackendRuntime>,
    usage: Option<TokenUsage>,
    output_chars: usize,
    /// The ledger's error code if the stream stopped now; `None` once it completed.
    outcome: Option<&'static str>,
}

impl Meter {
    fn observe(&mut self, chunk: &Chunk) {
        self.exchange.trail.chunk(chunk);
        if let Some(usage) = chunk.usage() {
            self.usage = Some(usage);
        }
        self.output_chars += chunk.content_len();
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let usage = self.usage.unwrap_or_else(|| self.exchange.estimated_usage(self.output_chars));
        self.exchange.account(Some(&self.backend), 200, usage, self.outcome);
    }
}
