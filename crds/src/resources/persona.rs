//! Persona: a named assistant with a system prompt, personality and memory.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;
use super::tenant::RateLimits;

/// A named assistant. Clients address it as `model: "persona/<name>"`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "Persona",
    namespaced,
    status = "PersonaStatus",
    shortname = "pe",
    category = "switchboard",
    derive = "PartialEq",
    doc = "A named assistant: system prompt, personality, model, memory policy and relationships.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenant"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(name = "Memories", type_ = "integer", json_path = ".status.memoryCount"),
    printcolumn(name = "Mood", type_ = "string", json_path = ".status.mood.description"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct PersonaSpec {
    /// The Tenant that owns this persona.
    #[schemars(length(min = 1, max = 253))]
    pub tenant: String,
    /// Human-friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// The system prompt prepended to every conversation.
    #[schemars(length(min = 1, max = 32768))]
    pub system_prompt: String,
    /// Personality traits, e.g. `curious`, `precise`; they shape the prompt and compatibility.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub traits: Vec<String>,
    /// Topics the persona cares about.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub interests: Vec<String>,
    /// Model name (served by a ProviderRoute) this persona talks through.
    #[schemars(length(min = 1, max = 128))]
    pub model: String,
    /// Long-term memory behaviour.
    #[serde(default)]
    pub memory: MemoryPolicy,
    /// Other Tenants allowed to talk to this persona. The owner always can.
    #[serde(default)]
    pub shared_with_tenants: Vec<String>,
    /// Personas this one knows, with the starting relationship.
    #[serde(default)]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["persona"]))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.persona == a.persona))").message("relationships must name each persona once"))]
    pub relationships: Vec<Relationship>,
    /// Request and token rate limits for conversations with this persona, across its callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
}

/// How a persona remembers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPolicy {
    /// Whether memories are stored and recalled at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How memories are extracted from conversations.
    #[serde(default)]
    pub extraction: MemoryExtraction,
    /// Memories kept per subject; the least valuable are pruned first.
    #[serde(default = "default_max_memories")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_memories_per_subject: u32,
    /// Memories unused for this many days are pruned. 0 keeps them forever.
    #[serde(default)]
    #[schemars(range(min = 0, max = 36500))]
    pub retention_days: u32,
    /// Token budget for memories injected into a prompt.
    #[serde(default = "default_injection_tokens")]
    #[schemars(range(min = 0, max = 32768))]
    pub max_injected_tokens: u32,
    /// Who else may read this persona's memories.
    #[serde(default)]
    pub sharing: MemorySharing,
    /// A model of kind `Embedding` (served to this persona's tenant) that turns memories and
    /// queries into vectors, so that recall finds memories by meaning as well as by words. The
    /// calls are metered like any other (endpoint `memory_embedding`); a change of model
    /// re-embeds the stored memories in the background. Without it, recall is by words only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub embedding_model: Option<String>,
    /// How recall ranks memories.
    #[serde(default)]
    pub recall: RecallWeights,
    /// When the persona's model writes a summary memory of a conversation.
    #[serde(default)]
    pub summaries: ConversationSummaries,
}

/// When the persona's model summarises a conversation with a subject into a memory (kind
/// `summary`, recalled like any other), off the request path and metered like any call. Both
/// off by default: each summary is a model call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummaries {
    /// After this many turns since the last summary. 0: never by count.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub every_turns: u32,
    /// When the conversation has been idle this many minutes since its last turn (and has turns
    /// not summarised yet). 0: never by idle time.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10080))]
    pub idle_minutes: u32,
}

impl ConversationSummaries {
    pub fn enabled(&self) -> bool {
        self.every_turns > 0 || self.idle_minutes > 0
    }
}

/// How recall ranks a subject's memories: relevance (by meaning and by words) scaled by
/// importance and by recency of use. Weights are percentages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecallWeights {
    /// The share of relevance that comes from meaning (vector similarity) when an
    /// `embeddingModel` is set; the rest comes from the words' full-text score.
    #[serde(default = "default_meaning_weight")]
    #[schemars(range(min = 0, max = 100))]
    pub meaning_weight: u8,
    /// How much importance (1 to 10) scales the score: 0 ignores it, 100 makes a memory of
    /// importance 1 worth a tenth of one of importance 10.
    #[serde(default = "default_importance_weight")]
    #[schemars(range(min = 0, max = 100))]
    pub importance_weight: u8,
    /// How much recency of use scales the score: 0 ignores it, 100 lets an unused memory fade
    /// to nothing.
    #[serde(default = "default_recency_weight")]
    #[schemars(range(min = 0, max = 100))]
    pub recency_weight: u8,
    /// Recency halves every this many days since a memory was last used.
    #[serde(default = "default_recency_half_life")]
    #[schemars(range(min = 1, max = 3650))]
    pub recency_half_life_days: u16,
}

impl Default for RecallWeights {
    fn default() -> Self {
        Self {
            meaning_weight: default_meaning_weight(),
            importance_weight: default_importance_weight(),
            recency_weight: default_recency_weight(),
            recency_half_life_days: default_recency_half_life(),
        }
    }
}

fn default_meaning_weight() -> u8 {
    70
}
fn default_importance_weight() -> u8 {
    50
}
fn default_recency_weight() -> u8 {
    40
}
fn default_recency_half_life() -> u16 {
    30
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            extraction: MemoryExtraction::default(),
            max_memories_per_subject: default_max_memories(),
            retention_days: 0,
            max_injected_tokens: default_injection_tokens(),
            sharing: MemorySharing::default(),
            embedding_model: None,
            recall: RecallWeights::default(),
            summaries: ConversationSummaries::default(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_max_memories() -> u32 {
    1000
}
fn default_injection_tokens() -> u32 {
    512
}

/// How memories are written from conversations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MemoryExtraction {
    /// Only explicit `remember` calls store memories.
    Off,
    /// Rule-based extraction of facts and preferences from user messages.
    #[default]
    Rules,
    /// The persona's own model extracts and scores memories.
    Model,
}

/// Which other personas may read this persona's memories. Never across tenants.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.scope) && self.scope == 'Personas') || !has(self.personas) || size(self.personas) == 0").message("personas may only be listed when scope is Personas"))]
pub struct MemorySharing {
    /// `Private` (this persona only), `Tenant` (every persona of the tenant), `Personas` (those listed).
    #[serde(default)]
    pub scope: MemorySharingScope,
    /// Personas allowed to read, when scope is `Personas`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personas: Vec<String>,
}

/// Scope of memory sharing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MemorySharingScope {
    /// Only this persona.
    #[default]
    Private,
    /// Every persona of the same tenant.
    Tenant,
    /// The personas listed in `personas`.
    Personas,
}

/// A starting relationship with another persona.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// The other persona's name.
    #[schemars(length(min = 1, max = 253))]
    pub persona: String,
    /// Starting affinity, -100 (hostile) to 100 (close).
    #[serde(default)]
    #[schemars(range(min = -100, max = 100))]
    pub affinity: i32,
    /// Starting trust, 0 to 100.
    #[serde(default = "default_trust")]
    #[schemars(range(min = 0, max = 100))]
    pub trust: i32,
}

fn default_trust() -> i32 {
    50
}

/// Observed state of a Persona.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct PersonaStatus {
    /// Conditions: `Ready`, `Accepted`, `ResolvedRefs`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation last processed by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Stored memories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_count: Option<u64>,
    /// Last conversation (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interaction: Option<String>,
    /// Conversations so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactions: Option<i64>,
    /// The persona's mood now (it drifts back to neutral between conversations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mood: Option<MoodStatus>,
}

/// A persona's mood, as written by the gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoodStatus {
    /// -1 (unhappy) to 1 (happy).
    pub valence: f64,
    /// 0 (calm) to 1 (excited).
    pub arousal: f64,
    /// In a word, e.g. `content` or `irritated`.
    pub description: String,
}
