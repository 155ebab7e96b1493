//! `GET /admin/v1/personas`: every Persona with its model, memory settings, sharing and
//! relationships, how many memories it keeps, its mood now (decayed to this moment) and how many
//! interactions it has had, how many memories wait for a vector by its embedding model, and in a
//! cluster the conditions the operator wrote on it. What a Persona's status shows, for every
//! persona at once.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};
use switchboard_crds::Persona;

use super::params;
use crate::db::now_ms;
use crate::serving::conditions::Listed;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> Response {
    let runtime = state.runtime.load();
    let now = now_ms();
    let stores = &state.personas;
    let (counts, states) = match (stores.memories.counts().await, stores.feelings.states(now).await) {
        (Ok(counts), Ok(states)) => (counts, states),
        (Err(error), _) | (_, Err(error)) => {
            return params::unavailable("persona memories and moods", &error);
        }
    };
    let counts: HashMap<String, i64> = counts.into_iter().collect();
    let mut unembedded = HashMap::new();
    for persona in runtime.config.personas.values() {
        if let Some(model) = &persona.memory.embedding_model {
            match stores.memories.count_unembedded(&persona.name, model).await {
                Ok(count) => unembedded.insert(persona.name.as_str(), count),
                Err(error) => return params::unavailable("persona memories", &error),
            };
        }
    }
    let conditions = Listed::read::<Persona>(state.conditions.as_ref()).await;
    let data: Vec<Value> = runtime
        .config
        .personas
        .values()
        .map(|persona| {
            let state = states.iter().find(|(t, p, _)| *t == persona.tenant && *p == persona.name).map(|s| &s.2);
            let round = |x: f64| (x * 100.0).round() / 100.0;
            json!({
                "name": persona.name,
                "tenant": persona.tenant,
                "display_name": persona.display_name,
                "model": persona.model,
                "memory": persona.memory,
                "shared_with_tenants": persona.shared_with_tenants,
                "relationships": persona.relationships.iter().map(|r| &r.persona).collect::<Vec<_>>(),
                "memory_count": counts.get(&persona.name).copied().unwrap_or(0),
                "memories_without_vector": unembedded.get(persona.name.as_str()),
                "mood": state.map(|s| json!({"valence": round(s.mood.valence), "arousal": round(s.mood.arousal),
                    "description": s.mood.describe()})),
                "interactions": state.map_or(0, |s| s.interactions),
                "last_interaction_ms": state.and_then(|s| s.last_interaction_ms),
                "conditions": conditions.of(&persona.name),
            })
        })
        .collect();
    Json(json!({"data": data, "conditions_error": conditions.error})).into_response()
}
