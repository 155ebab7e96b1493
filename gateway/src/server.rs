//! Starting and stopping the gateway: the one place that wires config, ledger, metrics and the
//! router together. Tests start it in-process on port 0; `main` starts it from the flags.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::audit::Audit;
use crate::budget::{BudgetError, Budgets};
use crate::cache::ResponseCache;
use crate::db::{Database, DatabaseError};
use crate::identity::{KeyCache, TokenVerifier};
use crate::ledger::Ledger;
use crate::listener::{self, ConnectionLimits};
use crate::mcp::host::HostPolicy;
use crate::metrics::Metrics;
use crate::persona::Personas;
use crate::queue::{QueueSettings, Scheduler};
use crate::ratelimit::{RateLimitError, RateLimiter};
use crate::request_log::RequestLog;
use crate::serving::cluster::{self, ClusterSource};
use crate::serving::conditions::Conditions;
use crate::serving::edits::Edits;
use crate::serving::edits::cluster::ClusterEdits;
use crate::serving::edits::folder::Folder;
use crate::serving::folder;
use crate::serving::live::LiveRuntime;
use crate::serving::runtime::Runtime;
use crate::settings::Settings;
use crate::signin::SignIn;
use crate::signin::cluster_roles::ClusterRoles;
use crate::signin::kube_user::{Impersonator, KubeNaming};
use crate::state::{AppState, Limits, Shared};
use crate::stats::Stats;
use crate::status;
use crate::stored_responses::StoredResponses;
use crate::telemetry::Tracer;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the cluster: {0}")]
    Cluster(#[from] kube::Error),
    #[error("cannot start the status Lease: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("invalid config: {0}")]
    Config(#[from] crate::serving::ConfigError),
    #[error("cannot watch the config dir: {0}")]
    Watch(#[from] notify::Error),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    RateLimits(#[from] RateLimitError),
    #[error("invalid Redis URL for the response cache: {0}")]
    Cache(#[source] redis::RedisError),
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Tracing(#[from] switchboard_telemetry::ExportError),
    #[error("cannot open the budget counters: {0}")]
    Budgets(#[from] BudgetError),
    #[error("cannot set up the HTTP client for identity providers' keys: {0}")]
    Identity(#[from] reqwest::Error),
    #[error("cannot set up sign-in: {0}")]
    SignIn(String),
}

/// Admin connections open at once: a few people and scrapers, not traffic.
const ADMIN_CONNECTIONS: usize = 256;

/// Background work that lives as long as the server and stops when dropped.
enum Background {
    FolderWatch(#[allow(dead_code)] notify::RecommendedWatcher),
    Task(JoinHandle<()>),
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Self::Task(task) = self {
            task.abort();
        }
    }
}

/// A serving gateway.
pub struct RunningGateway {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Loads the config, opens the ledger, binds and serves in the background.
pub async fn start(settings: &Settings) -> Result<RunningGateway, StartError> {
    let metrics = Metrics::new()?;
    let live = LiveRuntime::new(Runtime::empty(), false, metrics.clone());
    let mut background = Vec::new();
    let mut cluster = None;
    // In a cluster: acting as signed-in people, for the console's changes and reading RBAC.
    let mut people = None;
    let edits = match &settings.config_dir {
        Some(dir) => {
            // Standalone: a folder that does not load is a startup error, not a silent empty config.
            let started = std::time::Instant::now();
            let runtime = folder::load_dir(dir, &live.load()).map_err(StartError::Config)?;
            live.install(Ok(runtime), started.elapsed());
            background.push(Background::FolderWatch(folder::watch(dir.clone(), live.clone())?));
            Edits::Folder(Folder::new(dir.clone()))
        }
        None => {
            let source = ClusterSource {
                namespace: settings.namespace.clone(),
                config_map: settings.configmap.clone(),
                provider_keys: settings.provider_keys_secret.clone(),
            };
            tracing::info!(
                namespace = %source.namespace,
                configmap = %source.config_map,
                provider_keys = %source.provider_keys,
                "in-cluster mode"
            );
            let config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
            let client = kube::Client::try_from(config.clone())?;
            background.push(Background::Task(cluster::watch(client.clone(), source, live.clone())));
            cluster = Some(client);
            let naming = KubeNaming {
                user_prefix: settings.kubernetes_user_prefix.clone(),
                group_prefix: settings.kubernetes_group_prefix.clone(),
            };
            let impersonator = Impersonator::new(config, naming);
            people = Some(impersonator.clone());
            Edits::Cluster(Box::new(ClusterEdits::new(impersonator, settings.namespace.clone())))
        }
    };
    // ServiceAccount tokens are checked with the keys of the API server the gateway runs against
    // (in cluster mode, the one it watches; standalone, the one of its environment or kubeconfig).
    let api_server = match (&cluster, &settings.service_account_audience) {
        (Some(client), _) => Some(client.clone()),
        (None, Some(_)) => Some(kube::Client::try_default().await?),
        (None, None) => None,
    };
    let keys = KeyCache::new(api_server)?;
    let tokens = TokenVerifier::new(keys, settings.service_account_audience.clone());
    let db = Database::connect(&settings.database_url).await?;
    let ledger = Ledger::new(db.clone());
    let ledger = if settings.request_log { ledger } else { ledger.without_request_log() };
    let (sender, writer) = ledger.clone().spawn_writer(settings.ledger_max_backlog as usize);
    // With PostgreSQL the gateway may run as several replicas: budgets are counted there too.
    let budgets = if db.is_postgres() {
        Budgets::shared(ledger.clone()).await?
    } else {
        Budgets::local(ledger.clone())
    };
    let limiter = match &settings.redis_url {
        Some(url) => RateLimiter::redis(url).await?,
        None => RateLimiter::local(),
    };
    if let Some(client) = cluster.clone() {
        let identity = settings.identity.clone().unwrap_or_else(host_name);
        let interval = Duration::from_secs(settings.status_interval_seconds.max(1));
        let namespace = settings.namespace.clone();
        let writer =
            status::spawn(client, namespace, identity, live.clone(), ledger.clone(), interval).await?;
        background.push(Background::Task(writer));
    }
    let (drain, drain_deadline) = crate::drain::deadline();
    let personas = Personas::new(&db);
    background.push(Background::Task(personas.spawn_expiry(live.clone())));
    let responses = StoredResponses::new(&db);
    background.push(Background::Task(responses.spawn_retention()));
    let request_log = RequestLog::new(db.clone());
    let stats = Stats::new(db.clone());
    background.push(Background::Task(stats.spawn_retention()));
    if let Some(retention) = request_log.spawn_retention(settings.request_log_retention_days) {
        background.push(Background::Task(retention));
    }
    let (audit, audit_writer) = Audit::spawn(db.clone(), metrics.clone());
    background.push(Background::Task(audit_writer));
    if let Some(retention) = audit.spawn_retention(settings.audit_retention_days) {
        background.push(Background::Task(retention));
    }
    let sign_in = match settings.sign_in() {
        Some(sign_in) => {
            let cluster_roles = cluster
                .clone()
                .zip(people)
                .map(|(client, people)| ClusterRoles::new(client, settings.namespace.clone(), people));
            Some(Arc::new(SignIn::new(sign_in, db.clone(), cluster_roles).map_err(StartError::SignIn)?))
        }
        None => None,
    };
    let tracer = Tracer::new(&settings.tracing)?;
    let state = AppState::new(Shared {
        mcp_hosts: HostPolicy::with_extra(&settings.mcp_allowed_hosts),
        mcp_resource: settings.mcp_resource.clone(),
        tokens,
        audit,
        sign_in,
        personas,
        responses,
        runtime: live,
        ledger: sender,
        ledger_reader: ledger,
        request_log,
        stats,
        metrics,
        limits: Limits {
            max_request_bytes: settings.max_request_bytes,
            body_timeout: Duration::from_secs(settings.body_timeout_seconds),
        },
        scheduler: Scheduler::new(QueueSettings {
            max_in_flight: (settings.max_in_flight > 0).then_some(settings.max_in_flight),
            capacity: settings.queue_capacity,
            timeout: Duration::from_millis(settings.queue_timeout_ms),
        }),
        cache: ResponseCache::new(settings.cache_max_mib * 1024 * 1024, settings.redis_url.as_deref())
            .map_err(StartError::Cache)?,
        limiter,
        budgets: budgets.clone(),
        tracer: tracer.clone(),
        drain: drain_deadline,
        admin_token_sha256: settings
            .admin_token
            .as_deref()
            .map(|token| Sha256::digest(token.as_bytes()).into()),
        trace_url_template: settings.trace_url_template.clone(),
        flags: settings.shown(),
        edits,
        conditions: cluster.clone().map(|client| Conditions::new(client, settings.namespace.clone())),
    });
    let listener = TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let admin_listener = TcpListener::bind(settings.admin_listen).await?;
    let admin_addr = admin_listener.local_addr()?;
    let admin_connections =
        ConnectionLimits::new(ADMIN_CONNECTIONS, Duration::from_secs(settings.header_timeout_seconds));
    let connections =
        ConnectionLimits::new(settings.max_connections, Duration::from_secs(settings.header_timeout_seconds));
    let grace = Duration::from_secs(settings.shutdown_grace_seconds);
    // The last part of the grace period is for ending what still runs and writing its rows.
    let last_words = (grace / 5).min(Duration::from_secs(3));
    let (shutdown, stop) = oneshot::channel::<()>();
    let upkeep = crate::persona_calls::spawn_upkeep(state.clone());
    let admin_app = crate::app::admin_router(state.clone());
    let app = crate::app::router(state);
    let task = tokio::spawn(async move {
        let _background = background;
        let (stopping_tx, stopping) = watch::channel(false);
        let stopped = |mut stopping: watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stopped| *stopped).await;
        };
        let mut server = tokio::spawn(listener::serve(listener, app, connections, stopped(stopping.clone())));
        let admin =
            tokio::spawn(listener::serve(admin_listener, admin_app, admin_connections, stopped(stopping)));
        let _ = stop.await;
        let _ = stopping_tx.send(true);
        // Once asked to stop, in-flight requests get most of `grace` to finish; those still
        // running are then ended with an error their clients see, and accounted.
        if tokio::time::timeout(grace - last_words, &mut server).await.is_err() {
            tracing::warn!("in-flight requests still running near the end of the grace period; ending them");
            drain.fire();
            if tokio::time::timeout(last_words, server).await.is_err() {
                tracing::warn!("connections still open at the end of the grace period; stopping anyway");
            }
        }
        // Admin requests only read; they hold the ledger's sender like the rest.
        if tokio::time::timeout(last_words, admin).await.is_err() {
            tracing::warn!("admin connections still open at the end of the grace period");
        }
        // The persona memory upkeep holds a ledger sender too; a call it had begun is accounted
        // as it is dropped.
        upkeep.abort();
        let _ = upkeep.await;
        // Budget settlements of the last requests are written before the runtime goes.
        budgets.drain().await;
        // Every ledger sender lived in the router and in-flight requests; with them gone the
        // writer drains the queue and stops.
        match tokio::time::timeout(grace, writer).await {
            Ok(_) => tracing::info!("ledger flushed"),
            Err(_) => tracing::error!("ledger did not flush within the grace period"),
        }
        tracer.shutdown(last_words.max(Duration::from_secs(1))).await;
    });
    tracing::info!(%addr, %admin_addr, max_connections = connections.max_connections, "listening");
    Ok(RunningGateway { addr, admin_addr, shutdown, task })
}

impl RunningGateway {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Stops accepting, lets in-flight requests finish, flushes the ledger.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "gateway".into())
}
