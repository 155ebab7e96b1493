//! Who a config trusts to vouch for callers besides API keys: each JWT issuer with the tenants
//! that accept it, and which tenant each namespace's ServiceAccounts belong to.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_crds::config::GatewayConfig;
use switchboard_crds::resources::JwtIssuer;

/// One tenant's trust in an issuer.
#[derive(Debug)]
pub struct Trust {
    pub tenant: String,
    pub issuer: JwtIssuer,
}

#[derive(Debug, Default)]
pub struct Identities {
    /// By the issuer (`iss`): every tenant that accepts its tokens.
    by_issuer: HashMap<String, Vec<Arc<Trust>>>,
    /// By namespace: the tenant whose workloads run there; `None` when several tenants list it,
    /// and then its ServiceAccounts belong to none.
    by_namespace: HashMap<String, Option<String>>,
}

impl Identities {
    pub fn build(config: &GatewayConfig) -> Identities {
        let mut identities = Identities::default();
        for tenant in config.tenants.values() {
            for issuer in &tenant.jwt_issuers {
                let trust = Arc::new(Trust { tenant: tenant.name.clone(), issuer: issuer.clone() });
                identities.by_issuer.entry(issuer.issuer.clone()).or_default().push(trust);
            }
            for namespace in &tenant.namespaces {
                identities
                    .by_namespace
                    .entry(namespace.clone())
                    .and_modify(|owner| {
                        tracing::warn!(%namespace, "several Tenants list this namespace: its ServiceAccounts belong to none");
                        *owner = None;
                    })
                    .or_insert_with(|| Some(tenant.name.clone()));
            }
        }
        identities
    }

    /// The tenants that accept tokens of `issuer`.
    pub fn trusting(&self, issuer: &str) -> &[Arc<Trust>] {
        self.by_issuer.get(issuer).map_or(&[], Vec::as_slice)
    }

    /// Every trusted issuer, in order.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        let mut issuers: Vec<&str> = self.by_issuer.keys().map(String::as_str).collect();
        issuers.sort_unstable();
        issuers.into_iter()
    }

    /// The tenant whose workloads run in `namespace`, if exactly one lists it.
    pub fn tenant_of_namespace(&self, namespace: &str) -> Option<&str> {
        self.by_namespace.get(namespace).and_then(Option::as_deref)
    }
}
