//! Prometheus metrics. Labels are bounded: tenant, model, route, backend, status class, never
//! keys, request ids or error text.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::telemetry::genai_metrics::{GenAiMetrics, Observed};
use crate::usage::TokenUsage;

/// The gateway's metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    tokens: IntCounterVec,
    cost_nanos: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    config_reloads: IntCounterVec,
    config_synchronized: IntGauge,
    config_loaded_at: IntGauge,
    config_build: prometheus::Histogram,
    cache_lookups: IntCounterVec,
    refusals: IntCounterVec,
    backend_healthy: IntGaugeVec,
    queue_waiting: IntGauge,
    ledger_backlog: IntGauge,
    budget_warnings: IntCounterVec,
    audit_dropped: IntCounter,
    guardrail_hits: IntCounterVec,
    /// The GenAI conventions' metrics, in a registry of their own: their names take no prefix.
    genai_registry: Registry,
    genai: GenAiMetrics,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("switchboard".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Requests by tenant, model, endpoint and HTTP status class"),
            &["tenant", "model", "endpoint", "status"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new("tokens_total", "Tokens by tenant, model and kind"),
            &["tenant", "model", "kind"],
        )?;
        let cost_nanos = IntCounterVec::new(
            Opts::new("cost_nanodollars_total", "Spend in US dollars x 1e9 by tenant and model"),
            &["tenant", "model"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Request latency (to the last byte) by tenant and model",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["tenant", "model"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new("upstream_errors_total", "Failed upstream attempts by route, backend and kind"),
            &["route", "backend", "kind"],
        )?;
        let config_reloads =
            IntCounterVec::new(Opts::new("config_reloads_total", "Config reloads by result"), &["result"])?;
        let config_synchronized = IntGauge::new(
            "config_synchronized",
            "1 when the served config matches the latest source, else 0",
        )?;
        let config_loaded_at = IntGauge::new(
            "config_loaded_timestamp_seconds",
            "When the served config was loaded (Unix time)",
        )?;
        let config_build = prometheus::Histogram::with_opts(
            HistogramOpts::new("config_build_seconds", "Time to build a new config aside, good or rejected")
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        )?;
        let cache_lookups = IntCounterVec::new(
            Opts::new("cache_lookups_total", "Response cache lookups by result (hit, miss)"),
            &["result"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "Requests refused before reaching a provider, by tenant and reason \
                 (rate_limit_exceeded, budget_exceeded, overloaded, ledger_behind, no_healthy_backend)",
            ),
            &["tenant", "reason"],
        )?;
        let backend_healthy = IntGaugeVec::new(
            Opts::new("backend_healthy", "1 while a backend's circuit breaker is closed, 0 while ejected"),
            &["route", "backend"],
        )?;
        let queue_waiting = IntGauge::new("queue_waiting", "Requests waiting for a concurrency slot")?;
        let ledger_backlog = IntGauge::new(
            "ledger_backlog_rows",
            "Ledger rows not yet written to the database; at --ledger-max-backlog new requests are refused",
        )?;
        let audit_dropped = IntCounter::new(
            "audit_dropped_total",
            "Audit rows not written because the audit queue was full (their log lines were written)",
        )?;
        let guardrail_hits = IntCounterVec::new(
            Opts::new(
                "guardrail_hits_total",
                "Personal data and secrets found by the guardrails a policy applied, by side (on: \
                 request, reply), kind and action (detected, redacted, denied); never the text",
            ),
            &["on", "kind", "action"],
        )?;
        let budget_warnings = IntCounterVec::new(
            Opts::new(
                "budget_warnings_total",
                "Requests admitted while a budget was past its warning threshold (level: threshold) \
                 or its limit (level: exhausted; soft budgets only)",
            ),
            &["budget", "level"],
        )?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tokens.clone()),
            Box::new(cost_nanos.clone()),
            Box::new(duration.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(config_reloads.clone()),
            Box::new(config_synchronized.clone()),
            Box::new(config_loaded_at.clone()),
            Box::new(config_build.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(refusals.clone()),
            Box::new(backend_healthy.clone()),
            Box::new(queue_waiting.clone()),
            Box::new(ledger_backlog.clone()),
            Box::new(budget_warnings.clone()),
            Box::new(audit_dropped.clone()),
            Box::new(guardrail_hits.clone()),
        ] {
            registry.register(collector)?;
        }
        let genai_registry = Registry::new();
        let genai = GenAiMetrics::register(&genai_registry)?;
        Ok(Metrics {
            genai_registry,
            genai,
            registry,
            requests,
            tokens,
            cost_nanos,
            duration,
            upstream_errors,
            config_reloads,
            config_synchronized,
            config_loaded_at,
            config_build,
            cache_lookups,
            refusals,
            backend_healthy,
            queue_waiting,
            ledger_backlog,
            budget_warnings,
            audit_dropped,
            guardrail_hits,
        })
    }

    /// Guardrail hits of one kind on one side of an exchange.
    pub fn guardrail(&self, on: &str, kind: &str, action: &str, count: u32) {
        self.guardrail_hits.with_label_values(&[on, kind, action]).inc_by(u64::from(count));
    }

    /// An audit row the full queue could not take.
    pub fn audit_dropped(&self) {
        self.audit_dropped.inc();
    }

    /// Records one finished request.
    pub fn request(&self, tenant: &str, model: &str, endpoint: &str, status: u16, seconds: f64) {
        let class = match status {
            200..=299 => "2xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.with_label_values(&[tenant, model, endpoint, class]).inc();
        self.duration.with_label_values(&[tenant, model]).observe(seconds);
    }

    pub fn usage(&self, tenant: &str, model: &str, usage: &TokenUsage, cost_nanos: i64) {
        for (kind, count) in [
            ("input", usage.input),
            ("cached_input", usage.cached_input),
            ("cache_write", usage.cache_write),
            ("output", usage.output),
        ] {
            if count > 0 {
                self.tokens.with_label_values(&[tenant, model, kind]).inc_by(count);
            }
        }
        self.cost_nanos.with_label_values(&[tenant, model]).inc_by(u64::try_from(cost_nanos).unwrap_or(0));
    }

    /// Records a finished model request in the GenAI conventions' metrics.
    pub fn genai(&self, request: &Observed<'_>) {
        self.genai.observe(request);
    }

    pub fn upstream_error(&self, route: &str, backend: &str, kind: &str) {
        self.upstream_errors.with_label_values(&[route, backend, kind]).inc();
    }

    pub fn cache_lookup(&self, hit: bool) {
        self.cache_lookups.with_label_values(&[if hit { "hit" } else { "miss" }]).inc();
    }

    pub fn refusal(&self, tenant: &str, reason: &str) {
        self.refusals.with_label_values(&[tenant, reason]).inc();
    }

    /// Sets the health gauges from the served runtime's breakers (called at scrape time), dropping
    /// series of backends that no longer exist.
    pub fn backend_health(&self, backends: impl Iterator<Item = (String, String, bool)>) {
        self.backend_healthy.reset();
        for (route, backend, healthy) in backends {
            self.backend_healthy.with_label_values(&[&route, &backend]).set(i64::from(healthy));
        }
    }

    pub fn budget_warning(&self, budget: &str, exhausted: bool) {
        let level = if exhausted { "exhausted" } else { "threshold" };
        self.budget_warnings.with_label_values(&[budget, level]).inc();
    }

    pub fn queue_waiting(&self, waiting: usize) {
        self.queue_waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    pub fn ledger_backlog(&self, rows: usize) {
        self.ledger_backlog.set(i64::try_from(rows).unwrap_or(i64::MAX));
    }

    pub fn config_reload(&self, ok: bool, build: std::time::Duration) {
        self.config_build.observe(build.as_secs_f64());
        self.config_reloads.with_label_values(&[if ok { "success" } else { "failure" }]).inc();
        self.config_synchronized.set(i64::from(ok));
        if ok {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            self.config_loaded_at.set(i64::try_from(now).unwrap_or(0));
        }
    }

    /// The Prometheus text. Series labelled with a tenant or a budget (which name teams and show
    /// their spend) only `with_tenants`, for a scraper that presented the admin token.
    pub fn render(&self, with_tenants: bool) -> String {
        let mut families = self.registry.gather();
        families.extend(self.genai_registry.gather());
        if !with_tenants {
            families.retain(|family| {
                !family.get_metric().iter().any(|metric| {
                    metric.get_label().iter().any(|label| matches!(label.name(), "tenant" | "budget"))
                })
            });
        }
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&families, &mut buffer) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
