//! Reading Kubernetes manifests (the files `kubectl apply -f` takes) into typed resources.
//!
//! Each Switchboard object is checked against its CRD's OpenAPI schema and CEL rules before it is
//! accepted, so a folder read by the standalone gateway is held to the same rules as the apiserver.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Secret;
use kube::core::{CustomResourceExt, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::render::{Resources, SecretStore};
use crate::resources::{Budget, Persona, ProviderRoute, Tenant};

/// Namespace given to objects whose manifest names none, as `kubectl apply` does in the default context.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A manifest that could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ManifestError {
    /// Where the object came from: `file.yaml#2 Tenant/demo`.
    pub origin: String,
    pub message: String,
}

/// Adds every object of a multi-document YAML text to `resources` and `secrets`.
/// Kinds other than Switchboard's and Secrets (a Namespace, say) are ignored.
pub fn load_yaml(
    text: &str,
    file: &str,
    resources: &mut Resources,
    secrets: &mut SecretStore,
) -> Result<(), Vec<ManifestError>> {
    let mut errors = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let here = format!("{file}#{}", index + 1);
        let value = match <Value as serde::Deserialize>::deserialize(document) {
            Ok(Value::Null) => continue,
            Ok(value) => value,
            Err(e) => {
                // The YAML stream cannot be resynchronised after a syntax error: stop here.
                let message = format!("invalid YAML: {e}");
                errors.push(ManifestError { origin: here, message });
                break;
            }
        };
        if let Err(error) = add_object(value, &here, resources, secrets) {
            errors.push(error);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn add_object(
    value: Value,
    here: &str,
    resources: &mut Resources,
    secrets: &mut SecretStore,
) -> Result<(), ManifestError> {
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let origin = format!("{here} {kind}/{name}");
    let fail = |message: String| ManifestError { origin: origin.clone(), message };
    if kind == "List" {
        for item in value.get("items").and_then(Value::as_array).cloned().unwrap_or_default() {
            add_object(item, here, resources, secrets)?;
        }
        return Ok(());
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err(fail("apiVersion and kind are required".into()));
    }
    let ours = api_version == format!("{}/{}", crate::GROUP, crate::VERSION);
    match (ours, kind.as_str()) {
        (true, "Tenant") => resources.tenants.push(checked(value).map_err(fail)?),
        (true, "Persona") => resources.personas.push(checked(value).map_err(fail)?),
        (true, "ProviderRoute") => resources.routes.push(checked(value).map_err(fail)?),
        (true, "Budget") => resources.budgets.push(checked(value).map_err(fail)?),
        (true, other) => return Err(fail(format!("unknown kind {other:?} in {api_version}"))),
        (false, "Secret") if api_version == "v1" => {
            let secret: Secret =
                serde_json::from_value(value).map_err(|e| fail(format!("invalid Secret: {e}")))?;
            secrets.insert_secret(&secret, DEFAULT_NAMESPACE);
        }
        (false, _) => {}
    }
    Ok(())
}

/// A kind's CRD schema, compiled once: its OpenAPI schema as a JSON Schema, and its CEL rules.
/// Compiling per object (what kube's `validate_cel` does) was most of the time to load 10,000
/// Tenants.
struct Schema {
    json: jsonschema::Validator,
    cel: kube::core::cel::CompiledSchema,
}

/// Each kind's compiled schema.
static SCHEMAS: LazyLock<BTreeMap<String, Result<Schema, String>>> = LazyLock::new(|| {
    [Tenant::crd(), Persona::crd(), ProviderRoute::crd(), Budget::crd()]
        .into_iter()
        .map(|crd| {
            let schema = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| e.to_string())
                .and_then(|schema| {
                    let schema = schema.ok_or("CRD without schema")?;
                    let json = jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft4)
                        .build(&schema)
                        .map_err(|e| e.to_string())?;
                    let cel = kube::core::cel::compile_schema(&schema);
                    if cel.has_errors() {
                        let errors: Vec<String> =
                            cel.compilation_errors().iter().map(|e| e.to_string()).collect();
                        return Err(errors.join("; "));
                    }
                    Ok(Schema { json, cel })
                });
            (crd.spec.names.kind, schema)
        })
        .collect()
});

/// Validates `value` against the kind's schema and CEL rules, then deserializes it.
fn checked<K>(mut value: Value) -> Result<K, String>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + serde::Serialize,
{
    let schema = match SCHEMAS.get(K::kind(&()).as_ref()) {
        Some(Ok(schema)) => schema,
        Some(Err(e)) => return Err(format!("internal error: CRD schema does not compile: {e}")),
        None => return Err("internal error: no schema for kind".into()),
    };
    if value.pointer("/metadata/namespace").is_none_or(Value::is_null)
        && let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.insert("namespace".into(), DEFAULT_NAMESPACE.into());
    }
    let problems: Vec<String> = schema
        .json
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", display_path(&e.instance_path().to_string())))
        .collect();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let object: K = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let name = object.meta().name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return Err("metadata.name is required".into());
    }
    if !is_dns_subdomain(name) {
        return Err(format!(
            "metadata.name {name:?} is not a valid name: lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most 253 characters (as Kubernetes requires)"
        ));
    }
    // The rules see the object as typed, serde's defaults applied, as kube's `validate_cel` does.
    let typed = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    kube::core::cel::validate_compiled(&schema.cel, &typed, None).map_err(|errors| errors.to_string())?;
    Ok(object)
}

/// A DNS-1123 subdomain, what the API server requires of these objects' names: a folder accepts
/// no name that a cluster would refuse (and names stay free of the separators the config uses).
fn is_dns_subdomain(name: &str) -> bool {
    let alphanumeric = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = name.as_bytes();
    name.len() <= 253
        && bytes.first().is_some_and(|c| alphanumeric(*c))
        && bytes.last().is_some_and(|c| alphanumeric(*c))
        && bytes.iter().all(|c| alphanumeric(*c) || *c == b'-' || *c == b'.')
}

/// `/spec/apiKeys/0/name` -> `spec.apiKeys[0].name`, as kubectl prints field paths.
fn display_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
    }
    if path.is_empty() { "<object>".into() } else { path }
}
