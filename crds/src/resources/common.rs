//! Types shared by several resources.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A key inside a Secret in the same namespace as the resource that refers to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A status condition, following Kubernetes API conventions (`kubectl wait --for=condition=Ready`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready`, `Accepted`, `ResolvedRefs`, or a resource-specific one.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason in CamelCase.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// A Rego policy every request under this resource must pass (docs/security.md#policies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// A Rego module in package `switchboard`: `deny` (reasons to refuse), `models` (those
    /// allowed) and `max_tokens` (a cap on the reply), each optional, computed from `input`.
    #[schemars(length(min = 1, max = 65536))]
    pub rego: String,
}
