//! Rendering with per-resource isolation.
//!
//! `render()` is all-or-nothing, which is right for one folder but wrong for a cluster shared by
//! many teams: one team's other resource must not freeze everyone's config. So the operator
//! renders, sets aside every resource named in an error, and renders the rest again, until the
//! remainder renders cleanly. Set-aside resources get `Ready=False` with the reasons.

use std::collections::BTreeMap;

use kube::core::Resource;
use switchboard_crds::GatewayConfig;
use switchboard_crds::render::{RenderError, Resources, SecretStore, render};

/// Identifies one Switchboard resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn of<K: Resource<DynamicType = ()>>(kind: &'static str, object: &K) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: object.meta().namespace.clone().unwrap_or_default(),
            name: object.meta().name.clone().unwrap_or_default(),
        }
    }

    fn of_error(error: &RenderError) -> ObjectKey {
        ObjectKey { kind: error.kind, namespace: error.namespace.clone(), name: error.name.clone() }
    }
}

/// The config of every resource that renders, and the problems of those that do not.
#[derive(Debug)]
pub struct Outcome {
    /// `None` only if isolation did not converge (never expected): keep the last config.
    pub config: Option<GatewayConfig>,
    pub problems: BTreeMap<ObjectKey, Vec<RenderError>>,
}

/// Each round removes at least one resource, so this bounds pathological inputs only.
const MAX_ROUNDS: usize = 64;

pub fn render_isolated(resources: &Resources, secrets: &SecretStore) -> Outcome {
    let mut remaining = resources.clone();
    let mut problems: BTreeMap<ObjectKey, Vec<RenderError>> = BTreeMap::new();
    for _ in 0..MAX_ROUNDS {
        match render(&remaining, secrets) {
            Ok(config) => {
                return Outcome { config: Some(config), problems };
            }
            Err(errors) => {
                for error in errors.0 {
                    problems.entry(ObjectKey::of_error(&error)).or_default().push(error);
                }
                remaining.tenants.retain(|o| !problems.contains_key(&ObjectKey::of("Tenant", o)));
                remaining.personas.retain(|o| !problems.contains_key(&ObjectKey::of("Persona", o)));
                remaining.routes.retain(|o| !problems.contains_key(&ObjectKey::of("ProviderRoute", o)));
                remaining.budgets.retain(|o| !problems.contains_key(&ObjectKey::of("Budget", o)));
            }
        }
    }
    Outcome { config: None, problems }
}

#[cfg(test)]
mod tests {
    use switchboard_crds::manifest;

    use super::*;

    fn load(text: &str) -> (Resources, SecretStore) {
        let mut resources = Resources::default();
        let mut secrets = SecretStore::default();
        manifest::load_yaml(text, "t.yaml", &mut resources, &mut secrets).unwrap();
        (resources, secrets)
    }

    const GOOD_AND_BAD: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: keys, namespace: sb}
stringData: {a: sk-a}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: good, namespace: sb}
spec: {apiKeys: [{name: k, secretRef: {name: keys, key: a}}]}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: other, namespace: sb}
spec: {apiKeys: [{name: k, secretRef: {name: missing, key: a}}]}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: r, namespace: sb}
spec: {models: [{name: m}], backends: [{name: b, provider: mock}]}
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {name: orphan, namespace: sb}
spec: {tenant: other, systemPrompt: x, model: m}
"#;

    #[test]
    fn a_other_tenant_does_not_block_the_others_and_its_dependents_are_set_aside() {
        let (resources, secrets) = load(GOOD_AND_BAD);
        let outcome = render_isolated(&resources, &secrets);
        let config = outcome.config.unwrap();
        assert!(config.tenants.contains_key("good"));
        assert!(!config.tenants.contains_key("other"));
        assert!(config.routes.contains_key("r"));
        let keys: Vec<(&str, &str)> = outcome.problems.keys().map(|k| (k.kind, k.name.as_str())).collect();
        assert_eq!(keys, [("Persona", "orphan"), ("Tenant", "other")]);
    }

    #[test]
    fn a_key_conflict_sets_aside_the_later_tenant_and_its_dependents() {
        // Both tenants now use the same key value: only the second is set aside.
        let (resources, secrets) = load(&GOOD_AND_BAD.replace("name: missing", "name: keys"));
        let outcome = render_isolated(&resources, &secrets);
        assert_eq!(outcome.problems.len(), 2, "{:?}", outcome.problems);
        assert!(outcome.config.unwrap().tenants.contains_key("good"));
    }
}
