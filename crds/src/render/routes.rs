//! ProviderRoutes rendered: models with their prices and kinds, backends with their keys by
//! reference, and the rules that span a route (unique model names, weights, embedding models only
//! where backends can serve them).

use std::collections::BTreeMap;

use super::{RenderErrorReason, Renderer, origin};
use crate::config::{BackendConfig, ModelConfig, Pricing, RouteConfig, SecretRef};
use crate::resources::{ModelKind, ProviderKind, ProviderRoute};

impl Renderer<'_> {
    pub(super) fn routes(&mut self, routes: &[&ProviderRoute]) -> BTreeMap<String, RouteConfig> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeMap::new();
        let mut model_owner: BTreeMap<String, String> = BTreeMap::new();
        for route in routes {
            let at = origin(*route);
            if self.duplicate(&mut seen, &at) {
                continue;
            }
            let mut models = Vec::new();
            for (i, model) in route.spec.models.iter().enumerate() {
                let field = |leaf: &str| format!("spec.models[{i}].{leaf}");
                if let Some(owner) = model_owner.get(&model.name).filter(|owner| *owner != at.name) {
                    let message =
                        format!("model {:?} is already served by ProviderRoute {owner}", model.name);
                    self.error(&at, field("name"), RenderErrorReason::Conflict, message);
                }
                model_owner.insert(model.name.clone(), at.name.to_owned());
                let p = &model.pricing;
                let input = self.price(&at, field("pricing.inputPerMillion"), &p.input_per_million);
                let pricing = Pricing {
                    input,
                    output: self.price(&at, field("pricing.outputPerMillion"), &p.output_per_million),
                    cached_input: match &p.cached_input_per_million {
                        Some(text) => self.price(&at, field("pricing.cachedInputPerMillion"), text),
                        None => input,
                    },
                    cache_write: match &p.cache_write_per_million {
                        Some(text) => self.price(&at, field("pricing.cacheWritePerMillion"), text),
                        None => input,
                    },
                };
                let upstream_model = model.upstream_model.clone().unwrap_or_else(|| model.name.clone());
                let kind = model.kind;
                models.push(ModelConfig { name: model.name.clone(), upstream_model, kind, pricing });
            }
            let mut backends = Vec::new();
            for (i, backend) in route.spec.backends.iter().enumerate() {
                let base_url = match (&backend.base_url, backend.provider) {
                    (Some(url), _) => Some(url.trim_end_matches('/').to_owned()),
                    (None, ProviderKind::Mock) => None,
                    (None, _) => {
                        let message = "baseUrl is required unless provider is mock".to_owned();
                        self.error(
                            &at,
                            format!("spec.backends[{i}].baseUrl"),
                            RenderErrorReason::InvalidSpec,
                            message,
                        );
                        None
                    }
                };
                let api_key = backend.api_key_secret_ref.as_ref().and_then(|reference| {
                    self.secret_value(&at, || format!("spec.backends[{i}].apiKeySecretRef"), reference)?;
                    Some(SecretRef {
                        namespace: at.namespace.to_owned(),
                        name: reference.name.clone(),
                        key: reference.key.clone(),
                    })
                });
                backends.push(BackendConfig {
                    name: backend.name.clone(),
                    provider: backend.provider,
                    base_url,
                    api_key,
                    weight: backend.weight,
                    priority: backend.priority,
                    request_timeout_ms: u64::from(backend.request_timeout_seconds) * 1000,
                    connect_timeout_ms: u64::from(backend.connect_timeout_seconds) * 1000,
                    first_token_timeout_ms: backend.first_token_timeout_seconds.map(|s| u64::from(s) * 1000),
                });
            }
            if !backends.is_empty() && backends.iter().all(|b| b.weight == 0) {
                let message = "at least one backend needs a weight above zero".to_owned();
                self.error(&at, "spec.backends", RenderErrorReason::InvalidSpec, message);
            }
            let embeds = models.iter().position(|m| m.kind == ModelKind::Embedding);
            let chat_only = backends
                .iter()
                .find(|b| matches!(b.provider, ProviderKind::Anthropic | ProviderKind::Gemini));
            if let (Some(i), Some(backend)) = (embeds, chat_only) {
                let message = format!(
                    "backend {} speaks a chat-only API: serve embedding models from a route of openai or mock backends",
                    backend.name
                );
                self.error(&at, format!("spec.models[{i}].kind"), RenderErrorReason::InvalidSpec, message);
            }
            let config = RouteConfig {
                name: at.name.to_owned(),
                namespace: at.namespace.to_owned(),
                models,
                backends,
                retries: route.spec.retries.clone(),
                timeout_ms: u64::from(route.spec.timeout_seconds) * 1000,
                circuit_breaker: route.spec.circuit_breaker.clone(),
                cache: route.spec.cache.clone(),
                response_limits: route.spec.response_limits,
                capture_content: route.spec.telemetry.capture_content,
                policy: self.policy(&at, route.spec.policy.as_ref()),
            };
            out.insert(at.name.to_owned(), config);
        }
        out
    }
}
