//! OpenTelemetry traces: one span per request following the GenAI semantic conventions, a child
//! span per upstream attempt, exported over OTLP (gRPC or HTTP/protobuf) by a batch processor.
//!
//! Off unless an endpoint is configured (`--otlp-endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). The gateway does not
//! hold live SDK spans across a request: it decides the span ids and the sampling when the request
//! arrives ([`Tracer::start`]) and builds the finished spans in one go when the request is
//! accounted ([`spans`]), so a request costs one sampling decision and, if sampled, a hand-off of
//! built spans to the exporter's queue.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use opentelemetry::trace::{SpanKind, TraceContextExt, TraceFlags};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample, SpanData, SpanProcessor,
};
use switchboard_telemetry::{ExportError, TraceSettings};

pub mod content;
pub mod context;
pub mod genai_metrics;
pub mod spans;

use self::context::{TraceContext, remote};

/// The gateway's tracer: cheap to clone, and nothing at all when tracing is off.
#[derive(Clone, Default)]
pub struct Tracer(Option<Arc<Exporting>>);

struct Exporting {
    processor: BatchSpanProcessor<Tokio>,
    sampler: Box<dyn ShouldSample>,
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
}

impl Tracer {
    /// Starts the exporter if tracing is configured. Must run inside the Tokio runtime.
    pub fn new(settings: &TraceSettings) -> Result<Tracer, ExportError> {
        let Some(export) = settings.start("switchboard-gateway")? else { return Ok(Tracer(None)) };
        let scope = InstrumentationScope::builder("switchboard-gateway")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let exporting = Exporting {
            processor: export.processor,
            sampler: export.sampler,
            ids: RandomIdGenerator::default(),
            scope,
        };
        Ok(Tracer(Some(Arc::new(exporting))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The trace of a request that just arrived: the client's continued (or a new one), with the
    /// gateway's span id and the sampling decision. Without a tracer, the client's context alone.
    pub fn start(&self, headers: &HeaderMap, name: &str) -> Option<TraceContext> {
        let client = remote(headers);
        let Some(exporting) = &self.0 else { return client.map(TraceContext::passed_on) };
        let parent = match &client {
            Some(remote) => {
                let flags = if remote.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
                let span = opentelemetry::trace::SpanContext::new(
                    remote.trace_id,
                    remote.span_id,
                    flags,
                    true,
                    Default::default(),
                );
                Context::new().with_remote_span_context(span)
            }
            None => Context::new(),
        };
        let trace_id = client.as_ref().map_or_else(|| exporting.ids.new_trace_id(), |r| r.trace_id);
        let decision = exporting
            .sampler
            .should_sample(Some(&parent), trace_id, name, &SpanKind::Server, &[], &[])
            .decision;
        Some(TraceContext {
            trace_id,
            parent: client.as_ref().map(|r| r.span_id),
            span_id: exporting.ids.new_span_id(),
            sampled: decision == SamplingDecision::RecordAndSample,
            recorded: true,
            state: client.and_then(|r| r.state),
        })
    }

    /// A server span for an operation other than a model request (an MCP call), if spans are
    /// recorded: ended with [`OpenSpan::end`].
    pub fn open(&self, headers: &HeaderMap, name: String) -> Option<OpenSpan> {
        let context = self.start(headers, &name).filter(|c| c.recorded)?;
        Some(OpenSpan { context, name, started: std::time::SystemTime::now() })
    }

    /// A new span id (for an upstream attempt), if spans are recorded.
    pub fn new_span_id(&self) -> Option<opentelemetry::trace::SpanId> {
        self.0.as_ref().map(|e| e.ids.new_span_id())
    }

    /// Hands finished spans to the exporter's queue (dropped, and counted by the SDK, when full).
    pub fn export(&self, spans: impl IntoIterator<Item = SpanData>) {
        if let Some(exporting) = &self.0 {
            for span in spans {
                exporting.processor.on_end(span);
            }
        }
    }

    pub(crate) fn scope(&self) -> Option<&InstrumentationScope> {
        self.0.as_ref().map(|e| &e.scope)
    }

    /// Exports what is queued, within `grace`; called once the ledger is flushed on a stop.
    pub async fn shutdown(&self, grace: Duration) {
        let Some(exporting) = self.0.clone() else { return };
        switchboard_telemetry::shutdown(grace, move |grace| exporting.processor.shutdown_with_timeout(grace))
            .await;
    }
}

/// A server span under way.
pub struct OpenSpan {
    context: TraceContext,
    name: String,
    started: std::time::SystemTime,
}

impl OpenSpan {
    /// `headers` with this span as the `traceparent`, for work done inside it (the exchange of
    /// an MCP `chat` call).
    pub fn inner_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut inner = headers.clone();
        for (name, value) in self.context.headers_for(self.context.span_id) {
            inner.insert(name, value);
        }
        inner
    }

    /// Ends the span now with `attributes`, an error type if it failed, and exports it if sampled.
    pub fn end(self, tracer: &Tracer, attributes: Vec<KeyValue>, error: Option<&str>) {
        let ended = std::time::SystemTime::now();
        spans::export_plain(tracer, &self.context, self.name, (self.started, ended), attributes, error);
    }
}
