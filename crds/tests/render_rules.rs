//! One test per rule of `render()`: each bad input names its resource, field and reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use switchboard_crds::render::{RenderError, RenderErrorReason as Reason, hash_key};
use switchboard_crds::{GatewayConfig, Resources, SecretStore, manifest, render};

/// A valid base: tenant `team` with one key, route `r` serving `m` (mock), persona `p`.
const BASE: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: keys, namespace: ns}
stringData: {team: sk-team, other: sk-other, upstream: sk-up}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: team, namespace: ns}
spec:
  apiKeys: [{name: main, secretRef: {name: keys, key: team}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: r, namespace: ns}
spec:
  models: [{name: m, pricing: {inputPerMillion: "0.5", outputPerMillion: "1.5"}}]
  backends: [{name: b, provider: mock}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {name: p, namespace: ns}
spec: {tenant: team, systemPrompt: hi, model: m}
"#;

fn render_yaml(extra: &str) -> Result<GatewayConfig, Vec<RenderError>> {
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    let text = format!("{BASE}\n---\n{extra}");
    manifest::load_yaml(&text, "test.yaml", &mut resources, &mut secrets)
        .expect("manifests are schema-valid");
    render(&resources, &secrets).map_err(|errors| errors.0)
}

/// Asserts exactly one error, on `kind/name` at `field`, and returns its message.
fn single_error(extra: &str, kind: &str, name: &str, field: &str, reason: Reason) -> String {
    let errors = render_yaml(extra).expect_err("render should fail");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!((e.kind, e.name.as_str(), e.field.as_str(), e.reason), (kind, name, field, reason), "{e}");
    assert!(e.to_string().starts_with(&format!("{kind} {}/{name}: {field}: ", e.namespace)), "{e}");
    e.message.clone()
}

#[test]
fn base_renders_with_hashed_keys_and_exact_prices() {
    let config = render_yaml("").unwrap();
    assert_eq!(config.tenants["team"].api_keys[0].sha256, hash_key(b"sk-team"));
    let (route, model) = config.find_model("m").unwrap();
    assert_eq!(route.name, "r");
    assert_eq!(model.pricing.input.0, 500_000_000);
    assert_eq!(model.pricing.cached_input, model.pricing.input, "cache prices default to the input price");
    assert_eq!(model.upstream_model, "m");
}

#[test]
fn version_is_a_content_hash() {
    let a = render_yaml("").unwrap();
    let b = render_yaml("").unwrap();
    assert_eq!(a.version, b.version);
    let c = render_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: keys, namespace: ns}\nstringData: {team: sk-changed}\n")
        .unwrap();
    assert_ne!(a.version, c.version, "a rotated tenant key changes the config");
}

#[test]
fn missing_secret_and_missing_key_are_reference_errors() {
    let message = single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec:\n  apiKeys: [{name: k, secretRef: {name: nope, key: x}}]\n",
        "Tenant",
        "t2",
        "spec.apiKeys[0].secretRef",
        Reason::SecretNotFound,
    );
    assert!(message.contains("Secret ns/nope"));
    let message = single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec:\n  apiKeys: [{name: k, secretRef: {name: keys, key: absent}}]\n",
        "Tenant",
        "t2",
        "spec.apiKeys[0].secretRef",
        Reason::SecretKeyNotFound,
    );
    assert!(Reason::SecretKeyNotFound.is_reference() && message.contains("absent"));
}

#[test]
fn a_key_value_shared_by_two_tenants_is_a_conflict_without_revealing_it() {
    let message = single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: x2, namespace: ns}\nspec:\n  apiKeys: [{name: k, secretRef: {name: keys, key: team}}]\n",
        "Tenant",
        "x2",
        "spec.apiKeys[0].secretRef",
        Reason::Conflict,
    );
    assert!(message.contains("Tenant ns/team key main") && !message.contains("sk-team"), "{message}");
}

#[test]
fn unknown_allowed_route_is_reported() {
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec:\n  allowedRoutes: [r, ghost]\n",
        "Tenant",
        "t2",
        "spec.allowedRoutes[1]",
        Reason::UnknownReference,
    );
}

#[test]
fn a_model_served_by_two_routes_is_a_conflict() {
    let message = single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r2, namespace: ns}\nspec:\n  models: [{name: m}]\n  backends: [{name: b, provider: mock}]\n",
        "ProviderRoute",
        "r2",
        "spec.models[0].name",
        Reason::Conflict,
    );
    assert!(message.contains("ProviderRoute r"));
}

#[test]
fn duplicate_names_across_namespaces_conflict() {
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r, namespace: other}\nspec:\n  models: [{name: m2}]\n  backends: [{name: b, provider: mock}]\n",
        "ProviderRoute",
        "r",
        "metadata.name",
        Reason::Conflict,
    );
}

#[test]
fn all_weights_zero_is_invalid() {
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r2, namespace: ns}\nspec:\n  models: [{name: m2}]\n  backends: [{name: b, provider: mock, weight: 0}]\n",
        "ProviderRoute",
        "r2",
        "spec.backends",
        Reason::InvalidSpec,
    );
}

#[test]
fn provider_key_secret_must_exist_and_stays_a_reference() {
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r2, namespace: ns}\nspec:\n  models: [{name: m2}]\n  backends: [{name: b, provider: openai, baseUrl: 'http://x/v1', apiKeySecretRef: {name: gone, key: k}}]\n",
        "ProviderRoute",
        "r2",
        "spec.backends[0].apiKeySecretRef",
        Reason::SecretNotFound,
    );
    let config = render_yaml(
        "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r2, namespace: ns}\nspec:\n  models: [{name: m2}]\n  backends: [{name: b, provider: openai, baseUrl: 'http://x/v1/', apiKeySecretRef: {name: keys, key: upstream}}]\n",
    )
    .unwrap();
    let backend = &config.routes["r2"].backends[0];
    assert_eq!(backend.base_url.as_deref(), Some("http://x/v1"), "trailing slash trimmed");
    assert_eq!(backend.api_key.as_ref().unwrap().key, "upstream");
    assert!(!serde_json::to_string(&config).unwrap().contains("sk-up"));
}

#[test]
fn persona_references_are_checked() {
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p2, namespace: ns}\nspec: {tenant: ghost, systemPrompt: x, model: m}\n",
        "Persona",
        "p2",
        "spec.tenant",
        Reason::UnknownReference,
    );
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p2, namespace: ns}\nspec: {tenant: team, systemPrompt: x, model: nope}\n",
        "Persona",
        "p2",
        "spec.model",
        Reason::UnknownReference,
    );
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p2, namespace: ns}\nspec: {tenant: team, systemPrompt: x, model: m, sharedWithTenants: [ghost]}\n",
        "Persona",
        "p2",
        "spec.sharedWithTenants[0]",
        Reason::UnknownReference,
    );
    single_error(
        "apiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p2, namespace: ns}\nspec: {tenant: team, systemPrompt: x, model: m, relationships: [{persona: ghost}]}\n",
        "Persona",
        "p2",
        "spec.relationships[0].persona",
        Reason::UnknownReference,
    );
}

#[test]
fn persona_model_must_be_allowed_for_its_tenant() {
    let extra = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec: {allowedRoutes: []}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p2, namespace: ns}\nspec: {tenant: t2, systemPrompt: x, model: m}\n";
    single_error(extra, "Persona", "p2", "spec.model", Reason::InvalidSpec);
}

#[test]
fn memory_is_never_shared_across_tenants() {
    let extra = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec: {}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: foreign, namespace: ns}\nspec: {tenant: t2, systemPrompt: x, model: m}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p2, namespace: ns}\nspec:\n  tenant: team\n  systemPrompt: x\n  model: m\n  memory: {sharing: {scope: Personas, personas: [p, foreign]}}\n";
    let message =
        single_error(extra, "Persona", "p2", "spec.memory.sharing.personas[1]", Reason::UnknownReference);
    assert!(message.contains("never shared across tenants"));
}

#[test]
fn budget_scope_must_resolve_within_its_tenant() {
    let budget = |scope: &str| {
        format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {{name: b, namespace: ns}}\nspec: {{scope: {scope}, limitUsd: '5', period: Daily}}\n"
        )
    };
    single_error(
        &budget("{kind: Tenant, tenant: ghost}"),
        "Budget",
        "b",
        "spec.scope.tenant",
        Reason::UnknownReference,
    );
    single_error(
        &budget("{kind: Persona, tenant: team, persona: ghost}"),
        "Budget",
        "b",
        "spec.scope.persona",
        Reason::UnknownReference,
    );
    single_error(
        &budget("{kind: ApiKey, tenant: team, apiKey: ghost}"),
        "Budget",
        "b",
        "spec.scope.apiKey",
        Reason::UnknownReference,
    );
    let config = render_yaml(&budget("{kind: ApiKey, tenant: team, apiKey: main}")).unwrap();
    assert_eq!(config.budgets[0].limit.0, 5_000_000_000);
}

#[test]
fn default_budget_applies_only_without_a_tenant_budget() {
    let tenant = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec:\n  defaultBudget: {limitUsd: '10', period: Monthly}\n";
    let config = render_yaml(tenant).unwrap();
    assert_eq!(config.budgets.len(), 1);
    assert_eq!((config.budgets[0].name.as_str(), config.budgets[0].limit.0), ("t2/default", 10_000_000_000));
    let explicit = format!(
        "{tenant}---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {{name: b, namespace: ns}}\nspec: {{scope: {{kind: Tenant, tenant: t2}}, limitUsd: '3', period: Daily}}\n"
    );
    let config = render_yaml(&explicit).unwrap();
    assert_eq!(config.budgets.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["b"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let extra = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec:\n  apiKeys: [{name: k, secretRef: {name: nope, key: x}}]\n  allowedRoutes: [ghost]\n";
    assert_eq!(render_yaml(extra).unwrap_err().len(), 2);
}

#[test]
fn the_result_does_not_depend_on_input_order() {
    let extra = "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: a-late, namespace: ns}\nspec:\n  models: [{name: m}]\n  backends: [{name: b, provider: mock}]\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: b1, namespace: ns}\nspec: {scope: {kind: Tenant, tenant: team}, limitUsd: '1', period: Daily}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: b2, namespace: ns}\nspec: {scope: {kind: Tenant, tenant: team}, limitUsd: '2', period: Monthly}\n";
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    manifest::load_yaml(&format!("{BASE}\n---\n{extra}"), "t.yaml", &mut resources, &mut secrets).unwrap();
    let forward = render(&resources, &secrets).map_err(|e| e.0);
    resources.routes.reverse();
    resources.budgets.reverse();
    resources.tenants.reverse();
    let backward = render(&resources, &secrets).map_err(|e| e.0);
    assert_eq!(forward, backward);
}

#[test]
fn a_budget_named_like_the_default_one_is_a_budget_of_its_own() {
    // A Persona budget that happens to be called `<tenant>-default`, beside the Tenant's default
    // budget: two budgets, two names (their counters and statuses are keyed by name).
    let text = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t2, namespace: ns}\nspec:\n  defaultBudget: {limitUsd: '10', period: Monthly}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p3, namespace: ns}\nspec: {tenant: t2, model: m, systemPrompt: hi}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: t2-default, namespace: ns}\nspec: {scope: {kind: Persona, tenant: t2, persona: p3}, limitUsd: '3', period: Daily}\n";
    let config = render_yaml(text).unwrap();
    let mut names: Vec<(&str, bool)> =
        config.budgets.iter().map(|b| (b.name.as_str(), b.is_tenant_default())).collect();
    names.sort_unstable();
    assert_eq!(names, [("t2-default", false), ("t2/default", true)]);
}
