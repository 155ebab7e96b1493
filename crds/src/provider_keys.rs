//! The provider keys a config needs, gathered into one Secret that the gateway alone reads.
//!
//! The gateway needs only the provider credentials its routes name, never the tenants' key
//! Secrets (the config holds their hashes). So the operator copies those credentials into one
//! Secret, and the gateway's Role can name that Secret alone (`resourceNames`). A data key is
//! `<secret name>_<key>`: Secret names cannot hold `_`, so the first `_` splits it back.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use crate::config::{GatewayConfig, SecretRef};
use crate::render::SecretStore;

/// The data of the provider-keys Secret for `config`: each referenced key that `secrets` holds.
/// References it does not hold are left out; the gateway refuses a config missing one.
pub fn pack(config: &GatewayConfig, secrets: &SecretStore) -> BTreeMap<String, ByteString> {
    config
        .routes
        .values()
        .flat_map(|route| &route.backends)
        .filter_map(|backend| backend.api_key.as_ref())
        .filter_map(|reference| {
            let value = secrets.get(reference).ok()?;
            Some((format!("{}_{}", reference.name, reference.key), ByteString(value.to_vec())))
        })
        .collect()
}

/// The Secret store the gateway builds from the provider-keys Secret, for references into
/// `namespace`. Data keys that do not split are ignored.
pub fn unpack(secret: &Secret, namespace: &str) -> SecretStore {
    let mut store = SecretStore::default();
    for (data_key, value) in secret.data.iter().flatten() {
        if let Some((name, key)) = data_key.split_once('_') {
            let reference =
                SecretRef { namespace: namespace.to_owned(), name: name.to_owned(), key: key.to_owned() };
            store.insert(&reference, value.0.clone());
        }
    }
    store
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Resources, manifest, render};

    #[test]
    fn only_the_referenced_provider_keys_travel_and_unpack_to_the_same_references() {
        let text = r#"
apiVersion: v1
kind: Secret
metadata: {name: openai, namespace: sb}
stringData: {api_key: sk-provider, unused: other}
---
apiVersion: v1
kind: Secret
metadata: {name: tenant-keys, namespace: sb}
stringData: {a: sk-tenant}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: t, namespace: sb}
spec: {apiKeys: [{name: a, secretRef: {name: tenant-keys, key: a}}]}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: r, namespace: sb}
spec:
  models: [{name: m}]
  backends: [{name: b, provider: openai, baseUrl: "https://api.openai.com/v1", apiKeySecretRef: {name: openai, key: api_key}}]
"#;
        let mut resources = Resources::default();
        let mut secrets = SecretStore::default();
        manifest::load_yaml(text, "t.yaml", &mut resources, &mut secrets).unwrap();
        let config = render(&resources, &secrets).unwrap();
        let data = pack(&config, &secrets);
        assert_eq!(data.keys().collect::<Vec<_>>(), ["openai_api_key"]);
        let secret = Secret { data: Some(data), ..Secret::default() };
        let store = unpack(&secret, "sb");
        let reference = config.routes["r"].backends[0].api_key.clone().unwrap();
        assert_eq!(store.get(&reference).unwrap(), b"sk-provider");
        assert_eq!(store.values().count(), 1, "tenant keys and unused keys stay out");
    }
}
