use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use switchboard_crds::config::TenantConfig;
use switchboard_crds::shards::{Sharded, split};
use switchboard_crds::{Resources, SecretStore, manifest, render};

use super::*;

/// A config of `tenants` Tenants with a key each, large enough for several shards from about 600.
fn config(tenants: usize, version: &str) -> GatewayConfig {
    let text = "apiVersion: switchboard.dev/v1alpha1\nkind: ProviderRoute\nmetadata: {name: r, namespace: sb}\n\
        spec: {models: [{name: m}], backends: [{name: b, provider: mock}]}\n\
        ---\napiVersion: v1\nkind: Secret\nmetadata: {name: keys, namespace: sb}\nstringData: {a: sk-a}\n\
        ---\napiVersion: switchboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: team, namespace: sb}\n\
        spec: {namespaces: [apps], apiKeys: [{name: a, secretRef: {name: keys, key: a}}]}\n";
    let mut resources = Resources::default();
    let mut secrets = SecretStore::default();
    manifest::load_yaml(text, "t.yaml", &mut resources, &mut secrets).unwrap();
    let one = render(&resources, &secrets).unwrap();
    let mut config =
        GatewayConfig { version: version.to_owned(), routes: one.routes.clone(), ..Default::default() };
    for t in 0..tenants {
        let mut tenant = TenantConfig::clone(&one.tenants["team"]);
        tenant.name = format!("team-{t:04}");
        tenant.display_name = Some("x".repeat(300));
        config.tenants.insert(tenant.name.clone(), Arc::new(tenant));
    }
    config
}

fn config_map(name: String, key: &str, json: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name), ..ObjectMeta::default() },
        data: Some(BTreeMap::from([(key.to_owned(), json)])),
        ..ConfigMap::default()
    }
}

fn head(sharded: &Sharded) -> ConfigMap {
    config_map("gw".into(), HEAD_KEY, serde_json::to_string(&sharded.head).unwrap())
}

fn shards(sharded: &Sharded) -> Vec<ConfigMap> {
    sharded.shards.iter().map(|s| config_map(format!("gw-{}", s.id), SHARD_KEY, s.json.clone())).collect()
}

/// A watch that listed nothing, then saw `events`.
fn published(events: impl IntoIterator<Item = watcher::Event<ConfigMap>>) -> Published {
    let mut published = Published::new("sb", "gw");
    published.apply(watcher::Event::Init);
    published.apply(watcher::Event::InitDone);
    events.into_iter().for_each(|event| published.apply(event));
    published
}

fn parsed(published: &Published, id: &str) -> Parsed {
    published.seen.shards[id].clone()
}

#[test]
fn a_head_whose_shards_arrived_first_joins_to_the_config() {
    let config = config(800, "v1");
    let sharded = split(&config).unwrap();
    assert!(sharded.shards.len() > 1, "the test needs several shards");
    let mut events: Vec<_> = shards(&sharded).into_iter().map(watcher::Event::Apply).collect();
    events.push(watcher::Event::Apply(head(&sharded)));
    let published = published(events);
    assert_eq!(published.version(), Some("v1"));
    let snapshot = published.snapshot().unwrap();
    assert_eq!(snapshot.version(), "v1");
    assert_eq!(snapshot.join().unwrap(), config);
}

#[test]
fn a_head_naming_a_shard_not_there_yet_or_corrupt_does_not_join() {
    let sharded = split(&config(800, "v1")).unwrap();
    let mut all = shards(&sharded);
    let last = all.pop().unwrap();
    let mut events: Vec<_> = all.into_iter().map(watcher::Event::Apply).collect();
    events.push(watcher::Event::Apply(head(&sharded)));
    let mut published = published(events);
    let missing = published.snapshot().unwrap().join().unwrap_err();
    assert!(matches!(&missing, ConfigError::NoShard { name, .. } if *name == last.name_any()), "{missing}");

    let mut corrupt = last.clone();
    corrupt.data.as_mut().unwrap().get_mut(SHARD_KEY).unwrap().push(' ');
    published.apply(watcher::Event::Apply(corrupt));
    let error = published.snapshot().unwrap().join().unwrap_err();
    assert!(matches!(error, ConfigError::Shards(JoinError::Corrupt(_))), "{error}");

    // The intact shard replaces the corrupt one under the same id.
    published.apply(watcher::Event::Apply(last));
    assert!(published.snapshot().unwrap().join().is_ok());
}

#[test]
fn no_head_or_a_head_that_does_not_parse_is_said_so() {
    let mut published = published([]);
    assert!(matches!(published.snapshot(), Err(ConfigError::NoHead { .. })));
    assert_eq!(published.version(), None);
    published.apply(watcher::Event::Apply(config_map("gw".into(), HEAD_KEY, "{".into())));
    assert!(matches!(published.snapshot(), Err(ConfigError::InvalidHead { .. })));
    published.apply(watcher::Event::Apply(config_map("gw".into(), "other", "{}".into())));
    assert!(
        matches!(published.snapshot(), Err(ConfigError::InvalidHead { reason, .. }) if reason.contains(HEAD_KEY))
    );
}

#[test]
fn a_shard_is_parsed_once_across_events_and_relists() {
    let sharded = split(&config(800, "v1")).unwrap();
    let all = shards(&sharded);
    let id = sharded.shards[0].id.as_str();
    let mut published = published(all.iter().cloned().map(watcher::Event::Apply));
    let first = parsed(&published, id);
    published.apply(watcher::Event::Apply(all[0].clone()));
    assert!(Arc::ptr_eq(&first, &parsed(&published, id)));

    // A relist keeps serving what was seen until it completes, reuses parsed shards and forgets
    // ConfigMaps deleted while the watch was down (here every shard but the first, and the head).
    published.apply(watcher::Event::Apply(head(&sharded)));
    published.apply(watcher::Event::Init);
    published.apply(watcher::Event::InitApply(all[0].clone()));
    assert!(published.snapshot().unwrap().join().is_ok());
    published.apply(watcher::Event::InitDone);
    assert!(Arc::ptr_eq(&first, &parsed(&published, id)));
    assert_eq!(published.seen.shards.len(), 1);
    assert!(matches!(published.snapshot(), Err(ConfigError::NoHead { .. })));
}

#[test]
fn deleting_the_head_or_a_shard_forgets_it_and_other_config_maps_are_ignored() {
    let sharded = split(&config(800, "v1")).unwrap();
    let all = shards(&sharded);
    let mut events: Vec<_> = all.iter().cloned().map(watcher::Event::Apply).collect();
    events.push(watcher::Event::Apply(head(&sharded)));
    events.push(watcher::Event::Apply(config_map("gw2-abc".into(), SHARD_KEY, "{}".into())));
    events.push(watcher::Event::Apply(config_map("other".into(), HEAD_KEY, "{}".into())));
    let mut published = published(events);
    assert_eq!(published.seen.shards.len(), all.len());
    published.apply(watcher::Event::Delete(all[0].clone()));
    assert!(matches!(published.snapshot().unwrap().join(), Err(ConfigError::NoShard { .. })));
    published.apply(watcher::Event::Delete(head(&sharded)));
    assert!(matches!(published.snapshot(), Err(ConfigError::NoHead { .. })));
}
