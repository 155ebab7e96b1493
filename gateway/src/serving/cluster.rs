//! In-cluster config source: the operator's published config and provider keys, watched.
//!
//! The operator publishes the rendered [`GatewayConfig`](switchboard_crds::GatewayConfig) as a
//! head ConfigMap naming its shards (see [`switchboard_crds::shards`]) and copies the provider
//! keys the routes need into one Secret. Both are watched; shards are parsed as they arrive
//! ([`Published`]), and a new head builds a new runtime aside and swaps it in, but only from a
//! complete set: a head whose shards are not all present and intact, a config that does not parse
//! or a missing provider key keeps the last good runtime. Events that bring nothing new (a shard
//! written ahead of its head, a stale shard deleted after it) build nothing: the head's version is
//! the content hash of the config, so an unchanged version and provider-keys Secret mean an
//! unchanged runtime.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use switchboard_crds::provider_keys;
use switchboard_crds::shards::CONFIG_LABEL;
use switchboard_crds::watch::WatchBackoff;
use tokio::task::JoinHandle;

use super::live::LiveRuntime;
use super::published::Published;
use super::runtime::Runtime;

/// Changes arriving within this window share one rebuild.
const COALESCE: Duration = Duration::from_millis(50);

/// Where the gateway finds its config in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSource {
    pub namespace: String,
    /// The head ConfigMap's name.
    pub config_map: String,
    /// The Secret holding the provider keys.
    pub provider_keys: String,
}

/// One change seen by the watches.
enum Change {
    Config(Box<watcher::Event<ConfigMap>>),
    ProviderKeys,
}

/// Starts the watches; the returned task keeps `live` current until aborted.
pub fn watch(client: Client, source: ClusterSource, live: LiveRuntime) -> JoinHandle<()> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &source.namespace);
    let secrets: Api<Secret> = Api::namespaced(client, &source.namespace);
    let published_label = watcher::Config::default().labels(&format!("{CONFIG_LABEL}={}", source.config_map));
    // A field selector on the name is what lets the Role grant this one Secret (resourceNames).
    let keys = watcher::Config::default().fields(&format!("metadata.name={}", source.provider_keys));
    let (secret_store, secret_writer) = reflector::store();
    let config_changes = watcher(config_maps, published_label)
        .backoff(WatchBackoff::default())
        .map_ok(|e| Change::Config(Box::new(e)));
    // Managed fields are never read; dropped before storing, they cost no memory.
    let secret_changes =
        reflector::reflector(secret_writer, watcher(secrets, keys).modify(drop_managed_fields))
            .backoff(WatchBackoff::default())
            .touched_objects()
            .map_ok(|_| Change::ProviderKeys);
    let mut changes = stream::select(
        config_changes.map_err(|e| e.to_string()).boxed(),
        secret_changes.map_err(|e| e.to_string()).boxed(),
    );
    let mut published = Published::new(&source.namespace, &source.config_map);
    tokio::spawn(async move {
        let mut synced = false;
        let mut served: Option<Inputs> = None;
        while let Some(change) = changes.next().await {
            take(&mut published, change);
            // Let a burst of changes land, then rebuild once.
            while let Ok(Some(change)) = tokio::time::timeout(COALESCE, changes.next()).await {
                take(&mut published, change);
            }
            if !synced {
                synced = published.is_listed() && secret_store.wait_until_ready().await.is_ok();
            }
            if !synced {
                continue;
            }
            let keys = provider_keys_secret(&secret_store, &source);
            let inputs = published.version().map(|version| Inputs {
                version: version.to_owned(),
                provider_keys: keys.as_ref().and_then(|s| s.resource_version()),
            });
            if inputs.is_some() && inputs == served {
                continue;
            }
            let snapshot = published.snapshot();
            let namespace = source.namespace.clone();
            live.rebuild(move |previous| {
                let config = snapshot?.join()?;
                let secrets =
                    keys.map(|secret| provider_keys::unpack(&secret, &namespace)).unwrap_or_default();
                Ok(Runtime::build(config, &secrets, &previous)?)
            })
            .await;
            served = inputs.filter(|i| i.version == live.load().config.version);
        }
    })
}

fn take(published: &mut Published, change: Result<Change, String>) {
    match change {
        Ok(Change::Config(event)) => published.apply(*event),
        Ok(Change::ProviderKeys) => {}
        Err(error) => tracing::warn!(%error, "watch error; retrying with backoff"),
    }
}

fn provider_keys_secret(store: &Store<Secret>, source: &ClusterSource) -> Option<std::sync::Arc<Secret>> {
    store.get(&ObjectRef::new(&source.provider_keys).within(&source.namespace))
}

/// What a runtime is built from, in brief: the head's version and the provider-keys Secret's
/// resourceVersion.
#[derive(Debug, PartialEq, Eq)]
struct Inputs {
    version: String,
    provider_keys: Option<String>,
}

fn drop_managed_fields<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
}
