//! A relayed stream, metered: usage and output are tracked as chunks pass, the exchange is
//! accounted exactly once when the stream ends, fails, is dropped because the client went away,
//! or is ended by a graceful stop; a stream under a hard budget ends once it has run far past
//! the output its reservation allowed (an upstream ignoring `max_tokens`); and a stream the
//! policies guard passes through their reply guardrails ([`StreamGuard`]).

use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::json;

use super::Exchange;
use crate::guardrails::reply::StreamGuard;
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
        let guard = exchange.reply_guard.clone().map(StreamGuard::new);
        let mut meter = Meter { exchange, backend, usage: None, output_chars: 0, outcome: Some("client_disconnected"), guard };
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
            let item = item.and_then(|chunk| meter.observe(chunk));
            if let Err(error) = &item {
                meter.outcome = Some(error.kind());
            }
            let failed = item.is_err();
            yield item;
            if failed {
                return;
            }
            if meter.exchange.output_cap.is_some_and(|cap| meter.output_chars > cap) {
                // Ended as the provider should have: at the length limit.
                meter.outcome = Some("output_capped");
                if let Some(held) = meter.release_held() {
                    yield held;
                }
                yield Chunk::from_value(&json!({
                    "id": format!("chatcmpl-{}", meter.exchange.id), "object": "chat.completion.chunk",
                    "model": meter.exchange.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                }));
                return;
            }
        }
        if let Some(held) = meter.release_held() {
            let failed = held.is_err();
            yield held;
            if failed {
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
    /// The policies' reply guardrails, if any apply.
    guard: Option<StreamGuard>,
}

impl Meter {
    /// Meters a chunk as the upstream sent it, and passes it on as the guardrails let it.
    fn observe(&mut self, chunk: Chunk) -> Result<Chunk, UpstreamError> {
        if let Some(usage) = chunk.usage() {
            self.usage = Some(usage);
        }
        self.output_chars += chunk.content_len();
        let chunk = match &mut self.guard {
            Some(guard) if chunk.content_len() > 0 || !guard.holds_nothing() => {
                let mut value = chunk.to_value()?;
                guard.chunk(&mut value).map_err(UpstreamError::Withheld)?;
                Chunk::from_value(&value)?
            }
            _ => chunk,
        };
        self.exchange.trail.chunk(&chunk);
        Ok(chunk)
    }

    /// The text the guardrails still hold, released as the stream ends.
    fn release_held(&mut self) -> Option<Result<Chunk, UpstreamError>> {
        let guard = self.guard.as_mut()?;
        let held = guard.finish(&format!("chatcmpl-{}", self.exchange.id), &self.exchange.model);
        let chunk =
            held.map_err(UpstreamError::Withheld).transpose()?.and_then(|held| Chunk::from_value(&held));
        if let Err(error) = &chunk {
            self.outcome = Some(error.kind());
        }
        Some(chunk)
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some(guard) = &self.guard {
            self.exchange.reply_hits(&guard.tally);
        }
        let usage = self.usage.unwrap_or_else(|| self.exchange.estimated_usage(self.output_chars));
        self.exchange.account(Some(&self.backend), 200, usage, self.outcome);
    }
}
