//! One reconcile of the whole namespace, as a pipeline: snapshot the watched stores -> render,
//! setting aside broken resources -> shard (pure) -> publish the config -> enforce the
//! NetworkPolicies -> finalizers -> status. Every step works object by object: a failure is
//! reported on the resources it concerns (a condition and a Warning Event) and retried, and never
//! stops the others. Reconciles are idempotent and converge.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use opentelemetry::KeyValue;
use serde_json::json;
use switchboard_crds::resources::{Budget, Persona, ProviderRoute, Tenant};
use switchboard_crds::shards::Entry;
use switchboard_crds::{GatewayConfig, Resources, SecretStore};

use crate::build::{self, GatewayTarget};
use crate::context::{Context, Stores};
use crate::enforce::{self, Enforced};
use crate::finalizers::finalizers;
use crate::isolate::{ObjectKey, Outcome, Split, render_isolated, split};
use crate::policies::PolicySettings;
use crate::publish::{Publication, publish};
use crate::settings::Settings;
use crate::status::{Findings, write_statuses};
use crate::traces::ReconcileSpan;

/// How a reconcile went.
#[derive(Debug, Default)]
pub struct Report {
    /// Writes that failed or raced; each is retried by the next reconcile.
    pub failures: usize,
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

/// Reconciles everything. `force` rewrites every owned object, healing edits nobody announced.
pub async fn reconcile(ctx: &Context, force: bool) -> Report {
    let started = Instant::now();
    let mut span = ctx.traces.reconcile(force);
    let snapshot = Snapshot::take(&ctx.stores);
    let mut resources = snapshot.resources();
    let kept = ctx.last_good_policies.lock().unwrap_or_else(PoisonError::into_inner).keep(&mut resources);
    let mut outcome = render_isolated(resources, &snapshot.secrets);
    outcome.report(kept);
    let rendered = started.elapsed();
    trace_render(&mut span, &snapshot, &outcome);
    let mut published_after = None;
    let mut report = Report::default();
    let mut publish_error = None;
    let mut enforced = Enforced::default();
    match &outcome.config {
        Some((config, sharded)) => {
            let target = target(&ctx.settings);
            let owned =
                build::owned(config, sharded, &snapshot.secrets, &target, &owners(&snapshot.tenants.decoded));
            let build::Owned { head, shards, provider_keys, network_policies } = owned;
            let stores = &ctx.stores;
            match publish(
                ctx,
                &stores.config_maps,
                &stores.secrets,
                Publication { head, shards, provider_keys },
            )
            .await
            {
                Ok(()) => *published(ctx) = sharded.entries.clone(),
                Err(error) => {
                    tracing::warn!(%error, "cannot publish the config; retried");
                    publish_error = Some(error.to_string());
                    report.failures += 1;
                }
            }
            published_after = Some(started.elapsed());
            span.set("switchboard.config.version", config.version.clone());
            span.set("switchboard.config.published", publish_error.is_none());
            let policies = i64::try_from(network_policies.len()).unwrap_or(i64::MAX);
            enforced = enforce::enforce(ctx, &stores.policies, network_policies, force).await;
            report.failures += enforced.failed_tenants.len() + enforced.other_failures;
            span.event(
                "switchboard.network_policies.enforced",
                vec![KeyValue::new("switchboard.network_policies", policies)],
            );
            span.names(
                "switchboard.tenants.not_enforced",
                "switchboard.tenants.not_enforced.count",
                enforced.failed_tenants.keys().map(String::as_str),
            );
        }
        None => publish_error = Some("the config does not render (see the operator's log)".to_owned()),
    }
    let live = published(ctx).clone();
    let unpublished = |key: &ObjectKey| -> Option<String> {
        if key.kind == "Tenant"
            && let Some(why) = enforced.failed_tenants.get(&key.name)
        {
            return Some(why.clone());
        }
        let entry = Entry { kind: key.kind, name: key.name.clone() };
        let (_, sharded) = outcome.config.as_ref()?;
        let fingerprint = sharded.entries.get(&entry)?;
        (live.get(&entry) != Some(fingerprint))
            .then(|| publish_error.clone().unwrap_or_else(|| "the config is being published".to_owned()))
    };
    let policy_owners = enforce::policy_owners(&ctx.stores.policies);
    let revoked = |tenant: &ObjectMeta| {
        let name = tenant.name.clone().unwrap_or_default();
        let uid = tenant.uid.clone().unwrap_or_default();
        !live.contains_key(&Entry { kind: "Tenant", name }) && !policy_owners.contains(&uid)
    };
    // Finalizers before statuses: they need the snapshot's resourceVersion, which a status
    // write would make stale.
    report.failures += finalizers(ctx, &snapshot.tenants, &revoked).await;
    let config = outcome.config.as_ref().map(|(config, _)| config);
    let key_count_field = |tenant: &Tenant| json!({"keyCount": key_count(config, tenant)});
    let findings = Findings { problems: &outcome.problems, unpublished: &unpublished };
    report.failures += write_statuses(ctx, &findings, "Tenant", &snapshot.tenants, key_count_field).await;
    report.failures += write_statuses(ctx, &findings, "Persona", &snapshot.personas, |_| json!({})).await;
    report.failures += write_statuses(ctx, &findings, "ProviderRoute", &snapshot.routes, |_| json!({})).await;
    report.failures += write_statuses(ctx, &findings, "Budget", &snapshot.budgets, |_| json!({})).await;
    span.failed(report.failures);
    // Where a reconcile's time goes, for whoever tunes it at scale.
    tracing::debug!(
        render_ms = rendered.as_millis(),
        publish_ms = published_after.map(|d| d.as_millis()),
        total_ms = started.elapsed().as_millis(),
        failures = report.failures,
        "reconciled"
    );
    report
}

/// What the render saw: the resources by kind, and those set aside as broken.
fn trace_render(span: &mut ReconcileSpan, snapshot: &Snapshot, outcome: &Outcome) {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    span.set("switchboard.tenants", count(snapshot.tenants.decoded.len()));
    span.set("switchboard.personas", count(snapshot.personas.decoded.len()));
    span.set("switchboard.provider_routes", count(snapshot.routes.decoded.len()));
    span.set("switchboard.budgets", count(snapshot.budgets.decoded.len()));
    let broken = outcome.problems.keys().map(|key| key.name.as_str());
    span.names("switchboard.broken", "switchboard.broken.count", broken);
    span.event("switchboard.rendered", vec![KeyValue::new("switchboard.rendered", outcome.config.is_some())]);
}

fn published(ctx: &Context) -> std::sync::MutexGuard<'_, BTreeMap<Entry, u64>> {
    ctx.published.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key_count(config: Option<&GatewayConfig>, tenant: &Tenant) -> usize {
    config.and_then(|c| c.tenants.get(&tenant.name_any())).map_or(0, |t| t.api_keys.len())
}

fn target(settings: &Settings) -> GatewayTarget {
    GatewayTarget {
        namespace: settings.namespace.clone(),
        config_map: settings.configmap.clone(),
        provider_keys: settings.provider_keys_secret.clone(),
        pod_labels: settings.gateway_selector.clone(),
        port: settings.gateway_port,
        policies: PolicySettings { cluster_domain: settings.cluster_domain.clone() },
    }
}

fn owners(tenants: &[Tenant]) -> BTreeMap<String, OwnerReference> {
    tenants.iter().filter_map(|t| Some((t.name_any(), t.controller_owner_ref(&())?))).collect()
}
