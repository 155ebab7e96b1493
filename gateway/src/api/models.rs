//! `GET /v1/models` and `GET /v1/models/{id}`: the models the caller's tenant may use, then the
//! personas it may talk to (`persona/<name>`), in OpenAI's shape, or in Anthropic's when the
//! caller speaks Anthropic's API ([`dialect`]: both SDKs call the same paths), with Anthropic's
//! paging (`limit`, `after_id`, `before_id`).

use axum::Extension;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::params::{self, Params};
use crate::auth::Authenticated;
use crate::error::{ApiError, Dialect};
use crate::persona::turn::MODEL_PREFIX;

/// Anthropic's page size unless `limit` says otherwise, and at most.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 1_000;
/// No creation time is known: the epoch, in each API's form.
const CREATED_AT: &str = "1970-01-01T00:00:00Z";

/// A model the caller may use: its id, and who serves it (a route, or the persona's tenant).
struct Model {
    id: String,
    owned_by: String,
}

impl Model {
    fn shown(&self, dialect: Dialect) -> Value {
        match dialect {
            Dialect::OpenAi => {
                json!({"id": self.id, "object": "model", "created": 0, "owned_by": self.owned_by})
            }
            Dialect::Anthropic => {
                json!({"type": "model", "id": self.id, "display_name": self.id, "created_at": CREATED_AT})
            }
        }
    }
}

fn models(auth: &Authenticated) -> Vec<Model> {
    let runtime = &auth.runtime;
    let mut models: Vec<Model> = runtime
        .models_for(&auth.caller)
        .into_iter()
        .filter_map(|model| {
            let route = runtime.resolve(&auth.caller, model)?;
            Some(Model { id: model.to_owned(), owned_by: route.route.config.name.clone() })
        })
        .collect();
    models.extend(runtime.personas_for(&auth.caller).map(|persona| Model {
        id: format!("{MODEL_PREFIX}{}", persona.name),
        owned_by: persona.tenant.clone(),
    }));
    models
}

/// Anthropic's when the caller sends `anthropic-version` (its SDKs do, and its API requires it),
/// or its key as `x-api-key` with no `Authorization`; OpenAI's otherwise.
fn dialect(headers: &HeaderMap) -> Dialect {
    let anthropic_key = headers.contains_key("x-api-key") && !headers.contains_key("authorization");
    if anthropic_key { Dialect::Anthropic } else { Dialect::of_request("/v1/models", headers) }
}

pub async fn list(Extension(auth): Extension<Authenticated>, headers: HeaderMap, params: Params) -> Response {
    let all = models(&auth);
    match dialect(&headers) {
        Dialect::OpenAi => {
            let data: Vec<Value> = all.iter().map(|m| m.shown(Dialect::OpenAi)).collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Dialect::Anthropic => match anthropic_page(&all, params) {
            Ok(page) => Json(page).into_response(),
            Err(error) => error.into_response_for(Dialect::Anthropic),
        },
    }
}

pub async fn get(
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let dialect = dialect(&headers);
    match models(&auth).iter().find(|m| m.id == id) {
        Some(model) => Json(model.shown(dialect)).into_response(),
        // Unknown and forbidden models look the same, as everywhere.
        None => ApiError::ModelNotFound(id).into_response_for(dialect),
    }
}

/// Anthropic's list: `limit` models after `after_id` (or before `before_id`), `has_more`, and
/// the page's first and last ids.
fn anthropic_page(all: &[Model], params: Params) -> Result<Value, ApiError> {
    let (mut limit, mut after, mut before) = (DEFAULT_PAGE, None, None);
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "limit" => limit = params::limit(&value, MAX_PAGE)?,
            "after_id" => after = Some(value),
            "before_id" => before = Some(value),
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    let position = |id: &String| all.iter().position(|m| m.id == *id);
    let (start, end) = match (&after, &before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request("`after_id` and `before_id` go one at a time".into()));
        }
        (Some(id), None) => (position(id).map_or(all.len(), |i| i + 1), all.len()),
        (None, Some(id)) => {
            let end = position(id).unwrap_or(0);
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, all.len()),
    };
    let page: Vec<&Model> = all[start..end].iter().take(limit).collect();
    let has_more = if before.is_some() { start > 0 } else { start + page.len() < end };
    Ok(json!({
        "data": page.iter().map(|m| m.shown(Dialect::Anthropic)).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|m| &m.id),
        "last_id": page.last().map(|m| &m.id),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::extract::Query;

    use super::*;

    fn page(all: &[Model], query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let query: HashMap<String, String> = query.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        anthropic_page(all, Ok(Query(query)))
    }

    #[test]
    fn anthropic_pages_go_forward_and_back_by_id() {
        let all: Vec<Model> =
            ["a", "b", "c", "d"].iter().map(|id| Model { id: (*id).into(), owned_by: "r".into() }).collect();
        let ids = |page: &Value| {
            page["data"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect::<Vec<_>>()
        };
        let first = page(&all, &[("limit", "2")]).unwrap();
        assert_eq!(
            (ids(&first), &first["has_more"], &first["last_id"]),
            (vec![json!("a"), json!("b")], &json!(true), &json!("b"))
        );
        let next = page(&all, &[("limit", "2"), ("after_id", "b")]).unwrap();
        assert_eq!((ids(&next), &next["has_more"]), (vec![json!("c"), json!("d")], &json!(false)));
        let back = page(&all, &[("limit", "2"), ("before_id", "d")]).unwrap();
        assert_eq!((ids(&back), &back["has_more"]), (vec![json!("b"), json!("c")], &json!(true)));
        let none = page(&all, &[("after_id", "d")]).unwrap();
        assert_eq!((ids(&none), &none["first_id"]), (vec![], &Value::Null));
        assert!(page(&all, &[("after_id", "a"), ("before_id", "d")]).is_err());
        assert!(page(&all, &[("limit", "0")]).is_err());
    }
}
