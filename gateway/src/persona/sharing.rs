//! Whose memories a persona may read: its own, and those of personas whose sharing policy lets it.
//!
//! Sharing is between personas of the same owning tenant, and only ever over the memories of the
//! conversation's tenant (every memory query is bound to it), so nothing crosses tenants.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_crds::config::PersonaConfig;
use switchboard_crds::resources::MemorySharingScope;

/// The personas whose memories `reader` may read, itself first.
pub fn readable_by<'a>(
    personas: &'a BTreeMap<String, Arc<PersonaConfig>>,
    reader: &'a PersonaConfig,
) -> Vec<&'a str> {
    let mut names = vec![reader.name.as_str()];
    names.extend(
        personas
            .values()
            .filter(|owner| owner.name != reader.name && shares_with(owner, reader))
            .map(|p| p.name.as_str()),
    );
    names
}

/// Whether `owner`'s sharing policy lets `reader` read its memories.
pub fn shares_with(owner: &PersonaConfig, reader: &PersonaConfig) -> bool {
    if owner.tenant != reader.tenant || !owner.memory.enabled {
        return false;
    }
    match owner.memory.sharing.scope {
        MemorySharingScope::Private => false,
        MemorySharingScope::Tenant => true,
        MemorySharingScope::Personas => owner.memory.sharing.personas.contains(&reader.name),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use switchboard_crds::resources::{MemoryPolicy, MemorySharing, RateLimits};

    use super::*;

    pub(crate) fn persona(
        name: &str,
        tenant: &str,
        scope: MemorySharingScope,
        listed: &[&str],
    ) -> PersonaConfig {
        PersonaConfig {
            name: name.into(),
            namespace: "default".into(),
            tenant: tenant.into(),
            display_name: None,
            system_prompt: format!("You are {name}."),
            traits: vec![],
            interests: vec![],
            model: "demo-echo".into(),
            memory: MemoryPolicy {
                sharing: MemorySharing { scope, personas: listed.iter().map(|p| (*p).to_owned()).collect() },
                ..MemoryPolicy::default()
            },
            shared_with_tenants: BTreeSet::new(),
            relationships: vec![],
            rate_limits: RateLimits::default(),
        }
    }

    fn all(list: Vec<PersonaConfig>) -> BTreeMap<String, Arc<PersonaConfig>> {
        list.into_iter().map(|p| (p.name.clone(), Arc::new(p))).collect()
    }

    #[test]
    fn private_tenant_and_listed_sharing_both_ways() {
        let personas = all(vec![
            persona("ada", "demo", MemorySharingScope::Private, &[]),
            persona("grace", "demo", MemorySharingScope::Tenant, &[]),
            persona("linus", "demo", MemorySharingScope::Personas, &["ada"]),
            persona("other", "acme", MemorySharingScope::Tenant, &[]),
        ]);
        let read = |name: &str| readable_by(&personas, &personas[name]);
        assert_eq!(read("ada"), ["ada", "grace", "linus"]);
        // ada is private: nobody else reads her memories; linus lists only ada.
        assert_eq!(read("grace"), ["grace"]);
        assert_eq!(read("linus"), ["linus", "grace"]);
        // Tenant-wide sharing never reaches another tenant's personas, either way.
        assert_eq!(read("other"), ["other"]);
    }

    #[test]
    fn disabled_memory_is_never_shared() {
        let mut grace = persona("grace", "demo", MemorySharingScope::Tenant, &[]);
        grace.memory.enabled = false;
        let ada = persona("ada", "demo", MemorySharingScope::Private, &[]);
        assert!(!shares_with(&grace, &ada));
    }
}
