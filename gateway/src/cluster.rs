//! In-cluster config source: the operator's ConfigMap and the namespace's Secrets, watched.
//!
//! The ConfigMap carries the rendered [`GatewayConfig`] (key hashes, Secret references); the
//! Secrets carry the provider API keys it refers to. Any change to either builds a new runtime
//! aside and swaps it in; a ConfigMap that does not parse or a missing provider key keeps the
//! last good runtime.

use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use switchboard_crds::GatewayConfig;
use switchboard_crds::render::SecretStore;
use tokio::task::JoinHandle;

use crate::live::LiveRuntime;
use crate::runtime::Runtime;

/// The ConfigMap key holding the JSON config (written by the operator).
pub const CONFIG_KEY: &str = "config.json";
/// Changes arriving within this window share one rebuild.
const COALESCE: Duration = Duration::from_millis(100);

/// Where the gateway finds its config in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSource {
    pub namespace: String,
    pub config_map: String,
}

/// Starts the watches; the returned task keeps `live` current until aborted.
pub fn watch(client: Client, source: ClusterSource, live: LiveRuntime) -> JoinHandle<()> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &source.namespace);
    let secrets: Api<Secret> = Api::namespaced(client, &source.namespace);
    let by_name = watcher::Config::default().fields(&format!("metadata.name={}", source.config_map));
    let (config_store, config_writer) = reflector::store();
    let (secret_store, secret_writer) = reflector::store();
    let config_changes = reflector::reflector(config_writer, watcher(config_maps, by_name)).default_backoff();
    let secret_changes =
        reflector::reflector(secret_writer, watcher(secrets, watcher::Config::default())).default_backoff();
    let mut changes = stream::select(
        config_changes.touched_objects().map(|e| e.map(|_| ()).map_err(|e| e.to_string())).boxed(),
        secret_changes.touched_objects().map(|e| e.map(|_| ()).map_err(|e| e.to_string())).boxed(),
    );
    tokio::spawn(async move {
        let mut synced = false;
        while let Some(change) = changes.next().await {
            if let Err(error) = change {
                tracing::warn!(%error, "watch error; retrying with backoff");
                continue;
            }
            // Let a burst of changes land, then rebuild once from the stores.
            while let Ok(Some(_)) = tokio::time::timeout(COALESCE, changes.next()).await {}
            if !synced {
                synced = config_store.wait_until_ready().await.is_ok()
                    && secret_store.wait_until_ready().await.is_ok();
            }
            if synced {
                live.install(build(&source, &config_store, &secret_store, &live.load()));
            }
        }
    })
}

fn build(
    source: &ClusterSource,
    configs: &Store<ConfigMap>,
    secrets: &Store<Secret>,
    previous: &Runtime,
) -> Result<Runtime, String> {
    let reference = ObjectRef::new(&source.config_map).within(&source.namespace);
    let config_map = configs.get(&reference).ok_or_else(|| {
        format!("ConfigMap {}/{} not found (is the operator running?)", source.namespace, source.config_map)
    })?;
    let json = config_map.data.as_ref().and_then(|data| data.get(CONFIG_KEY)).ok_or_else(|| {
        format!("ConfigMap {}/{} has no key {CONFIG_KEY}", source.namespace, source.config_map)
    })?;
    let config: GatewayConfig = serde_json::from_str(json)
        .map_err(|e| format!("ConfigMap {} is not a gateway config: {e}", source.config_map))?;
    let mut store = SecretStore::default();
    for secret in secrets.state() {
        store.insert_secret(&secret, &source.namespace);
    }
    Runtime::build(config, &store, previous).map_err(|e| e.to_string())
}
