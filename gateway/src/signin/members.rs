//! Who has access to a tenant, for its page in the console: the people and groups that may read
//! its views or change it, and through what. From the roles file, or in a cluster from RBAC: the
//! RoleBindings in the gateway's namespace and the ClusterRoleBindings whose rules cover
//! `tenants.switchboard.dev` (that one by name, or all), read as the signed-in person, so that
//! only someone allowed to read RBAC sees it.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;

/// Members listed at most.
const MAX_MEMBERS: usize = 500;
const GROUP: &str = "switchboard.dev";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Change,
    Read,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Member {
    pub access: Access,
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    pub name: String,
    /// Where the access comes from: a role in the roles file, a binding and its role.
    pub through: String,
}

/// The members, where they come from, and what could not be read.
#[derive(Debug, Default, Serialize)]
pub struct Members {
    pub source: &'static str,
    pub members: Vec<Member>,
    pub note: Option<String>,
}

impl Members {
    pub fn new(source: &'static str, mut members: Vec<Member>, note: Option<String>) -> Members {
        members.sort();
        members.dedup();
        let note = match members.len() > MAX_MEMBERS {
            true => Some(format!("the first {MAX_MEMBERS} of {}", members.len())),
            false => note,
        };
        members.truncate(MAX_MEMBERS);
        Members { source, members, note }
    }
}

/// What `rules` let their subjects do with `tenant`.
fn access(rules: &[PolicyRule], tenant: &str) -> Option<Access> {
    let has = |list: &Option<Vec<String>>, wanted: &str| {
        list.as_ref().is_some_and(|items| items.iter().any(|item| item == wanted || item == "*"))
    };
    rules
        .iter()
        .filter(|rule| {
            rule.api_groups.as_ref().is_some_and(|groups| groups.iter().any(|g| g == GROUP || g == "*"))
                && rule.resources.as_ref().is_some_and(|r| r.iter().any(|r| r == "tenants" || r == "*"))
                && rule
                    .resource_names
                    .as_ref()
                    .is_none_or(|names| names.is_empty() || names.iter().any(|n| n == tenant))
        })
        .filter_map(|rule| {
            let verbs = Some(rule.verbs.clone());
            if has(&verbs, "update") || has(&verbs, "patch") {
                Some(Access::Change)
            } else if has(&verbs, "get") || has(&verbs, "list") {
                Some(Access::Read)
            } else {
                None
            }
        })
        .min()
}

fn members_of(subjects: Option<&Vec<Subject>>, access: Access, through: &str) -> Vec<Member> {
    subjects
        .into_iter()
        .flatten()
        .map(|subject| Member {
            access,
            kind: subject.kind.clone(),
            name: match &subject.namespace {
                Some(namespace) if subject.kind == "ServiceAccount" => {
                    format!("{namespace}/{}", subject.name)
                }
                _ => subject.name.clone(),
            },
            through: through.to_owned(),
        })
        .collect()
}

/// The members RBAC gives `tenant`, read with `client` (acting as the signed-in person).
pub async fn from_rbac(client: kube::Client, namespace: &str, tenant: &str) -> Members {
    const SOURCE: &str = "the cluster's RBAC";
    let list = ListParams::default();
    let read = async {
        let roles = Api::<Role>::namespaced(client.clone(), namespace).list(&list).await?;
        let cluster_roles = Api::<ClusterRole>::all(client.clone()).list(&list).await?;
        let bindings = Api::<RoleBinding>::namespaced(client.clone(), namespace).list(&list).await?;
        let cluster_bindings = Api::<ClusterRoleBinding>::all(client).list(&list).await?;
        Ok::<_, kube::Error>((roles, cluster_roles, bindings, cluster_bindings))
    };
    let (roles, cluster_roles, bindings, cluster_bindings) = match read.await {
        Ok(lists) => lists,
        Err(error) => {
            return Members::new(
                SOURCE,
                Vec::new(),
                Some(format!("Who has access cannot be read as you: {error}")),
            );
        }
    };
    let rules = |kind: &str, name: &str| -> Vec<PolicyRule> {
        let found = match kind {
            "Role" => roles
                .items
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
                .and_then(|r| r.rules.clone()),
            _ => cluster_roles
                .items
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
                .and_then(|r| r.rules.clone()),
        };
        found.unwrap_or_default()
    };
    let mut members = Vec::new();
    let bound =
        bindings.items.iter().map(|b| ("RoleBinding", &b.metadata.name, &b.role_ref, b.subjects.as_ref()));
    let cluster_bound = cluster_bindings
        .items
        .iter()
        .map(|b| ("ClusterRoleBinding", &b.metadata.name, &b.role_ref, b.subjects.as_ref()));
    for (kind, name, role, subjects) in bound.chain(cluster_bound) {
        if let Some(access) = access(&rules(&role.kind, &role.name), tenant) {
            let through = format!("{kind} {} ({} {})", name.as_deref().unwrap_or(""), role.kind, role.name);
            members.extend(members_of(subjects, access, &through));
        }
    }
    Members::new(SOURCE, members, None)
}

/// The members of a roles file's roles, as [`super::roles::RolesFile::members_of`] lists them.
pub fn listed(access: Access, users: &[String], groups: &[String], through: &str) -> Vec<Member> {
    let member = |kind: &str, name: &String| Member {
        access,
        kind: kind.to_owned(),
        name: name.clone(),
        through: through.to_owned(),
    };
    users.iter().map(|u| member("User", u)).chain(groups.iter().map(|g| member("Group", g))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(strings(&[GROUP])),
            resources: Some(strings(resources)),
            resource_names: (!names.is_empty()).then(|| strings(names)),
            verbs: strings(verbs),
            ..PolicyRule::default()
        }
    }

    #[test]
    fn rules_give_read_or_change_of_a_tenant_by_name_or_for_all() {
        assert_eq!(
            access(&[rule(&["tenants"], &["payments"], &["get", "update"])], "payments"),
            Some(Access::Change)
        );
        assert_eq!(access(&[rule(&["tenants"], &["payments"], &["get"])], "payments"), Some(Access::Read));
        assert_eq!(access(&[rule(&["tenants"], &["payments"], &["get"])], "other"), None);
        assert_eq!(access(&[rule(&["tenants"], &[], &["list"])], "any"), Some(Access::Read));
        assert_eq!(access(&[rule(&["*"], &[], &["*"])], "any"), Some(Access::Change));
        assert_eq!(access(&[rule(&["budgets"], &[], &["*"])], "any"), None);
        let both = [rule(&["tenants"], &[], &["get"]), rule(&["tenants"], &["a"], &["patch"])];
        assert_eq!(access(&both, "a"), Some(Access::Change), "the most a rule gives");
    }
}
