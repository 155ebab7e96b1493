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
use opentelemetry_otlp::{ExporterBuildError, Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    Config, IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample, SpanData, SpanProcessor,
};

pub mod context;
pub mod genai_metrics;
pub mod spans;

use self::context::{TraceContext, remote};

/// How spans reach the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    #[value(name = "grpc")]
    Grpc,
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Where and how much to trace (from the flags; the exporter reads the other `OTEL_*` variables).
#[derive(Clone, Debug, Default)]
pub struct TraceSettings {
    /// The collector's base URL; `None` leaves it to the standard variables.
    pub endpoint: Option<String>,
    pub protocol: Option<OtlpProtocol>,
    /// Parent-based ratio sampling; `None` leaves it to `OTEL_TRACES_SAMPLER`.
    pub sampling_ratio: Option<f64>,
}

impl TraceSettings {
    /// Tracing is on when an endpoint is configured and the SDK is not disabled.
    fn enabled(&self) -> bool {
        let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
            || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
        let endpoint = self.endpoint.is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        endpoint && !disabled
    }
}

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
    pub fn new(settings: &TraceSettings) -> Result<Tracer, ExporterBuildError> {
        if !settings.enabled() {
            return Ok(Tracer(None));
        }
        let protocol = settings.protocol.unwrap_or(OtlpProtocol::HttpProtobuf);
        let exporter = match protocol {
            OtlpProtocol::Grpc => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary);
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
                }
                builder.build()
            }
        }?;
        let mut processor = BatchSpanProcessor::builder(exporter, Tokio).build();
        processor.set_resource(&resource());
        let sampler = match settings.sampling_ratio {
            Some(ratio) => Box::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))),
            None => Config::default().sampler,
        };
        let scope = InstrumentationScope::builder("switchboard-gateway")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        tracing::info!(?protocol, "exporting traces over OTLP");
        Ok(Tracer(Some(Arc::new(Exporting { processor, sampler, ids: RandomIdGenerator::default(), scope }))))
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
        // The processor blocks on its worker task: not on a runtime thread.
        let done = tokio::task::spawn_blocking(move || exporting.processor.shutdown_with_timeout(grace));
        match tokio::time::timeout(grace, done).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "traces not all exported at shutdown"),
            _ => tracing::warn!("traces not all exported at shutdown"),
        }
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

/// The service's resource: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` as set, else
/// `switchboard-gateway`.
fn resource() -> Resource {
    let builder = Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = if named { builder } else { builder.with_service_name("switchboard-gateway") };
    builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build()
}
