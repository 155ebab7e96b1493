//! One conversation turn with a persona, in three steps that [`crate::pipeline`] runs around the
//! exchange: [`Turn::resolve`] before admission (which persona, whom it talks with; no database),
//! [`Turn::add_context`] once admitted (the system message with mood, bond and memories, read
//! from the database), and after the answer [`Turn::feel`] and [`Turn::remember`].
//!
//! Memory and mood are best effort on the request path: if their database fails, the persona
//! still answers, without memories, and the failure is logged.

use std::sync::Arc;

use http::HeaderMap;
use switchboard_crds::config::PersonaConfig;
use switchboard_crds::resources::MemoryExtraction;

use super::affect::Quality;
use super::memory::{NewMemory, Owner, Retention};
use super::prompt::{Context, system_message, system_message_bound};
use super::recall::Query;
use super::vectors::Meaning;
use super::{Personas, extract, model_extraction, sharing, summary};
use crate::chat_request::{ChatRequest, Message, Role};
use crate::error::ApiError;
use crate::serving::runtime::{Caller, Runtime};

/// Clients name personas as models with this prefix: `persona/ada`.
pub const MODEL_PREFIX: &str = "persona/";
/// Who the conversation is with, when the request has no `user` field.
pub const SUBJECT_HEADER: &str = "x-switchboard-subject";
/// Subjects longer than this are refused.
pub const MAX_SUBJECT: usize = 256;
/// Memories recalled for a prompt, before the token budget cuts them.
const RECALLED: usize = 12;

/// A persona conversation in progress.
#[derive(Clone, Debug)]
pub struct Turn {
    pub persona: Arc<PersonaConfig>,
    /// Who called: memories are kept under its tenant, model extraction is billed to it.
    pub caller: Arc<Caller>,
    /// Whom the persona talks with: the `user` field or the subject header. No subject, no memory.
    pub subject: Option<String>,
    /// The other persona, when the subject is `persona/<name>` of the same tenant.
    pub partner: Option<Arc<PersonaConfig>>,
    /// The last user message, which the persona learns from.
    pub message: String,
    /// The conversation as the client sent it, for its summary (when the persona writes them).
    pub transcript: Option<String>,
}

impl Turn {
    /// If the request addresses a persona the caller may see, points it at the persona's model
    /// and returns the turn. Other requests are left alone. Reads no database: a request that
    /// admission refuses costs no query.
    pub fn resolve(
        runtime: &Runtime,
        caller: &Arc<Caller>,
        request: &mut ChatRequest,
        headers: &HeaderMap,
    ) -> Result<Option<Turn>, ApiError> {
        let Some(name) = request.model.strip_prefix(MODEL_PREFIX) else {
            return Ok(None);
        };
        let persona = runtime
            .persona_for(caller, name)
            .ok_or_else(|| ApiError::ModelNotFound(format!("{MODEL_PREFIX}{name}")))?
            .clone();
        // A verified token's subject is the end user; only without one does the request name them.
        let subject = match &caller.subject {
            Some(verified) => Some(verified.clone()),
            None => subject(request, headers)?,
        };
        let partner = subject
            .as_deref()
            .and_then(|s| s.strip_prefix(MODEL_PREFIX))
            .and_then(|other| runtime.config.personas.get(other))
            .filter(|other| other.tenant == persona.tenant && other.name != persona.name)
            .cloned();
        let message = request.last_user_text();
        let transcript =
            (subject.is_some() && persona.memory.summaries.enabled()).then(|| summary::transcript(request));
        request.model.clone_from(&persona.model);
        Ok(Some(Turn { persona, caller: caller.clone(), subject, partner, message, transcript }))
    }

    /// The most bytes [`Turn::add_context`] adds to the prompt, which admission reserves for.
    pub fn context_bound(&self) -> usize {
        system_message_bound(&self.persona, self.partner.as_deref().map(partner_name))
    }

    /// Whether this turn recalls memories: it has a subject and the persona keeps memories.
    pub fn recalls(&self) -> bool {
        self.subject.is_some() && self.persona.memory.enabled
    }

    /// Once admitted: puts the persona's system message first, with its mood, its bond with the
    /// partner and the subject's most relevant memories (which count as used), recalled by
    /// `meaning` (the message's vector) as well as by words. Returns its length.
    pub async fn add_context(
        &self,
        personas: &Personas,
        runtime: &Runtime,
        request: &mut ChatRequest,
        meaning: Option<&Meaning>,
        now: i64,
    ) -> usize {
        let system = self.system_message(personas, runtime, meaning, now).await;
        let added = system.len();
        request.messages.insert(0, Message::new(Role::System, system));
        added
    }

    async fn system_message(
        &self,
        personas: &Personas,
        runtime: &Runtime,
        meaning: Option<&Meaning>,
        now: i64,
    ) -> String {
        let persona = &self.persona;
        let mood = match personas.feelings.state(&persona.tenant, &persona.name, now).await {
            Ok(state) => Some(state.mood),
            Err(error) => {
                tracing::warn!(persona = %persona.name, %error, "persona mood unavailable");
                None
            }
        };
        let mut partner = None;
        if let Some(other) = &self.partner {
            let start = persona.relationships.iter().find(|r| r.persona == other.name);
            match personas.feelings.bond(&persona.tenant, &persona.name, &other.name, start, now).await {
                Ok(bond) => partner = Some((partner_name(other), bond)),
                Err(error) => {
                    tracing::warn!(persona = %persona.name, %error, "persona relationship unavailable")
                }
            }
        }
        let mut memories = Vec::new();
        if let (Some(subject), true) = (&self.subject, persona.memory.enabled) {
            let readable = sharing::readable_by(&runtime.config.personas, persona);
            let query = Query { text: &self.message, meaning, weights: &persona.memory.recall };
            match personas
                .memories
                .recall(&self.caller.tenant, subject, &readable, &query, RECALLED, now)
                .await
            {
                Ok(found) => memories = found,
                Err(error) => tracing::warn!(persona = %persona.name, %error, "persona memories unavailable"),
            }
        }
        let context = Context { mood, partner, memories: &memories };
        let (text, included) = system_message(persona, &context);
        let used: Vec<&str> = memories[..included].iter().map(|m| m.id.as_str()).collect();
        if let Err(error) = personas.memories.touch(&used, now).await {
            tracing::warn!(persona = %persona.name, %error, "cannot mark memories as used");
        }
        text
    }

    /// After the persona answered: moves its mood, and its bond with the partner.
    pub async fn feel(&self, personas: &Personas, now: i64) {
        let persona = &self.persona;
        let quality = Quality::of_text(&self.message);
        if let Err(error) = personas.feelings.record(&persona.tenant, &persona.name, quality, now).await {
            tracing::warn!(persona = %persona.name, %error, "cannot record persona mood");
        }
        if let Some(other) = &self.partner {
            let start = persona.relationships.iter().find(|r| r.persona == other.name);
            let result = personas
                .feelings
                .interact(&persona.tenant, &persona.name, &other.name, start, quality, now)
                .await;
            if let Err(error) = result {
                tracing::warn!(persona = %persona.name, %error, "cannot record persona relationship");
            }
        }
    }

    /// How this turn's memories are found, if any are kept (a subject, memory on, extraction not
    /// `Off`); an empty message is left to the rules, which find nothing without a model call.
    pub fn extraction(&self) -> Option<MemoryExtraction> {
        let memory = &self.persona.memory;
        if self.subject.is_none() || !memory.enabled || memory.extraction == MemoryExtraction::Off {
            return None;
        }
        match memory.extraction {
            MemoryExtraction::Model if self.message.trim().is_empty() => Some(MemoryExtraction::Rules),
            extraction => Some(extraction),
        }
    }

    /// The request that asks the persona's model for the memories in the user's message.
    pub fn extraction_request(&self) -> ChatRequest {
        model_extraction::request(&self.persona.model, &self.message)
    }

    /// The memories the rules find in the user's message.
    pub fn memories_by_rules(&self) -> Vec<NewMemory> {
        extract::memories_in(&self.message)
    }

    /// Stores what was found and prunes by the persona's retention policy.
    pub async fn remember(&self, personas: &Personas, found: Vec<NewMemory>, now: i64) {
        let persona = &self.persona;
        let Some(subject) = &self.subject else { return };
        let owner = Owner { tenant: &self.caller.tenant, persona: &persona.name, subject };
        for memory in found {
            if let Err(error) = personas.memories.remember(owner, &memory, now).await {
                tracing::warn!(persona = %persona.name, %error, "cannot store a memory");
                return;
            }
        }
        let retention = Retention {
            max_per_subject: persona.memory.max_memories_per_subject,
            days: persona.memory.retention_days,
        };
        if let Err(error) = personas.memories.prune(owner, retention, now).await {
            tracing::warn!(persona = %persona.name, %error, "cannot prune memories");
        }
    }
}

/// How a persona is named to the one it talks with.
fn partner_name(persona: &PersonaConfig) -> &str {
    persona.display_name.as_deref().unwrap_or(&persona.name)
}

/// The conversation's subject: the OpenAI `user` field, else the subject header.
fn subject(request: &ChatRequest, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let subject = request
        .user
        .clone()
        .or_else(|| headers.get(SUBJECT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned));
    match subject.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(subject) => checked_subject(subject).map(Some),
    }
}

/// A subject as the memory store keeps it: trimmed, 1 to [`MAX_SUBJECT`] bytes, no control
/// characters (PostgreSQL refuses NUL in text, and none belongs in a name).
pub fn checked_subject(subject: &str) -> Result<String, ApiError> {
    let subject = subject.trim();
    if subject.is_empty() || subject.len() > MAX_SUBJECT || subject.chars().any(char::is_control) {
        let message = format!("the subject must be 1 to {MAX_SUBJECT} bytes without control characters");
        return Err(ApiError::BadRequest(message, Some("invalid_subject")));
    }
    Ok(subject.to_owned())
}
