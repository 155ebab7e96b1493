//! Secret data as render and the gateway read it: values by namespace, Secret name and key.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::config::SecretRef;

/// Secret data by namespace, name and key. Nested rather than keyed by pairs so that a lookup
/// borrows its names: at 10,000 Tenants a render looks up 30,000 keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretStore {
    secrets: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
}

impl SecretStore {
    /// Adds a Secret, merging `stringData` over `data` as the apiserver does.
    pub fn insert_secret(&mut self, secret: &Secret, default_namespace: &str) {
        let namespace = secret.metadata.namespace.clone().unwrap_or_else(|| default_namespace.to_owned());
        let name = secret.metadata.name.clone().unwrap_or_default();
        let mut data: BTreeMap<String, Vec<u8>> =
            secret.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        for (key, value) in secret.string_data.iter().flatten() {
            data.insert(key.clone(), value.clone().into_bytes());
        }
        self.secrets.entry(namespace).or_default().insert(name, data);
    }

    /// Adds one key's value.
    pub fn insert(&mut self, reference: &SecretRef, value: Vec<u8>) {
        let namespace = self.secrets.entry(reference.namespace.clone()).or_default();
        namespace.entry(reference.name.clone()).or_default().insert(reference.key.clone(), value);
    }

    /// Removes a Secret (for watches).
    pub fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(secrets) = self.secrets.get_mut(namespace) {
            secrets.remove(name);
        }
    }

    /// Every value of every Secret, so that whatever holds them can recognise them in text.
    pub fn values(&self) -> impl Iterator<Item = &[u8]> {
        self.secrets.values().flat_map(BTreeMap::values).flat_map(|data| data.values().map(Vec::as_slice))
    }

    /// The value of one key.
    pub fn get(&self, reference: &SecretRef) -> Result<&[u8], SecretLookupError> {
        self.lookup(&reference.namespace, &reference.name, &reference.key)
    }

    /// The value of one key, by borrowed names.
    pub(crate) fn lookup(&self, namespace: &str, name: &str, key: &str) -> Result<&[u8], SecretLookupError> {
        let secret = self
            .secrets
            .get(namespace)
            .and_then(|secrets| secrets.get(name))
            .ok_or(SecretLookupError::SecretNotFound)?;
        let value = secret.get(key).ok_or(SecretLookupError::KeyNotFound)?;
        if value.is_empty() {
            return Err(SecretLookupError::Empty);
        }
        Ok(value)
    }
}

/// Why a Secret reference did not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretLookupError {
    SecretNotFound,
    KeyNotFound,
    Empty,
}
