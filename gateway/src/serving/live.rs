//! The runtime being served, shared by every handler and swapped by whichever config source
//! runs (a folder or the cluster). A candidate that failed to build never replaces a good one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

use super::ConfigError;
use super::runtime::Runtime;
use crate::db::now_ms;
use crate::metrics::Metrics;

/// Whether the served config is the newest one its source offered (`/admin/v1/config`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConfigSync {
    /// When the config being served was installed (epoch ms); `None` before the first.
    pub loaded_at_ms: Option<i64>,
    /// When the source last offered a config, good or not.
    pub last_attempt_at_ms: Option<i64>,
    /// Why the last offered config was refused; `None` when it is the one being served.
    pub last_error: Option<String>,
}

#[derive(Clone)]
pub struct LiveRuntime {
    current: Arc<ArcSwap<Runtime>>,
    /// False until a config has loaded (in-cluster mode starts empty).
    ready: Arc<AtomicBool>,
    sync: Arc<Mutex<ConfigSync>>,
    /// Counts the configs offered, installed or refused: what a change waits on to be served.
    installs: watch::Sender<u64>,
    metrics: Metrics,
}

impl LiveRuntime {
    pub fn new(initial: Runtime, ready: bool, metrics: Metrics) -> LiveRuntime {
        LiveRuntime {
            current: Arc::new(ArcSwap::from_pointee(initial)),
            ready: Arc::new(AtomicBool::new(ready)),
            sync: Arc::new(Mutex::new(ConfigSync {
                loaded_at_ms: ready.then(now_ms),
                ..ConfigSync::default()
            })),
            installs: watch::Sender::new(0),
            metrics,
        }
    }

    /// Wakes at every config offered from now on, installed or refused.
    pub fn installs(&self) -> watch::Receiver<u64> {
        self.installs.subscribe()
    }

    /// A snapshot: one request uses one config from start to end.
    pub fn load(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn sync(&self) -> ConfigSync {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner).clone()
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
        let now = now_ms();
        let mut sync = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
        sync.last_attempt_at_ms = Some(now);
        match candidate {
            Ok(new) => {
                let version = new.config.version.clone();
                let changed = self.current.load().config.version != version;
                self.current.store(Arc::new(new));
                self.ready.store(true, Ordering::Relaxed);
                sync.loaded_at_ms = Some(now);
                sync.last_error = None;
                tracing::info!(version = %version.get(..12).unwrap_or(&version), changed, build_ms, "config loaded");
            }
            Err(reason) => {
                sync.last_error = Some(reason.to_string());
                tracing::error!(%reason, build_ms, "config rejected; still serving the last good config");
            }
        }
        drop(sync);
        self.installs.send_modify(|count| *count = count.wrapping_add(1));
    }
}
