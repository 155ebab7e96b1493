//! Changes the console makes to a standalone gateway's config folder: a Tenant of its own in
//! `console-tenant-<name>.yaml`, each API key it creates as a Secret in
//! `console-key.<tenant>.<key>.yaml` (mode 0600), each Budget in `console-budget-<name>.yaml`. Only tenants the console created are changed:
//! a tenant defined in another file is its author's, to change there. The hot reload applies
//! each change. Every write is atomic (a hidden temporary file renamed into place, which the
//! loader skips) and ordered so that every state the reload may see is whole: a key's Secret is
//! written before the Tenant that names it, and removed after the Tenant no longer does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use super::rules::{EditError, MAX_KEYS, check_display_name, check_name, key_secret_name, valid_name};

const HEADER: &str =
    "# Written by the Switchboard console (docs/console.md), which rewrites this file on each change.\n";

/// The config folder of a standalone gateway, as the console changes it. Changes are made one
/// at a time (each reads and rewrites a tenant's file), whoever asks.
#[derive(Clone, Debug)]
pub struct Folder {
    dir: PathBuf,
    one_at_a_time: Arc<Mutex<()>>,
}

impl Folder {
    pub fn new(dir: PathBuf) -> Folder {
        Folder { dir, one_at_a_time: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.one_at_a_time.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tenant_file(&self, tenant: &str) -> PathBuf {
        self.dir.join(format!("console-tenant-{tenant}.yaml"))
    }

    fn key_file(&self, tenant: &str, key: &str) -> PathBuf {
        self.dir.join(format!("{}.yaml", key_secret_name(tenant, key)))
    }

    fn budget_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("console-budget-{name}.yaml"))
    }

    /// Whether the console created `tenant` (and so may change it).
    pub fn manages(&self, tenant: &str) -> bool {
        valid_name(tenant) && self.tenant_file(tenant).is_file()
    }

    /// Writes a new Tenant; `exists` says whether the served config has one of that name.
    pub fn create_tenant(
        &self,
        name: &str,
        display_name: Option<&str>,
        exists: bool,
    ) -> Result<(), EditError> {
        check_name("tenant", name)?;
        check_display_name(display_name)?;
        let _one_at_a_time = self.lock();
        if exists || self.tenant_file(name).exists() {
            return Err(EditError::Conflict(format!("Tenant {name} exists")));
        }
        let mut spec = json!({"apiKeys": []});
        if let Some(display_name) = display_name {
            spec["displayName"] = json!(display_name);
        }
        let tenant = json!({
            "apiVersion": "switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name}, "spec": spec,
        });
        self.write(&self.tenant_file(name), &tenant, false)
    }

    /// Adds an API key `key` of value `value` to a tenant the console manages.
    pub fn add_key(&self, tenant: &str, key: &str, value: &str) -> Result<(), EditError> {
        check_name("key", key)?;
        let _one_at_a_time = self.lock();
        let mut document = self.managed_tenant(tenant)?;
        let keys = api_keys(&mut document)?;
        if keys.iter().any(|k| k["name"] == key) {
            return Err(EditError::Conflict(format!("Tenant {tenant} has a key named {key}")));
        }
        if keys.len() >= MAX_KEYS {
            return Err(EditError::Conflict(format!("Tenant {tenant} has {MAX_KEYS} keys, the most it may")));
        }
        let secret = key_secret_name(tenant, key);
        keys.push(json!({"name": key, "secretRef": {"name": secret, "key": "key"}}));
        let secret_document = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret}, "stringData": {"key": value},
        });
        self.write(&self.key_file(tenant, key), &secret_document, true)?;
        self.write(&self.tenant_file(tenant), &document, false)
    }

    /// Removes API key `key` from a tenant the console manages, then its Secret.
    pub fn revoke_key(&self, tenant: &str, key: &str) -> Result<(), EditError> {
        let _one_at_a_time = self.lock();
        let mut document = self.managed_tenant(tenant)?;
        let keys = api_keys(&mut document)?;
        let before = keys.len();
        keys.retain(|k| k["name"] != key);
        if keys.len() == before {
            return Err(EditError::NotFound(format!("Tenant {tenant} has no key named {key}")));
        }
        self.write(&self.tenant_file(tenant), &document, false)?;
        match std::fs::remove_file(self.key_file(tenant, key)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Sets (or with `None` removes) `spec.<field>` of a tenant the console manages.
    pub fn set_spec(&self, tenant: &str, field: &str, value: Option<Value>) -> Result<(), EditError> {
        let _one_at_a_time = self.lock();
        let mut document = self.managed_tenant(tenant)?;
        let spec = document
            .get_mut("spec")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| EditError::Invalid("the Tenant's file has no spec".into()))?;
        match value {
            Some(value) => spec.insert(field.to_owned(), value),
            None => spec.remove(field),
        };
        self.write(&self.tenant_file(tenant), &document, false)
    }

    /// Writes Budget `name` with `spec`: a new one, or one the console wrote; `served`: whether
    /// the served config has a Budget of that name.
    pub fn put_budget(&self, name: &str, spec: &Value, served: bool) -> Result<(), EditError> {
        check_name("budget", name)?;
        let _one_at_a_time = self.lock();
        self.console_budget(name, served, true)?;
        let budget = json!({
            "apiVersion": "switchboard.dev/v1alpha1", "kind": "Budget",
            "metadata": {"name": name}, "spec": spec,
        });
        self.write(&self.budget_file(name), &budget, false)
    }

    /// Removes Budget `name`, one the console wrote.
    pub fn delete_budget(&self, name: &str, served: bool) -> Result<(), EditError> {
        let _one_at_a_time = self.lock();
        self.console_budget(name, served, false)?;
        std::fs::remove_file(self.budget_file(name))?;
        Ok(())
    }

    /// Refuses a Budget defined in another file; one that is nowhere, unless it is to be made.
    fn console_budget(&self, name: &str, served: bool, new_is_fine: bool) -> Result<(), EditError> {
        let ours = valid_name(name) && self.budget_file(name).is_file();
        match (ours, served) {
            (true, _) => Ok(()),
            (false, true) => Err(EditError::Conflict(format!(
                "Budget {name} was not created by the console: change it where it is defined (the config folder's files)"
            ))),
            (false, false) if new_is_fine => Ok(()),
            (false, false) => Err(EditError::NotFound(format!("no Budget {name:?}"))),
        }
    }

    /// The Tenant document of a tenant the console manages.
    fn managed_tenant(&self, tenant: &str) -> Result<Value, EditError> {
        if !self.manages(tenant) {
            return Err(EditError::Conflict(format!(
                "Tenant {tenant} was not created by the console: change it where it is defined (the config folder's files)"
            )));
        }
        let text = std::fs::read_to_string(self.tenant_file(tenant))?;
        serde_yaml::from_str(&text).map_err(|e| EditError::Invalid(format!("Tenant {tenant}'s file: {e}")))
    }

    /// Writes `document` to `path` atomically: a hidden file beside it, renamed into place.
    fn write(&self, path: &Path, document: &Value, secret: bool) -> Result<(), EditError> {
        let yaml = serde_yaml::to_string(document).map_err(|e| EditError::Invalid(e.to_string()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("console.yaml");
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(HEADER.as_bytes())?;
        file.write_all(yaml.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }
}

fn api_keys(document: &mut Value) -> Result<&mut Vec<Value>, EditError> {
    document
        .pointer_mut("/spec/apiKeys")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| EditError::Invalid("the Tenant's file has no spec.apiKeys list".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_added_and_revoked_in_the_tenants_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::new(dir.path().to_owned());
        folder.create_tenant("payments", Some("Payments"), false).unwrap();
        assert!(matches!(folder.create_tenant("payments", None, false), Err(EditError::Conflict(_))));
        assert!(matches!(folder.create_tenant("demo", None, true), Err(EditError::Conflict(_))));
        folder.add_key("payments", "ci", "sk-sb-one").unwrap();
        assert!(matches!(folder.add_key("payments", "ci", "sk-sb-two"), Err(EditError::Conflict(_))));
        let secret = std::fs::read_to_string(dir.path().join("console-key.payments.ci.yaml")).unwrap();
        assert!(secret.contains("sk-sb-one"));
        let tenant = std::fs::read_to_string(dir.path().join("console-tenant-payments.yaml")).unwrap();
        assert!(tenant.contains("console-key.payments.ci") && !tenant.contains("sk-sb-one"));
        folder.set_spec("payments", "rateLimits", Some(json!({"requestsPerMinute": 60}))).unwrap();
        let tenant = std::fs::read_to_string(dir.path().join("console-tenant-payments.yaml")).unwrap();
        assert!(tenant.contains("requestsPerMinute: 60") && tenant.contains("console-key.payments.ci"));
        folder.set_spec("payments", "rateLimits", None).unwrap();
        let tenant = std::fs::read_to_string(dir.path().join("console-tenant-payments.yaml")).unwrap();
        assert!(!tenant.contains("rateLimits"));
        folder.revoke_key("payments", "ci").unwrap();
        assert!(!dir.path().join("console-key.payments.ci.yaml").exists());
        assert!(matches!(folder.revoke_key("payments", "ci"), Err(EditError::NotFound(_))));
        // A tenant from another file is not the console's to change.
        assert!(matches!(folder.add_key("demo", "ci", "v"), Err(EditError::Conflict(_))));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["console-tenant-payments.yaml"], "no temporary file left");
    }
}
