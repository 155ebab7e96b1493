//! The last good policy of each Tenant and ProviderRoute. An edit that breaks a resource's Rego
//! must neither open its traffic (no policy) nor shut it (the resource set aside, its keys
//! refused): the policy that last compiled keeps applying, and the resource is reported not
//! Ready with the compiler's message until its policy compiles again.
//!
//! Remembered for the operator's life: after a restart, a policy that is still broken has no
//! last good version, and its resource is set aside like any other that does not render (fails
//! closed).

use std::collections::{BTreeMap, BTreeSet};

use switchboard_crds::policy;
use switchboard_crds::render::{RenderError, RenderErrorReason, Resources};
use switchboard_crds::resources::Policy;

use crate::isolate::ObjectKey;

/// The Rego that last compiled, by resource.
#[derive(Debug, Default)]
pub struct LastGoodPolicies(BTreeMap<ObjectKey, String>);

impl LastGoodPolicies {
    /// Puts the last good policy in place of each policy that does not compile (when there is
    /// one), remembers the policies that compile, and forgets resources that are gone. Returns
    /// the problem of each resource kept on its last good policy.
    pub fn keep(&mut self, resources: &mut Resources) -> Vec<RenderError> {
        let mut kept = Vec::new();
        let mut seen = BTreeSet::new();
        let tenants = resources.tenants.iter_mut().map(|t| (ObjectKey::of("Tenant", t), &mut t.spec.policy));
        let routes =
            resources.routes.iter_mut().map(|r| (ObjectKey::of("ProviderRoute", r), &mut r.spec.policy));
        for (key, policy) in tenants.chain(routes) {
            let Some(Policy { rego }) = policy else { continue };
            seen.insert(key.clone());
            if self.0.get(&key) == Some(rego) {
                continue;
            }
            match policy::compile(rego) {
                Ok(_) => {
                    self.0.insert(key, rego.clone());
                }
                Err(message) => {
                    let Some(good) = self.0.get(&key) else { continue };
                    rego.clone_from(good);
                    kept.push(RenderError {
                        kind: key.kind,
                        namespace: key.namespace,
                        name: key.name,
                        field: "spec.policy.rego".into(),
                        reason: RenderErrorReason::InvalidPolicy,
                        message: format!("{message} (the last good policy keeps applying)"),
                    });
                }
            }
        }
        self.0.retain(|key, _| seen.contains(key));
        kept
    }
}

#[cfg(test)]
mod tests {
    use switchboard_crds::manifest;
    use switchboard_crds::render::{SecretStore, render};

    use super::*;

    const GOOD: &str = "package switchboard\nmax_tokens := 64\n";
    const BROKEN: &str = "package switchboard\nmax_tokens := \n";

    fn resources(tenant_rego: &str, route_rego: &str) -> Resources {
        let text = format!(
            r#"
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: team, namespace: sb}}
spec: {{policy: {{rego: {tenant_rego:?}}}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: r, namespace: sb}}
spec: {{models: [{{name: m}}], backends: [{{name: b, provider: mock}}], policy: {{rego: {route_rego:?}}}}}
"#
        );
        let (mut resources, mut secrets) = (Resources::default(), SecretStore::default());
        manifest::load_yaml(&text, "t.yaml", &mut resources, &mut secrets).unwrap();
        resources
    }

    #[test]
    fn a_broken_policy_keeps_the_last_good_one_and_is_reported() {
        let mut last_good = LastGoodPolicies::default();
        let mut first = resources(GOOD, GOOD);
        assert!(last_good.keep(&mut first).is_empty());

        let mut broken = resources(BROKEN, GOOD);
        let kept = last_good.keep(&mut broken);
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].kind, kept[0].name.as_str()), ("Tenant", "team"));
        assert_eq!(kept[0].reason, RenderErrorReason::InvalidPolicy);
        assert!(kept[0].message.ends_with("(the last good policy keeps applying)"), "{}", kept[0].message);
        // What renders is the last good policy, so the tenant stays in the config.
        let config = render(&broken, &SecretStore::default()).unwrap();
        assert_eq!(config.tenants["team"].policy.as_deref(), Some(GOOD));

        // Fixed: the new policy is the good one from now on.
        let fixed = GOOD.replace("64", "32");
        assert!(last_good.keep(&mut resources(&fixed, GOOD)).is_empty());
        let mut broken = resources(BROKEN, GOOD);
        last_good.keep(&mut broken);
        assert_eq!(broken.tenants[0].spec.policy.as_ref().unwrap().rego, fixed);
    }

    #[test]
    fn a_policy_broken_from_the_start_has_nothing_to_keep() {
        let mut last_good = LastGoodPolicies::default();
        let mut broken = resources(GOOD, BROKEN);
        assert!(last_good.keep(&mut broken).is_empty());
        assert_eq!(broken.routes[0].spec.policy.as_ref().unwrap().rego, BROKEN, "left to fail the render");
        assert!(render(&broken, &SecretStore::default()).is_err());
        // A resource that is gone is forgotten.
        last_good.keep(&mut Resources::default());
        assert!(last_good.0.is_empty());
    }
}
