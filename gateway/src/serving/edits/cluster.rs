//! Changes to tenants in a cluster, written where the truth lives: Tenant, Budget and Secret
//! objects in the gateway's namespace, through the Kubernetes API **as the signed-in person** (the gateway
//! impersonates them: [`Impersonator`]). So the cluster's RBAC decides each write,
//! the API server's audit log names the person, and a refusal is the API server's own message.
//! The operator then reconciles the objects into the config the gateway serves.
//!
//! Objects another tool keeps in Git ([`managed_in_git`]) are not changed here: the next sync
//! would undo it. A key's Secret is owned by its Tenant (removed with it), labelled as the
//! console's, and deleted when the key is revoked.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use switchboard_crds::{Budget, Tenant};

use super::rules::{EditError, MAX_KEYS, check_display_name, check_name, key_secret_name};
use crate::error::ApiError;
use crate::signin::kube_user::Impersonator;
use crate::signin::store::Person;

/// The label and value marking what the console created.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "switchboard-console");
const TENANT_LABEL: &str = "switchboard.dev/tenant";
const CREATED_BY: &str = "switchboard.dev/created-by";
/// How often a change is tried again when the Tenant changed between reading and writing it.
const ATTEMPTS: usize = 3;

/// Writes as signed-in people to the gateway's namespace.
pub struct ClusterEdits {
    people: Impersonator,
    namespace: String,
}

/// The tool keeping an object in Git, from the marks it leaves: Argo CD's tracking annotation
/// (its default since 3.0) or its tracking label, which Helm also sets; Flux's labels.
pub fn managed_in_git(meta: &ObjectMeta) -> Option<&'static str> {
    let annotated = |name: &str| meta.annotations.as_ref().is_some_and(|a| a.contains_key(name));
    let label = |name: &str| meta.labels.as_ref().and_then(|l| l.get(name)).map(String::as_str);
    if annotated("argocd.argoproj.io/tracking-id") {
        Some("Argo CD")
    } else if label("kustomize.toolkit.fluxcd.io/name").is_some()
        || label("helm.toolkit.fluxcd.io/name").is_some()
    {
        Some("Flux")
    } else if label("app.kubernetes.io/managed-by") == Some("Helm") {
        Some("Helm")
    } else if label("app.kubernetes.io/instance").is_some() {
        Some("Argo CD")
    } else {
        None
    }
}

impl ClusterEdits {
    pub fn new(people: Impersonator, namespace: String) -> ClusterEdits {
        ClusterEdits { people, namespace }
    }

    fn client_as(&self, person: &Person) -> Result<kube::Client, EditError> {
        self.people.client_as(person).map_err(|error| match error {
            ApiError::Forbidden(message) => EditError::Forbidden(message),
            other => EditError::Unavailable(other.to_string()),
        })
    }

    /// Objects of kind `K` (Tenants, Budgets), as `person`.
    fn objects<K: Resource<DynamicType = ()>>(
        &self,
        person: &Person,
    ) -> Result<Api<DynamicObject>, EditError> {
        let resource = ApiResource::erase::<K>(&());
        Ok(Api::namespaced_with(self.client_as(person)?, &self.namespace, &resource))
    }

    fn secrets(&self, person: &Person) -> Result<Api<Secret>, EditError> {
        Ok(Api::namespaced(self.client_as(person)?, &self.namespace))
    }

    /// Why `tenant` is not to be changed here (`None`: it may be, RBAC permitting).
    pub async fn read_only(&self, person: &Person, tenant: &str) -> Result<Option<String>, EditError> {
        let object = self.objects::<Tenant>(person)?.get(tenant).await.map_err(refusal)?;
        Ok(managed_in_git(&object.metadata).map(in_git))
    }

    pub async fn create_tenant(
        &self,
        person: &Person,
        name: &str,
        display_name: Option<&str>,
    ) -> Result<(), EditError> {
        check_name("tenant", name)?;
        check_display_name(display_name)?;
        let resource = ApiResource::erase::<Tenant>(&());
        let mut spec = json!({"apiKeys": []});
        if let Some(display_name) = display_name {
            spec["displayName"] = json!(display_name);
        }
        let mut tenant =
            DynamicObject::new(name, &resource).within(&self.namespace).data(json!({"spec": spec}));
        tenant.metadata.labels = Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())]));
        tenant.metadata.annotations = Some(BTreeMap::from([(CREATED_BY.into(), person.name().into())]));
        self.objects::<Tenant>(person)?.create(&PostParams::default(), &tenant).await.map_err(refusal)?;
        Ok(())
    }

    /// Adds key `key` of value `value` to `tenant`: its Secret first, then the Tenant's entry
    /// naming it (the Secret is removed again if the Tenant cannot be changed).
    pub async fn add_key(
        &self,
        person: &Person,
        tenant: &str,
        key: &str,
        value: &str,
    ) -> Result<(), EditError> {
        check_name("key", key)?;
        let tenants = self.objects::<Tenant>(person)?;
        let current = tenants.get(tenant).await.map_err(refusal)?;
        writable(&current)?;
        check_new_key(&current, tenant, key)?;
        let secrets = self.secrets(person)?;
        let secret_name = key_secret_name(tenant, key);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(secret_name.clone()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
                    (TENANT_LABEL.into(), tenant.into()),
                ])),
                annotations: Some(BTreeMap::from([(CREATED_BY.into(), person.name().into())])),
                owner_references: Some(vec![owner(&current)]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            string_data: Some(BTreeMap::from([("key".into(), value.into())])),
            ..Secret::default()
        };
        secrets.create(&PostParams::default(), &secret).await.map_err(refusal)?;
        let entry = json!({"name": key, "secretRef": {"name": secret_name, "key": "key"}});
        let added = update(&tenants, tenant, |object| {
            check_new_key(object, tenant, key)?;
            keys_of(object)?.push(entry.clone());
            Ok(())
        })
        .await;
        if added.is_err() {
            let _ = secrets.delete(&secret_name, &DeleteParams::default()).await;
        }
        added
    }

    /// Creates Budget `name` with `spec`, or gives an existing one (not kept in Git) that spec.
    pub async fn put_budget(&self, person: &Person, name: &str, spec: &Value) -> Result<(), EditError> {
        check_name("budget", name)?;
        let budgets = self.objects::<Budget>(person)?;
        for attempt in 1..=ATTEMPTS {
            let written = match budgets.get_opt(name).await.map_err(refusal)? {
                None => {
                    let resource = ApiResource::erase::<Budget>(&());
                    let mut budget = DynamicObject::new(name, &resource)
                        .within(&self.namespace)
                        .data(json!({"spec": spec}));
                    budget.metadata.labels =
                        Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())]));
                    budget.metadata.annotations =
                        Some(BTreeMap::from([(CREATED_BY.into(), person.name().into())]));
                    budgets.create(&PostParams::default(), &budget).await
                }
                Some(mut budget) => {
                    writable(&budget)?;
                    budget.data["spec"] = spec.clone();
                    budgets.replace(name, &PostParams::default(), &budget).await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.is_conflict() && attempt < ATTEMPTS => continue,
                Err(error) => return Err(refusal(error)),
            }
        }
        Err(EditError::Conflict(format!("Budget {name} kept changing; try again")))
    }

    /// Deletes Budget `name`, unless it is kept in Git.
    pub async fn delete_budget(&self, person: &Person, name: &str) -> Result<(), EditError> {
        let budgets = self.objects::<Budget>(person)?;
        writable(&budgets.get(name).await.map_err(refusal)?)?;
        budgets.delete(name, &DeleteParams::default()).await.map_err(refusal)?;
        Ok(())
    }

    /// Sets (or with `None` removes) `spec.<field>` of `tenant`.
    pub async fn set_spec(
        &self,
        person: &Person,
        tenant: &str,
        field: &str,
        value: Option<Value>,
    ) -> Result<(), EditError> {
        update(&self.objects::<Tenant>(person)?, tenant, |object| {
            let spec = spec_of(object)?;
            match &value {
                Some(value) => spec.insert(field.to_owned(), value.clone()),
                None => spec.remove(field),
            };
            Ok(())
        })
        .await
    }

    /// Removes key `key` from `tenant`, then its Secret if the console created it.
    pub async fn revoke_key(&self, person: &Person, tenant: &str, key: &str) -> Result<(), EditError> {
        let tenants = self.objects::<Tenant>(person)?;
        let mut secret_name = None;
        update(&tenants, tenant, |object| {
            let keys = keys_of(object)?;
            let position = keys
                .iter()
                .position(|k| k["name"] == key)
                .ok_or_else(|| EditError::NotFound(format!("Tenant {tenant} has no key named {key}")))?;
            secret_name = keys.remove(position)["secretRef"]["name"].as_str().map(str::to_owned);
            Ok(())
        })
        .await?;
        let Some(secret_name) = secret_name else { return Ok(()) };
        let secrets = self.secrets(person)?;
        // Only a Secret the console made for this key: one written by hand may hold other keys.
        if secret_name == key_secret_name(tenant, key)
            && let Ok(secret) = secrets.get(&secret_name).await
            && secret.labels().get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
            && let Err(error) = secrets.delete(&secret_name, &DeleteParams::default()).await
        {
            tracing::warn!(%error, tenant, key, "the key is revoked, but its Secret is left");
        }
        Ok(())
    }
}

fn in_git(tool: &str) -> String {
    format!("Managed by {tool}: change it in Git; {tool} would undo a change made here.")
}

/// Refuses a Tenant kept in Git.
fn writable(object: &DynamicObject) -> Result<(), EditError> {
    match managed_in_git(&object.metadata) {
        Some(tool) => Err(EditError::Conflict(in_git(tool))),
        None => Ok(()),
    }
}

fn spec_of(object: &mut DynamicObject) -> Result<&mut serde_json::Map<String, Value>, EditError> {
    let spec = object
        .data
        .as_object_mut()
        .and_then(|data| data.entry("spec").or_insert_with(|| json!({})).as_object_mut());
    spec.ok_or_else(|| EditError::Invalid("the Tenant's spec is not an object".into()))
}

fn keys_of(object: &mut DynamicObject) -> Result<&mut Vec<Value>, EditError> {
    spec_of(object)?
        .entry("apiKeys")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| EditError::Invalid("the Tenant's spec.apiKeys is not a list".into()))
}

fn check_new_key(object: &DynamicObject, tenant: &str, key: &str) -> Result<(), EditError> {
    let keys = object.data.pointer("/spec/apiKeys").and_then(Value::as_array);
    let keys = keys.map_or(&[][..], Vec::as_slice);
    if keys.iter().any(|k| k["name"] == key) {
        return Err(EditError::Conflict(format!("Tenant {tenant} has a key named {key}")));
    }
    if keys.len() >= MAX_KEYS {
        return Err(EditError::Conflict(format!("Tenant {tenant} has {MAX_KEYS} keys, the most it may")));
    }
    Ok(())
}

/// The Tenant as a key Secret's owner, so that deleting the Tenant deletes its keys.
fn owner(tenant: &DynamicObject) -> OwnerReference {
    OwnerReference {
        api_version: Tenant::api_version(&()).into_owned(),
        kind: Tenant::kind(&()).into_owned(),
        name: tenant.name_any(),
        uid: tenant.uid().unwrap_or_default(),
        ..OwnerReference::default()
    }
}

/// Reads `name`, changes it with `change` and writes it back, guarded by its resourceVersion:
/// if someone else wrote it in between, it is read and changed again.
async fn update(
    tenants: &Api<DynamicObject>,
    name: &str,
    mut change: impl FnMut(&mut DynamicObject) -> Result<(), EditError>,
) -> Result<(), EditError> {
    for attempt in 1..=ATTEMPTS {
        let mut object = tenants.get(name).await.map_err(refusal)?;
        writable(&object)?;
        change(&mut object)?;
        match tenants.replace(name, &PostParams::default(), &object).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.is_conflict() && attempt < ATTEMPTS => continue,
            Err(error) => return Err(refusal(error)),
        }
    }
    Err(EditError::Conflict(format!("Tenant {name} kept changing; try again")))
}

/// The API server's answer as a refusal, in its own words.
fn refusal(error: kube::Error) -> EditError {
    match error {
        kube::Error::Api(status) => match status.code {
            403 => EditError::Forbidden(status.message),
            404 => EditError::NotFound(status.message),
            409 => EditError::Conflict(status.message),
            400 | 422 => EditError::Invalid(status.message),
            _ => EditError::Unavailable(format!("the API server answered: {}", status.message)),
        },
        error => EditError::Unavailable(format!("cannot reach the API server: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
        };
        ObjectMeta { labels: map(labels), annotations: map(annotations), ..ObjectMeta::default() }
    }

    #[test]
    fn objects_kept_in_git_are_recognised_by_their_marks() {
        let argo = meta(&[], &[("argocd.argoproj.io/tracking-id", "app:switchboard.dev/Tenant:sb/a")]);
        assert_eq!(managed_in_git(&argo), Some("Argo CD"));
        assert_eq!(managed_in_git(&meta(&[("app.kubernetes.io/instance", "app")], &[])), Some("Argo CD"));
        assert_eq!(managed_in_git(&meta(&[("kustomize.toolkit.fluxcd.io/name", "x")], &[])), Some("Flux"));
        let helm =
            meta(&[("app.kubernetes.io/instance", "r"), ("app.kubernetes.io/managed-by", "Helm")], &[]);
        assert_eq!(managed_in_git(&helm), Some("Helm"));
        assert_eq!(managed_in_git(&meta(&[(MANAGED_BY.0, MANAGED_BY.1)], &[])), None);
        assert_eq!(managed_in_git(&ObjectMeta::default()), None);
    }

    #[test]
    fn a_tenant_without_keys_gets_a_list_and_duplicates_are_refused() {
        let resource = ApiResource::erase::<Tenant>(&());
        let mut tenant = DynamicObject::new("a", &resource).data(json!({"spec": {}}));
        keys_of(&mut tenant).unwrap().push(json!({"name": "ci"}));
        assert!(matches!(check_new_key(&tenant, "a", "ci"), Err(EditError::Conflict(_))));
        assert!(check_new_key(&tenant, "a", "cd").is_ok());
    }
}
