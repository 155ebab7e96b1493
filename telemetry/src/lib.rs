//! OpenTelemetry export, shared by the gateway and the operator: the flags (with the standard
//! `OTEL_*` variables behind them), the OTLP span exporter (gRPC or HTTP/protobuf) fed by a batch
//! processor running as a Tokio task, the sampler and the service's resource.
//!
//! Tracing is off unless an endpoint is configured: `--otlp-endpoint`, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (and not
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).

use opentelemetry::KeyValue;
use opentelemetry_otlp::{ExporterBuildError, Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Config, Sampler, ShouldSample, SpanProcessor};

pub use opentelemetry_otlp::ExporterBuildError as ExportError;

/// How spans reach the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    #[value(name = "grpc")]
    Grpc,
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The tracing flags, the same for the gateway and the operator.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TraceSettings {
    /// OpenTelemetry: the collector's OTLP base URL (`http://HOST:4318` for HTTP,
    /// `http://HOST:4317` for gRPC). Tracing is off unless this or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the other `OTEL_*` variables apply as usual.
    #[arg(long = "otlp-endpoint", env = "SWITCHBOARD_OTLP_ENDPOINT")]
    pub endpoint: Option<String>,
    /// OTLP transport.
    #[arg(long = "otlp-protocol", env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum)]
    pub protocol: Option<OtlpProtocol>,
    /// Share of new traces sampled (0 to 1); a caller's `traceparent` decides for its own trace.
    /// Without it, `OTEL_TRACES_SAMPLER` decides (default: parent-based, always on).
    #[arg(long = "trace-sampling-ratio", env = "SWITCHBOARD_TRACE_SAMPLING_RATIO", value_parser = sampling_ratio)]
    pub sampling_ratio: Option<f64>,
}

/// A running export: the batch processor, and the sampler and resource it was made with.
pub struct Export {
    pub processor: BatchSpanProcessor<Tokio>,
    pub sampler: Box<dyn ShouldSample>,
    pub resource: Resource,
}

impl TraceSettings {
    /// Tracing is on when an endpoint is configured and the SDK is not disabled.
    pub fn enabled(&self) -> bool {
        let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
            || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
        let endpoint = self.endpoint.is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        endpoint && !disabled
    }

    /// Starts exporting as `service` if tracing is configured. Must run inside the Tokio runtime.
    pub fn start(&self, service: &'static str) -> Result<Option<Export>, ExporterBuildError> {
        if !self.enabled() {
            return Ok(None);
        }
        let protocol = self.protocol.unwrap_or(OtlpProtocol::HttpProtobuf);
        let exporter = match protocol {
            OtlpProtocol::Grpc => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary);
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
                }
                builder.build()
            }
        }?;
        let resource = resource(service);
        let mut processor = BatchSpanProcessor::builder(exporter, Tokio).build();
        processor.set_resource(&resource);
        let sampler: Box<dyn ShouldSample> = match self.sampling_ratio {
            Some(ratio) => Box::new(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))),
            None => Config::default().sampler,
        };
        tracing::info!(?protocol, "exporting traces over OTLP");
        Ok(Some(Export { processor, sampler, resource }))
    }
}

fn sampling_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("a number from 0 to 1".into()),
    }
}

/// The service's resource: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` as set, else
/// `service`.
pub fn resource(service: &'static str) -> Resource {
    let builder = Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = if named { builder } else { builder.with_service_name(service) };
    builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build()
}

/// Ends an export within `grace` with `stop` (a processor's or a provider's shutdown): what is
/// queued is sent. `stop` blocks on the processor's worker task, so it runs off the runtime's
/// threads.
pub async fn shutdown(
    grace: std::time::Duration,
    stop: impl FnOnce(std::time::Duration) -> opentelemetry_sdk::error::OTelSdkResult + Send + 'static,
) {
    let done = tokio::task::spawn_blocking(move || stop(grace));
    match tokio::time::timeout(grace, done).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "traces not all exported at shutdown"),
        _ => tracing::warn!("traces not all exported at shutdown"),
    }
}
