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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::patch as patch_route;
    use clap::Parser;
    use kube::runtime::events::{Recorder, Reporter};
    use kube::runtime::reflector;

    use super::*;
    use crate::context::Stores;
    use crate::metrics::Metrics;
    use crate::settings::Settings;

    fn tenant(name: &str) -> Tenant {
        let object = json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name, "namespace": "sb", "resourceVersion": "7"},
            "spec": {},
        });
        serde_json::from_value(object).unwrap()
    }

    /// A fake API server whose Tenant `vanished` was deleted after the snapshot (404) and whose
    /// Tenant `changed` was changed after it (409); it records every patch.
    fn api_server(patched: Arc<Mutex<Vec<String>>>) -> Router {
        let handler = move |Path(name): Path<String>| {
            let patched = patched.clone();
            async move {
                patched.lock().unwrap().push(name.clone());
                let status = |code: u16, reason: &str| {
                    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": format!("tenants {name:?}: {reason}"), "reason": reason, "code": code});
                    (StatusCode::from_u16(code).unwrap(), body.to_string())
                };
                match name.as_str() {
                    "vanished" => status(404, "NotFound"),
                    "changed" => status(409, "Conflict"),
                    _ => (StatusCode::OK, serde_json::to_string(&tenant(&name)).unwrap()),
                }
            }
        };
        Router::new()
            .route("/apis/switchboard.dev/v1alpha1/namespaces/sb/tenants/{name}", patch_route(handler))
    }

    #[tokio::test]
    async fn a_tenant_deleted_after_the_snapshot_counts_as_done_and_holds_up_no_other() {
        let patched = Arc::new(Mutex::new(Vec::new()));
        let client = kube::Client::new(api_server(patched.clone()), "sb");
        let stores = Stores {
            tenants: reflector::store().0,
            personas: reflector::store().0,
            routes: reflector::store().0,
            budgets: reflector::store().0,
            secrets: reflector::store().0,
            config_maps: reflector::store().0,
            policies: reflector::store().0,
        };
        let ctx = Context {
            traces: Default::default(),
            recorder: Recorder::new(client.clone(), Reporter { controller: MANAGER.into(), instance: None }),
            client,
            settings: Settings::parse_from(["switchboard-operator", "--namespace", "sb"]),
            metrics: Metrics::new().unwrap(),
            stores,
            reported: Default::default(),
            published: Default::default(),
            last_good_policies: Default::default(),
        };
        let tenants =
            Split { decoded: ["vanished", "live", "changed"].map(tenant).to_vec(), undecodable: Vec::new() };
        let failures = finalizers(&ctx, &tenants, &|_| false).await;
        // Only the conflict is a failure (retried); the vanished Tenant needs nothing more.
        assert_eq!(failures, 1);
        let mut names = patched.lock().unwrap().clone();
        names.sort();
        assert_eq!(names, ["changed", "live", "vanished"]);
    }
}
