//! The conditions the operator writes on each resource's status (Ready, Accepted, ResolvedRefs,
//! ...), read from the API server for the admin API, so that the console shows what `kubectl
//! describe` would. Only in a cluster: standalone there is no operator, and the config folder is
//! served whole or not at all (the config's `in_sync` and `last_error` say which).

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

/// Objects of a kind read at most, for one answer: far more ProviderRoutes and Personas than a
/// platform has.
const MAX_OBJECTS: u32 = 1_000;

/// Reads resources' conditions with the gateway's own (read-only) access.
pub struct Conditions {
    client: kube::Client,
    namespace: String,
}

impl Conditions {
    pub fn new(client: kube::Client, namespace: String) -> Conditions {
        Conditions { client, namespace }
    }

    fn api<K: Resource<DynamicType = ()>>(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &ApiResource::erase::<K>(&()))
    }

    /// Every object of kind `K` by name, with its conditions.
    pub async fn of_kind<K: Resource<DynamicType = ()>>(
        &self,
    ) -> Result<BTreeMap<String, Value>, kube::Error> {
        let objects = self.api::<K>().list(&ListParams::default().limit(MAX_OBJECTS)).await?;
        Ok(objects.items.iter().map(|object| (object.name_any(), conditions(object))).collect())
    }

    /// The conditions of `name` (`None`: no such object).
    pub async fn of<K: Resource<DynamicType = ()>>(&self, name: &str) -> Result<Option<Value>, kube::Error> {
        Ok(self.api::<K>().get_opt(name).await?.as_ref().map(conditions))
    }
}

/// The conditions of every object of a kind, as a list in the admin API shows them.
pub struct Listed {
    /// `None` standalone, where there are none.
    by_name: Option<BTreeMap<String, Value>>,
    /// Why they could not be read from the API server.
    pub error: Option<String>,
}

impl Listed {
    pub async fn read<K: Resource<DynamicType = ()>>(conditions: Option<&Conditions>) -> Listed {
        let Some(conditions) = conditions else { return Listed { by_name: None, error: None } };
        match conditions.of_kind::<K>().await {
            Ok(by_name) => Listed { by_name: Some(by_name), error: None },
            Err(error) => {
                tracing::warn!(%error, kind = K::kind(&()).as_ref(), "cannot read resources' conditions");
                Listed { by_name: Some(BTreeMap::new()), error: Some(format!("the API server: {error}")) }
            }
        }
    }

    /// One object's conditions (`null` standalone, `[]` if there is no such object), and why
    /// they could not be read.
    pub async fn one<K: Resource<DynamicType = ()>>(
        conditions: Option<&Conditions>,
        name: &str,
    ) -> (Value, Option<String>) {
        let Some(conditions) = conditions else { return (Value::Null, None) };
        match conditions.of::<K>(name).await {
            Ok(found) => (found.unwrap_or_else(|| json!([])), None),
            Err(error) => {
                tracing::warn!(%error, kind = K::kind(&()).as_ref(), name, "cannot read a resource's conditions");
                (json!([]), Some(format!("the API server: {error}")))
            }
        }
    }

    /// `name`'s conditions: `null` standalone, `[]` for an object the API server does not show.
    pub fn of(&self, name: &str) -> Value {
        self.by_name.as_ref().map_or(Value::Null, |by_name| by_name.get(name).cloned().unwrap_or(json!([])))
    }
}

/// An object's conditions as the admin API shows them, and whether they are about its current
/// spec (`stale`: the operator has not seen its latest change yet).
fn conditions(object: &DynamicObject) -> Value {
    let generation = object.metadata.generation;
    let list = object.data.pointer("/status/conditions").and_then(Value::as_array);
    let shown: Vec<Value> = list
        .into_iter()
        .flatten()
        .map(|c| {
            let observed = c.get("observedGeneration").and_then(Value::as_i64);
            json!({
                "type": c.get("type"), "status": c.get("status"), "reason": c.get("reason"),
                "message": c.get("message"), "last_transition_time": c.get("lastTransitionTime"),
                "stale": observed.zip(generation).is_some_and(|(seen, now)| seen < now),
            })
        })
        .collect();
    Value::Array(shown)
}

#[cfg(test)]
mod tests {
    use switchboard_crds::Tenant;

    use super::*;

    #[test]
    fn conditions_are_shown_with_whether_they_are_about_the_current_spec() {
        let mut object = DynamicObject::new("a", &ApiResource::erase::<Tenant>(&())).data(json!({"status": {
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
             "lastTransitionTime": "2026-12-07T00:00:00Z", "observedGeneration": 1},
            {"type": "Accepted", "status": "True", "observedGeneration": 2},
        ]}}));
        object.metadata.generation = Some(2);
        let shown = conditions(&object);
        assert_eq!(shown[0]["stale"], true);
        assert_eq!(shown[0]["last_transition_time"], "2026-12-07T00:00:00Z");
        assert_eq!(shown[1]["stale"], false);
        let bare = DynamicObject::new("b", &ApiResource::erase::<Tenant>(&()));
        assert_eq!(conditions(&bare), json!([]));
    }
}
