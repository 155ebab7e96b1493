//! Conditions and Events on each resource: written only where they changed, many at once, and
//! one object's failed write never holds up the others.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::PoisonError;

use futures::{StreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard_crds::render::RenderError;
use switchboard_crds::resources::{Budget, Condition, Persona, ProviderRoute, Tenant};

use crate::conditions::{self, Observation, READY};
use crate::context::{Context, MANAGER};
use crate::isolate::{ObjectKey, Split};
use crate::publish::CONCURRENCY;

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

/// What one reconcile found about every resource.
pub struct Findings<'a> {
    pub problems: &'a BTreeMap<ObjectKey, Vec<RenderError>>,
    /// Why an object's current entry is not published, if it is not.
    pub unpublished: &'a dyn Fn(&ObjectKey) -> Option<String>,
}

/// Writes the conditions of one kind's `objects` (and `extra` status fields) where they changed,
/// with an Event when `Ready` flips. Returns how many writes failed (a vanished object is not a
/// failure).
pub async fn write_statuses<K>(
    ctx: &Context,
    findings: &Findings<'_>,
    kind: &'static str,
    objects: &Split<K>,
    extra: impl Fn(&K) -> serde_json::Value,
) -> usize
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Conditioned
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize,
{
    let Findings { problems, unpublished } = findings;
    let now = now_rfc3339();
    let (mut not_ready, mut failures) = report_undecodable::<K>(ctx, kind, &objects.undecodable, &now).await;
    let mut writes = Vec::new();
    for object in objects.decoded.iter().filter(|o| o.meta().deletion_timestamp.is_none()) {
        let key = ObjectKey::of(kind, object);
        let why = unpublished(&key);
        let observation = Observation {
            generation: object.meta().generation,
            problems: problems.get(&key).map_or(&[][..], Vec::as_slice),
            unpublished: why.as_deref(),
        };
        let previous = object.current_conditions();
        let desired = conditions::desired(observation, previous, &now);
        let ready = desired.iter().find(|c| c.type_ == READY).cloned();
        if ready.as_ref().is_some_and(|c| c.status != "True") {
            not_ready += 1;
        }
        if !conditions::changed(previous, &desired) {
            continue;
        }
        let mut status = json!({"conditions": desired, "observedGeneration": observation.generation});
        if let (Some(status), Some(fields)) = (status.as_object_mut(), extra(object).as_object()) {
            status.extend(fields.clone());
        }
        let was_ready =
            previous.iter().find(|c| c.type_ == READY).map(|c| (c.status.clone(), c.reason.clone()));
        let flipped = ready.filter(|r| was_ready != Some((r.status.clone(), r.reason.clone())));
        let reference = object.object_ref(&());
        writes.push(async move {
            let written = write_status::<K>(ctx, &key, status).await;
            if written.is_ok()
                && let Some(ready) = flipped
            {
                publish_event(ctx, &reference, &ready).await;
            }
            written
        });
    }
    let results: Vec<Result<(), kube::Error>> =
        stream::iter(writes).buffer_unordered(CONCURRENCY).collect().await;
    for error in results.into_iter().filter_map(Result::err) {
        if !matches!(&error, kube::Error::Api(status) if status.is_not_found()) {
            tracing::warn!(kind, %error, "cannot write a status; retried");
            failures += 1;
        }
    }
    ctx.metrics.not_ready.with_label_values(&[kind]).set(not_ready);
    failures
}

/// Marks objects that do not decode not ready, with a Warning Event and a log line, once per
/// distinct error. They are not in the render, so their dependents report unknown references.
/// Returns how many are not ready and how many writes failed.
async fn report_undecodable<K>(
    ctx: &Context,
    kind: &'static str,
    objects: &[InvalidObject],
    now: &str,
) -> (i64, usize)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    let reported = || ctx.reported.lock().unwrap_or_else(PoisonError::into_inner);
    reported().retain(kind, objects);
    let (mut not_ready, mut failures) = (0, 0);
    for object in objects.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
        not_ready += 1;
        let key = ObjectKey::of_meta(kind, &object.metadata);
        if !reported().is_new(&key, object) {
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
        // Server-side apply can refuse an object that no longer matches its schema; the Event
        // still reports it.
        if let Err(error) = write_status::<K>(ctx, &key, status).await {
            tracing::warn!(%error, "cannot mark the undecodable object not ready; retried when it changes");
            failures += 1;
        }
        if let Some(ready) = desired.iter().find(|c| c.type_ == READY) {
            let reference = DeserializeGuard::<K>(Err(object.clone())).object_ref(&());
            publish_event(ctx, &reference, ready).await;
        }
        reported().insert(key, object);
    }
    (not_ready, failures)
}

/// Server-side applies `status` with the operator's field manager. The response is decoded
/// through `DeserializeGuard`, so this works on objects that do not decode too.
async fn write_status<K>(ctx: &Context, key: &ObjectKey, status: serde_json::Value) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
{
    let patch = json!({"apiVersion": K::api_version(&()), "kind": key.kind, "status": status});
    let api: Api<DeserializeGuard<K>> = Api::namespaced(ctx.client.clone(), &key.namespace);
    api.patch_status(&key.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// An Event for a change of `Ready`: Normal when it became True, Warning with the reason otherwise.
async fn publish_event(ctx: &Context, object: &ObjectReference, ready: &Condition) {
    let event = Event {
        type_: if ready.status == "True" { EventType::Normal } else { EventType::Warning },
        reason: ready.reason.clone(),
        note: Some(ready.message.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, object).await {
        tracing::warn!(%error, object = %object.name.as_deref().unwrap_or_default(), "cannot publish Event");
    }
}

/// RFC 3339 UTC time, second precision, as Kubernetes writes it.
fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
