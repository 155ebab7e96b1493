//! Prompts: every persona the caller may use is an MCP prompt. `prompts/get` gives the persona's
//! system message as it would speak now (its prompt, personality and mood) with what it remembers
//! about the `subject` argument, the memories most relevant to `topic` first, as one user message
//! a client puts in front of its own model. `completion/complete` completes `subject` with the
//! subjects the persona remembers. Memories are read under the caller's tenant, as everywhere.

use rmcp::ErrorData;
use rmcp::model::{CompletionInfo, GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value, json};

use super::calls::Call;
use crate::db::now_ms;
use crate::persona::prompt::{Context, system_message};
use crate::persona::recall::Query;
use crate::persona::sharing::readable_by;
use crate::persona::turn::checked_subject;
use crate::persona_calls;

/// Memories recalled for a prompt, as for a chat turn (the persona's token budget then decides).
const RECALLED: usize = 12;

impl Call<'_> {
    /// One prompt per persona the caller may use.
    pub fn prompts(&self) -> Vec<Prompt> {
        self.auth
            .runtime
            .personas_for(&self.auth.caller)
            .map(|persona| {
                let display = persona.display_name.as_deref().unwrap_or(&persona.name);
                let subject = PromptArgument::new("subject")
                    .with_title("Subject")
                    .with_description("The end user the persona is talking with: what it remembers about them is included.")
                    .with_required(false);
                let topic = PromptArgument::new("topic")
                    .with_title("Topic")
                    .with_description("What the conversation is about, to pick the most relevant memories.")
                    .with_required(false);
                let description = format!("{display}'s system prompt, personality and mood, with what it remembers about the subject");
                Prompt::new(persona.name.clone(), Some(description), Some(vec![subject, topic])).with_title(display)
            })
            .collect()
    }

    /// The persona `name` as a prompt; unknown and invisible personas, and a bad subject, are
    /// invalid params naming them.
    pub async fn prompt(
        &self,
        name: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<GetPromptResult, ErrorData> {
        let persona = self.persona(name).map_err(|_| {
            ErrorData::invalid_params(
                format!("unknown prompt `{name}`; `prompts/list` has the prompts"),
                Some(json!({"prompt": name})),
            )
        })?;
        let text = |key: &str| {
            arguments
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let subject = text("subject").map(checked_subject).transpose().map_err(|error| {
            ErrorData::invalid_params(error.to_string(), Some(json!({"argument": "subject"})))
        })?;
        let now = now_ms();
        let personas = &self.state.personas;
        let mood =
            personas.feelings.state(&persona.tenant, &persona.name, now).await.ok().map(|state| state.mood);
        let memories = match (&subject, persona.memory.enabled) {
            (Some(subject), true) => {
                let readable = readable_by(&self.auth.runtime.config.personas, persona);
                let topic = text("topic").unwrap_or_default();
                let caller = &self.auth.caller;
                let meaning = persona_calls::query_meaning(self.state, caller, persona, topic).await;
                let query = Query { text: topic, meaning: meaning.as_ref(), weights: &persona.memory.recall };
                let recalled =
                    personas.memories.recall(&caller.tenant, subject, &readable, &query, RECALLED, now);
                recalled.await.map_err(|error| {
                    tracing::warn!(%error, "MCP prompt could not read the persona's memories");
                    ErrorData::internal_error("the persona's memories cannot be read right now", None)
                })?
            }
            _ => Vec::new(),
        };
        let (system, _) = system_message(persona, &Context { mood, partner: None, memories: &memories });
        let display = persona.display_name.as_deref().unwrap_or(&persona.name);
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, system)])
            .with_description(format!("Speak as {display}")))
    }

    /// Subjects the persona `prompt` remembers that start with `value`, for its `subject` argument.
    pub async fn complete_subject(&self, prompt: &str, value: &str) -> Result<CompletionInfo, ErrorData> {
        let Ok(persona) = self.persona(prompt) else { return Ok(CompletionInfo::default()) };
        let readable = readable_by(&self.auth.runtime.config.personas, persona);
        let subjects = self
            .state
            .personas
            .memories
            .subjects(&self.auth.caller.tenant, &readable, value, CompletionInfo::MAX_VALUES)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "MCP completion could not read the persona's subjects");
                ErrorData::internal_error("the persona's memories cannot be read right now", None)
            })?;
        CompletionInfo::new(subjects).map_err(|error| ErrorData::internal_error(error, None))
    }
}
