//! The runtime being served, shared by every handler and swapped by whichever config source
//! runs (a folder or the cluster). A candidate that failed to build never replaces a good one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::ConfigError;
use super::runtime::Runtime;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct LiveRuntime {
    current: Arc<ArcSwap<Runtime>>,
    /// False until a config has loaded (in-cluster mode starts empty).
    ready: Arc<AtomicBool>,
    metrics: Metrics,
}

impl LiveRuntime {
    pub fn new(initial: Runtime, ready: bool, metrics: Metrics) -> LiveRuntime {
        LiveRuntime {
            current: Arc::new(ArcSwap::from_pointee(initial)),
            ready: Arc::new(AtomicBool::new(ready)),
            metrics,
        }
    }

    /// A snapshot: one request uses one config from start to end.
    pub fn load(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Builds a candidate from the runtime being served and installs it. The build runs off the
    /// async workers: a large config takes long enough to stall the requests sharing them.
    pub async fn rebuild(
        &self,
        build: impl FnOnce(Arc<Runtime>) -> Result<Runtime, ConfigError> + Send + 'static,
    ) {
        let previous = self.load();
        let started = Instant::now();
        let candidate = tokio::task::spawn_blocking(move || build(previous))
            .await
            .unwrap_or_else(|error| Err(ConfigError::Build(error.to_string())));
        self.install(candidate, started.elapsed());
    }

    /// Swaps in a freshly built runtime, or keeps the last good one and says why.
    pub fn install(&self, candidate: Result<Runtime, ConfigError>, took: Duration) {
        let build_ms = took.as_millis();
        self.metrics.config_reload(candidate.is_ok(), took);
        match candidate {
            Ok(new) => {
                let version = new.config.version.clone();
                let changed = self.current.load().config.version != version;
                self.current.store(Arc::new(new));
                self.ready.store(true, Ordering::Relaxed);
                tracing::info!(version = %version.get(..12).unwrap_or(&version), changed, build_ms, "config loaded");
            }
            Err(reason) => {
                tracing::error!(%reason, build_ms, "config rejected; still serving the last good config");
            }
        }
    }
}
