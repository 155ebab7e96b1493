//! `render()`: the pure function from resources (+ Secrets) to a validated [`GatewayConfig`].
//!
//! Schema and CEL rules are enforced before this point (by the apiserver, or by
//! [`crate::manifest`] in standalone mode); render checks what spans resources: references,
//! Secrets, uniqueness. It reports every problem at once, each naming its resource and field.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use kube::core::Resource;
use sha2::{Digest, Sha256};

use crate::config::{ApiKeyConfig, BudgetConfig, GatewayConfig, PersonaConfig, RouteConfig, TenantConfig};
use crate::decimal::NanoUsd;
use crate::resources::{
    Budget, BudgetFailureMode, BudgetScopeKind, MemorySharingScope, ModelKind, Persona, Policy,
    ProviderRoute, SecretKeyRef, Tenant,
};
pub use crate::secret_store::{SecretLookupError, SecretStore};

mod routes;

/// The resources to render, as read from a folder or from the apiserver.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    pub tenants: Vec<Tenant>,
    pub personas: Vec<Persona>,
    pub routes: Vec<ProviderRoute>,
    pub budgets: Vec<Budget>,
}

/// A bounded category of render problems: the Event reason and condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RenderErrorReason {
    /// Two resources claim the same name or model, or two keys share a value.
    Conflict,
    /// A field value is invalid.
    InvalidSpec,
    /// A reference to another Switchboard resource does not resolve.
    UnknownReference,
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A referenced Secret lacks the key, or the value is empty.
    SecretKeyNotFound,
    /// The resource's config entry is larger than a published shard can carry.
    TooLarge,
    /// `spec.policy.rego` does not compile.
    InvalidPolicy,
}

impl RenderErrorReason {
    /// CamelCase, for conditions and Events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conflict => "Conflict",
            Self::InvalidSpec => "InvalidSpec",
            Self::UnknownReference => "UnknownReference",
            Self::SecretNotFound => "SecretNotFound",
            Self::SecretKeyNotFound => "SecretKeyNotFound",
            Self::TooLarge => "TooLarge",
            Self::InvalidPolicy => "InvalidPolicy",
        }
    }

    /// Problems with Secret references set `ResolvedRefs=False`; the rest `Accepted=False`.
    pub fn is_reference(self) -> bool {
        matches!(self, Self::UnknownReference | Self::SecretNotFound | Self::SecretKeyNotFound)
    }
}

/// One problem, naming the resource and the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// Path in kubectl's notation, e.g. `spec.backends[1].baseUrl`.
    pub field: String,
    pub reason: RenderErrorReason,
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}: {}: {}", self.kind, self.namespace, self.name, self.field, self.message)
    }
}

/// All problems found in one render.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RenderErrors(pub Vec<RenderError>);

impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

/// Renders the resources into one validated config, or every problem found.
///
/// The result does not depend on the order of the input (watch caches have none): resources are
/// taken oldest first, then by namespace and name, so in a conflict (two routes serving one model,
/// two tenants sharing a key) the resource that was there first keeps it.
pub fn render(resources: &Resources, secrets: &SecretStore) -> Result<GatewayConfig, RenderErrors> {
    let mut r = Renderer { secrets, errors: Vec::new() };
    let (route_specs, tenant_specs) = (in_order(&resources.routes), in_order(&resources.tenants));
    let (persona_specs, budget_specs) = (in_order(&resources.personas), in_order(&resources.budgets));
    let routes = r.routes(&route_specs);
    let tenants = r.tenants(&tenant_specs, &routes);
    let personas = r.personas(&persona_specs, &tenants, &routes);
    let budgets = r.budgets(&budget_specs, &tenant_specs, &tenants, &personas);
    if !r.errors.is_empty() {
        return Err(RenderErrors(r.errors));
    }
    let mut budgets: Vec<_> = budgets.into_iter().map(Arc::new).collect();
    crate::shards::sort_budgets(&mut budgets);
    let (tenants, routes, personas) = (shared(tenants), shared(routes), shared(personas));
    let mut config = GatewayConfig { version: String::new(), tenants, routes, personas, budgets };
    config.version = content_hash(&config);
    Ok(config)
}

/// Entries as the config holds them: shared, so that copies of a config share its entries.
fn shared<V>(entries: BTreeMap<String, V>) -> BTreeMap<String, Arc<V>> {
    entries.into_iter().map(|(name, entry)| (name, Arc::new(entry))).collect()
}

/// Oldest first (by `creationTimestamp`; standalone manifests have none), then namespace and name.
/// References, not copies: at 10,000 Tenants a copy of every object costs more than rendering.
fn in_order<K: Resource<DynamicType = ()>>(objects: &[K]) -> Vec<&K> {
    let mut sorted: Vec<&K> = objects.iter().collect();
    sorted.sort_by_cached_key(|o| {
        let meta = o.meta();
        (meta.creation_timestamp.as_ref().map(|t| t.0), meta.namespace.as_deref(), meta.name.as_deref())
    });
    sorted
}

/// SHA-256 of the config's JSON, streamed into the hasher rather than written out first.
fn content_hash(config: &GatewayConfig) -> String {
    let mut hasher = Sha256::new();
    // Serializing plain structs into a hasher, which never fails to write, cannot fail.
    let _ = serde_json::to_writer(&mut hasher, config);
    hex::encode(hasher.finalize())
}

/// Hex SHA-256 of an API key: how keys are stored and looked up.
pub fn hash_key(key: &[u8]) -> String {
    hex::encode(Sha256::digest(key))
}

struct Renderer<'a> {
    secrets: &'a SecretStore,
    errors: Vec<RenderError>,
}

/// Identifies the resource a problem belongs to.
struct Origin<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
}

fn origin<K: Resource<DynamicType = ()>>(object: &K) -> Origin<'_> {
    let kind = match K::kind(&()).as_ref() {
        "Tenant" => "Tenant",
        "Persona" => "Persona",
        "ProviderRoute" => "ProviderRoute",
        _ => "Budget",
    };
    Origin {
        kind,
        namespace: object.meta().namespace.as_deref().unwrap_or(crate::manifest::DEFAULT_NAMESPACE),
        name: object.meta().name.as_deref().unwrap_or_default(),
    }
}

impl<'a> Renderer<'a> {
    fn error(
        &mut self,
        at: &Origin<'_>,
        field: impl Into<String>,
        reason: RenderErrorReason,
        message: String,
    ) {
        self.errors.push(RenderError {
            kind: at.kind,
            namespace: at.namespace.to_owned(),
            name: at.name.to_owned(),
            field: field.into(),
            reason,
            message,
        });
    }

    /// Reports a second resource of a kind with an already seen name; true if it is a duplicate.
    fn duplicate(&mut self, seen: &mut BTreeMap<String, String>, at: &Origin<'_>) -> bool {
        if let Some(first) = seen.get(at.name) {
            let message = format!(
                "name already used by {} {first}/{}; names are unique across namespaces",
                at.kind, at.name
            );
            self.error(at, "metadata.name", RenderErrorReason::Conflict, message);
            return true;
        }
        seen.insert(at.name.to_owned(), at.namespace.to_owned());
        false
    }

    /// The value `reference` names in the resource's namespace, or an error on `field`.
    fn secret_value(
        &mut self,
        at: &Origin<'_>,
        field: impl FnOnce() -> String,
        reference: &SecretKeyRef,
    ) -> Option<&'a [u8]> {
        let (reason, problem) = match self.secrets.lookup(at.namespace, &reference.name, &reference.key) {
            Ok(value) => return Some(value),
            Err(SecretLookupError::SecretNotFound) => (RenderErrorReason::SecretNotFound, "not found"),
            Err(SecretLookupError::KeyNotFound) => (RenderErrorReason::SecretKeyNotFound, "has no such key"),
            Err(SecretLookupError::Empty) => (RenderErrorReason::SecretKeyNotFound, "holds an empty value"),
        };
        let message = format!("Secret {}/{} key {:?} {problem}", at.namespace, reference.name, reference.key);
        self.error(at, field(), reason, message);
        None
    }

    fn price(&mut self, at: &Origin<'_>, field: String, text: &str) -> NanoUsd {
        NanoUsd::parse(text).unwrap_or_else(|message| {
            self.error(at, field, RenderErrorReason::InvalidSpec, message);
            NanoUsd::default()
        })
    }

    /// The policy's Rego, once it compiles.
    fn policy(&mut self, at: &Origin<'_>, policy: Option<&Policy>) -> Option<String> {
        let rego = &policy?.rego;
        match crate::policy::compile(rego) {
            Ok(_) => Some(rego.clone()),
            Err(message) => {
                self.error(at, "spec.policy.rego", RenderErrorReason::InvalidPolicy, message);
                None
            }
        }
    }

    fn tenants(
        &mut self,
        tenants: &[&Tenant],
        routes: &BTreeMap<String, RouteConfig>,
    ) -> BTreeMap<String, TenantConfig> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeMap::new();
        // Who holds each key value (by its SHA-256), to refuse a value two keys share.
        let mut key_owner: HashMap<[u8; 32], (&str, &str, &str)> = HashMap::new();
        for tenant in tenants {
            let at = origin(*tenant);
            if self.duplicate(&mut seen, &at) {
                continue;
            }
            let mut api_keys = Vec::new();
            for (i, key) in tenant.spec.api_keys.iter().enumerate() {
                let field = || format!("spec.apiKeys[{i}].secretRef");
                let Some(value) = self.secret_value(&at, field, &key.secret_ref) else {
                    continue;
                };
                let digest: [u8; 32] = Sha256::digest(value).into();
                let sha256 = hex::encode(digest);
                if let Some((namespace, name, other_key)) =
                    key_owner.insert(digest, (at.namespace, at.name, key.name.as_str()))
                {
                    let message = format!(
                        "the key value is also used by Tenant {namespace}/{name} key {other_key}; every key must be unique"
                    );
                    self.error(&at, field(), RenderErrorReason::Conflict, message);
                }
                api_keys.push(ApiKeyConfig {
                    id: key.name.clone(),
                    sha256,
                    rate_limits: key.rate_limits.clone().unwrap_or_default(),
                });
            }
            for (i, issuer) in tenant.spec.jwt_issuers.iter().enumerate() {
                if api_keys.iter().any(|key| key.id == issuer.name) {
                    let message = format!(
                        "an API key is also named {:?}; a JWT issuer's name is a key name",
                        issuer.name
                    );
                    self.error(
                        &at,
                        format!("spec.jwtIssuers[{i}].name"),
                        RenderErrorReason::Conflict,
                        message,
                    );
                }
            }
            for (i, route) in tenant.spec.allowed_routes.iter().flatten().enumerate() {
                if !routes.contains_key(route) {
                    let message = format!("ProviderRoute {route:?} does not exist");
                    self.error(
                        &at,
                        format!("spec.allowedRoutes[{i}]"),
                        RenderErrorReason::UnknownReference,
                        message,
                    );
                }
            }
            let config = TenantConfig {
                name: at.name.to_owned(),
                namespace: at.namespace.to_owned(),
                display_name: tenant.spec.display_name.clone(),
                namespaces: tenant.spec.namespaces.clone(),
                api_keys,
                jwt_issuers: tenant.spec.jwt_issuers.clone(),
                policy: self.policy(&at, tenant.spec.policy.as_ref()),
                allowed_routes: tenant.spec.allowed_routes.as_ref().map(|r| r.iter().cloned().collect()),
                allowed_personas: tenant.spec.allowed_personas.as_ref().map(|p| p.iter().cloned().collect()),
                rate_limits: tenant.spec.rate_limits.clone().unwrap_or_default(),
                priority: tenant.spec.priority,
            };
            out.insert(at.name.to_owned(), config);
        }
        out
    }

    fn personas(
        &mut self,
        personas: &[&Persona],
        tenants: &BTreeMap<String, TenantConfig>,
        routes: &BTreeMap<String, RouteConfig>,
    ) -> BTreeMap<String, PersonaConfig> {
        let names: BTreeMap<&str, &str> = personas
            .iter()
            .filter_map(|p| Some((p.metadata.name.as_deref()?, p.spec.tenant.as_str())))
            .collect();
        let mut out = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for persona in personas {
            let at = origin(*persona);
            if self.duplicate(&mut seen, &at) {
                continue;
            }
            let spec = &persona.spec;
            let owner = tenants.get(&spec.tenant);
            if owner.is_none() {
                let message = format!("Tenant {:?} does not exist", spec.tenant);
                self.error(&at, "spec.tenant", RenderErrorReason::UnknownReference, message);
            }
            self.persona_model(&at, "spec.model", &spec.model, ModelKind::Chat, owner, routes);
            if let Some(model) = &spec.memory.embedding_model {
                self.persona_model(
                    &at,
                    "spec.memory.embeddingModel",
                    model,
                    ModelKind::Embedding,
                    owner,
                    routes,
                );
            }
            for (i, tenant) in spec.shared_with_tenants.iter().enumerate() {
                if !tenants.contains_key(tenant) {
                    let message = format!("Tenant {tenant:?} does not exist");
                    self.error(
                        &at,
                        format!("spec.sharedWithTenants[{i}]"),
                        RenderErrorReason::UnknownReference,
                        message,
                    );
                }
            }
            for (i, other) in spec.relationships.iter().enumerate() {
                if !names.contains_key(other.persona.as_str()) || other.persona == at.name {
                    let message = format!("Persona {:?} does not exist or is this persona", other.persona);
                    let field = format!("spec.relationships[{i}].persona");
                    self.error(&at, field, RenderErrorReason::UnknownReference, message);
                }
            }
            if spec.memory.sharing.scope == MemorySharingScope::Personas {
                for (i, other) in spec.memory.sharing.personas.iter().enumerate() {
                    if names.get(other.as_str()) != Some(&spec.tenant.as_str()) {
                        let message = format!(
                            "Persona {other:?} is not a persona of Tenant {:?}; memories are never shared across tenants",
                            spec.tenant
                        );
                        let field = format!("spec.memory.sharing.personas[{i}]");
                        self.error(&at, field, RenderErrorReason::UnknownReference, message);
                    }
                }
            }
            let config = PersonaConfig {
                name: at.name.to_owned(),
                namespace: at.namespace.to_owned(),
                tenant: spec.tenant.clone(),
                display_name: spec.display_name.clone(),
                system_prompt: spec.system_prompt.clone(),
                traits: spec.traits.clone(),
                interests: spec.interests.clone(),
                model: spec.model.clone(),
                memory: spec.memory.clone(),
                shared_with_tenants: spec.shared_with_tenants.iter().cloned().collect(),
                relationships: spec.relationships.clone(),
                rate_limits: spec.rate_limits.clone().unwrap_or_default(),
            };
            out.insert(at.name.to_owned(), config);
        }
        out
    }

    /// Checks that `model` (a persona's `field`) is served by a route its `owner` may use, as a
    /// model of the `kind` the persona needs.
    fn persona_model(
        &mut self,
        at: &Origin<'_>,
        field: &str,
        model: &str,
        kind: ModelKind,
        owner: Option<&TenantConfig>,
        routes: &BTreeMap<String, RouteConfig>,
    ) {
        let route = routes.values().find(|r| r.models.iter().any(|m| m.name == model));
        let served = route.and_then(|r| r.models.iter().find(|m| m.name == model)).map(|m| m.kind);
        match (route, owner) {
            (None, _) => {
                let message = format!("no ProviderRoute serves model {model:?}");
                self.error(at, field, RenderErrorReason::UnknownReference, message);
            }
            (Some(_), _) if served != Some(kind) => {
                let message = match kind {
                    ModelKind::Chat => {
                        format!("model {model:?} is an embedding model; a persona needs a chat model")
                    }
                    ModelKind::Embedding => {
                        format!(
                            "model {model:?} is a chat model; memory embeddings need a model of kind Embedding"
                        )
                    }
                };
                self.error(at, field, RenderErrorReason::InvalidSpec, message);
            }
            (Some(route), Some(owner)) if !owner.may_use_route(&route.name) => {
                let message = format!(
                    "Tenant {} may not use ProviderRoute {} that serves model {model:?}",
                    owner.name, route.name
                );
                self.error(at, field, RenderErrorReason::InvalidSpec, message);
            }
            _ => {}
        }
    }

    fn budgets(
        &mut self,
        budgets: &[&Budget],
        tenant_specs: &[&Tenant],
        tenants: &BTreeMap<String, TenantConfig>,
        personas: &BTreeMap<String, PersonaConfig>,
    ) -> Vec<BudgetConfig> {
        let mut out = Vec::new();
        let mut seen = BTreeMap::new();
        for budget in budgets {
            let at = origin(*budget);
            if self.duplicate(&mut seen, &at) {
                continue;
            }
            let scope = &budget.spec.scope;
            match tenants.get(&scope.tenant) {
                None => {
                    let message = format!("Tenant {:?} does not exist", scope.tenant);
                    self.error(&at, "spec.scope.tenant", RenderErrorReason::UnknownReference, message);
                }
                Some(tenant) => {
                    if let Some(persona) = &scope.persona
                        && personas.get(persona).is_none_or(|p| p.tenant != tenant.name)
                    {
                        let message =
                            format!("Persona {persona:?} is not a persona of Tenant {:?}", tenant.name);
                        self.error(&at, "spec.scope.persona", RenderErrorReason::UnknownReference, message);
                    }
                    if let Some(key) = &scope.api_key
                        && !tenant.api_keys.iter().any(|k| &k.id == key)
                    {
                        let message = format!("Tenant {:?} has no API key named {key:?}", tenant.name);
                        self.error(&at, "spec.scope.apiKey", RenderErrorReason::UnknownReference, message);
                    }
                }
            }
            let limit = self.price(&at, "spec.limitUsd".into(), &budget.spec.limit_usd);
            if limit == NanoUsd::default() {
                let message = "limitUsd must be greater than zero".to_owned();
                self.error(&at, "spec.limitUsd", RenderErrorReason::InvalidSpec, message);
            }
            out.push(BudgetConfig {
                name: at.name.to_owned(),
                namespace: at.namespace.to_owned(),
                scope: scope.kind,
                tenant: scope.tenant.clone(),
                persona: scope.persona.clone(),
                api_key: scope.api_key.clone(),
                limit,
                period: budget.spec.period,
                enforcement: budget.spec.enforcement,
                warn_at_percent: budget.spec.warn_at_percent,
                failure_mode: budget.spec.failure_mode,
            });
        }
        let with_budget: BTreeSet<String> =
            out.iter().filter(|b| b.scope == BudgetScopeKind::Tenant).map(|b| b.tenant.clone()).collect();
        for tenant in tenant_specs {
            let at = origin(*tenant);
            let Some(default) = &tenant.spec.default_budget else {
                continue;
            };
            if with_budget.contains(at.name) || !tenants.contains_key(at.name) {
                continue;
            }
            let limit = self.price(&at, "spec.defaultBudget.limitUsd".into(), &default.limit_usd);
            out.push(BudgetConfig {
                name: BudgetConfig::tenant_default_name(at.name),
                namespace: at.namespace.to_owned(),
                scope: BudgetScopeKind::Tenant,
                tenant: at.name.to_owned(),
                persona: None,
                api_key: None,
                limit,
                period: default.period,
                enforcement: default.enforcement,
                warn_at_percent: 80,
                failure_mode: BudgetFailureMode::Closed,
            });
        }
        out
    }
}
