//! In-cluster config source: the operator's published config and provider keys, watched.
//!
//! The operator publishes the rendered [`GatewayConfig`] as a head ConfigMap naming its shards
//! (see [`switchboard_crds::shards`]) and copies the provider keys the routes need into one
//! Secret. Both are watched; a change builds a new runtime aside and swaps it in, but only from
//! a complete set: a head whose shards are not all present and intact, a config that does not
//! parse or a missing provider key keeps the last good runtime. Events that bring nothing new
//! (a shard written ahead of its head, a stale shard deleted after it) build nothing: the head's
//! version is the content hash of the config, so an unchanged version and provider-keys Secret
//! mean an unchanged runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use switchboard_crds::provider_keys;
use switchboard_crds::shards::{self, CONFIG_LABEL, HEAD_KEY, Head, Part, SHARD_KEY};
use tokio::task::JoinHandle;

use super::ConfigError;
use super::live::LiveRuntime;
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

/// Starts the watches; the returned task keeps `live` current until aborted.
pub fn watch(client: Client, source: ClusterSource, live: LiveRuntime) -> JoinHandle<()> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &source.namespace);
    let secrets: Api<Secret> = Api::namespaced(client, &source.namespace);
    let published = watcher::Config::default().labels(&format!("{CONFIG_LABEL}={}", source.config_map));
    // A field selector on the name is what lets the Role grant this one Secret (resourceNames).
    let keys = watcher::Config::default().fields(&format!("metadata.name={}", source.provider_keys));
    let (config_store, config_writer) = reflector::store();
    let (secret_store, secret_writer) = reflector::store();
    // Managed fields are never read; dropped before storing, they cost no memory.
    let config_changes =
        reflector::reflector(config_writer, watcher(config_maps, published).modify(drop_managed_fields))
            .default_backoff();
    let secret_changes =
        reflector::reflector(secret_writer, watcher(secrets, keys).modify(drop_managed_fields))
            .default_backoff();
    let mut changes = stream::select(
        config_changes.touched_objects().map(|e| e.map(|_| ()).map_err(|e| e.to_string())).boxed(),
        secret_changes.touched_objects().map(|e| e.map(|_| ()).map_err(|e| e.to_string())).boxed(),
    );
    let reader = Arc::new(Reader { source, configs: config_store, secrets: secret_store });
    tokio::spawn(async move {
        let mut synced = false;
        let mut served: Option<Inputs> = None;
        while let Some(change) = changes.next().await {
            if let Err(error) = change {
                tracing::warn!(%error, "watch error; retrying with backoff");
                continue;
            }
            // Let a burst of changes land, then rebuild once from the stores.
            while let Ok(Some(_)) = tokio::time::timeout(COALESCE, changes.next()).await {}
            if !synced {
                synced = reader.configs.wait_until_ready().await.is_ok()
                    && reader.secrets.wait_until_ready().await.is_ok();
            }
            if !synced {
                continue;
            }
            let inputs = reader.inputs();
            if inputs.is_some() && inputs == served {
                continue;
            }
            let builder = reader.clone();
            live.rebuild(move |previous| builder.build(&previous)).await;
            served = inputs.filter(|i| i.version == live.load().config.version);
        }
    })
}

/// What a runtime is built from, in brief: the head's version and the provider-keys Secret's
/// resourceVersion.
#[derive(Debug, PartialEq, Eq)]
struct Inputs {
    version: String,
    provider_keys: Option<String>,
}

/// Reads the stores into a runtime. Shards are parsed again on each build rather than kept
/// parsed: a second copy of a large config would cost more memory than parsing costs time.
struct Reader {
    source: ClusterSource,
    configs: Store<ConfigMap>,
    secrets: Store<Secret>,
}

impl Reader {
    /// The inputs as the stores hold them now; `None` without a readable head.
    fn inputs(&self) -> Option<Inputs> {
        let ClusterSource { namespace, config_map, provider_keys } = &self.source;
        let head = self.configs.get(&ObjectRef::new(config_map).within(namespace))?;
        let head: Head = serde_json::from_str(data(&head, HEAD_KEY).ok()?).ok()?;
        let secret = self.secrets.get(&ObjectRef::new(provider_keys).within(namespace));
        Some(Inputs { version: head.version, provider_keys: secret.and_then(|s| s.resource_version()) })
    }

    fn build(&self, previous: &Runtime) -> Result<Runtime, ConfigError> {
        let ClusterSource { namespace, config_map, provider_keys } = &self.source;
        let head = self
            .configs
            .get(&ObjectRef::new(config_map).within(namespace))
            .ok_or_else(|| ConfigError::NoHead { namespace: namespace.clone(), name: config_map.clone() })?;
        let head: Head =
            serde_json::from_str(data(&head, HEAD_KEY)?).map_err(|e| ConfigError::InvalidHead {
                namespace: namespace.clone(),
                name: config_map.clone(),
                reason: e.to_string(),
            })?;
        let mut parts = self.parts(&head)?;
        let config = shards::join(&head, |id| parts.remove(id))?;
        let secrets = match self.secrets.get(&ObjectRef::new(provider_keys).within(namespace)) {
            Some(secret) => provider_keys::unpack(&secret, namespace),
            None => Default::default(),
        };
        Ok(Runtime::build(config, &secrets, previous)?)
    }

    /// The parsed shards `head` names, each checked against its id.
    fn parts(&self, head: &Head) -> Result<HashMap<String, Part>, ConfigError> {
        let namespace = &self.source.namespace;
        let mut parts = HashMap::with_capacity(head.shards.len());
        for id in &head.shards {
            let name = shards::shard_name(&self.source.config_map, id);
            let shard = self
                .configs
                .get(&ObjectRef::new(&name).within(namespace))
                .ok_or_else(|| ConfigError::NoShard { namespace: namespace.clone(), name })?;
            parts.insert(id.clone(), shards::parse_shard(id, data(&shard, SHARD_KEY)?)?);
        }
        Ok(parts)
    }
}

fn drop_managed_fields<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
}

fn data<'a>(config_map: &'a ConfigMap, key: &str) -> Result<&'a str, ConfigError> {
    config_map
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .map(String::as_str)
        .ok_or_else(|| ConfigError::NoKey { name: config_map.name_any(), key: key.to_owned() })
}
