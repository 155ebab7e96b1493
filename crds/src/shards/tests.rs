use super::*;
use crate::{Resources, SecretStore, manifest, render};

/// A rendered config of one Tenant with three keys, a route, a persona and a budget, its Tenant,
/// Persona and Budget copied under `tenants` distinct names (rendering thousands from manifests
/// is slow in a debug build).
fn config(tenants: usize) -> GatewayConfig {
    let text = "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r, namespace: sb}\n\
        spec: {models: [{name: m}], backends: [{name: b, provider: mock}]}\n\
        ---\napiVersion: v1\nkind: Secret\nmetadata: {name: keys, namespace: sb}\n\
        stringData: {a: sk-a, b: sk-b, c: sk-c}\n\
        ---\napiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team, namespace: sb}\n\
        spec:\n  namespaces: [apps]\n  apiKeys:\n\
        \x20   - {name: a, secretRef: {name: keys, key: a}}\n\
        \x20   - {name: b, secretRef: {name: keys, key: b}}\n\
        \x20   - {name: c, secretRef: {name: keys, key: c}}\n\
        ---\napiVersion: switchboard.dev/v1alpha1\nkind: Persona\nmetadata: {name: p, namespace: sb}\n\
        spec: {tenant: team, systemPrompt: hello, model: m}\n\
        ---\napiVersion: switchboard.dev/v1alpha1\nkind: Budget\nmetadata: {name: b, namespace: sb}\n\
        spec: {scope: {kind: Tenant, tenant: team}, limitUsd: \"10\", period: Monthly}\n";
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    manifest::load_yaml(text, "t.yaml", &mut resources, &mut secrets).unwrap();
    let one = render(&resources, &secrets).unwrap();
    let mut config = GatewayConfig {
        version: format!("v{tenants}"),
        routes: one.routes.clone(),
        ..GatewayConfig::default()
    };
    for t in 0..tenants {
        let mut tenant = TenantConfig::clone(&one.tenants["team"]);
        tenant.name = format!("team-{t}");
        let mut persona = PersonaConfig::clone(&one.personas["p"]);
        persona.tenant = tenant.name.clone();
        let mut budget = BudgetConfig::clone(&one.budgets[0]);
        (budget.name, budget.tenant) = (format!("b-{t}"), tenant.name.clone());
        config.personas.insert(format!("p-{t}"), Arc::new(persona));
        config.tenants.insert(tenant.name.clone(), Arc::new(tenant));
        config.budgets.push(Arc::new(budget));
    }
    sort_budgets(&mut config.budgets);
    config
}

fn join_all(sharded: &Sharded) -> Result<GatewayConfig, JoinError> {
    let parts: BTreeMap<String, Part> =
        sharded.shards.iter().map(|s| (s.id.clone(), parse_shard(&s.id, &s.json).unwrap())).collect();
    join(&sharded.head, |id| parts.get(id).cloned())
}

#[test]
fn a_large_config_splits_into_bounded_shards_and_joins_back_exactly() {
    let config = config(5000);
    let sharded = split(&config).unwrap();
    assert!(sharded.shards.len() > 2, "{} shards", sharded.shards.len());
    for shard in &sharded.shards {
        assert!(shard.json.len() <= MAX_SHARD_BYTES, "{}", shard.json.len());
        assert_eq!(shard.id, shard_id(&shard.json));
    }
    assert_eq!(sharded.head.version, config.version);
    assert_eq!(join_all(&sharded).unwrap(), config);
    assert_eq!(sharded.entries.len(), 5000 * 3 + 1);
}

#[test]
fn a_small_config_is_one_shard_and_splitting_is_deterministic() {
    let config = config(3);
    let first = split(&config).unwrap();
    assert_eq!(first.shards.len(), 1);
    assert_eq!(first.shards, split(&config.clone()).unwrap().shards);
    assert_eq!(join_all(&first).unwrap(), config);
}

#[test]
fn one_more_tenant_rewrites_one_shard() {
    let before = split(&config(5000)).unwrap();
    let after = split(&config(5001)).unwrap();
    assert_eq!(before.shards.len(), after.shards.len());
    let old: Vec<&String> = before.head.shards.iter().collect();
    let new: Vec<&String> = after.head.shards.iter().filter(|id| !old.contains(id)).collect();
    // The new tenant, its persona and its budget land in at most three shards (the route holds nothing new).
    assert!((1..=3).contains(&new.len()), "{} of {} shards changed", new.len(), after.shards.len());
}

#[test]
fn a_missing_corrupt_or_duplicated_shard_is_refused() {
    let sharded = split(&config(2000)).unwrap();
    let parts: BTreeMap<String, Part> =
        sharded.shards.iter().map(|s| (s.id.clone(), parse_shard(&s.id, &s.json).unwrap())).collect();
    let first = sharded.head.shards[0].clone();
    let missing = join(&sharded.head, |id| if id == first { None } else { parts.get(id).cloned() });
    assert_eq!(missing.unwrap_err(), JoinError::Missing(first.clone()));

    let tampered = sharded.shards[0].json.replacen("team-", "evil-", 1);
    assert_eq!(parse_shard(&first, &tampered).unwrap_err(), JoinError::Corrupt(first.clone()));
    assert!(matches!(parse_shard(&shard_id("{\"x\":1}"), "{\"x\":1}"), Err(JoinError::Invalid { .. })));

    let mut twice = sharded.head.clone();
    twice.shards.push(first);
    assert!(matches!(join(&twice, |id| parts.get(id).cloned()), Err(JoinError::Duplicate { .. })));
}

#[test]
fn an_entry_larger_than_a_shard_is_named() {
    let mut config = config(2);
    let tenant = Arc::make_mut(config.tenants.get_mut("team-0").unwrap());
    tenant.display_name = Some("x".repeat(MAX_SHARD_BYTES));
    let Oversized(entries) = split(&config).unwrap_err();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, Entry { kind: "Tenant", name: "team-0".into() });
    assert!(entries[0].1 > MAX_SHARD_BYTES);
}

#[test]
fn buckets_split_in_two_when_the_count_doubles() {
    for hash in [0u64, 1, u64::MAX, 0x8000_0000_0000_0000, 0x1234_5678_9abc_def0] {
        let at_four = bucket(hash, 4);
        let at_eight = bucket(hash, 8);
        assert_eq!(at_eight / 2, at_four);
        assert_eq!(bucket(hash, 1), 0);
    }
}
