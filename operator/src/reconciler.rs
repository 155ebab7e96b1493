//! One reconcile of the whole namespace, as a pipeline: dereference (snapshot the watched
//! stores) -> validate and render (isolating broken resources) -> build (pure) -> apply
//! (server-side apply, then delete orphans) -> status (conditions and Events, only on change)
//! -> finalizers. The config is global, so every change reconciles everything; reconciles are
//! idempotent and converge.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard_crds::resources::{Budget, Condition, Persona, ProviderRoute, Tenant};
use switchboard_crds::{Resources, SecretStore};

use crate::build::{self, GatewayTarget, MANAGED_BY, Owned};
use crate::conditions::{self, Observation, READY};
use crate::isolate::{ObjectKey, Outcome, Reported, Split, render_isolated, split};
use crate::metrics::Metrics;
use crate::settings::Settings;

/// The field manager of everything the operator writes.
pub const MANAGER: &str = "switchboard-operator";
/// Keeps a deleted Tenant until its keys are out of the published config and its policies gone.
pub const FINALIZER: &str = "switchboard.dev/revoke-access";

/// The watched objects, kept current by reflectors. The four kinds are guarded so that an object
/// that does not decode is kept (as metadata and error) instead of failing its whole watch.
/// Secrets are not: the API server validates core types strictly, and an Event about a Secret
/// that failed to decode could quote its value.
#[derive(Clone)]
pub struct Stores {
    pub tenants: Store<DeserializeGuard<Tenant>>,
    pub personas: Store<DeserializeGuard<Persona>>,
    pub routes: Store<DeserializeGuard<ProviderRoute>>,
    pub budgets: Store<DeserializeGuard<Budget>>,
    pub secrets: Store<Secret>,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub stores: Stores,
    /// Undecodable objects already reported; only the reconcile loop locks it, never across an await.
    pub reported: Mutex<Reported>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot apply {what}: {source}")]
    Apply { what: String, source: kube::Error },
    #[error("cannot delete {what}: {source}")]
    Delete { what: String, source: kube::Error },
    #[error("cannot list {what}: {source}")]
    List { what: &'static str, source: kube::Error },
    #[error("cannot write the status of {what}: {source}")]
    Status { what: String, source: kube::Error },
    #[error("cannot update the finalizers of {what}: {source}")]
    Finalizer { what: String, source: kube::Error },
}

impl Error {
    /// A write raced with another change (HTTP 409): expected now and then, retried at once.
    pub fn is_conflict(&self) -> bool {
        let source = match self {
            Self::Apply { source, .. }
            | Self::Delete { source, .. }
            | Self::List { source, .. }
            | Self::Status { source, .. }
            | Self::Finalizer { source, .. } => source,
        };
        matches!(source, kube::Error::Api(status) if status.code == 409)
    }
}

/// The resources as the stores hold them now.
struct Snapshot {
    tenants: Split<Tenant>,
    personas: Split<Persona>,
    routes: Split<ProviderRoute>,
    budgets: Split<Budget>,
    secrets: SecretStore,
}

impl Snapshot {
    fn take(stores: &Stores) -> Snapshot {
        let mut secrets = SecretStore::default();
        for secret in stores.secrets.state() {
            secrets.insert_secret(&secret, "");
        }
        Snapshot {
            tenants: split(&stores.tenants.state()),
            personas: split(&stores.personas.state()),
            routes: split(&stores.routes.state()),
            budgets: split(&stores.budgets.state()),
            secrets,
        }
    }

    /// What to render: every object that decodes, but Tenants being deleted (their access is
    /// revoked first).
    fn resources(&self) -> Resources {
        let live = self.tenants.decoded.iter().filter(|t| t.meta().deletion_timestamp.is_none());
        Resources {
            tenants: live.cloned().collect(),
            personas: self.personas.decoded.clone(),
            routes: self.routes.decoded.clone(),
            budgets: self.budgets.decoded.clone(),
        }
    }
}

pub async fn reconcile(ctx: &Context) -> Result<(), Error> {
    let snapshot = Snapshot::take(&ctx.stores);
    let outcome = render_isolated(&snapshot.resources(), &snapshot.secrets);
    let published = match &outcome.config {
        Some(config) => {
            let owners = owners(&snapshot.tenants.decoded);
            apply(ctx, build::owned(config, &target(&ctx.settings), &owners)).await?;
            true
        }
        None => false,
    };
    let config = outcome.config.as_ref();
    let key_count = |tenant: &Tenant| {
        let count = config.and_then(|c| c.tenants.get(&tenant.name_any())).map_or(0, |t| t.api_keys.len());
        json!({"keyCount": count})
    };
    // Finalizers before statuses: they need the snapshot's resourceVersion, which a status
    // write would make stale.
    if published {
        finalizers(ctx, &snapshot.tenants).await?;
    }
    write_statuses(ctx, "Tenant", &snapshot.tenants, &outcome, published, key_count).await?;
    write_statuses(ctx, "Persona", &snapshot.personas, &outcome, published, |_| json!({})).await?;
    write_statuses(ctx, "ProviderRoute", &snapshot.routes, &outcome, published, |_| json!({})).await?;
    write_statuses(ctx, "Budget", &snapshot.budgets, &outcome, published, |_| json!({})).await?;
    Ok(())
}

fn target(settings: &Settings) -> GatewayTarget {
    GatewayTarget {
        namespace: settings.namespace.clone(),
        config_map: settings.configmap.clone(),
        pod_labels: settings.gateway_selector.clone(),
        port: settings.gateway_port,
    }
}

fn owners(
    tenants: &[Tenant],
) -> BTreeMap<String, k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    tenants.iter().filter_map(|t| Some((t.name_any(), t.controller_owner_ref(&())?))).collect()
}

/// Server-side applies every owned object, then deletes managed NetworkPolicies no longer wanted.
async fn apply(ctx: &Context, owned: Owned) -> Result<(), Error> {
    let Owned { config_map, network_policies } = owned;
    let namespace = &ctx.settings.namespace;
    let params = PatchParams::apply(MANAGER).force();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let name = config_map.name_any();
    config_maps
        .patch(&name, &params, &Patch::Apply(&config_map))
        .await
        .map_err(|source| Error::Apply { what: format!("ConfigMap {namespace}/{name}"), source })?;
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), namespace);
    let mut wanted = BTreeSet::new();
    for policy in &network_policies {
        let name = policy.name_any();
        policies
            .patch(&name, &params, &Patch::Apply(policy))
            .await
            .map_err(|source| Error::Apply { what: format!("NetworkPolicy {namespace}/{name}"), source })?;
        wanted.insert(name);
    }
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let existing = policies
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::List { what: "NetworkPolicies", source })?;
    for orphan in existing.items.iter().map(ResourceExt::name_any).filter(|n| !wanted.contains(n)) {
        match policies.delete(&orphan, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(policy = %orphan, "deleted orphaned NetworkPolicy"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(source) => {
                return Err(Error::Delete { what: format!("NetworkPolicy {namespace}/{orphan}"), source });
            }
        }
    }
    Ok(())
}

/// The conditions of one kind's status struct.
pub trait Conditioned {
    fn current_conditions(&self) -> &[Condition];
}

macro_rules! conditioned {
    ($($kind:ty),*) => {$(
        impl Conditioned for $kind {
            fn current_conditions(&self) -> &[Condition] {
                self.status.as_ref().map_or(&[], |s| &s.conditions)
            }
        }
    )*};
}
conditioned!(Tenant, Persona, ProviderRoute, Budget);

/// Writes conditions (and `extra` status fields) where they changed, with an Event when `Ready` flips.
async fn write_statuses<K>(
    ctx: &Context,
    kind: &'static str,
    objects: &Split<K>,
    outcome: &Outcome,
    published: bool,
    extra: impl Fn(&K) -> serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Conditioned
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize,
{
    let now = now_rfc3339();
    let mut not_ready = report_undecodable::<K>(ctx, kind, &objects.undecodable, &now).await;
    for object in objects.decoded.iter().filter(|o| o.meta().deletion_timestamp.is_none()) {
        let key = ObjectKey::of(kind, object);
        let problems = outcome.problems.get(&key).map_or(&[][..], Vec::as_slice);
        let generation = object.meta().generation;
        let previous = object.current_conditions();
        let desired = conditions::desired(Observation { generation, problems, published }, previous, &now);
        let ready = desired.iter().find(|c| c.type_ == READY);
        if ready.is_some_and(|c| c.status != "True") {
            not_ready += 1;
        }
        if !conditions::changed(previous, &desired) {
            continue;
        }
        let mut status = json!({"conditions": desired, "observedGeneration": generation});
        if let (Some(status), Some(fields)) = (status.as_object_mut(), extra(object).as_object()) {
            status.extend(fields.clone());
        }
        write_status::<K>(ctx, &key, status).await?;
        let was_ready =
            previous.iter().find(|c| c.type_ == READY).map(|c| (c.status.clone(), c.reason.clone()));
        if let Some(ready) = ready.filter(|r| was_ready != Some((r.status.clone(), r.reason.clone()))) {
            publish(ctx, &object.object_ref(&()), ready).await;
        }
    }
    ctx.metrics.not_ready.with_label_values(&[kind]).set(not_ready);
    Ok(())
}

/// Marks objects that do not decode not ready, with a Warning Event and a log line, once per
/// distinct error. They are not in the render, so their dependents report unknown references.
/// Returns how many are not ready.
async fn report_undecodable<K>(ctx: &Context, kind: &'static str, objects: &[InvalidObject], now: &str) -> i64
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    reported(ctx).retain(kind, objects);
    let mut not_ready = 0;
    for object in objects.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        not_ready += 1;
        let key = ObjectKey::of_meta(kind, &object.metadata);
        if !reported(ctx).is_new(&key, object) {
            continue;
        }
        tracing::warn!(
            kind,
            namespace = %key.namespace,
            name = %key.name,
            error = %object.error,
            "object does not decode; left out of the gateway config"
        );
        let generation = object.metadata.generation;
        let desired = conditions::undecodable(generation, &object.error, now);
        let status = json!({"conditions": desired, "observedGeneration": generation});
        // Best effort: server-side apply can refuse an object that no longer matches its schema,
        // and that must not hold up everyone else's statuses. The Event still reports it.
        if let Err(error) = write_status::<K>(ctx, &key, status).await {
            tracing::warn!(%error, "cannot mark the undecodable object not ready; retried when it changes");
        }
        if let Some(ready) = desired.iter().find(|c| c.type_ == READY) {
            let reference = DeserializeGuard::<K>(Err(object.clone())).object_ref(&());
            publish(ctx, &reference, ready).await;
        }
        reported(ctx).insert(key, object);
    }
    not_ready
}

fn reported(ctx: &Context) -> std::sync::MutexGuard<'_, Reported> {
    ctx.reported.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Server-side applies `status` with the operator's field manager. The response is decoded
/// through `DeserializeGuard`, so this works on objects that do not decode too.
async fn write_status<K>(ctx: &Context, key: &ObjectKey, status: serde_json::Value) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    let patch = json!({"apiVersion": K::api_version(&()), "kind": key.kind, "status": status});
    let api: Api<DeserializeGuard<K>> = Api::namespaced(ctx.client.clone(), &key.namespace);
    api.patch_status(&key.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await.map_err(
        |source| Error::Status { what: format!("{} {}/{}", key.kind, key.namespace, key.name), source },
    )?;
    Ok(())
}

/// An Event for a change of `Ready`: Normal when it became True, Warning with the reason otherwise.
async fn publish(ctx: &Context, object: &ObjectReference, ready: &Condition) {
    let event = Event {
        type_: if ready.status == "True" { EventType::Normal } else { EventType::Warning },
        reason: ready.reason.clone(),
        note: Some(ready.message.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, object).await {
        tracing::warn!(%error, "cannot publish Event");
    }
}

/// Adds the finalizer to live Tenants; removes it from deleted ones, whose keys are already out
/// of the published config and whose policies are gone (they were not rendered). Undecodable
/// Tenants were never rendered: they only lose the finalizer, so they do not hang in deletion.
async fn finalizers(ctx: &Context, tenants: &Split<Tenant>) -> Result<(), Error> {
    let undecodable =
        tenants.undecodable.iter().map(|o| &o.metadata).filter(|m| m.deletion_timestamp.is_some());
    for tenant in tenants.decoded.iter().map(Resource::meta).chain(undecodable) {
        let mut list = tenant.finalizers.clone().unwrap_or_default();
        let has = list.iter().any(|f| f == FINALIZER);
        let deleting = tenant.deletion_timestamp.is_some();
        match (deleting, has) {
            (false, false) => list.push(FINALIZER.to_owned()),
            (true, true) => list.retain(|f| f != FINALIZER),
            _ => continue,
        }
        let namespace = tenant.namespace.clone().unwrap_or_default();
        let name = tenant.name.clone().unwrap_or_default();
        // resourceVersion makes this a compare-and-swap: a concurrent change retries next round.
        let patch = json!({"metadata": {"finalizers": list, "resourceVersion": tenant.resource_version}});
        let api: Api<DeserializeGuard<Tenant>> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::Finalizer { what: format!("Tenant {namespace}/{name}"), source })?;
        if deleting {
            tracing::info!(tenant = %name, "access revoked; finalizer removed");
        }
    }
    Ok(())
}

/// RFC 3339 UTC time, second precision, as Kubernetes writes it.
fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
