//! The standalone loader holds manifests to the same schema and CEL rules as the apiserver.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use switchboard_crds::{Resources, SecretStore, manifest};

fn load(text: &str) -> Result<Resources, String> {
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    manifest::load_yaml(text, "f.yaml", &mut resources, &mut secrets)
        .map(|()| resources)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
}

fn budget(spec: &str) -> String {
    format!("apiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {{name: b}}\nspec: {spec}\n")
}

#[test]
fn missing_required_field_is_rejected_with_its_path() {
    let error = load("apiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p}\nspec: {tenant: t, model: m}\n")
        .unwrap_err();
    assert!(error.contains("f.yaml#1 Persona/p") && error.contains("systemPrompt"), "{error}");
}

#[test]
fn bad_enum_is_rejected() {
    let error =
        load(&budget("{scope: {kind: Tenant, tenant: t}, limitUsd: '1', period: Hourly}")).unwrap_err();
    assert!(error.contains("spec.period") && error.contains("Hourly"), "{error}");
}

#[test]
fn negative_and_zero_budgets_are_rejected() {
    let error =
        load(&budget("{scope: {kind: Tenant, tenant: t}, limitUsd: '-5', period: Daily}")).unwrap_err();
    assert!(error.contains("spec.limitUsd"), "{error}");
    let error =
        load(&budget("{scope: {kind: Tenant, tenant: t}, limitUsd: '0.00', period: Daily}")).unwrap_err();
    assert!(error.contains("greater than zero"), "{error}");
}

#[test]
fn cross_field_cel_rules_are_enforced() {
    let error =
        load(&budget("{scope: {kind: Persona, tenant: t}, limitUsd: '1', period: Daily}")).unwrap_err();
    assert!(error.contains("scope.persona is required when kind is Persona"), "{error}");
    let error = load(&budget("{scope: {kind: Tenant, tenant: t, apiKey: k}, limitUsd: '1', period: Daily}"))
        .unwrap_err();
    assert!(error.contains("scope.apiKey is only allowed when kind is ApiKey"), "{error}");
    let route = "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r}\nspec:\n  models: [{name: m}]\n  backends: [{name: b, provider: openai}]\n";
    let error = load(route).unwrap_err();
    assert!(error.contains("baseUrl is required unless provider is mock"), "{error}");
    let dupes = "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r}\nspec:\n  models: [{name: m}, {name: m}]\n  backends: [{name: b, provider: mock}]\n";
    assert!(load(dupes).unwrap_err().contains("model names must be unique"));
}

#[test]
fn ranges_and_patterns_are_enforced() {
    let route = "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r}\nspec:\n  models: [{name: m, pricing: {inputPerMillion: 'cheap'}}]\n  backends: [{name: b, provider: mock, weight: 5000}]\n";
    let error = load(route).unwrap_err();
    assert!(error.contains("spec.models[0].pricing.inputPerMillion"), "{error}");
    assert!(error.contains("spec.backends[0].weight"), "{error}");
}

#[test]
fn other_kinds_are_ignored_and_unknown_switchboard_kinds_are_not() {
    let resources =
        load("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\n# only a comment\n").unwrap();
    assert!(resources.tenants.is_empty());
    let error = load("apiVersion: switchboard.dev/v1alpha1\nkind: Tenent\nmetadata: {name: x}\nspec: {}\n")
        .unwrap_err();
    assert!(error.contains("unknown kind \"Tenent\""), "{error}");
}

#[test]
fn invalid_yaml_names_the_document() {
    let error = load("apiVersion: v1\nkind: Secret\n---\nfoo: [unclosed\n").unwrap_err();
    assert!(error.contains("f.yaml#2") && error.contains("invalid YAML"), "{error}");
}

#[test]
fn lists_are_unpacked_and_namespace_defaults() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: switchboard.dev/v1alpha1\n  kind: Tenant\n  metadata: {name: t}\n  spec: {}\n";
    let resources = load(text).unwrap();
    assert_eq!(resources.tenants[0].metadata.namespace.as_deref(), Some("default"));
    // An explicit null is no namespace either (found by fuzz_manifest).
    let text = "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t, namespace: null}\nspec: {}\n";
    assert_eq!(load(text).unwrap().tenants[0].metadata.namespace.as_deref(), Some("default"));
}

#[test]
fn rate_limits_past_what_the_limiter_counts_are_refused_not_capped() {
    let tenant = |limits: &str| {
        format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t}}\nspec: {{rateLimits: {limits}}}\n"
        )
    };
    let error = load(&tenant("{tokensPerMinute: 60000001}")).unwrap_err();
    assert!(error.contains("spec.rateLimits.tokensPerMinute") && error.contains("60000000"), "{error}");
    let error = load(&tenant("{requestsPerMinute: 4000000000}")).unwrap_err();
    assert!(error.contains("spec.rateLimits.requestsPerMinute"), "{error}");
    load(&tenant("{tokensPerMinute: 60000000, requestsPerMinute: 60000000}")).unwrap();
}

#[test]
fn names_are_held_to_what_the_apiserver_accepts() {
    let named = |name: &str| {
        format!(
            "apiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: '{name}'}}\nspec: {{}}\n"
        )
    };
    for good in ["team", "team-a.prod", "a", "0x1"] {
        assert!(load(&named(good)).is_ok(), "{good}");
    }
    for bad in ["Team", "team/default", "-team", "team-", "te am", "team_a", &"a".repeat(254)] {
        let error = load(&named(bad)).unwrap_err();
        assert!(error.contains("metadata.name") && error.contains("not a valid name"), "{bad}: {error}");
    }
}
