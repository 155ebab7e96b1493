//! Resources: one `persona://<name>` per persona the caller may use, a JSON profile with the
//! persona's current mood and its relationships with their current bonds.

use rmcp::ErrorData;
use rmcp::model::{Resource, ResourceContents};
use serde_json::{Value, json};

use super::calls::Call;
use super::outcome::{ToolError, bond_json, compatibility_json, mood_json};
use crate::db::now_ms;
use crate::persona::affect::compatibility;

pub const SCHEME: &str = "persona://";
const MIME: &str = "application/json";

impl Call<'_> {
    pub fn resources(&self) -> Vec<Resource> {
        self.auth
            .runtime
            .personas_for(&self.auth.caller)
            .map(|p| {
                let display = p.display_name.as_deref().unwrap_or(&p.name);
                Resource::new(format!("{SCHEME}{}", p.name), p.name.clone())
                    .with_title(display)
                    .with_description(format!("{display}: profile, current mood and relationships"))
                    .with_mime_type(MIME)
            })
            .collect()
    }

    /// The profile behind `uri`; unknown and invisible personas are the protocol's
    /// resource-not-found error, with the URI in `data`.
    pub async fn read(&self, uri: &str) -> Result<ResourceContents, ErrorData> {
        let not_found = || ErrorData::resource_not_found("Resource not found", Some(json!({"uri": uri})));
        let name =
            uri.strip_prefix(SCHEME).filter(|n| !n.is_empty() && !n.contains('/')).ok_or_else(not_found)?;
        let persona = self.persona(name).map_err(|_| not_found())?;
        let profile = self.profile(persona).await.map_err(|error| {
            let message = error.to_string();
            if let ToolError::Store(source) = &error {
                tracing::warn!(error = %source, "MCP resource read failed on the persona store");
            }
            ErrorData::internal_error(message, None)
        })?;
        Ok(ResourceContents::text(profile.to_string(), uri).with_mime_type(MIME))
    }

    async fn profile(&self, persona: &switchboard_crds::config::PersonaConfig) -> Result<Value, ToolError> {
        let now = now_ms();
        let feelings = &self.state.personas.feelings;
        let state = feelings.state(&persona.tenant, &persona.name, now).await?;
        let mut relationships = Vec::new();
        for start in &persona.relationships {
            // Only personas the caller may see: a shared persona's relations stay private.
            let Ok(other) = self.persona(&start.persona) else { continue };
            if other.tenant != persona.tenant {
                continue;
            }
            let bond = feelings.bond(&persona.tenant, &persona.name, &other.name, Some(start), now).await?;
            relationships.push(json!({
                "persona": other.name,
                "displayName": other.display_name.as_deref().unwrap_or(&other.name),
                "bond": bond_json(&bond),
                "compatibility": compatibility_json(&compatibility(persona, other)),
            }));
        }
        Ok(json!({
            "name": persona.name,
            "displayName": persona.display_name.as_deref().unwrap_or(&persona.name),
            "traits": persona.traits,
            "interests": persona.interests,
            "model": persona.model,
            "memory": {"enabled": persona.memory.enabled},
            "mood": mood_json(&state.mood),
            "interactions": state.interactions,
            "relationships": relationships,
        }))
    }
}
