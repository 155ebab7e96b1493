//! One OpenTelemetry span per reconcile (`switchboard.reconcile`), with what it saw and touched:
//! the resources by kind, those set aside as broken, whether the config was published (and its
//! version), the NetworkPolicies enforced, the writes that failed. Off unless an OTLP endpoint is
//! configured (the same flags and `OTEL_*` variables as the gateway's).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};
use switchboard_telemetry::{ExportError, TraceSettings};

/// The operator's tracer; empty when tracing is off.
#[derive(Default)]
pub struct Traces(Option<(SdkTracerProvider, SdkTracer)>);

/// The longest list of names put on a span (the rest are counted).
const MAX_NAMES: usize = 20;

impl Traces {
    /// Starts exporting if tracing is configured. Must run inside the Tokio runtime.
    pub fn start(settings: &TraceSettings) -> Result<Traces, ExportError> {
        let Some(export) = settings.start("switchboard-operator")? else { return Ok(Traces(None)) };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(export.processor)
            .with_sampler(export.sampler)
            .with_resource(export.resource)
            .build();
        let tracer = provider.tracer_with_scope(
            opentelemetry::InstrumentationScope::builder("switchboard-operator")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        Ok(Traces(Some((provider, tracer))))
    }

    /// A reconcile's span, started now.
    pub fn reconcile(&self, force: bool) -> ReconcileSpan {
        ReconcileSpan(self.0.as_ref().map(|(_, tracer)| {
            let mut span = tracer.start("switchboard.reconcile");
            span.set_attribute(KeyValue::new("switchboard.reconcile.force", force));
            span
        }))
    }

    /// Sends what is queued, within `grace`.
    pub async fn shutdown(self, grace: Duration) {
        if let Some((provider, _)) = self.0 {
            switchboard_telemetry::shutdown(grace, move |grace| provider.shutdown_with_timeout(grace)).await;
        }
    }
}

/// A reconcile under way; ended when dropped.
pub struct ReconcileSpan(Option<Span>);

impl ReconcileSpan {
    pub fn set(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(key, value));
        }
    }

    /// `key` as a list of at most [`MAX_NAMES`] names, and `key.count` as how many there were.
    pub fn names<'a>(
        &mut self,
        key: &'static str,
        count_key: &'static str,
        names: impl Iterator<Item = &'a str>,
    ) {
        if let Some(span) = &mut self.0 {
            let names: Vec<&str> = names.collect();
            let listed =
                names.iter().take(MAX_NAMES).map(|n| opentelemetry::StringValue::from(n.to_string()));
            span.set_attribute(KeyValue::new(
                key,
                opentelemetry::Value::Array(listed.collect::<Vec<_>>().into()),
            ));
            span.set_attribute(KeyValue::new(count_key, i64::try_from(names.len()).unwrap_or(i64::MAX)));
        }
    }

    pub fn event(&mut self, name: &'static str, attributes: Vec<KeyValue>) {
        if let Some(span) = &mut self.0 {
            span.add_event(name, attributes);
        }
    }

    pub fn failed(&mut self, failures: usize) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(
                "switchboard.reconcile.failures",
                i64::try_from(failures).unwrap_or(i64::MAX),
            ));
            if failures > 0 {
                span.set_status(Status::error(format!("{failures} writes failed; retried")));
            }
        }
    }
}

impl Drop for ReconcileSpan {
    fn drop(&mut self) {
        if let Some(span) = &mut self.0 {
            span.end();
        }
    }
}
