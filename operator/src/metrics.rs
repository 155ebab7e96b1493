//! The operator's own metrics and probes on `--metrics-listen`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: IntCounterVec,
    pub reconcile_seconds: Histogram,
    /// Resources by kind whose `Ready` is False (bounded labels: kind only).
    pub not_ready: IntGaugeVec,
    pub leader: prometheus::IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("switchboard_operator".into()), None)?;
        let reconciles =
            IntCounterVec::new(Opts::new("reconciles_total", "Reconciles by result"), &["result"])?;
        let reconcile_seconds =
            Histogram::with_opts(HistogramOpts::new("reconcile_duration_seconds", "Reconcile time"))?;
        let not_ready =
            IntGaugeVec::new(Opts::new("resources_not_ready", "Resources whose Ready is False"), &["kind"])?;
        let leader = prometheus::IntGauge::new("leader", "1 while this replica holds the Lease")?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(reconcile_seconds.clone()))?;
        registry.register(Box::new(not_ready.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(Metrics { registry, reconciles, reconcile_seconds, not_ready, leader })
    }

    fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Serves the probes and metrics on a bound listener until the process ends. `ready` turns true
/// once the watches have synced.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(|State((m, _)): State<(Metrics, Arc<AtomicBool>)>| async move { m.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State((_, ready)): State<(Metrics, Arc<AtomicBool>)>| async move {
                if ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "syncing")
                }
            }),
        )
        .with_state((metrics, ready));
    axum::serve(listener, app).await
}
