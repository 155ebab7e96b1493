//! Publishing the config: the provider-keys Secret, then the shards, then the head (the commit
//! point), then the shards no head names any more. Only what differs from the watched copy is
//! written, so at 10,000 Tenants one more key costs one shard and the head.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_crds::shards::CONFIG_LABEL;

use crate::context::{Context, MANAGER};

/// An object the API server refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot apply {what}: {source}")]
pub struct ApplyError {
    pub what: String,
    pub source: kube::Error,
}

/// Writes in flight at once: enough to hide the API server's latency, few enough to be polite.
pub const CONCURRENCY: usize = 16;

/// What is to be published.
pub struct Publication {
    pub head: ConfigMap,
    pub shards: Vec<ConfigMap>,
    pub provider_keys: Secret,
}

/// Publishes `publication`; on success the gateway can assemble it. Stale shards that cannot be
/// deleted are only logged: no head names them.
pub async fn publish(
    ctx: &Context,
    config_maps: &Store<ConfigMap>,
    secrets: &Store<Secret>,
    publication: Publication,
) -> Result<(), ApplyError> {
    let Publication { head, shards, provider_keys } = publication;
    let namespace = ctx.settings.namespace.as_str();
    if differs(secrets, &provider_keys, |a, b| a.data == b.data && a.metadata.labels == b.metadata.labels) {
        apply(ctx, namespace, &provider_keys).await?;
    }
    let missing: Vec<&ConfigMap> = shards
        .iter()
        .filter(|shard| differs(config_maps, shard, |a, b| a.data == b.data && a.immutable == b.immutable))
        .collect();
    stream::iter(missing.into_iter().map(|shard| apply(ctx, namespace, shard)))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    if differs(config_maps, &head, |a, b| {
        a.data == b.data && a.metadata.annotations == b.metadata.annotations
    }) {
        apply(ctx, namespace, &head).await?;
    }
    let named: BTreeSet<String> = shards.iter().map(ResourceExt::name_any).collect();
    let head_name = head.name_any();
    let stale: Vec<String> = config_maps
        .state()
        .iter()
        .filter(|cm| cm.labels().get(CONFIG_LABEL) == Some(&head_name))
        .map(|cm| cm.name_any())
        .filter(|name| *name != head_name && !named.contains(name))
        .collect();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    stream::iter(stale.iter().map(|name| {
        let api = api.clone();
        async move {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => tracing::debug!(shard = %name, "deleted a stale shard"),
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(error) => {
                    tracing::warn!(shard = %name, %error, "cannot delete a stale shard; retried later")
                }
            }
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .collect::<Vec<()>>()
    .await;
    Ok(())
}

/// Whether the watched copy of `wanted` is missing or not the `same` as it.
fn differs<K>(store: &Store<K>, wanted: &K, same: impl Fn(&K, &K) -> bool) -> bool
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::from_obj(wanted)).is_none_or(|live| !same(&live, wanted))
}

/// Server-side applies one object with the operator's field manager.
pub async fn apply<K>(ctx: &Context, namespace: &str, object: &K) -> Result<(), ApplyError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Serialize,
{
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object))
        .await
        .map_err(|source| ApplyError { what: format!("{} {namespace}/{name}", K::kind(&())), source })?;
    Ok(())
}
