//! Tenant: one team using the gateway.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::budget::{BudgetEnforcement, BudgetPeriod};
use super::common::{Condition, Policy, SecretKeyRef};

/// A team that calls the gateway: its API keys, the namespaces its workloads run in, what it may use
/// and how much.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "Tenant",
    namespaced,
    status = "TenantStatus",
    shortname = "tn",
    category = "switchboard",
    derive = "PartialEq",
    doc = "A team using the Switchboard gateway: API keys, namespaces, allowed routes and limits.",
    printcolumn(name = "Display", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Keys", type_ = "integer", json_path = ".status.keyCount"),
    printcolumn(name = "Requests", type_ = "integer", json_path = ".status.requests"),
    printcolumn(name = "Spend", type_ = "string", json_path = ".status.spendUsd"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct TenantSpec {
    /// Human-friendly team name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// Namespaces whose workloads belong to this tenant; the operator lets them reach the gateway.
    #[serde(default)]
    #[schemars(length(max = 64), inner(length(max = 63)), extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))").message("namespaces must be DNS labels"))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b == a))").message("namespaces must be unique"))]
    pub namespaces: Vec<String>,
    /// API keys, each read from a Secret key. Only their SHA-256 hashes reach the gateway config.
    #[serde(default)]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("API key names must be unique"))]
    pub api_keys: Vec<ApiKeyRef>,
    /// Identity providers whose bearer JWTs this tenant accepts besides its API keys. (Kubernetes
    /// ServiceAccount tokens need no entry: the gateway's own flag turns them on, and `namespaces`
    /// decides whose they are.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("JWT issuer names must be unique"))]
    pub jwt_issuers: Vec<JwtIssuer>,
    /// ProviderRoutes this tenant may use. Absent: every route. Empty list: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub allowed_routes: Option<Vec<String>>,
    /// Personas this tenant may talk to (its own and those shared with it). Absent: all it can see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub allowed_personas: Option<Vec<String>>,
    /// Request and token rate limits for the whole tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
    /// A spend cap applied to this tenant when no Budget resource targets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_budget: Option<DefaultBudget>,
    /// A Rego policy every request of this tenant must pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Scheduling priority when the gateway queues requests; higher goes first.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub priority: u8,
}

/// One API key of a tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRef {
    /// Key identifier recorded in the ledger and metrics (never the key itself).
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Where the key's value is stored.
    pub secret_ref: SecretKeyRef,
    /// Limits for this key alone, on top of the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
}

/// An identity provider whose signed JWTs identify callers of this tenant (OIDC discovery, or a
/// JWKS URL). A token is accepted when its signature, issuer, audience, times and required claims
/// all check out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtIssuer {
    /// Recorded as the key name in the ledger, metrics and `apiKey` Budgets, like an API key's name
    /// (so it must differ from those).
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// The issuer (`iss`) exactly as the tokens carry it: an https URL (plain http only on loopback).
    #[schemars(
        length(min = 1, max = 512),
        pattern(r"^(https://[^\s]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/[^\s]*)?)$")
    )]
    pub issuer: String,
    /// Audiences accepted (`aud`): a token must name at least one of them.
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 256)))]
    pub audiences: Vec<String>,
    /// Where the signing keys are; absent: the `jwks_uri` of the issuer's OIDC discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 512),
        pattern(r"^(https://[^\s]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/[^\s]*)?)$")
    )]
    pub jwks_uri: Option<String>,
    /// Claims a token must carry, with these values (a string claim equal to it, or an array
    /// claim containing it), for example `groups: team-a`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub required_claims: BTreeMap<String, String>,
    /// The claim naming the end user (persona memory's subject, the request log's): then the
    /// request's `user` cannot speak for anyone else. Absent: the request names its user, as with
    /// an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub subject_claim: Option<String>,
    /// Limits for this issuer's callers together, on top of the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
}

/// Rate limits; absent fields mean unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    /// Requests per minute, at most 60,000,000 (the limiter counts in microseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000000))]
    pub requests_per_minute: Option<u32>,
    /// Input plus output tokens per minute, at most 60,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000000))]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_concurrent: Option<u32>,
}

/// The spend cap a tenant gets without an explicit Budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultBudget {
    /// Limit in US dollars, a decimal string such as `"25"` or `"12.50"`.
    #[schemars(pattern(r"^[0-9]{1,9}(\.[0-9]{1,9})?$"))]
    pub limit_usd: String,
    /// Accounting period.
    pub period: BudgetPeriod,
    /// Hard budgets reject requests once spent; soft budgets only warn.
    #[serde(default)]
    pub enforcement: BudgetEnforcement,
}

/// Observed state of a Tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct TenantStatus {
    /// Conditions: `Ready`, `Accepted`, `ResolvedRefs`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation last processed by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// API keys resolved from their Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_count: Option<u32>,
    /// Requests served in the current period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Tokens used in the current period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Spend in the current period, US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_usd: Option<String>,
}
