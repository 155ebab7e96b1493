//! Pure builders: the objects the operator owns, from the rendered config. No client here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use switchboard_crds::GatewayConfig;

use crate::policies::network_policies;

/// Label on every object the operator creates; orphans are found by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "switchboard-operator");
/// Annotation carrying the config's content hash, so watchers see versions without parsing.
pub const VERSION_ANNOTATION: &str = "switchboard.dev/config-version";
/// The ConfigMap key holding the JSON config.
pub const CONFIG_KEY: &str = "config.json";

/// Where the gateway runs, as the operator was told.
#[derive(Clone, Debug)]
pub struct GatewayTarget {
    pub namespace: String,
    pub config_map: String,
    pub pod_labels: BTreeMap<String, String>,
    pub port: i32,
}

/// Every object one reconcile owns. Destructured without `..` where applied, so a new kind that is
/// built but never applied fails to compile.
#[derive(Debug)]
pub struct Owned {
    pub config_map: ConfigMap,
    pub network_policies: Vec<NetworkPolicy>,
}

pub fn owned(
    config: &GatewayConfig,
    target: &GatewayTarget,
    owners: &BTreeMap<String, OwnerReference>,
) -> Owned {
    Owned {
        config_map: config_map(config, target),
        network_policies: network_policies(config, target, owners),
    }
}

pub(crate) fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())])
}

/// The gateway's config. Holds key hashes and Secret references, never secret values.
pub fn config_map(config: &GatewayConfig, target: &GatewayTarget) -> ConfigMap {
    let json = serde_json::to_string_pretty(config).unwrap_or_default();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(target.config_map.clone()),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels()),
            annotations: Some(BTreeMap::from([(VERSION_ANNOTATION.to_owned(), config.version.clone())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(CONFIG_KEY.to_owned(), json)])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use switchboard_crds::{Resources, SecretStore, manifest, render};

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
            pod_labels: BTreeMap::from([("app".into(), "gw".into())]),
            port: 8080,
        }
    }

    #[test]
    fn config_map_carries_the_version_and_json() {
        let config = config();
        let map = config_map(&config, &target());
        let annotations = map.metadata.annotations.unwrap();
        assert_eq!(annotations[VERSION_ANNOTATION], config.version);
        let parsed: GatewayConfig = serde_json::from_str(&map.data.unwrap()[CONFIG_KEY]).unwrap();
        assert_eq!(parsed, config);
    }
}
