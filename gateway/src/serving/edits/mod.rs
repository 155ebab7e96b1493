//! Changes to tenants and Budgets through the admin API (the console's forms), written where the
//! truth lives: standalone, manifests in the config folder ([`folder`]); in a cluster, Tenant,
//! Budget and Secret objects through the Kubernetes API as the signed-in person ([`cluster`]). Either way
//! the gateway serves a change only once its config source does (hot reload, or the operator).

pub mod cluster;
pub mod folder;
pub mod rules;

use std::time::Duration;

use self::cluster::ClusterEdits;
use self::folder::Folder;
use self::rules::EditError;
use crate::signin::store::Person;

/// Who makes a change.
#[derive(Clone, Copy)]
pub enum Author<'a> {
    AdminToken,
    Person(&'a Person),
}

pub enum Edits {
    Folder(Folder),
    Cluster(Box<ClusterEdits>),
}

impl Edits {
    /// How long a written change may take to be served: a folder reload, or the operator's
    /// reconcile and the ConfigMap watch.
    pub fn applied_within(&self) -> Duration {
        match self {
            Edits::Folder(_) => Duration::from_secs(10),
            Edits::Cluster(_) => Duration::from_secs(30),
        }
    }

    /// Why `tenant` is not to be changed here, whatever the author's role (`None`: it may be).
    pub async fn read_only(&self, by: Author<'_>, tenant: &str) -> Result<Option<String>, EditError> {
        match self {
            Edits::Folder(folder) if folder.manages(tenant) => Ok(None),
            Edits::Folder(_) => {
                Ok(Some("Defined in the config folder's files, not by the console: change it there.".into()))
            }
            Edits::Cluster(cluster) => match by {
                Author::Person(person) => cluster.read_only(person, tenant).await,
                Author::AdminToken => Ok(Some(AS_A_PERSON.into())),
            },
        }
    }

    /// Refuses a change to a tenant that does not exist: not `served`, nor written by the
    /// console and about to be. (In a cluster the API server says so as it takes the change.)
    pub fn check_known(&self, tenant: &str, served: bool) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) if !served && !folder.manages(tenant) => {
                Err(EditError::NotFound(format!("no tenant {tenant:?}")))
            }
            _ => Ok(()),
        }
    }

    /// Creates tenant `name`; `exists`: whether the served config has one of that name.
    pub async fn create_tenant(
        &self,
        by: Author<'_>,
        name: &str,
        display_name: Option<&str>,
        exists: bool,
    ) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) => folder.create_tenant(name, display_name, exists),
            Edits::Cluster(cluster) => cluster.create_tenant(person(by)?, name, display_name).await,
        }
    }

    pub async fn add_key(
        &self,
        by: Author<'_>,
        tenant: &str,
        key: &str,
        value: &str,
    ) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) => folder.add_key(tenant, key, value),
            Edits::Cluster(cluster) => cluster.add_key(person(by)?, tenant, key, value).await,
        }
    }

    /// Sets (or with `None` removes) `spec.<field>` of `tenant`: its limits, its default budget.
    pub async fn set_spec(
        &self,
        by: Author<'_>,
        tenant: &str,
        field: &str,
        value: Option<serde_json::Value>,
    ) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) => folder.set_spec(tenant, field, value),
            Edits::Cluster(cluster) => cluster.set_spec(person(by)?, tenant, field, value).await,
        }
    }

    /// Writes Budget `name` with `spec`; `served`: whether the served config has one of that name.
    pub async fn put_budget(
        &self,
        by: Author<'_>,
        name: &str,
        spec: &serde_json::Value,
        served: bool,
    ) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) => folder.put_budget(name, spec, served),
            Edits::Cluster(cluster) => cluster.put_budget(person(by)?, name, spec).await,
        }
    }

    pub async fn delete_budget(&self, by: Author<'_>, name: &str, served: bool) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) => folder.delete_budget(name, served),
            Edits::Cluster(cluster) => cluster.delete_budget(person(by)?, name).await,
        }
    }

    pub async fn revoke_key(&self, by: Author<'_>, tenant: &str, key: &str) -> Result<(), EditError> {
        match self {
            Edits::Folder(folder) => folder.revoke_key(tenant, key),
            Edits::Cluster(cluster) => cluster.revoke_key(person(by)?, tenant, key).await,
        }
    }
}

const AS_A_PERSON: &str = "In a cluster, changes are made as a signed-in person, so that Kubernetes RBAC \
     decides and the API server's audit log names them: sign in with your identity provider.";

fn person(by: Author<'_>) -> Result<&Person, EditError> {
    match by {
        Author::Person(person) => Ok(person),
        Author::AdminToken => Err(EditError::Forbidden(AS_A_PERSON.into())),
    }
}
