//! The gateway's runtime configuration: what `render()` produces from the resources.
//!
//! It is serializable so the operator can publish it in a ConfigMap. It never holds secret
//! values: tenant API keys appear only as SHA-256 hashes, provider keys only as references.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::decimal::NanoUsd;
use crate::resources::{
    BudgetEnforcement, BudgetFailureMode, BudgetPeriod, BudgetScopeKind, CachePolicy, CircuitBreakerPolicy,
    JwtIssuer, MemoryPolicy, ModelKind, ProviderKind, RateLimits, Relationship, ResponseLimits, RetryPolicy,
};

/// Everything the gateway needs to serve, keyed by resource name. Entries are shared (`Arc`, the
/// JSON is the same): the gateway's config shares them with the shards it was joined from, so a
/// new version allocates only its changed shards' entries, and a request holds a budget or a
/// persona without copying it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfig {
    /// Hex SHA-256 of the rest of the config: equal configs have equal versions.
    pub version: String,
    pub tenants: BTreeMap<String, Arc<TenantConfig>>,
    pub routes: BTreeMap<String, Arc<RouteConfig>>,
    pub personas: BTreeMap<String, Arc<PersonaConfig>>,
    pub budgets: Vec<Arc<BudgetConfig>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantConfig {
    pub name: String,
    pub namespace: String,
    pub display_name: Option<String>,
    pub namespaces: Vec<String>,
    pub api_keys: Vec<ApiKeyConfig>,
    /// The Rego every request of this tenant must pass (`spec.policy.rego`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Identity providers whose JWTs identify this tenant's callers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_issuers: Vec<JwtIssuer>,
    /// `None`: every route.
    pub allowed_routes: Option<BTreeSet<String>>,
    /// `None`: every persona visible to the tenant.
    pub allowed_personas: Option<BTreeSet<String>>,
    pub rate_limits: RateLimits,
    pub priority: u8,
}

impl TenantConfig {
    /// Whether this tenant may use the named route.
    pub fn may_use_route(&self, route: &str) -> bool {
        self.allowed_routes.as_ref().is_none_or(|routes| routes.contains(route))
    }
}

/// A tenant API key, by hash only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyConfig {
    /// The key's name (recorded in the ledger).
    pub id: String,
    /// Hex SHA-256 of the key value.
    pub sha256: String,
    pub rate_limits: RateLimits,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    pub name: String,
    pub namespace: String,
    pub models: Vec<ModelConfig>,
    pub backends: Vec<BackendConfig>,
    pub retries: RetryPolicy,
    /// Deadline for a request across all attempts.
    pub timeout_ms: u64,
    pub circuit_breaker: CircuitBreakerPolicy,
    pub cache: Option<CachePolicy>,
    #[serde(default)]
    pub response_limits: ResponseLimits,
    /// Record prompts and replies on spans (`spec.telemetry.captureContent`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture_content: bool,
    /// The Rego every request to this route must pass (`spec.policy.rego`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    pub name: String,
    pub upstream_model: String,
    #[serde(default, skip_serializing_if = "ModelKind::is_chat")]
    pub kind: ModelKind,
    pub pricing: Pricing,
}

/// Prices per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    pub input: NanoUsd,
    pub output: NanoUsd,
    pub cached_input: NanoUsd,
    pub cache_write: NanoUsd,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendConfig {
    pub name: String,
    pub provider: ProviderKind,
    /// Without a trailing slash.
    pub base_url: Option<String>,
    pub api_key: Option<SecretRef>,
    pub weight: u32,
    pub priority: u32,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub first_token_timeout_ms: Option<u64>,
}

/// A reference to one key of a Secret.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonaConfig {
    pub name: String,
    pub namespace: String,
    pub tenant: String,
    pub display_name: Option<String>,
    pub system_prompt: String,
    pub traits: Vec<String>,
    pub interests: Vec<String>,
    pub model: String,
    pub memory: MemoryPolicy,
    pub shared_with_tenants: BTreeSet<String>,
    pub relationships: Vec<Relationship>,
    pub rate_limits: RateLimits,
}

impl PersonaConfig {
    /// Owners and the tenants it is shared with may talk to it.
    pub fn visible_to(&self, tenant: &str) -> bool {
        self.tenant == tenant || self.shared_with_tenants.contains(tenant)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetConfig {
    /// The Budget's name, or `<tenant>/default` for a tenant's default budget (see
    /// [`BudgetConfig::tenant_default_name`]).
    pub name: String,
    pub namespace: String,
    pub scope: BudgetScopeKind,
    pub tenant: String,
    pub persona: Option<String>,
    pub api_key: Option<String>,
    pub limit: NanoUsd,
    pub period: BudgetPeriod,
    pub enforcement: BudgetEnforcement,
    pub warn_at_percent: u8,
    #[serde(default)]
    pub failure_mode: BudgetFailureMode,
}

impl BudgetConfig {
    /// The name of `tenant`'s default budget (`spec.defaultBudget`): no Budget object can have
    /// it (a `/` is not allowed in names), so it never shares a Budget's counters or status.
    pub fn tenant_default_name(tenant: &str) -> String {
        format!("{tenant}/default")
    }

    /// A Tenant's default budget, which has no Budget object (nor a status of its own).
    pub fn is_tenant_default(&self) -> bool {
        self.name == Self::tenant_default_name(&self.tenant)
    }
}

impl GatewayConfig {
    /// The route serving `model` and the model's entry in it.
    pub fn find_model(&self, model: &str) -> Option<(&RouteConfig, &ModelConfig)> {
        self.routes
            .values()
            .find_map(|route| route.models.iter().find(|m| m.name == model).map(|m| (route.as_ref(), m)))
    }
}
