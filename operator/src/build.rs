//! Pure builders: the objects the operator owns, from the rendered config. No client here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use switchboard_crds::shards::{CONFIG_LABEL, HEAD_KEY, SHARD_KEY, Sharded, shard_name};
use switchboard_crds::{GatewayConfig, SecretStore, provider_keys};

use crate::policies::{PolicySettings, network_policies_with};

/// Label on every object the operator creates; orphans are found by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "switchboard-operator");
/// Annotation carrying the config's content hash, so watchers see versions without parsing.
pub const VERSION_ANNOTATION: &str = "switchboard.dev/config-version";

/// Where the gateway runs, as the operator was told.
#[derive(Clone, Debug)]
pub struct GatewayTarget {
    pub namespace: String,
    /// The head ConfigMap's name; shards are named after it.
    pub config_map: String,
    pub provider_keys: String,
    pub pod_labels: BTreeMap<String, String>,
    pub port: i32,
    pub policies: PolicySettings,
}

/// Every object one reconcile owns. Destructured without `..` where applied, so a new kind that is
/// built but never applied fails to compile.
#[derive(Debug)]
pub struct Owned {
    /// The commit point: written after every shard it names.
    pub head: ConfigMap,
    pub shards: Vec<ConfigMap>,
    pub provider_keys: Secret,
    pub network_policies: Vec<NetworkPolicy>,
}

pub fn owned(
    config: &GatewayConfig,
    sharded: &Sharded,
    secrets: &SecretStore,
    target: &GatewayTarget,
    owners: &BTreeMap<String, OwnerReference>,
) -> Owned {
    Owned {
        head: head(sharded, target),
        shards: sharded
            .shards
            .iter()
            .map(|s| {
                config_map(shard_name(&target.config_map, &s.id), SHARD_KEY, s.json.clone(), target, true)
            })
            .collect(),
        provider_keys: provider_keys(config, secrets, target),
        network_policies: network_policies_with(config, target, owners, &target.policies),
    }
}

pub(crate) fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())])
}

/// The head: the config version and its shards. Holds no secret values (neither do shards: key
/// hashes and Secret references only).
fn head(sharded: &Sharded, target: &GatewayTarget) -> ConfigMap {
    let json = serde_json::to_string(&sharded.head).unwrap_or_default();
    let mut head = config_map(target.config_map.clone(), HEAD_KEY, json, target, false);
    head.metadata.annotations =
        Some(BTreeMap::from([(VERSION_ANNOTATION.to_owned(), sharded.head.version.clone())]));
    head
}

/// A ConfigMap labelled for the gateway's watch. Shards are immutable: their name is their content.
fn config_map(name: String, key: &str, json: String, target: &GatewayTarget, immutable: bool) -> ConfigMap {
    let mut labels = labels();
    labels.insert(CONFIG_LABEL.to_owned(), target.config_map.clone());
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(key.to_owned(), json)])),
        immutable: immutable.then_some(true),
        ..ConfigMap::default()
    }
}

/// The one Secret the gateway reads: the provider keys its routes name.
fn provider_keys(config: &GatewayConfig, secrets: &SecretStore, target: &GatewayTarget) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(target.provider_keys.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        data: Some(provider_keys::pack(config, secrets)),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use switchboard_crds::{Resources, manifest, render};

    use super::*;

    pub(crate) fn config() -> GatewayConfig {
        let text = r#"
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: team, namespace: sb}
spec: {namespaces: [apps, jobs]}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: headless, namespace: sb}
spec: {}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: r, namespace: sb}
spec:
  models: [{name: m}]
  backends:
    - {name: a, provider: openai, baseUrl: "https://api.openai.com/v1"}
    - {name: b, provider: openai, baseUrl: "http://vllm.models:8000/v1"}
    - {name: c, provider: mock}
"#;
        let mut resources = Resources::default();
        let mut secrets = SecretStore::default();
        manifest::load_yaml(text, "t", &mut resources, &mut secrets).unwrap();
        render(&resources, &secrets).unwrap()
    }

    pub(crate) fn target() -> GatewayTarget {
        GatewayTarget {
            namespace: "sb".into(),
            config_map: "gw-config".into(),
            provider_keys: "gw-provider-keys".into(),
            policies: crate::policies::PolicySettings::default(),
            pod_labels: BTreeMap::from([("app".into(), "gw".into())]),
            port: 8080,
        }
    }

    #[test]
    fn the_head_names_immutable_shards_that_join_back_to_the_config_and_no_secret_value_is_in_them() {
        let config = config();
        let secrets = SecretStore::default();
        let sharded = switchboard_crds::shards::split(&config).unwrap();
        let owned = owned(&config, &sharded, &secrets, &target(), &BTreeMap::new());
        let annotations = owned.head.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[VERSION_ANNOTATION], config.version);
        let head: switchboard_crds::shards::Head =
            serde_json::from_str(&owned.head.data.as_ref().unwrap()[HEAD_KEY]).unwrap();
        let parts: BTreeMap<String, switchboard_crds::shards::Part> = owned
            .shards
            .iter()
            .map(|cm| {
                assert_eq!(cm.immutable, Some(true));
                assert_eq!(cm.metadata.labels.as_ref().unwrap()[CONFIG_LABEL], "gw-config");
                let id = cm.metadata.name.as_deref().unwrap().strip_prefix("gw-config-").unwrap().to_owned();
                let part = switchboard_crds::shards::parse_shard(&id, &cm.data.as_ref().unwrap()[SHARD_KEY])
                    .unwrap();
                (id, part)
            })
            .collect();
        assert_eq!(switchboard_crds::shards::join(&head, |id| parts.get(id).cloned()).unwrap(), config);
        assert_eq!(owned.head.metadata.labels.as_ref().unwrap()[CONFIG_LABEL], "gw-config");
        assert_eq!(owned.provider_keys.metadata.name.as_deref(), Some("gw-provider-keys"));
    }
}
