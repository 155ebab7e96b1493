//! Pure builders of the gateway's NetworkPolicies, from the rendered config. No client here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use switchboard_crds::GatewayConfig;
use switchboard_crds::config::TenantConfig;

use crate::build::{GatewayTarget, labels};

/// Label naming the Tenant a NetworkPolicy belongs to.
pub const TENANT_LABEL: &str = "switchboard.dev/tenant";

/// Name of the ingress policy letting a tenant's namespaces reach the gateway.
pub fn tenant_policy_name(tenant: &str) -> String {
    format!("switchboard-tenant-{tenant}")
}

/// One ingress policy per tenant with namespaces (owned by the Tenant, so deleting it removes the
/// policy), and one egress policy letting the gateway reach only DNS and its providers' ports.
pub fn network_policies(
    config: &GatewayConfig,
    target: &GatewayTarget,
    owners: &BTreeMap<String, OwnerReference>,
) -> Vec<NetworkPolicy> {
    let gateway_pods =
        LabelSelector { match_labels: Some(target.pod_labels.clone()), ..LabelSelector::default() };
    let mut policies: Vec<NetworkPolicy> = config
        .tenants
        .values()
        .filter(|tenant| !tenant.namespaces.is_empty())
        .map(|tenant| tenant_policy(tenant, target, &gateway_pods, owners.get(&tenant.name)))
        .collect();
    policies.push(egress_policy(config, target, gateway_pods));
    policies
}

fn tenant_policy(
    tenant: &TenantConfig,
    target: &GatewayTarget,
    gateway_pods: &LabelSelector,
    owner: Option<&OwnerReference>,
) -> NetworkPolicy {
    let mut labels = labels();
    labels.insert(TENANT_LABEL.to_owned(), tenant.name.clone());
    let from_tenant = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".into(),
                operator: "In".into(),
                values: Some(tenant.namespaces.clone()),
            }]),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(tenant_policy_name(&tenant.name)),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(gateway_pods.clone()),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![from_tenant]),
                ports: Some(vec![tcp(target.port)]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn egress_policy(
    config: &GatewayConfig,
    target: &GatewayTarget,
    gateway_pods: LabelSelector,
) -> NetworkPolicy {
    let mut ports: Vec<NetworkPolicyPort> = provider_ports(config).into_iter().map(tcp).collect();
    ports.push(NetworkPolicyPort {
        port: Some(IntOrString::Int(53)),
        protocol: Some("UDP".into()),
        end_port: None,
    });
    ports.push(tcp(53));
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some("switchboard-gateway-egress".into()),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(gateway_pods),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![NetworkPolicyEgressRule { ports: Some(ports), to: None }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port)), protocol: Some("TCP".into()), end_port: None }
}

/// The TCP ports of every backend base URL (default 443 for https, 80 for http).
fn provider_ports(config: &GatewayConfig) -> BTreeSet<i32> {
    config
        .routes
        .values()
        .flat_map(|route| &route.backends)
        .filter_map(|backend| backend.base_url.as_deref())
        .filter_map(url_port)
        .collect()
}

fn url_port(url: &str) -> Option<i32> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let port = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:").map(|(_, port)| port),
        None => authority.rsplit_once(':').map(|(_, port)| port),
    };
    match port {
        Some(port) => port.parse().ok(),
        None => Some(if scheme == "https" { 443 } else { 80 }),
    }
}

#[cfg(test)]
mod tests {
    use crate::build::tests::{config, target};

    use super::*;

    #[test]
    fn one_ingress_policy_per_tenant_with_namespaces_and_one_egress_policy() {
        let policies = network_policies(&config(), &target(), &BTreeMap::new());
        let names: Vec<&str> = policies.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
        assert_eq!(names, ["switchboard-tenant-team", "switchboard-gateway-egress"]);
        let ingress = policies[0].spec.as_ref().unwrap().ingress.as_ref().unwrap();
        let from = ingress[0].from.as_ref().unwrap()[0].namespace_selector.as_ref().unwrap();
        assert_eq!(
            from.match_expressions.as_ref().unwrap()[0].values.as_deref(),
            Some(&["apps".to_owned(), "jobs".to_owned()][..])
        );
        let egress = policies[1].spec.as_ref().unwrap().egress.as_ref().unwrap();
        let ports: Vec<(i32, &str)> = egress[0]
            .ports
            .iter()
            .flatten()
            .map(|p| match (&p.port, &p.protocol) {
                (Some(IntOrString::Int(n)), Some(proto)) => (*n, proto.as_str()),
                _ => (0, ""),
            })
            .collect();
        assert_eq!(ports, [(443, "TCP"), (8000, "TCP"), (53, "UDP"), (53, "TCP")]);
    }

    #[test]
    fn url_ports() {
        assert_eq!(url_port("https://api.anthropic.com/v1"), Some(443));
        assert_eq!(url_port("http://127.0.0.1:18080/v1"), Some(18080));
        assert_eq!(url_port("http://user:pw@host:9000/v1"), Some(9000));
        assert_eq!(url_port("http://[::1]:8000/v1"), Some(8000));
        assert_eq!(url_port("https://[::1]/v1"), Some(443));
        assert_eq!(url_port("not a url"), None);
    }
}
