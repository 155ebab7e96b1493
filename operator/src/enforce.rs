//! Keeping the live NetworkPolicies equal to the wanted ones, one object at a time: a policy that
//! cannot be written fails its Tenant alone, and a stale one is deleted even when others fail.
//!
//! Each wanted policy carries the hash of its own content in an annotation, so an unchanged
//! policy is not written again (10,000 Tenants would otherwise cost 10,000 writes per reconcile);
//! `force` (the periodic resync) writes them all, healing hand edits.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, stream};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{ObjectRef, Store};
use switchboard_crds::render::hash_key;

use crate::build::MANAGED_BY;
use crate::context::Context;
use crate::policies::TENANT_ANNOTATION;
use crate::publish::{CONCURRENCY, apply};

/// Annotation holding the hash of the policy as the operator wrote it.
pub const CONTENT_ANNOTATION: &str = "switchboard.dev/content-hash";

/// What could not be made so.
#[derive(Debug, Default)]
pub struct Enforced {
    /// Tenants whose policy could not be written, with the reason.
    pub failed_tenants: BTreeMap<String, String>,
    /// Other failures (shared policies, deletions), already logged.
    pub other_failures: usize,
}

pub async fn enforce(
    ctx: &Context,
    live: &Store<NetworkPolicy>,
    wanted: Vec<NetworkPolicy>,
    force: bool,
) -> Enforced {
    let namespace = ctx.settings.namespace.as_str();
    let wanted: Vec<NetworkPolicy> = wanted.into_iter().map(stamped).collect();
    let names: BTreeSet<String> = wanted.iter().map(ResourceExt::name_any).collect();
    let writes = wanted.iter().filter(|policy| force || !up_to_date(live, policy)).map(|policy| async move {
        let result = apply(ctx, namespace, policy).await;
        (policy, result)
    });
    let results: Vec<_> = stream::iter(writes).buffer_unordered(CONCURRENCY).collect().await;
    let mut enforced = Enforced::default();
    for (policy, result) in results {
        let Err(error) = result else { continue };
        tracing::warn!(policy = %policy.name_any(), %error, "cannot write a NetworkPolicy");
        match policy.annotations().get(TENANT_ANNOTATION) {
            Some(tenant) => {
                enforced.failed_tenants.insert(tenant.clone(), error.to_string());
            }
            None => enforced.other_failures += 1,
        }
    }
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), namespace);
    let stale: Vec<String> = live
        .state()
        .iter()
        .filter(|policy| policy.labels().get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1))
        .map(|policy| policy.name_any())
        .filter(|name| !names.contains(name))
        .collect();
    let deletions = stale.iter().map(|name| {
        let api = api.clone();
        async move {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(policy = %name, "deleted a NetworkPolicy no longer wanted");
                    true
                }
                Err(kube::Error::Api(status)) if status.is_not_found() => true,
                Err(error) => {
                    tracing::warn!(policy = %name, %error, "cannot delete a NetworkPolicy; retried");
                    false
                }
            }
        }
    });
    let deleted: Vec<bool> = stream::iter(deletions).buffer_unordered(CONCURRENCY).collect().await;
    enforced.other_failures += deleted.iter().filter(|ok| !**ok).count();
    enforced
}

/// The uids of the objects (Tenants) owning a live policy: a Tenant's access is not revoked
/// while it owns one.
pub fn policy_owners(live: &Store<NetworkPolicy>) -> BTreeSet<String> {
    live.state().iter().flat_map(|policy| policy.owner_references().iter().map(|o| o.uid.clone())).collect()
}

/// The policy with the hash of its content in [`CONTENT_ANNOTATION`].
fn stamped(mut policy: NetworkPolicy) -> NetworkPolicy {
    let hash = hash_key(serde_json::to_string(&policy).unwrap_or_default().as_bytes());
    policy.annotations_mut().insert(CONTENT_ANNOTATION.to_owned(), hash);
    policy
}

fn up_to_date(live: &Store<NetworkPolicy>, wanted: &NetworkPolicy) -> bool {
    let hash = |policy: &NetworkPolicy| policy.annotations().get(CONTENT_ANNOTATION).cloned();
    live.get(&ObjectRef::from_obj(wanted)).is_some_and(|current| hash(&current) == hash(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_hash_changes_with_the_content_only() {
        let policy = |port: i32| {
            let mut policy = NetworkPolicy::default();
            policy.metadata.name = Some("p".into());
            policy.spec = Some(k8s_openapi::api::networking::v1::NetworkPolicySpec {
                ingress: Some(vec![k8s_openapi::api::networking::v1::NetworkPolicyIngressRule {
                    ports: Some(vec![k8s_openapi::api::networking::v1::NetworkPolicyPort {
                        port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port)),
                        ..Default::default()
                    }]),
                    from: None,
                }]),
                ..Default::default()
            });
            stamped(policy)
        };
        let hash = |p: &NetworkPolicy| p.annotations()[CONTENT_ANNOTATION].clone();
        assert_eq!(hash(&policy(80)), hash(&policy(80)));
        assert_ne!(hash(&policy(80)), hash(&policy(443)));
    }
}
