//! Rendering with per-resource isolation.
//!
//! `render()` is all-or-nothing, which is right for one folder but wrong for a cluster shared by
//! many teams: one team's other resource must not freeze everyone's config. So the operator
//! renders, sets aside every resource named in an error, and renders the rest again, until the
//! remainder renders cleanly. Set-aside resources get `Ready=False` with the reasons.
//!
//! Objects that do not even decode into their Rust type (written under an older or newer CRD
//! schema, say) are watched through `DeserializeGuard`, so they cannot stall a watch; `split()`
//! sets them aside before rendering, like resources with render errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::error_boundary::InvalidObject;
use kube::core::{DeserializeGuard, Resource};
use switchboard_crds::GatewayConfig;
use switchboard_crds::render::{RenderError, RenderErrorReason, Resources, SecretStore, render};
use switchboard_crds::shards::{self, MAX_SHARD_BYTES, Oversized, Sharded};

/// Identifies one Switchboard resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn of<K: Resource<DynamicType = ()>>(kind: &'static str, object: &K) -> ObjectKey {
        ObjectKey::of_meta(kind, object.meta())
    }

    pub fn of_meta(kind: &'static str, meta: &ObjectMeta) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    fn of_error(error: &RenderError) -> ObjectKey {
        ObjectKey { kind: error.kind, namespace: error.namespace.clone(), name: error.name.clone() }
    }
}

/// One kind's watched objects: those that decode, and those that do not (metadata and error only).
#[derive(Debug)]
pub struct Split<K> {
    pub decoded: Vec<K>,
    pub undecodable: Vec<InvalidObject>,
}

/// Clones the objects that decode; undecodable ones keep only what kube could read of them.
pub fn split<K: Clone>(objects: &[Arc<DeserializeGuard<K>>]) -> Split<K> {
    let mut split = Split { decoded: Vec::new(), undecodable: Vec::new() };
    for object in objects {
        match &object.0 {
            Ok(decoded) => split.decoded.push(decoded.clone()),
            Err(invalid) => split.undecodable.push(invalid.clone()),
        }
    }
    split
}

/// What was last reported about each undecodable object. Their current conditions cannot be
/// read, so this is what keeps the report (status, Event, log line) to once per distinct error
/// instead of once per reconcile. Forgotten on restart, which reports once more.
#[derive(Debug, Default)]
pub struct Reported(BTreeMap<ObjectKey, (Option<String>, Option<i64>, String)>);

impl Reported {
    fn fingerprint(object: &InvalidObject) -> (Option<String>, Option<i64>, String) {
        (object.metadata.uid.clone(), object.metadata.generation, object.error.clone())
    }

    pub fn is_new(&self, key: &ObjectKey, object: &InvalidObject) -> bool {
        self.0.get(key) != Some(&Reported::fingerprint(object))
    }

    pub fn insert(&mut self, key: ObjectKey, object: &InvalidObject) {
        self.0.insert(key, Reported::fingerprint(object));
    }

    /// Forgets the objects of `kind` that no longer fail, so a later failure is reported again.
    pub fn retain(&mut self, kind: &'static str, undecodable: &[InvalidObject]) {
        self.0.retain(|key, _| {
            key.kind != kind || undecodable.iter().any(|o| ObjectKey::of_meta(kind, &o.metadata) == *key)
        });
    }
}

/// The config of every resource that renders and fits in a shard, and the problems of the others.
#[derive(Debug)]
pub struct Outcome {
    /// `None` only if isolation did not converge (never expected): keep the last config.
    pub config: Option<(GatewayConfig, Sharded)>,
    pub problems: BTreeMap<ObjectKey, Vec<RenderError>>,
}

impl Outcome {
    /// Adds problems of resources rendered all the same (a policy kept at its last good version).
    pub fn report(&mut self, problems: Vec<RenderError>) {
        for problem in problems {
            self.problems.entry(ObjectKey::of_error(&problem)).or_default().push(problem);
        }
    }
}

/// Each round removes at least one resource, so this bounds pathological inputs only.
const MAX_ROUNDS: usize = 64;

pub fn render_isolated(mut remaining: Resources, secrets: &SecretStore) -> Outcome {
    let mut problems: BTreeMap<ObjectKey, Vec<RenderError>> = BTreeMap::new();
    for _ in 0..MAX_ROUNDS {
        let errors = match render(&remaining, secrets) {
            Ok(config) => match shards::split(&config) {
                Ok(sharded) => return Outcome { config: Some((config, sharded)), problems },
                Err(oversized) => too_large(&remaining, oversized),
            },
            Err(errors) => errors.0,
        };
        for error in errors {
            problems.entry(ObjectKey::of_error(&error)).or_default().push(error);
        }
        remaining.tenants.retain(|o| !problems.contains_key(&ObjectKey::of("Tenant", o)));
        remaining.personas.retain(|o| !problems.contains_key(&ObjectKey::of("Persona", o)));
        remaining.routes.retain(|o| !problems.contains_key(&ObjectKey::of("ProviderRoute", o)));
        remaining.budgets.retain(|o| !problems.contains_key(&ObjectKey::of("Budget", o)));
    }
    Outcome { config: None, problems }
}

/// A problem for each resource whose config entry no shard can carry. A Tenant's default budget
/// is its Tenant's problem.
fn too_large(resources: &Resources, Oversized(entries): Oversized) -> Vec<RenderError> {
    let namespace_of = |kind: &str, name: &str| {
        let metas: Vec<&ObjectMeta> = match kind {
            "Tenant" => resources.tenants.iter().map(Resource::meta).collect(),
            "Persona" => resources.personas.iter().map(Resource::meta).collect(),
            "ProviderRoute" => resources.routes.iter().map(Resource::meta).collect(),
            _ => resources.budgets.iter().map(Resource::meta).collect(),
        };
        metas.into_iter().find(|m| m.name.as_deref() == Some(name)).and_then(|m| m.namespace.clone())
    };
    entries
        .into_iter()
        .filter_map(|(entry, bytes)| {
            let (kind, name) = match namespace_of(entry.kind, &entry.name) {
                Some(_) => (entry.kind, entry.name),
                None => ("Tenant", entry.name.strip_suffix("/default")?.to_owned()),
            };
            Some(RenderError {
                namespace: namespace_of(kind, &name)?,
                kind,
                name,
                field: "spec".into(),
                reason: RenderErrorReason::TooLarge,
                message: format!(
                    "its entry in the gateway config is {bytes} bytes, more than a published shard holds ({MAX_SHARD_BYTES})"
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_crds::manifest;
    use switchboard_crds::resources::Tenant;

    use super::*;

    fn tenant(name: &str, generation: i64, spec: serde_json::Value) -> Arc<DeserializeGuard<Tenant>> {
        let object = json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name, "namespace": "sb", "uid": format!("uid-{name}"), "generation": generation},
            "spec": spec,
        });
        Arc::new(serde_json::from_value(object).unwrap())
    }

    #[test]
    fn split_keeps_the_objects_that_decode_and_the_metadata_and_error_of_the_others() {
        let objects = [
            tenant("good", 1, json!({"priority": 5})),
            tenant("newer", 1, json!({"priority": "high"})),
            tenant("also-good", 1, json!({})),
        ];
        let split = split(&objects);
        let decoded: Vec<_> = split.decoded.iter().filter_map(|t| t.metadata.name.as_deref()).collect();
        assert_eq!(decoded, ["good", "also-good"]);
        assert_eq!(split.undecodable.len(), 1);
        let invalid = &split.undecodable[0];
        assert_eq!(ObjectKey::of_meta("Tenant", &invalid.metadata).name, "newer");
        assert!(invalid.error.contains("Expected u8"), "{}", invalid.error);
    }

    #[test]
    fn an_undecodable_object_is_reported_once_per_generation_and_again_after_recovering() {
        let invalid =
            |generation| split(&[tenant("bad", generation, json!({"priority": "high"}))]).undecodable;
        let first = invalid(1);
        let key = ObjectKey::of_meta("Tenant", &first[0].metadata);
        let mut reported = Reported::default();
        assert!(reported.is_new(&key, &first[0]));
        reported.insert(key.clone(), &first[0]);
        assert!(!reported.is_new(&key, &invalid(1)[0]), "same error, same generation");
        assert!(reported.is_new(&key, &invalid(2)[0]), "a new generation is reported again");
        reported.retain("Persona", &[]);
        assert!(!reported.is_new(&key, &first[0]), "other kinds do not forget Tenants");
        reported.retain("Tenant", &[]);
        assert!(reported.is_new(&key, &first[0]), "a recovered object is forgotten");
    }

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
        let outcome = render_isolated(resources, &secrets);
        let (config, _) = outcome.config.unwrap();
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
        let outcome = render_isolated(resources, &secrets);
        assert_eq!(outcome.problems.len(), 2, "{:?}", outcome.problems);
        assert!(outcome.config.unwrap().0.tenants.contains_key("good"));
    }

    #[test]
    fn a_tenant_too_large_for_a_shard_is_set_aside_with_its_dependents() {
        let (mut resources, secrets) = load(GOOD_AND_BAD);
        let other =
            resources.tenants.iter_mut().find(|t| t.metadata.name.as_deref() == Some("other")).unwrap();
        other.spec.api_keys[0].secret_ref.name = "keys".into();
        other.spec.api_keys.clear();
        let good = resources.tenants.iter_mut().find(|t| t.metadata.name.as_deref() == Some("good")).unwrap();
        good.spec.display_name = Some("x".repeat(MAX_SHARD_BYTES));
        let outcome = render_isolated(resources, &secrets);
        let (config, sharded) = outcome.config.unwrap();
        assert!(!config.tenants.contains_key("good") && config.tenants.contains_key("other"));
        assert!(sharded.shards.iter().all(|s| s.json.len() <= MAX_SHARD_BYTES));
        let problem =
            &outcome.problems[&ObjectKey { kind: "Tenant", namespace: "sb".into(), name: "good".into() }];
        assert_eq!(problem[0].reason, RenderErrorReason::TooLarge);
        assert!(problem[0].message.contains("bytes"), "{}", problem[0].message);
    }
}
