//! Budget: a spend cap for a tenant, a persona or an API key.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// A spend cap per period.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "Budget",
    namespaced,
    status = "BudgetStatus",
    shortname = "bg",
    category = "switchboard",
    derive = "PartialEq",
    doc = "A spend cap in US dollars per period for a tenant, one of its personas or one of its API keys.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.scope.tenant"),
    printcolumn(name = "Scope", type_ = "string", json_path = ".spec.scope.kind"),
    printcolumn(name = "Limit", type_ = "string", json_path = ".spec.limitUsd"),
    printcolumn(name = "Spent", type_ = "string", json_path = ".status.spentUsd"),
    printcolumn(name = "Period", type_ = "string", json_path = ".spec.period"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct BudgetSpec {
    /// What the budget applies to.
    pub scope: BudgetScope,
    /// Limit in US dollars, a positive decimal string such as `"100"` or `"12.50"`.
    #[schemars(length(max = 19), pattern(r"^[0-9]{1,9}(\.[0-9]{1,9})?$"))]
    #[x_kube(validation = Rule::new("self.matches('[1-9]')").message("limitUsd must be greater than zero"))]
    pub limit_usd: String,
    /// Accounting period; spend resets at its start (UTC).
    pub period: BudgetPeriod,
    /// `Hard` rejects requests once the limit is reached; `Soft` only warns.
    #[serde(default)]
    pub enforcement: BudgetEnforcement,
    /// Percentage of the limit at which a warning is raised.
    #[serde(default = "default_warn")]
    #[schemars(range(min = 1, max = 100))]
    pub warn_at_percent: u8,
    /// What a `Hard` budget does while its spend cannot be read (the ledger's database is
    /// unreachable): `Closed` refuses requests with 503 `budget_unavailable`, `Open` admits them
    /// without enforcing the budget (logged).
    #[serde(default)]
    pub failure_mode: BudgetFailureMode,
}

fn default_warn() -> u8 {
    80
}

/// The subject of a budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind != 'Persona' || has(self.persona)").message("scope.persona is required when kind is Persona"))]
#[x_kube(validation = Rule::new("self.kind != 'ApiKey' || has(self.apiKey)").message("scope.apiKey is required when kind is ApiKey"))]
#[x_kube(validation = Rule::new("self.kind == 'Persona' || !has(self.persona)").message("scope.persona is only allowed when kind is Persona"))]
#[x_kube(validation = Rule::new("self.kind == 'ApiKey' || !has(self.apiKey)").message("scope.apiKey is only allowed when kind is ApiKey"))]
pub struct BudgetScope {
    /// `Tenant`, `Persona` or `ApiKey`.
    pub kind: BudgetScopeKind,
    /// The Tenant the budget belongs to.
    #[schemars(length(min = 1, max = 253))]
    pub tenant: String,
    /// The Persona, when kind is `Persona`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// The tenant's API key name, when kind is `ApiKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// What a budget is scoped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BudgetScopeKind {
    /// The whole tenant.
    Tenant,
    /// One persona of the tenant.
    Persona,
    /// One API key of the tenant.
    ApiKey,
}

/// Accounting period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BudgetPeriod {
    /// Resets at 00:00 UTC.
    Daily,
    /// Resets Mondays 00:00 UTC.
    Weekly,
    /// Resets on the 1st, 00:00 UTC.
    Monthly,
    /// Never resets.
    Total,
}

/// How a budget is enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BudgetEnforcement {
    /// Reject requests with 429 `budget_exceeded` once spent.
    #[default]
    Hard,
    /// Warn (metric, condition, Event) but keep serving.
    Soft,
}

/// What a hard budget does when its counter cannot be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum BudgetFailureMode {
    /// Refuse requests (503) until the counter can be read again: spend never passes the limit.
    #[default]
    Closed,
    /// Admit requests unenforced: availability over the limit.
    Open,
}

/// Observed state of a Budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct BudgetStatus {
    /// Conditions: `Ready`, `Accepted`, `ResolvedRefs` (operator) and `Exhausted` (gateway).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation last processed by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Spend in the current period, US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_usd: Option<String>,
    /// Limit minus spend, US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_usd: Option<String>,
    /// Start of the current period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
}
