//! The config's Rego policies, compiled once per config: each tenant's and each route's.

use std::collections::HashMap;

use regorus::CompiledPolicy;
use switchboard_crds::config::GatewayConfig;
use switchboard_crds::policy;

/// A compiled policy and whose it is, for messages.
#[derive(Clone)]
pub struct Compiled {
    pub owner: String,
    pub policy: CompiledPolicy,
}

#[derive(Clone, Default)]
pub struct Policies {
    tenants: HashMap<String, Compiled>,
    routes: HashMap<String, Compiled>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("tenants", &self.tenants.len())
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl Policies {
    /// Compiles every policy of `config`; the first that does not compile is the error (the
    /// config's render already compiled them, so only a hand-edited ConfigMap gets here).
    pub fn build(config: &GatewayConfig) -> Result<Policies, String> {
        let mut policies = Policies::default();
        for tenant in config.tenants.values() {
            if let Some(rego) = &tenant.policy {
                let owner = format!("Tenant {}", tenant.name);
                let policy = policy::compile(rego).map_err(|e| format!("{owner}: {e}"))?;
                policies.tenants.insert(tenant.name.clone(), Compiled { owner, policy });
            }
        }
        for route in config.routes.values() {
            if let Some(rego) = &route.policy {
                let owner = format!("ProviderRoute {}", route.name);
                let policy = policy::compile(rego).map_err(|e| format!("{owner}: {e}"))?;
                policies.routes.insert(route.name.clone(), Compiled { owner, policy });
            }
        }
        Ok(policies)
    }

    /// The policies a request of `tenant` to `route` must pass, the tenant's first.
    pub fn applying(&self, tenant: &str, route: Option<&str>) -> impl Iterator<Item = &Compiled> {
        self.tenants.get(tenant).into_iter().chain(route.and_then(|r| self.routes.get(r)))
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.routes.is_empty()
    }
}
