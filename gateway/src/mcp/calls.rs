//! The tools that read and write persona state directly (everything but `chat`).
//!
//! Two rules hold in every function here: a persona is looked up with `Runtime::persona_for`, so a
//! caller sees only the personas its tenant may use; and memories are read and written under the
//! caller's tenant, so nothing crosses tenants, shared personas included. Moods and relationships
//! belong to the persona itself, so they are kept under the persona's owning tenant, as on the
//! chat path.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use switchboard_crds::config::PersonaConfig;

use super::outcome::{ToolError, bond_json, compatibility_json, mood_json, rfc3339};
use super::tools::{ForgetArgs, PersonaArgs, RecallArgs, RelationshipArgs, RememberArgs, ToolName, required};
use crate::auth::Authenticated;
use crate::db::now_ms;
use crate::persona::affect::compatibility;
use crate::persona::memory::{NewMemory, Owner, Retention};
use crate::persona::recall::Query;
use crate::persona::sharing::readable_by;
use crate::persona_calls;
use crate::state::AppState;

/// One tool call's caller and the runtime snapshot it was authenticated against.
pub struct Call<'a> {
    pub state: &'a AppState,
    pub auth: &'a Authenticated,
    /// When the call arrived, for the request duration metric.
    pub started: Instant,
}

impl<'a> Call<'a> {
    /// The persona `name` if the caller may use it.
    pub fn persona(&self, name: &str) -> Result<&'a PersonaConfig, ToolError> {
        let name = name.trim();
        self.auth
            .runtime
            .persona_for(&self.auth.caller, name)
            .map(Arc::as_ref)
            .ok_or_else(|| ToolError::UnknownPersona(name.into()))
    }

    /// The persona `name` if the caller may use it and it keeps memories.
    fn remembering(&self, name: &str) -> Result<&'a PersonaConfig, ToolError> {
        let persona = self.persona(name)?;
        if !persona.memory.enabled {
            return Err(ToolError::MemoryDisabled(persona.name.clone()));
        }
        Ok(persona)
    }

    fn tenant(&self) -> &'a str {
        &self.auth.caller.tenant
    }

    pub fn list_personas(&self) -> Value {
        let personas: Vec<Value> = self
            .auth
            .runtime
            .personas_for(&self.auth.caller)
            .map(|p| {
                json!({
                    "name": p.name,
                    "displayName": p.display_name.as_deref().unwrap_or(&p.name),
                    "traits": p.traits,
                    "interests": p.interests,
                    "model": p.model,
                    "memory": p.memory.enabled,
                    "resource": format!("persona://{}", p.name),
                })
            })
            .collect();
        json!({ "personas": personas })
    }

    pub async fn remember(&self, args: RememberArgs) -> Result<Value, ToolError> {
        let tool = ToolName::Remember;
        let persona = self.remembering(&args.persona)?;
        let subject = required(tool, "subject", &args.subject)?;
        let content = required(tool, "content", &args.content)?;
        let memories = &self.state.personas.memories;
        let owner = Owner { tenant: self.tenant(), persona: &persona.name, subject: &subject };
        let memory =
            NewMemory { kind: args.kind.into(), content, importance: args.importance, slot: args.slot };
        let now = now_ms();
        let stored = memories.remember(owner, &memory, now).await?;
        let retention = Retention {
            max_per_subject: persona.memory.max_memories_per_subject,
            days: persona.memory.retention_days,
        };
        memories.prune(owner, retention, now).await?;
        persona_calls::embed_new(self.state, &self.auth.caller, persona, &subject).await;
        Ok(json!({
            "id": stored.id,
            "created": stored.created,
            "superseded": stored.superseded,
            "persona": persona.name,
            "subject": subject,
            "kind": memory.kind.as_str(),
            "importance": memory.importance,
        }))
    }

    pub async fn recall(&self, args: RecallArgs) -> Result<Value, ToolError> {
        let persona = self.remembering(&args.persona)?;
        let subject = required(ToolName::Recall, "subject", &args.subject)?;
        let readable = readable_by(&self.auth.runtime.config.personas, persona);
        let memories = &self.state.personas.memories;
        let meaning = persona_calls::query_meaning(self.state, &self.auth.caller, persona, &args.query).await;
        let query = Query { text: &args.query, meaning: meaning.as_ref(), weights: &persona.memory.recall };
        let now = now_ms();
        let found =
            memories.recall(self.tenant(), &subject, &readable, &query, usize::from(args.limit), now).await?;
        let ids: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
        memories.touch(&ids, now).await?;
        let listed: Vec<Value> = found
            .iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "persona": m.persona,
                    "kind": m.kind.as_str(),
                    "content": m.content,
                    "importance": m.importance,
                    "score": m.score,
                    "createdAt": rfc3339(m.created_at_ms),
                    "lastUsedAt": rfc3339(m.last_used_at_ms),
                    "useCount": m.use_count,
                })
            })
            .collect();
        Ok(json!({"persona": persona.name, "subject": subject, "memories": listed}))
    }

    pub async fn forget(&self, args: ForgetArgs) -> Result<Value, ToolError> {
        let subject = required(ToolName::Forget, "subject", &args.subject)?;
        let persona = args.persona.as_deref().map(|name| self.persona(name)).transpose()?;
        let id = args.memory_id.as_deref().map(str::trim).filter(|id| !id.is_empty());
        let personas = &self.state.personas;
        let deleted = personas.forget(self.tenant(), &subject, persona.map(|p| p.name.as_str()), id).await?;
        Ok(json!({"subject": subject, "persona": persona.map(|p| &p.name), "deleted": deleted}))
    }

    pub async fn relationship(&self, args: RelationshipArgs) -> Result<Value, ToolError> {
        let persona = self.persona(&args.persona)?;
        let other = self.persona(&args.other)?;
        if other.name == persona.name {
            return Err(ToolError::Refused(format!(
                "persona `{}` has no relationship with itself",
                persona.name
            )));
        }
        if other.tenant != persona.tenant {
            return Err(ToolError::Refused(format!(
                "personas `{}` and `{}` have different owners; personas relate only to personas of their own tenant",
                persona.name, other.name
            )));
        }
        let start = persona.relationships.iter().find(|r| r.persona == other.name);
        let feelings = &self.state.personas.feelings;
        let bond = feelings.bond(&persona.tenant, &persona.name, &other.name, start, now_ms()).await?;
        let other_name = other.display_name.as_deref().unwrap_or(&other.name);
        Ok(json!({
            "persona": persona.name,
            "other": other.name,
            "bond": bond_json(&bond),
            "description": bond.describe(other_name),
            "compatibility": compatibility_json(&compatibility(persona, other)),
        }))
    }

    pub async fn persona_state(&self, args: PersonaArgs) -> Result<Value, ToolError> {
        let persona = self.persona(&args.persona)?;
        let state = self.state.personas.feelings.state(&persona.tenant, &persona.name, now_ms()).await?;
        let memories = self.state.personas.memories.count(self.tenant(), &persona.name).await?;
        Ok(json!({
            "persona": persona.name,
            "mood": mood_json(&state.mood),
            "interactions": state.interactions,
            "averageQuality": state.average_quality,
            "lastInteraction": state.last_interaction_ms.map(rfc3339),
            "memories": memories,
        }))
    }
}
