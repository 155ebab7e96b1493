//! One conversation turn with a persona: before the upstream call, the request is rewritten to
//! speak as the persona (system message, model); after it, the persona learns from the user's
//! message (memories, mood, relationship).
//!
//! Memory and mood are best effort on the request path: if their database fails, the persona
//! still answers, without memories, and the failure is logged.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{Value, json};
use switchboard_crds::config::PersonaConfig;
use switchboard_crds::resources::MemoryExtraction;

use super::affect::Quality;
use super::memory::{NewMemory, Owner, Retention};
use super::prompt::{Context, system_message};
use super::{Personas, extract, model_extraction, sharing};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::exchange::{Endpoint, Exchange, Served, ServedReply};
use crate::ledger::now_ms;
use crate::runtime::{Caller, Runtime};
use crate::state::AppState;

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
    pub persona: PersonaConfig,
    /// Who called: memories are kept under its tenant, model extraction is billed to it.
    pub caller: Caller,
    /// Whom the persona talks with: the `user` field or the subject header. No subject, no memory.
    pub subject: Option<String>,
    /// The other persona, when the subject is `persona/<name>` of the same tenant.
    pub partner: Option<PersonaConfig>,
    /// The last user message, which the persona learns from.
    pub message: String,
}

impl Turn {
    /// If the request addresses a persona the caller may see, rewrites it to speak as the persona
    /// and returns the turn. Other requests are left alone.
    pub async fn prepare(
        personas: &Personas,
        runtime: &Runtime,
        caller: &Caller,
        request: &mut Value,
        headers: &HeaderMap,
    ) -> Result<Option<Turn>, ApiError> {
        let Some(name) =
            request.get("model").and_then(Value::as_str).and_then(|m| m.strip_prefix(MODEL_PREFIX))
        else {
            return Ok(None);
        };
        let persona = runtime
            .persona_for(caller, name)
            .ok_or_else(|| ApiError::ModelNotFound(format!("{MODEL_PREFIX}{name}")))?
            .clone();
        let subject = subject(request, headers)?;
        let partner = subject
            .as_deref()
            .and_then(|s| s.strip_prefix(MODEL_PREFIX))
            .and_then(|other| runtime.config.personas.get(other))
            .filter(|other| other.tenant == persona.tenant && other.name != persona.name)
            .cloned();
        let message = last_user_text(request);
        let turn = Turn { persona, caller: caller.clone(), subject, partner, message };
        let system = turn.system_message(personas, runtime, now_ms()).await;
        let messages = request.get_mut("messages").and_then(Value::as_array_mut);
        if let Some(messages) = messages {
            messages.insert(0, json!({"role": "system", "content": system}));
        }
        request["model"] = Value::String(turn.persona.model.clone());
        Ok(Some(turn))
    }

    /// The persona's system message for this turn, with its mood, its bond with the partner and
    /// the subject's most relevant memories (which count as used).
    async fn system_message(&self, personas: &Personas, runtime: &Runtime, now: i64) -> String {
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
                Ok(bond) => partner = Some((other.display_name.as_deref().unwrap_or(&other.name), bond)),
                Err(error) => {
                    tracing::warn!(persona = %persona.name, %error, "persona relationship unavailable")
                }
            }
        }
        let mut memories = Vec::new();
        if let (Some(subject), true) = (&self.subject, persona.memory.enabled) {
            let readable = sharing::readable_by(&runtime.config.personas, persona);
            match personas
                .memories
                .recall(&self.caller.tenant, subject, &readable, &self.message, RECALLED, now)
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

    /// After the persona answered: stores what the user's message says worth remembering (by
    /// rules, or by the persona's model, falling back to the rules if the model's answer is
    /// unusable), prunes by the retention policy, and moves the persona's mood (and its bond with
    /// the partner).
    pub async fn learn(self, state: &AppState) {
        let personas = &state.personas;
        let now = now_ms();
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
        let Some(subject) = &self.subject else { return };
        if !persona.memory.enabled || persona.memory.extraction == MemoryExtraction::Off {
            return;
        }
        let found = match persona.memory.extraction {
            MemoryExtraction::Model if !self.message.trim().is_empty() => {
                self.ask_model(state).await.unwrap_or_else(|problem| {
                    tracing::warn!(persona = %persona.name, %problem, "model memory extraction failed; using the rules");
                    extract::memories_in(&self.message)
                })
            }
            _ => extract::memories_in(&self.message),
        };
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

    /// Asks the persona's model for the memories in the user's message, as the caller.
    async fn ask_model(&self, state: &AppState) -> Result<Vec<NewMemory>, String> {
        let request = model_extraction::request(&self.persona.model, &self.message);
        let auth = Authenticated { runtime: state.runtime.load(), caller: self.caller.clone() };
        let endpoint = Endpoint::MemoryExtraction;
        let exchange =
            Exchange::begin(state, auth, &request, endpoint, &HeaderMap::new(), Some(&self.persona))
                .map_err(|e| e.to_string())?;
        match Arc::new(exchange).serve(state, &request).await {
            Ok(Served { reply: ServedReply::Complete(body), .. }) => {
                let reply = body.to_value().map_err(|e| e.to_string())?;
                model_extraction::memories_in_reply(&reply)
            }
            Ok(Served { reply: ServedReply::Stream(_), .. }) => {
                Err("the model answered with a stream".into())
            }
            Err(error) => Err(error.to_string()),
        }
    }
}

/// The conversation's subject: the OpenAI `user` field, else the subject header.
fn subject(request: &Value, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let from_body = match request.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user.clone()),
        Some(_) => {
            return Err(ApiError::BadRequest("`user` must be a string".into(), Some("invalid_request")));
        }
    };
    let subject =
        from_body.or_else(|| headers.get(SUBJECT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned));
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

/// The text of the last user message (text parts joined).
fn last_user_text(request: &Value) -> String {
    let messages = request.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let Some(message) = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}
