//! The Tenant finalizer: added to live Tenants, released from deleted ones once their access is
//! revoked. Each Tenant on its own: one failed patch holds up no other Tenant's release.

use futures::{StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use serde_json::json;
use switchboard_crds::resources::Tenant;

use crate::context::{Context, MANAGER};
use crate::isolate::Split;
use crate::publish::CONCURRENCY;

/// Keeps a deleted Tenant until its keys are out of the published config and its policies gone.
pub const FINALIZER: &str = "switchboard.dev/revoke-access";

/// Adds or releases the finalizer where needed. `revoked` says whether a deleted Tenant's access
/// is gone. Undecodable Tenants were never published: they only lose the finalizer once revoked.
/// Returns how many patches failed or raced (both are retried).
pub async fn finalizers(
    ctx: &Context,
    tenants: &Split<Tenant>,
    revoked: &dyn Fn(&ObjectMeta) -> bool,
) -> usize {
    let undecodable =
        tenants.undecodable.iter().map(|o| &o.metadata).filter(|m| m.deletion_timestamp.is_some());
    let patches = tenants.decoded.iter().map(Resource::meta).chain(undecodable).filter_map(|tenant| {
        let mut list = tenant.finalizers.clone().unwrap_or_default();
        let has = list.iter().any(|f| f == FINALIZER);
        match (tenant.deletion_timestamp.is_some(), has) {
            (false, false) => list.push(FINALIZER.to_owned()),
            (true, true) if revoked(tenant) => list.retain(|f| f != FINALIZER),
            _ => return None,
        }
        Some(patch(ctx, tenant, list))
    });
    let results: Vec<bool> = stream::iter(patches).buffer_unordered(CONCURRENCY).collect().await;
    results.iter().filter(|ok| !**ok).count()
}

/// One compare-and-swap patch of the finalizers (`resourceVersion`): a concurrent change retries.
/// A Tenant that vanished meanwhile needs nothing more.
async fn patch(ctx: &Context, tenant: &ObjectMeta, finalizers: Vec<String>) -> bool {
    let namespace = tenant.namespace.clone().unwrap_or_default();
    let name = tenant.name.clone().unwrap_or_default();
    let releasing = tenant.deletion_timestamp.is_some();
    let body = json!({"metadata": {"finalizers": finalizers, "resourceVersion": tenant.resource_version}});
    let api: Api<DeserializeGuard<Tenant>> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = PatchParams { field_manager: Some(MANAGER.to_owned()), ..PatchParams::default() };
    match api.patch(&name, &params, &Patch::Merge(&body)).await {
        Ok(_) => {
            if releasing {
                tracing::info!(tenant = %name, "access revoked; finalizer removed");
            }
            true
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => true,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::debug!(tenant = %name, "the Tenant changed meanwhile; its finalizer is retried");
            false
        }
        Err(error) => {
            tracing::warn!(tenant = %name, %error, "cannot update the finalizers; retried");
            false
        }
    }
}
