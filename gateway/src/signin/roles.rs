//! Who may read what in the admin API: the roles of a signed-in person, from a roles file that
//! maps people (by e-mail or subject) and their identity provider's groups to roles.
//!
//! - platform admins: everything;
//! - viewers: every read but the audit trail;
//! - tenant admins: their tenants' views only (`/admin/v1/tenants/<name>`, and the request log,
//!   statistics and costs with `tenant=<name>`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::members::{self, Access, listed};
use super::store::Person;

/// The roles file (`--roles-file`), YAML.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolesFile {
    #[serde(default)]
    platform_admins: People,
    #[serde(default)]
    viewers: People,
    /// By tenant name.
    #[serde(default)]
    tenant_admins: BTreeMap<String, People>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct People {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl People {
    fn include(&self, person: &Person) -> bool {
        self.users.iter().any(|user| user == person.name() || *user == person.subject)
            || self.groups.iter().any(|group| person.groups.contains(group))
    }
}

/// What one person may do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Roles {
    pub platform_admin: bool,
    pub viewer: bool,
    /// The tenants they administer.
    pub tenant_admin: BTreeSet<String>,
}

impl RolesFile {
    pub fn load(path: &Path) -> Result<RolesFile, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn roles_of(&self, person: &Person) -> Roles {
        Roles {
            platform_admin: self.platform_admins.include(person),
            viewer: self.viewers.include(person),
            tenant_admin: self
                .tenant_admins
                .iter()
                .filter(|(_, members)| members.include(person))
                .map(|(tenant, _)| tenant.clone())
                .collect(),
        }
    }

    /// Who may read or change `tenant`: platform admins and its tenant admins change it, viewers
    /// read it.
    pub fn members_of(&self, tenant: &str) -> members::Members {
        let admins = &self.platform_admins;
        let mut found = listed(Access::Change, &admins.users, &admins.groups, "platformAdmins");
        if let Some(own) = self.tenant_admins.get(tenant) {
            found.extend(listed(Access::Change, &own.users, &own.groups, &format!("tenantAdmins.{tenant}")));
        }
        found.extend(listed(Access::Read, &self.viewers.users, &self.viewers.groups, "viewers"));
        members::Members::new("the roles file", found, None)
    }
}

/// Whose data an admin request reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant's (lists, usage, config, routes).
    Global,
    /// One tenant's.
    Tenant(String),
    /// The audit trail.
    Platform,
}

/// The scope of `path` with its `query`.
pub fn scope(path: &str, query: Option<&str>) -> Scope {
    if path.starts_with("/admin/v1/audit") {
        return Scope::Platform;
    }
    // A tenant's detail, and what hangs under it (its members).
    if let Some(name) = path.strip_prefix("/admin/v1/tenants/").and_then(|rest| rest.split('/').next()) {
        return Scope::Tenant(name.to_owned());
    }
    let filters_by_tenant =
        ["/admin/v1/requests", "/admin/v1/stats", "/admin/v1/costs", "/admin/v1/budgets"].contains(&path);
    let tenant = query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(name, _)| name == "tenant")
        .map(|(_, value)| value.into_owned());
    match tenant {
        Some(tenant) if filters_by_tenant => Scope::Tenant(tenant),
        _ => Scope::Global,
    }
}

impl Roles {
    pub fn may(&self, scope: &Scope) -> bool {
        match scope {
            _ if self.platform_admin => true,
            Scope::Platform => false,
            Scope::Global => self.viewer,
            Scope::Tenant(tenant) => self.viewer || self.tenant_admin.contains(tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, groups: &[&str]) -> Person {
        Person {
            subject: format!("sub-{email}"),
            email: Some(email.into()),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            issuer: "https://idp".into(),
        }
    }

    #[test]
    fn roles_follow_users_and_groups() {
        let file: RolesFile = serde_yaml::from_str(
            "platformAdmins: {users: [ada@example.com]}\nviewers: {groups: [sre]}\ntenantAdmins:\n  demo: {groups: [demo-leads]}\n",
        )
        .unwrap_or_default();
        let ada = file.roles_of(&person("ada@example.com", &[]));
        assert!(ada.may(&Scope::Platform) && ada.may(&Scope::Global));
        let sre = file.roles_of(&person("sam@example.com", &["sre"]));
        assert!(
            sre.may(&Scope::Global) && sre.may(&Scope::Tenant("demo".into())) && !sre.may(&Scope::Platform)
        );
        let lead = file.roles_of(&person("bob@example.com", &["demo-leads"]));
        assert!(lead.may(&Scope::Tenant("demo".into())));
        assert!(!lead.may(&Scope::Tenant("other".into())) && !lead.may(&Scope::Global));
        let nobody = file.roles_of(&person("eve@example.com", &["demo"]));
        assert_eq!(nobody, Roles::default());
        assert!(serde_yaml::from_str::<RolesFile>("admins: {}").is_err(), "a misspelt key must not pass");
    }

    #[test]
    fn scopes_come_from_the_path_and_the_tenant_filter() {
        assert_eq!(scope("/admin/v1/tenants/demo", None), Scope::Tenant("demo".into()));
        assert_eq!(scope("/admin/v1/tenants", None), Scope::Global);
        assert_eq!(scope("/admin/v1/requests", Some("limit=5&tenant=demo")), Scope::Tenant("demo".into()));
        assert_eq!(scope("/admin/v1/requests", Some("limit=5")), Scope::Global);
        assert_eq!(scope("/admin/v1/usage", Some("tenant=demo")), Scope::Global);
        assert_eq!(scope("/admin/v1/audit", None), Scope::Platform);
    }
}
