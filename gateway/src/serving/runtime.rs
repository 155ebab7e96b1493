//! The serving state built from one [`GatewayConfig`]: key index, model index, provider clients.
//!
//! A `Runtime` is immutable. A new config builds a new `Runtime` aside, which is then swapped in
//! atomically (see [`crate::serving::live`]); a config that fails to build leaves the old one serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_crds::config::{
    BackendConfig, BudgetConfig, GatewayConfig, ModelConfig, PersonaConfig, RouteConfig, TenantConfig,
};
use switchboard_crds::render::{SecretLookupError, SecretStore};

use super::identities::Identities;
use super::policies::Policies;
use crate::breaker::Breaker;
use crate::providers::Provider;
use crate::recent_attempts::RecentAttempts;
use crate::redact::Redactor;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub tenant: String,
    /// The API key's name, or the JWT issuer's (a ServiceAccount's full name for its tokens).
    pub key_id: String,
    /// The end user a verified token names (its issuer's `subjectClaim`): persona memory is kept
    /// for them, whatever the request's `user` says.
    pub subject: Option<String>,
    /// A verified token's claims, for policies (`input.identity.claims`).
    pub claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

/// A backend with its ready-to-use provider client, its circuit breaker and its recent attempts.
#[derive(Debug)]
pub struct BackendRuntime {
    pub config: BackendConfig,
    pub provider: Provider,
    pub breaker: Breaker,
    /// This replica's view of the backend's last minutes, for the routes' live health.
    pub recent: RecentAttempts,
    /// Set once the backend has answered with more output than a request's `max_tokens`: from
    /// then on, whole replies under a hard budget are read from it as streams, so that they can
    /// be cut at the reservation (streams always can). Honest providers never pay for that.
    pub overruns_max_tokens: AtomicBool,
}

/// A route with its backends.
#[derive(Debug)]
pub struct RouteRuntime {
    pub config: Arc<RouteConfig>,
    pub backends: Vec<Arc<BackendRuntime>>,
}

/// A resolved model: the route serving it and its prices and upstream name.
#[derive(Clone, Debug)]
pub struct Target {
    pub route: Arc<RouteRuntime>,
    pub model: ModelConfig,
}

#[derive(Debug)]
pub struct Runtime {
    pub config: GatewayConfig,
    /// Shared with each request's exchange: a caller is a reference count per request, not two strings.
    keys: HashMap<[u8; 32], Arc<Caller>>,
    routes: HashMap<String, Arc<RouteRuntime>>,
    models: HashMap<String, Target>,
    /// Each tenant's budgets, indexed once per config: admission reads them on every request, and
    /// a large platform has thousands.
    budgets: HashMap<String, Vec<Arc<BudgetConfig>>>,
    /// Removes this config's secret values from upstream text (errors, replies, stream chunks).
    pub redactor: Arc<Redactor>,
    /// The JWT issuers and ServiceAccount namespaces that identify callers.
    pub identities: Identities,
    /// The tenants' and routes' Rego policies, compiled.
    pub policies: Policies,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ProviderRoute {route} backend {backend}: provider API key Secret {secret}: {problem}")]
    ProviderKey { route: String, backend: String, secret: String, problem: &'static str },
    #[error("ProviderRoute {route} backend {backend}: {message}")]
    Client { route: String, backend: String, message: String },
    #[error("Tenant {tenant} key {key}: stored hash is not valid hex SHA-256")]
    KeyHash { tenant: String, key: String },
    #[error("{0}")]
    Policy(String),
}

impl Runtime {
    /// Serves nothing: every key is rejected. In-cluster mode starts here until the config arrives.
    pub fn empty() -> Runtime {
        Runtime {
            config: GatewayConfig::default(),
            keys: HashMap::new(),
            routes: HashMap::new(),
            models: HashMap::new(),
            budgets: HashMap::new(),
            redactor: Arc::default(),
            identities: Identities::default(),
            policies: Policies::default(),
        }
    }

    /// Builds the runtime; provider API keys are read from `secrets` here and kept only in memory.
    /// Backends unchanged since `previous` are carried over, keeping their connection pools and
    /// circuit breakers across reloads.
    pub fn build(
        config: GatewayConfig,
        secrets: &SecretStore,
        previous: &Runtime,
    ) -> Result<Runtime, RuntimeError> {
        let mut keys = HashMap::new();
        for tenant in config.tenants.values() {
            for key in &tenant.api_keys {
                let hash = decode_hash(&key.sha256).ok_or_else(|| RuntimeError::KeyHash {
                    tenant: tenant.name.clone(),
                    key: key.id.clone(),
                })?;
                let caller = Caller {
                    tenant: tenant.name.clone(),
                    key_id: key.id.clone(),
                    subject: None,
                    claims: None,
                };
                keys.insert(hash, Arc::new(caller));
            }
        }
        let mut routes = HashMap::new();
        let mut models = HashMap::new();
        for route in config.routes.values() {
            let mut backends = Vec::new();
            for backend in &route.backends {
                let api_key = match &backend.api_key {
                    None => None,
                    Some(reference) => {
                        let value = secrets.get(reference).map_err(|problem| RuntimeError::ProviderKey {
                            route: route.name.clone(),
                            backend: backend.name.clone(),
                            secret: format!(
                                "{}/{} key {}",
                                reference.namespace, reference.name, reference.key
                            ),
                            problem: match problem {
                                SecretLookupError::SecretNotFound => "not found",
                                SecretLookupError::KeyNotFound => "has no such key",
                                SecretLookupError::Empty => "is empty",
                            },
                        })?;
                        Some(String::from_utf8_lossy(value).trim().to_owned())
                    }
                };
                if let Some(same) = previous.backend(route, backend, api_key.as_deref()) {
                    backends.push(same);
                    continue;
                }
                let provider = Provider::new(backend, api_key).map_err(|message| RuntimeError::Client {
                    route: route.name.clone(),
                    backend: backend.name.clone(),
                    message,
                })?;
                let breaker = Breaker::new(&route.circuit_breaker);
                let overruns_max_tokens = AtomicBool::new(false);
                backends.push(Arc::new(BackendRuntime {
                    config: backend.clone(),
                    provider,
                    breaker,
                    recent: RecentAttempts::default(),
                    overruns_max_tokens,
                }));
            }
            let route_runtime = Arc::new(RouteRuntime { config: route.clone(), backends });
            routes.insert(route.name.clone(), route_runtime.clone());
            for model in &route.models {
                models.insert(
                    model.name.clone(),
                    Target { route: route_runtime.clone(), model: model.clone() },
                );
            }
        }
        let mut budgets: HashMap<String, Vec<Arc<BudgetConfig>>> = HashMap::new();
        for budget in &config.budgets {
            budgets.entry(budget.tenant.clone()).or_default().push(budget.clone());
        }
        let redactor = Arc::new(Redactor::new(secrets.values()));
        let identities = Identities::build(&config);
        let policies = Policies::build(&config).map_err(RuntimeError::Policy)?;
        Ok(Runtime { config, keys, routes, models, budgets, redactor, identities, policies })
    }

    /// This runtime's backend with exactly this config, breaker policy and API key, if any.
    fn backend(
        &self,
        route: &RouteConfig,
        backend: &BackendConfig,
        api_key: Option<&str>,
    ) -> Option<Arc<BackendRuntime>> {
        let current = self.routes.get(&route.name)?;
        if current.config.circuit_breaker != route.circuit_breaker {
            return None;
        }
        let found = current.backends.iter().find(|b| b.config == *backend)?;
        (found.provider.api_key() == api_key).then(|| found.clone())
    }

    /// The caller owning `presented`, comparing SHA-256 hashes in constant time.
    pub fn authenticate(&self, presented: &str) -> Option<&Arc<Caller>> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let (stored, caller) = self.keys.get_key_value(&hash)?;
        bool::from(stored.ct_eq(&hash)).then_some(caller)
    }

    /// Every route, for status (backend health).
    pub fn routes(&self) -> impl Iterator<Item = &Arc<RouteRuntime>> {
        self.routes.values()
    }

    /// The budgets of `tenant`, whatever their scope.
    pub fn budgets_of(&self, tenant: &str) -> &[Arc<BudgetConfig>] {
        self.budgets.get(tenant).map_or(&[], Vec::as_slice)
    }

    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.config.tenants.get(name).map(Arc::as_ref)
    }

    /// The target for `model` if `caller` may use it. Unknown and forbidden models look the
    /// same to the caller, so model names of other tenants do not leak.
    pub fn resolve(&self, caller: &Caller, model: &str) -> Option<&Target> {
        self.resolve_for(&caller.tenant, model)
    }

    /// The target for `model` if `tenant` may use its route.
    pub fn resolve_for(&self, tenant: &str, model: &str) -> Option<&Target> {
        let target = self.models.get(model)?;
        self.tenant(tenant)?.may_use_route(&target.route.config.name).then_some(target)
    }

    /// The persona `name` if `caller` may talk to it: the persona is the tenant's own or shared
    /// with it, and the tenant's `allowedPersonas` (if set) lists it. Invisible and unknown
    /// personas look the same.
    pub fn persona_for(&self, caller: &Caller, name: &str) -> Option<&Arc<PersonaConfig>> {
        let persona = self.config.personas.get(name)?;
        let tenant = self.tenant(&caller.tenant)?;
        let allowed = tenant.allowed_personas.as_ref().is_none_or(|names| names.contains(name));
        (allowed && persona.visible_to(&caller.tenant)).then_some(persona)
    }

    /// Personas `caller` may talk to, by name.
    pub fn personas_for<'a>(&'a self, caller: &'a Caller) -> impl Iterator<Item = &'a PersonaConfig> + 'a {
        self.config.personas.keys().filter_map(|name| self.persona_for(caller, name).map(Arc::as_ref))
    }

    /// Model names `caller` may use, sorted.
    pub fn models_for(&self, caller: &Caller) -> Vec<&str> {
        let mut names: Vec<&str> =
            self.models.keys().filter(|m| self.resolve(caller, m).is_some()).map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

fn decode_hash(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use switchboard_crds::{Resources, manifest, render};

    use super::*;

    #[test]
    fn each_tenant_sees_its_own_budgets_of_every_scope_and_no_others() {
        let text = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: a, namespace: sb}\nspec: {}\n\
            ---\napiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: b, namespace: sb}\nspec: {}\n\
            ---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: a-month, namespace: sb}\n\
            spec: {scope: {kind: Tenant, tenant: a}, limitUsd: \"10\", period: Monthly}\n\
            ---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: a-day, namespace: sb}\n\
            spec: {scope: {kind: Tenant, tenant: a}, limitUsd: \"1\", period: Daily}\n\
            ---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: b-month, namespace: sb}\n\
            spec: {scope: {kind: Tenant, tenant: b}, limitUsd: \"5\", period: Monthly}\n";
        let mut resources = Resources::default();
        let mut secrets = SecretStore::default();
        manifest::load_yaml(text, "t.yaml", &mut resources, &mut secrets).unwrap();
        let runtime =
            Runtime::build(render(&resources, &secrets).unwrap(), &secrets, &Runtime::empty()).unwrap();
        let names = |tenant: &str| {
            let mut names: Vec<&str> = runtime.budgets_of(tenant).iter().map(|b| b.name.as_str()).collect();
            names.sort_unstable();
            names
        };
        assert_eq!(names("a"), ["a-day", "a-month"]);
        assert_eq!(names("b"), ["b-month"]);
        assert!(names("nobody").is_empty());
    }
}
