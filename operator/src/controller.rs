//! Watches, leadership and the reconcile loop.
//!
//! Reflectors keep in-memory stores of the four kinds and the namespace's Secrets; the kinds are
//! watched through `DeserializeGuard`, so an object that does not decode is stored as its error
//! instead of failing the watch. Any change, a leadership change, a failed reconcile's backoff
//! timer or the periodic resync triggers one reconcile of everything; bursts of changes coalesce
//! into one. Only the Lease holder writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use kube_lease_manager::LeaseManagerBuilder;
use serde::de::DeserializeOwned;
use switchboard_crds::resources::{Budget, Persona, ProviderRoute, Tenant};

use crate::metrics::Metrics;
use crate::reconciler::{self, Context, Stores};
use crate::settings::Settings;

/// A full reconcile at least this often, to heal drift nobody announced.
const RESYNC: Duration = Duration::from_secs(300);
/// Changes arriving within this window share one reconcile.
const COALESCE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
}

/// A store and the stream that keeps it current, yielding `()` per change.
fn watch<K>(api: Api<K>) -> (Store<K>, impl Stream<Item = ()> + Send)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let changes = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects()
        .filter_map(|event| async move {
            if let Err(error) = &event {
                tracing::warn!(%error, "watch error; retrying with backoff");
            }
            event.ok().map(|_| ())
        });
    (store, changes)
}

pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> Result<(), RunError> {
    let namespace = settings.namespace.clone();
    let (tenants, tenant_changes) =
        watch(Api::<DeserializeGuard<Tenant>>::namespaced(client.clone(), &namespace));
    let (personas, persona_changes) =
        watch(Api::<DeserializeGuard<Persona>>::namespaced(client.clone(), &namespace));
    let (routes, route_changes) =
        watch(Api::<DeserializeGuard<ProviderRoute>>::namespaced(client.clone(), &namespace));
    let (budgets, budget_changes) =
        watch(Api::<DeserializeGuard<Budget>>::namespaced(client.clone(), &namespace));
    let (secrets, secret_changes) = watch(Api::<Secret>::namespaced(client.clone(), &namespace));
    let mut watches = stream::select_all([
        tenant_changes.boxed(),
        persona_changes.boxed(),
        route_changes.boxed(),
        budget_changes.boxed(),
        secret_changes.boxed(),
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
    let reporter = Reporter { controller: reconciler::MANAGER.into(), instance: Some(identity.clone()) };
    let stores = Stores { tenants, personas, routes, budgets, secrets };
    let ctx = Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        settings,
        metrics,
        stores,
        reported: Default::default(),
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
    let mut failures: u32 = 0;
    // The loop is dropped as a whole on SIGTERM, even mid-reconcile: reconciles are idempotent.
    let work = async {
        loop {
            let wait = due.map_or(RESYNC, |at| at.saturating_duration_since(Instant::now()));
            tokio::select! {
                change = changes.recv() => {
                    if change.is_none() { break; }
                    due.get_or_insert_with(|| Instant::now() + COALESCE);
                }
                changed = leader.changed() => {
                    if changed.is_err() { break; }
                    due = Some(Instant::now());
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
                        match reconciler::reconcile(&ctx).await {
                            Ok(()) => {
                                failures = 0;
                                ctx.metrics.reconciles.with_label_values(&["success"]).inc();
                            }
                            Err(error) if error.is_conflict() => {
                                ctx.metrics.reconciles.with_label_values(&["conflict"]).inc();
                                tracing::debug!(%error, "reconcile raced with a change; retrying");
                                due = Some(Instant::now() + COALESCE);
                            }
                            Err(error) => {
                                failures += 1;
                                ctx.metrics.reconciles.with_label_values(&["error"]).inc();
                                let backoff = Duration::from_millis(500 * 2u64.pow(failures.min(7)));
                                tracing::warn!(%error, retry_in = ?backoff, "reconcile failed");
                                due = Some(Instant::now() + backoff);
                            }
                        }
                        ctx.metrics.reconcile_seconds.observe(started.elapsed().as_secs_f64());
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
        let (store, changes) = watch(Api::<DeserializeGuard<Tenant>>::namespaced(client.clone(), "sb"));
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
