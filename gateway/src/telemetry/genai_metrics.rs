//! The OpenTelemetry GenAI semantic conventions' metrics, in Prometheus form: token usage, request
//! duration and time to first token, with the conventions' names, units, bucket boundaries and
//! attributes (dots as underscores). Labels are bounded: operation, provider, the model as asked
//! (a route's model names) and the token type or error type; never tenants.

use prometheus::{HistogramOpts, HistogramVec, Registry};

#[derive(Clone)]
pub struct GenAiMetrics {
    token_usage: HistogramVec,
    duration: HistogramVec,
    time_to_first_token: HistogramVec,
}

/// One finished model request, as the metrics see it.
pub struct Observed<'a> {
    pub operation: &'static str,
    pub provider: &'a str,
    pub model: &'a str,
    /// Input (all of it, cached included) and output tokens; `None` when nothing was billed.
    pub tokens: Option<(u64, u64)>,
    pub seconds: f64,
    pub time_to_first_token: Option<f64>,
    pub error: Option<&'a str>,
}

const LABELS: [&str; 3] = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"];

impl GenAiMetrics {
    /// Registers the three histograms in `registry`, which must add no prefix.
    pub fn register(registry: &Registry) -> Result<GenAiMetrics, prometheus::Error> {
        let histogram = |name: &str, help: &str, buckets: Vec<f64>, extra: &'static str| {
            let labels: Vec<&str> = LABELS.iter().copied().chain([extra]).collect();
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &labels)
        };
        let token_usage = histogram(
            "gen_ai_client_token_usage",
            "Tokens used per request (gen_ai.client.token.usage), by token type",
            (0..14).map(|i| 4f64.powi(i)).collect(),
            "gen_ai_token_type",
        )?;
        let duration = histogram(
            "gen_ai_server_request_duration_seconds",
            "Time to the last byte of a model request (gen_ai.server.request.duration)",
            (0..14).map(|i| 0.01 * 2f64.powi(i)).collect(),
            "error_type",
        )?;
        let time_to_first_token = histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first streamed chunk (gen_ai.server.time_to_first_token)",
            vec![0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
            "error_type",
        )?;
        for collector in [&token_usage, &duration, &time_to_first_token] {
            registry.register(Box::new(collector.clone()))?;
        }
        Ok(GenAiMetrics { token_usage, duration, time_to_first_token })
    }

    pub fn observe(&self, request: &Observed<'_>) {
        let (operation, provider, model) = (request.operation, request.provider, request.model);
        if let Some((input, output)) = request.tokens {
            for (kind, count) in [("input", input), ("output", output)] {
                // Token counts are clamped far below 2^53: exact as f64.
                let labels = [operation, provider, model, kind];
                self.token_usage.with_label_values(&labels).observe(count as f64);
            }
        }
        let labels = [operation, provider, model, request.error.unwrap_or("")];
        self.duration.with_label_values(&labels).observe(request.seconds);
        if let Some(seconds) = request.time_to_first_token {
            self.time_to_first_token.with_label_values(&labels).observe(seconds);
        }
    }
}
