//! Watches, leadership and the reconcile loop.
//!
//! Reflectors keep in-memory stores of the four kinds, the namespace's Secrets and the objects the
//! operator writes; the kinds are watched through `DeserializeGuard`, so an object that does not
//! decode is stored as its error instead of failing the watch. Any change, a leadership change, a
//! retry timer or the periodic resync triggers one reconcile of everything; bursts of changes
//! coalesce into one, and a change cuts a retry's backoff short (it may be the fix). Watches
//! retry within two seconds, so an API server that comes back is seen at once. Only the Lease
//! holder writes.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use serde::de::DeserializeOwned;
use switchboard_crds::resources::{Budget, Persona, ProviderRoute, Tenant};
use switchboard_crds::shards::CONFIG_LABEL;
use switchboard_crds::watch::WatchBackoff;

use crate::build::MANAGED_BY;
use crate::context::{Context, MANAGER, Stores};
use crate::metrics::Metrics;
use crate::reconciler;
use crate::settings::Settings;
use crate::traces::Traces;

/// A full reconcile at least this often, to heal drift nobody announced.
const RESYNC: Duration = Duration::from_secs(300);
/// Changes arriving within this window share one reconcile.
const COALESCE: Duration = Duration::from_millis(50);
/// Bounds of the wait before retrying a reconcile that left failures.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Tracing(#[from] switchboard_telemetry::ExportError),
}

/// What of an object a reconcile reads: a change elsewhere (a status write, the operator's own
/// or the gateway's) wakes nobody. At 10,000 Tenants each wake-up costs a full reconcile.
type Fingerprint<K> = fn(&K) -> u64;

/// The spec (by `generation`), deletion, labels and annotations (so touching an object retries it).
fn spec_and_metadata<K: Resource>(object: &K) -> u64 {
    let meta = object.meta();
    let deleting = meta.deletion_timestamp.is_some();
    hash(&(meta.generation, deleting, &meta.labels, &meta.annotations))
}

/// Every change (Secrets).
fn any_change<K: Resource>(object: &K) -> u64 {
    hash(&object.meta().resource_version)
}

/// Nothing but deletion (the ConfigMaps and NetworkPolicies the operator writes): its own writes
/// must not wake it again. A deleted one is restored at once; a hand edit at the resync.
fn deletion_only<K>(_: &K) -> u64 {
    0
}

fn hash(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A store and the stream that keeps it current, yielding `()` per change of `fingerprint`, per
/// deletion and per completed (re)list. Managed fields are dropped before storing: the operator
/// never reads them, and they are often larger than the rest of the object.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    fingerprint: Fingerprint<K>,
) -> (Store<K>, impl Stream<Item = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let mut seen: HashMap<(Option<String>, Option<String>), u64> = HashMap::new();
    let changes = reflector::reflector(
        writer,
        watcher(api, config).modify(|object: &mut K| object.managed_fields_mut().clear()),
    )
    .backoff(WatchBackoff::default())
    .map(move |event| {
        let key = |object: &K| {
            let meta = object.meta();
            (meta.name.clone(), meta.uid.clone())
        };
        match event {
            Ok(watcher::Event::Apply(object)) => {
                let print = fingerprint(&object);
                seen.insert(key(&object), print) != Some(print)
            }
            Ok(watcher::Event::InitApply(object)) => {
                seen.insert(key(&object), fingerprint(&object));
                false
            }
            Ok(watcher::Event::Delete(object)) => {
                seen.remove(&key(&object));
                true
            }
            Ok(watcher::Event::Init) => false,
            Ok(watcher::Event::InitDone) => true,
            Err(error) => {
                tracing::warn!(%error, "watch error; retrying with backoff");
                false
            }
        }
    })
    .filter_map(|wake| std::future::ready(wake.then_some(())));
    (store, changes)
}

pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> Result<(), RunError> {
    let namespace = settings.namespace.clone();
    let all = watcher::Config::default;
    let api = || client.clone();
    let (tenants, tenant_changes) =
        watch(Api::namespaced(api(), &namespace), all(), spec_and_metadata::<DeserializeGuard<Tenant>>);
    let (personas, persona_changes) =
        watch(Api::namespaced(api(), &namespace), all(), spec_and_metadata::<DeserializeGuard<Persona>>);
    let (routes, route_changes) = watch(
        Api::namespaced(api(), &namespace),
        all(),
        spec_and_metadata::<DeserializeGuard<ProviderRoute>>,
    );
    let (budgets, budget_changes) =
        watch(Api::namespaced(api(), &namespace), all(), spec_and_metadata::<DeserializeGuard<Budget>>);
    let (secrets, secret_changes) = watch(Api::namespaced(api(), &namespace), all(), any_change::<Secret>);
    let owned_config = all().labels(&format!("{CONFIG_LABEL}={}", settings.configmap));
    let (config_maps, config_map_changes) =
        watch(Api::namespaced(api(), &namespace), owned_config, deletion_only::<ConfigMap>);
    let owned_policies = all().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let (policies, policy_changes) =
        watch(Api::namespaced(api(), &namespace), owned_policies, deletion_only::<NetworkPolicy>);
    let mut watches = stream::select_all([
        tenant_changes.boxed(),
        persona_changes.boxed(),
        route_changes.boxed(),
        budget_changes.boxed(),
        secret_changes.boxed(),
        config_map_changes.boxed(),
        policy_changes.boxed(),
    ]);
    // The reflectors must be polled all the time, also while a reconcile runs: a task drives
    // them and forwards one wake-up per burst of changes.
    let (changed_tx, mut changes) = tokio::sync::mpsc::channel::<()>(1);
    let watch_task = tokio::spawn(async move {
        while watches.next().await.is_some() {
            let _ = changed_tx.try_send(());
        }
    });
    let identity = settings.identity.clone().unwrap_or_else(hostname);
    let reporter = Reporter { controller: MANAGER.into(), instance: Some(identity.clone()) };
    let stores = Stores { tenants, personas, routes, budgets, secrets, config_maps, policies };
    let traces = Traces::start(&settings.tracing)?;
    let mut ctx = Context {
        traces,
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        settings,
        metrics,
        stores,
        reported: Default::default(),
        published: Default::default(),
        last_good_policies: Default::default(),
    };

    let lease = LeaseManagerBuilder::new(client, "switchboard-operator")
        .with_namespace(&namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (mut leader, lease_task) = lease.watch().await;

    let mut synced = false;
    let mut due: Option<Instant> = Some(Instant::now());
    let mut retries: u32 = 0;
    // When everything was last rewritten (None: not yet under this leadership).
    let mut healed: Option<Instant> = None;
    // The loop is dropped as a whole on SIGTERM, even mid-reconcile: reconciles are idempotent.
    let work = async {
        loop {
            let wait = due.map_or(RESYNC, |at| at.saturating_duration_since(Instant::now()));
            tokio::select! {
                change = changes.recv() => {
                    if change.is_none() { break; }
                    let soon = Instant::now() + COALESCE;
                    due = Some(due.map_or(soon, |at| at.min(soon)));
                }
                changed = leader.changed() => {
                    if changed.is_err() { break; }
                    due = Some(Instant::now());
                    healed = None;
                }
                () = tokio::time::sleep(wait) => {
                    due = None;
                    if !synced {
                        // Never block here: the watches may not sync at all (CRDs missing).
                        let stores = &ctx.stores;
                        synced = [
                            stores.tenants.wait_until_ready().now_or_never(),
                            stores.personas.wait_until_ready().now_or_never(),
                            stores.routes.wait_until_ready().now_or_never(),
                            stores.budgets.wait_until_ready().now_or_never(),
                            stores.secrets.wait_until_ready().now_or_never(),
                        ]
                        .iter()
                        .all(|ready| matches!(ready, Some(Ok(()))));
                        ready.store(synced, Ordering::Relaxed);
                        if !synced {
                            due = Some(Instant::now() + COALESCE);
                        }
                    }
                    let is_leader = *leader.borrow();
                    ctx.metrics.leader.set(i64::from(is_leader));
                    if synced && is_leader {
                        let started = Instant::now();
                        let force = healed.is_none_or(|at| at.elapsed() >= RESYNC);
                        let report = reconciler::reconcile(&ctx, force).await;
                        ctx.metrics.reconcile_seconds.observe(started.elapsed().as_secs_f64());
                        if force {
                            healed = Some(started);
                        }
                        if report.failures == 0 {
                            retries = 0;
                            ctx.metrics.reconciles.with_label_values(&["success"]).inc();
                        } else {
                            retries = retries.saturating_add(1);
                            ctx.metrics.reconciles.with_label_values(&["partial"]).inc();
                            let backoff = RETRY_MIN.saturating_mul(1 << retries.min(6)).min(RETRY_MAX);
                            tracing::info!(failures = report.failures, retry_in = ?backoff, "reconcile left failures");
                            due = Some(due.map_or(Instant::now() + backoff, |at| at.min(Instant::now() + backoff)));
                        }
                    }
                }
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = shutdown_signal() => {}
    }
    watch_task.abort();
    // Closing the channel stops the lease task; releasing hands leadership over at once.
    drop(leader);
    let release = async {
        if let Ok(Ok(manager)) = lease_task.await
            && let Err(error) = manager.release().await
        {
            tracing::warn!(%error, "cannot release the Lease");
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), release).await.is_err() {
        tracing::warn!("the Lease was not released in time; it expires by itself");
    }
    std::mem::take(&mut ctx.traces).shutdown(Duration::from_secs(3)).await;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "switchboard-operator".into())
}

/// Resolves on SIGTERM or Ctrl-C.
fn shutdown_signal() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
    })
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::RawQuery;
    use axum::routing::get;
    use serde_json::json;

    use super::*;

    fn tenant(name: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name, "namespace": "sb", "resourceVersion": "1"},
            "spec": spec,
        })
    }

    /// A fake API server listing one Tenant that does not decode between two that do; each watch
    /// sends one more undecodable Tenant and stays open.
    fn api_server() -> Router {
        let list = json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "TenantList",
            "metadata": {"resourceVersion": "1"},
            "items": [
                tenant("a", json!({})),
                tenant("newer", json!({"priority": "high"})),
                tenant("b", json!({"priority": 3})),
            ],
        });
        let added =
            format!("{}\n", json!({"type": "ADDED", "object": tenant("late", json!({"namespaces": 1}))}));
        let handler = move |RawQuery(query): RawQuery| async move {
            if query.is_some_and(|q| q.contains("watch=true")) {
                let event = stream::once(async move { Ok::<_, std::io::Error>(added) });
                Body::from_stream(event.chain(stream::pending()))
            } else {
                Body::from(list.to_string())
            }
        };
        Router::new().route("/apis/switchboard.dev/v1alpha1/namespaces/sb/tenants", get(handler))
    }

    #[tokio::test]
    async fn undecodable_objects_do_not_stall_the_watch() {
        let client = Client::new(api_server(), "sb");
        let (store, changes) = watch(
            Api::<DeserializeGuard<Tenant>>::namespaced(client.clone(), "sb"),
            watcher::Config::default(),
            any_change,
        );
        let mut changes = changes.boxed();
        let all_seen = async {
            while store.state().len() < 4 {
                changes.next().await;
            }
        };
        assert!(tokio::time::timeout(Duration::from_secs(5), all_seen).await.is_ok(), "the watch stalled");
        let mut names: Vec<(String, bool)> =
            store.state().iter().map(|t| (t.meta().name.clone().unwrap_or_default(), t.0.is_ok())).collect();
        names.sort();
        let expected = [("a", true), ("b", true), ("late", false), ("newer", false)];
        assert_eq!(names, expected.map(|(name, ok)| (name.to_owned(), ok)));

        // Without the guard the same list fails as a whole, which is what stalled the operator.
        let unguarded = watcher(Api::<Tenant>::namespaced(client, "sb"), watcher::Config::default());
        let failed = unguarded.any(|event| async move { event.is_err() });
        assert!(matches!(tokio::time::timeout(Duration::from_secs(5), failed).await, Ok(true)));
    }
}
