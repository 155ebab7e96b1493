//! A signed-in person as the cluster's RBAC names them: their e-mail (or subject) after
//! `--kubernetes-user-prefix`, their groups after `--kubernetes-group-prefix`, as the API
//! server's own `--oidc-username-prefix` and `--oidc-groups-prefix` would. Used both to ask the
//! API server what they may do (SubjectAccessReview) and to act as them (impersonation).
//!
//! Nobody becomes a `system:` user or joins a `system:` group this way (with empty prefixes an
//! identity provider's `system:masters` group would otherwise be the cluster's): such a name is
//! refused, such a group dropped.

use std::time::Duration;

use super::store::Person;
use crate::error::ApiError;

const RESERVED: &str = "system:";
/// How long a client acting as one person is kept.
const CLIENT_FOR: Duration = Duration::from_secs(300);

/// How people and their groups are named to the API server.
#[derive(Clone, Debug, Default)]
pub struct KubeNaming {
    pub user_prefix: String,
    pub group_prefix: String,
}

/// A person as the API server knows them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KubeUser {
    pub user: String,
    pub groups: Vec<String>,
}

impl KubeNaming {
    pub fn user_of(&self, person: &Person) -> Result<KubeUser, ApiError> {
        let user = format!("{}{}", self.user_prefix, person.name());
        if user.starts_with(RESERVED) {
            return Err(ApiError::Forbidden(format!(
                "{user} would be a Kubernetes system user: set --kubernetes-user-prefix"
            )));
        }
        let groups = person
            .groups
            .iter()
            .map(|group| format!("{}{group}", self.group_prefix))
            .filter(|group| !group.starts_with(RESERVED))
            .collect();
        Ok(KubeUser { user, groups })
    }
}

/// Kubernetes API clients that act as signed-in people (`Impersonate-User`, `Impersonate-Group`)
/// on top of the gateway's own connection, so that the API server authorizes what they do, and
/// its audit log names them with the gateway as the impersonator.
#[derive(Clone)]
pub struct Impersonator {
    config: kube::Config,
    naming: KubeNaming,
    clients: moka::sync::Cache<KubeUser, kube::Client>,
}

impl Impersonator {
    pub fn new(config: kube::Config, naming: KubeNaming) -> Impersonator {
        let clients = moka::sync::Cache::builder().max_capacity(1_000).time_to_live(CLIENT_FOR).build();
        Impersonator { config, naming, clients }
    }

    pub fn naming(&self) -> &KubeNaming {
        &self.naming
    }

    /// A client that acts as `person`.
    pub fn client_as(&self, person: &Person) -> Result<kube::Client, ApiError> {
        let user = self.naming.user_of(person)?;
        if let Some(client) = self.clients.get(&user) {
            return Ok(client);
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.user.clone());
        config.auth_info.impersonate_groups = Some(user.groups.clone());
        let client = kube::Client::try_from(config)
            .map_err(|e| ApiError::NotReady(format!("cannot act as {}: {e}", user.user)))?;
        self.clients.insert(user, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, groups: &[&str]) -> Person {
        Person {
            subject: "sub".into(),
            email: Some(email.into()),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            issuer: "https://idp".into(),
        }
    }

    #[test]
    fn names_people_with_the_prefixes_and_never_as_the_system() {
        let naming = KubeNaming { user_prefix: "oidc:".into(), group_prefix: "oidc:".into() };
        let alice = naming.user_of(&person("alice@example.com", &["sre", "system:masters"])).unwrap();
        assert_eq!(alice.user, "oidc:alice@example.com");
        assert_eq!(alice.groups, ["oidc:sre", "oidc:system:masters"]);

        let bare = KubeNaming::default();
        let alice = bare.user_of(&person("alice@example.com", &["sre", "system:masters"])).unwrap();
        assert_eq!(alice.groups, ["sre"], "no system: group without a prefix");
        assert!(bare.user_of(&person("system:admin", &[])).is_err());
    }
}
