//! `GET /v1/models`: the models the caller's tenant may use, then the personas it may talk to
//! (`persona/<name>`), in OpenAI's list shape.

use axum::Extension;
use axum::response::Json;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::persona::turn::MODEL_PREFIX;

pub async fn list(Extension(auth): Extension<Authenticated>) -> Json<Value> {
    let mut data: Vec<Value> = auth
        .runtime
        .models_for(&auth.caller)
        .into_iter()
        .filter_map(|model| {
            let route = auth.runtime.resolve(&auth.caller, model)?;
            Some(json!({"id": model, "object": "model", "created": 0, "owned_by": route.route.config.name}))
        })
        .collect();
    data.extend(auth.runtime.personas_for(&auth.caller).map(|persona| {
        json!({"id": format!("{MODEL_PREFIX}{}", persona.name), "object": "model", "created": 0, "owned_by": persona.tenant})
    }));
    Json(json!({"object": "list", "data": data}))
}
