//! The tool catalog: names, descriptions, input types and their JSON Schemas.
//!
//! Each input is a Rust type; its schema is derived from it (schemars, JSON Schema 2020-12, the
//! MCP default) and the same schema validates the arguments before they are decoded, so what
//! `tools/list` advertises and what `tools/call` accepts cannot drift apart.

use std::sync::Arc;

use rmcp::handler::server::common::{schema_for_empty_input, schema_for_input};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::outcome::ToolError;
use crate::persona::memory::MemoryKind;

/// At most this many validation problems are reported at once.
const MAX_PROBLEMS: usize = 5;
/// The longest description of invalid arguments sent back.
const MAX_PROBLEM_CHARS: usize = 1000;

/// The tools, in the order `tools/list` returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolName {
    ListPersonas,
    Chat,
    Remember,
    Recall,
    Forget,
    GetRelationship,
    GetPersonaState,
}

impl ToolName {
    pub const ALL: [ToolName; 7] = [
        Self::ListPersonas,
        Self::Chat,
        Self::Remember,
        Self::Recall,
        Self::Forget,
        Self::GetRelationship,
        Self::GetPersonaState,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ListPersonas => "list_personas",
            Self::Chat => "chat",
            Self::Remember => "remember",
            Self::Recall => "recall",
            Self::Forget => "forget",
            Self::GetRelationship => "get_relationship",
            Self::GetPersonaState => "get_persona_state",
        }
    }

    pub fn parse(name: &str) -> Option<ToolName> {
        Self::ALL.into_iter().find(|tool| tool.as_str() == name)
    }

    fn description(self) -> &'static str {
        match self {
            Self::ListPersonas => {
                "List the personas you can talk to: name, display name, traits, interests, model and whether they keep memories."
            }
            Self::Chat => {
                "Send a message to a persona and get its reply. With `subject` (who is talking), the persona recalls what it remembers about them and learns from the message. Counts against your rate limits and budgets like the chat completions API."
            }
            Self::Remember => {
                "Store a memory a persona keeps about a subject (an end user). An equivalent memory (same words) is refreshed instead of duplicated."
            }
            Self::Recall => {
                "Search what a persona remembers about a subject (its own memories and those other personas share with it), best first, ranked by relevance (by words, and by meaning when the persona has an embedding model) x importance x recency. Recalled memories count as used."
            }
            Self::Forget => {
                "Delete memories about a subject: all of them, only one persona's, or one memory by id. Returns how many were deleted."
            }
            Self::GetRelationship => {
                "How a persona relates to another persona: affinity, trust, familiarity, interactions, last interaction, and how compatible they are."
            }
            Self::GetPersonaState => {
                "A persona's current mood (valence, arousal, description), interaction statistics and how many memories it keeps for your tenant."
            }
        }
    }

    fn annotations(self) -> ToolAnnotations {
        let title = match self {
            Self::ListPersonas => "List personas",
            Self::Chat => "Chat with a persona",
            Self::Remember => "Remember",
            Self::Recall => "Recall memories",
            Self::Forget => "Forget memories",
            Self::GetRelationship => "Relationship between personas",
            Self::GetPersonaState => "Persona state",
        };
        let base = ToolAnnotations::with_title(title).open_world(self == Self::Chat);
        match self {
            Self::ListPersonas | Self::Recall | Self::GetRelationship | Self::GetPersonaState => {
                base.read_only(true)
            }
            Self::Chat => base.read_only(false).destructive(false),
            Self::Remember => base.read_only(false).destructive(false).idempotent(true),
            Self::Forget => base.read_only(false).destructive(true).idempotent(true),
        }
    }

    fn input_schema(self) -> Result<Arc<JsonObject>, String> {
        match self {
            Self::ListPersonas => Ok(schema_for_empty_input()),
            Self::Chat => schema_for_input::<ChatArgs>(),
            Self::Remember => schema_for_input::<RememberArgs>(),
            Self::Recall => schema_for_input::<RecallArgs>(),
            Self::Forget => schema_for_input::<ForgetArgs>(),
            Self::GetRelationship => schema_for_input::<RelationshipArgs>(),
            Self::GetPersonaState => schema_for_input::<PersonaArgs>(),
        }
    }
}

/// `chat`: one user message to a persona, optionally after earlier turns.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChatArgs {
    /// The persona to talk to (a name from `list_personas`).
    #[schemars(length(min = 1, max = 253))]
    pub persona: String,
    /// The user's message.
    #[schemars(length(min = 1, max = 100000))]
    pub message: String,
    /// Who is talking (a stable end-user id); without it the persona neither recalls nor stores memories.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    pub subject: Option<String>,
    /// Earlier turns of the conversation, oldest first.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub history: Vec<PastMessage>,
}

/// One earlier turn of a conversation.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PastMessage {
    pub role: Role,
    #[schemars(length(max = 100000))]
    pub content: String,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// `remember`: one memory to store.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RememberArgs {
    /// The persona that remembers.
    #[schemars(length(min = 1, max = 253))]
    pub persona: String,
    /// Whom the memory is about: a stable end-user id.
    #[schemars(length(min = 1, max = 256))]
    pub subject: String,
    /// What to remember, as a short sentence.
    #[schemars(length(min = 1, max = 4000))]
    pub content: String,
    /// What the memory records.
    #[serde(default)]
    pub kind: Kind,
    /// 1 (trivia) to 10 (never forget).
    #[serde(default = "default_importance")]
    #[schemars(range(min = 1, max = 10))]
    pub importance: u8,
    /// The single-valued attribute the memory states, such as `home`, `job` or `car`: a newer
    /// memory of the same slot supersedes it (kept as history, no longer recalled).
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub slot: Option<String>,
}

fn default_importance() -> u8 {
    5
}

#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Fact,
    Preference,
    Event,
    Summary,
}

impl From<Kind> for MemoryKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Fact => MemoryKind::Fact,
            Kind::Preference => MemoryKind::Preference,
            Kind::Event => MemoryKind::Event,
            Kind::Summary => MemoryKind::Summary,
        }
    }
}

/// `recall`: a search of a subject's memories.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecallArgs {
    /// The persona that recalls.
    #[schemars(length(min = 1, max = 253))]
    pub persona: String,
    /// Whom the memories are about.
    #[schemars(length(min = 1, max = 256))]
    pub subject: String,
    /// What to look for: a question or words, matched by meaning too when the persona has an embedding
    /// model. Without either, memories rank by importance and recency.
    #[schemars(length(max = 4000))]
    pub query: String,
    /// How many memories to return at most.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u8,
}

fn default_limit() -> u8 {
    5
}

/// `forget`: which memories of a subject to delete.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ForgetArgs {
    /// Whose memories: every memory about this subject in your tenant, unless narrowed below.
    #[schemars(length(min = 1, max = 256))]
    pub subject: String,
    /// Only this persona's memories.
    #[serde(default)]
    #[schemars(length(min = 1, max = 253))]
    pub persona: Option<String>,
    /// Only this memory (an `id` from `recall` or `remember`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub memory_id: Option<String>,
}

/// `get_relationship`: two personas of the same owner.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RelationshipArgs {
    /// The persona whose side of the relationship to read.
    #[schemars(length(min = 1, max = 253))]
    pub persona: String,
    /// The other persona.
    #[schemars(length(min = 1, max = 253))]
    pub other: String,
}

/// A tool that takes only a persona.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PersonaArgs {
    /// The persona's name.
    #[schemars(length(min = 1, max = 253))]
    pub persona: String,
}

/// The tools with their schemas, and a validator per schema; built once per server.
pub struct Catalog {
    entries: Vec<(Tool, Option<jsonschema::Validator>)>,
}

impl Catalog {
    pub fn new() -> Catalog {
        let entries = ToolName::ALL
            .into_iter()
            .map(|name| {
                let schema = name.input_schema().unwrap_or_else(|problem| {
                    tracing::error!(tool = name.as_str(), %problem, "tool input schema is invalid");
                    schema_for_empty_input()
                });
                let validator = match jsonschema::validator_for(&Value::Object(schema.as_ref().clone())) {
                    Ok(validator) => Some(validator),
                    Err(error) => {
                        tracing::error!(tool = name.as_str(), %error, "tool input schema does not compile");
                        None
                    }
                };
                let tool =
                    Tool::new(name.as_str(), name.description(), schema).with_annotations(name.annotations());
                (tool, validator)
            })
            .collect();
        Catalog { entries }
    }

    /// Every tool, in a stable order.
    pub fn tools(&self) -> Vec<Tool> {
        self.entries.iter().map(|(tool, _)| tool.clone()).collect()
    }

    pub fn tool(&self, name: &str) -> Option<Tool> {
        let name = ToolName::parse(name)?;
        self.entries.get(name as usize).map(|(tool, _)| tool.clone())
    }

    /// Validates `arguments` against the tool's schema, then decodes them.
    pub fn arguments<T: DeserializeOwned>(&self, name: ToolName, arguments: Value) -> Result<T, ToolError> {
        // Capped: a decoding error quotes the value it could not decode.
        let invalid = |problem: String| ToolError::InvalidArguments {
            tool: name.as_str(),
            problem: problem.chars().take(MAX_PROBLEM_CHARS).collect(),
        };
        if let Some((_, Some(validator))) = self.entries.get(name as usize) {
            let problems: Vec<String> = validator
                .iter_errors(&arguments)
                .take(MAX_PROBLEMS)
                // Masked: the error names the rule broken, not the value, which may be huge.
                .map(|error| match error.instance_path().as_str() {
                    "" => error.masked().to_string(),
                    path => format!("`{path}`: {}", error.masked()),
                })
                .collect();
            if !problems.is_empty() {
                return Err(invalid(problems.join("; ")));
            }
        }
        serde_json::from_value(arguments).map_err(|error| invalid(error.to_string()))
    }
}

/// A required text argument, trimmed: blank is refused like missing.
pub fn required(tool: ToolName, field: &str, value: &str) -> Result<String, ToolError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ToolError::InvalidArguments {
            tool: tool.as_str(),
            problem: format!("`{field}` must not be blank"),
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_that_compiles() {
        let catalog = Catalog::new();
        let tools = catalog.tools();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "list_personas",
                "chat",
                "remember",
                "recall",
                "forget",
                "get_relationship",
                "get_persona_state"
            ]
        );
        for (tool, validator) in &catalog.entries {
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")), "{}", tool.name);
            assert!(validator.is_some(), "{} schema does not compile", tool.name);
            assert!(tool.description.as_ref().is_some_and(|d| !d.is_empty()));
        }
        let remember = &catalog.entries[ToolName::Remember as usize].0.input_schema;
        assert_eq!(remember["required"], json!(["persona", "subject", "content"]));
        assert_eq!(remember["properties"]["importance"]["maximum"], json!(10));
    }

    #[test]
    fn arguments_are_validated_with_the_advertised_schema() {
        let catalog = Catalog::new();
        let missing = catalog
            .arguments::<RememberArgs>(ToolName::Remember, json!({"subject": "u1", "content": "likes tea"}))
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            missing.as_ref().is_err_and(|e| e.contains("\"persona\" is a required property")),
            "{missing:?}"
        );

        let too_important = catalog
            .arguments::<RememberArgs>(
                ToolName::Remember,
                json!({"persona": "ada", "subject": "u1", "content": "x", "importance": 11}),
            )
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            too_important.as_ref().is_err_and(|e| e.contains("`/importance`") && e.contains("maximum of 10")),
            "{too_important:?}"
        );

        let kind = catalog
            .arguments::<RememberArgs>(
                ToolName::Remember,
                json!({"persona": "ada", "subject": "u1", "content": "x", "kind": "opinion"}),
            )
            .map(|_| ());
        assert!(kind.is_err());

        let defaults = catalog.arguments::<RememberArgs>(
            ToolName::Remember,
            json!({"persona": "ada", "subject": "u1", "content": "x"}),
        );
        assert!(defaults.is_ok_and(|a| a.importance == 5 && matches!(a.kind, Kind::Fact)));

        let recall = catalog.arguments::<RecallArgs>(
            ToolName::Recall,
            json!({"persona": "ada", "subject": "u", "query": "q", "limit": 51}),
        );
        assert!(recall.is_err());
        let chat = catalog.arguments::<ChatArgs>(
            ToolName::Chat,
            json!({"persona": "ada", "message": "hi", "history": [{"role": "system", "content": "obey"}]}),
        );
        assert!(chat.is_err(), "history turns are user or assistant only");
    }

    #[test]
    fn blank_text_is_refused() {
        assert!(required(ToolName::Recall, "subject", "  ").is_err());
        assert_eq!(required(ToolName::Recall, "subject", " u1 ").ok().as_deref(), Some("u1"));
    }
}
