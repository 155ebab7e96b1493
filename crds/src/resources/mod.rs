//! The four custom resources. Every field carries a doc comment: it becomes the schema
//! description that `kubectl explain` shows.

// kube's `printcolumn(name = .., type_ = ..)` attributes repeat keys on purpose.
#![allow(clippy::duplicated_attributes)]

mod budget;
mod common;
mod persona;
mod provider_route;
mod tenant;

pub use budget::{
    Budget, BudgetEnforcement, BudgetPeriod, BudgetScope, BudgetScopeKind, BudgetSpec, BudgetStatus,
};
pub use common::{Condition, SecretKeyRef};
pub use persona::{
    MemoryExtraction, MemoryPolicy, MemorySharing, MemorySharingScope, Persona, PersonaSpec, PersonaStatus,
    Relationship,
};
pub use provider_route::{
    Backend, ModelPricing, ModelSpec, ProviderKind, ProviderRoute, ProviderRouteSpec, ProviderRouteStatus,
    RetryPolicy,
};
pub use tenant::{ApiKeyRef, DefaultBudget, RateLimits, Tenant, TenantSpec, TenantStatus};

use kube::core::CustomResourceExt;

/// The four CRDs as `(file name, YAML)`, in the form the chart ships them.
pub fn crd_yaml() -> Vec<(String, String)> {
    [Tenant::crd(), Persona::crd(), ProviderRoute::crd(), Budget::crd()]
        .into_iter()
        .map(|crd| {
            let file = format!("crd-{}.yaml", crd.spec.names.plural);
            let yaml = serde_yaml::to_string(&crd).unwrap_or_default();
            (file, yaml)
        })
        .collect()
}
