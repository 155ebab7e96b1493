//! Pure builders of the gateway's NetworkPolicies, from the rendered config. No client here.
//!
//! Three kinds: one ingress policy per Tenant with namespaces, a default-deny ingress policy for
//! the gateway pods (always, so that with no Tenant listing namespaces nothing reaches them), and
//! one egress policy: DNS, external providers' ports to any address but cloud metadata endpoints,
//! in-cluster backends by namespace. Every name and label is valid for any valid Tenant name, so
//! one Tenant can never make the whole set unappliable.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use switchboard_crds::GatewayConfig;
use switchboard_crds::config::TenantConfig;
use switchboard_crds::render::hash_key;

use crate::build::{GatewayTarget, labels};

/// Label naming the Tenant a NetworkPolicy belongs to (shortened for long names, see [`tenant_label`]).
pub const TENANT_LABEL: &str = "switchboard.dev/tenant";
/// Annotation with the Tenant's full name, which the label may not hold.
pub const TENANT_ANNOTATION: &str = "switchboard.dev/tenant-name";
/// The egress policy of the gateway pods.
pub const EGRESS_POLICY: &str = "switchboard-gateway-egress";
/// The default-deny ingress policy of the gateway pods.
pub const DENY_INGRESS_POLICY: &str = "switchboard-gateway-deny-ingress";
/// Namespace label every namespace carries (set by the API server), selected for in-cluster backends.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// IPv4 ranges egress never reaches on provider ports. 169.254.0.0/16 (link-local) holds every
/// cloud's instance metadata and credential endpoints (169.254.169.254 on AWS, GCP, Azure, OCI,
/// OpenStack, DigitalOcean; 169.254.170.2 ECS task credentials; 169.254.170.23 EKS Pod Identity);
/// 100.100.100.200 is Alibaba Cloud's metadata; 168.63.129.16 is Azure's WireServer. No LLM
/// provider lives there. DNS (port 53) stays open to any address, NodeLocal DNS included.
pub const DENIED_IPV4: &[&str] = &["100.100.100.200/32", "168.63.129.16/32", "169.254.0.0/16"];
/// IPv6 counterparts: AWS IMDS (fd00:ec2::254) and EKS Pod Identity (fd00:ec2::23), GCE metadata
/// (fd20:ce::254), and link-local fe80::/10.
pub const DENIED_IPV6: &[&str] = &["fd00:ec2::23/128", "fd00:ec2::254/128", "fd20:ce::254/128", "fe80::/10"];

const TENANT_PREFIX: &str = "switchboard-tenant-";
/// Object names are DNS subdomains of at most 253 characters; label values at most 63.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;
/// Hex digits of SHA-256 kept in shortened names and labels (64 bits).
const HASH_LEN: usize = 16;

/// Inputs of the egress policy besides the config and the gateway target.
#[derive(Clone, Debug)]
pub struct PolicySettings {
    /// The cluster's DNS domain: `svc.ns.svc.<domain>` base URLs are in-cluster backends.
    pub cluster_domain: String,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self { cluster_domain: "cluster.local".into() }
    }
}

/// Name of the ingress policy letting a tenant's namespaces reach the gateway: readable
/// `switchboard-tenant-<tenant>` when it fits in 253 characters, else
/// `switchboard-tenant--<prefix>-<hash>`. Tenant names start with an alphanumeric, so the double
/// hyphen never occurs in a readable name: the two forms cannot collide, and shortened names
/// differ by the hash of the full name.
pub fn tenant_policy_name(tenant: &str) -> String {
    if TENANT_PREFIX.len() + tenant.len() <= MAX_NAME {
        return format!("{TENANT_PREFIX}{tenant}");
    }
    let room = MAX_NAME - TENANT_PREFIX.len() - 2 - HASH_LEN;
    format!("{TENANT_PREFIX}-{}-{}", prefix(tenant, room), digest(tenant))
}

/// The [`TENANT_LABEL`] value: the name itself up to 63 characters (a DNS subdomain that short is a
/// valid label value), else `<prefix>_<hash>`. Object names never contain `_`, so a shortened
/// value never equals a readable one.
pub fn tenant_label(tenant: &str) -> String {
    if tenant.len() <= MAX_LABEL {
        return tenant.to_owned();
    }
    format!("{}_{}", prefix(tenant, MAX_LABEL - 1 - HASH_LEN), digest(tenant))
}

/// At most `max` bytes of `name`, ending with an alphanumeric (so `-`, `.` and `_` can follow).
fn prefix(name: &str, max: usize) -> &str {
    let mut end = max.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
}

fn digest(name: &str) -> String {
    hash_key(name.as_bytes())[..HASH_LEN].to_owned()
}

/// [`network_policies_with`] the default settings.
pub fn network_policies(
    config: &GatewayConfig,
    target: &GatewayTarget,
    owners: &BTreeMap<String, OwnerReference>,
) -> Vec<NetworkPolicy> {
    network_policies_with(config, target, owners, &PolicySettings::default())
}

/// One ingress policy per tenant with namespaces (owned by the Tenant, so deleting it removes the
/// policy), the default-deny ingress policy and the egress policy.
pub fn network_policies_with(
    config: &GatewayConfig,
    target: &GatewayTarget,
    owners: &BTreeMap<String, OwnerReference>,
    settings: &PolicySettings,
) -> Vec<NetworkPolicy> {
    let gateway_pods =
        LabelSelector { match_labels: Some(target.pod_labels.clone()), ..LabelSelector::default() };
    let mut policies: Vec<NetworkPolicy> = config
        .tenants
        .values()
        .filter(|tenant| !tenant.namespaces.is_empty())
        .map(|tenant| tenant_policy(tenant, target, &gateway_pods, owners.get(&tenant.name)))
        .collect();
    policies.push(deny_ingress_policy(target, gateway_pods.clone()));
    policies.push(egress_policy(config, target, gateway_pods, settings));
    policies
}

fn meta(name: String, target: &GatewayTarget) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(target.namespace.clone()),
        labels: Some(labels()),
        ..ObjectMeta::default()
    }
}

fn tenant_policy(
    tenant: &TenantConfig,
    target: &GatewayTarget,
    gateway_pods: &LabelSelector,
    owner: Option<&OwnerReference>,
) -> NetworkPolicy {
    let mut metadata = meta(tenant_policy_name(&tenant.name), target);
    metadata.labels.get_or_insert_default().insert(TENANT_LABEL.to_owned(), tenant_label(&tenant.name));
    metadata.annotations = Some(BTreeMap::from([(TENANT_ANNOTATION.to_owned(), tenant.name.clone())]));
    metadata.owner_references = owner.map(|o| vec![o.clone()]);
    let from_tenant = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.into(),
                operator: "In".into(),
                values: Some(tenant.namespaces.clone()),
            }]),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    NetworkPolicy {
        metadata,
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

/// Selects the gateway pods for Ingress with no rule: what no other policy allows is dropped.
fn deny_ingress_policy(target: &GatewayTarget, gateway_pods: LabelSelector) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(DENY_INGRESS_POLICY.into(), target),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(gateway_pods),
            policy_types: Some(vec!["Ingress".into()]),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn egress_policy(
    config: &GatewayConfig,
    target: &GatewayTarget,
    gateway_pods: LabelSelector,
    settings: &PolicySettings,
) -> NetworkPolicy {
    let dns =
        NetworkPolicyPort { port: Some(IntOrString::Int(53)), protocol: Some("UDP".into()), end_port: None };
    let mut rules = vec![NetworkPolicyEgressRule { ports: Some(vec![dns, tcp(53)]), to: None }];
    let backends = backend_destinations(config, &target.namespace, &settings.cluster_domain);
    if !backends.external.is_empty() {
        let anywhere_but = |cidr: &str, denied: &[&str]| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.into(),
                except: Some(denied.iter().map(|c| (*c).to_owned()).collect()),
            }),
            ..NetworkPolicyPeer::default()
        };
        rules.push(NetworkPolicyEgressRule {
            ports: Some(backends.external.into_iter().map(tcp).collect()),
            to: Some(vec![anywhere_but("0.0.0.0/0", DENIED_IPV4), anywhere_but("::/0", DENIED_IPV6)]),
        });
    }
    for (namespace, ports) in backends.in_cluster {
        let peer = NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace)])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        };
        rules.push(NetworkPolicyEgressRule {
            ports: Some(ports.into_iter().map(tcp).collect()),
            to: Some(vec![peer]),
        });
    }
    NetworkPolicy {
        metadata: meta(EGRESS_POLICY.into(), target),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(gateway_pods),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(rules),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port)), protocol: Some("TCP".into()), end_port: None }
}

/// Where the backends are: TCP ports on external hosts, and ports per namespace in the cluster.
#[derive(Debug, Default, PartialEq)]
struct Destinations {
    external: BTreeSet<i32>,
    in_cluster: BTreeMap<String, BTreeSet<i32>>,
}

fn backend_destinations(config: &GatewayConfig, own_namespace: &str, cluster_domain: &str) -> Destinations {
    let mut out = Destinations::default();
    let urls = config.routes.values().flat_map(|route| &route.backends).filter_map(|b| b.base_url.as_deref());
    for (host, port) in urls.filter_map(host_port) {
        let (namespace, external) = classify(&host, own_namespace, cluster_domain);
        if let Some(namespace) = namespace {
            out.in_cluster.entry(namespace).or_default().insert(port);
        }
        if external {
            out.external.insert(port);
        }
    }
    out
}

/// The namespace of an in-cluster host, and whether it may be outside the cluster. `svc` is a
/// Service in the gateway's namespace; `svc.ns.svc` and `svc.ns.svc.<cluster domain>` one in `ns`;
/// `svc.ns` is either (the pod's DNS search path tries it as a Service first, e.g. `vllm.models`,
/// then as a public name, e.g. `openrouter.ai`), so it gets both. IP literals and other names are
/// external. A namespace that is not a valid DNS label is not one: the host is external.
fn classify(host: &str, own_namespace: &str, cluster_domain: &str) -> (Option<String>, bool) {
    if host.parse::<IpAddr>().is_ok() || host == "localhost" {
        return (None, true);
    }
    let labels: Vec<&str> = host.split('.').collect();
    let namespace = |ns: &str| is_dns_label(ns).then(|| ns.to_owned());
    match labels.as_slice() {
        [_] => (namespace(own_namespace), false),
        [_, ns] => (namespace(ns), true),
        [_, ns, "svc", rest @ ..] if rest.is_empty() || rest.join(".") == cluster_domain => {
            match namespace(ns) {
                Some(ns) => (Some(ns), false),
                None => (None, true),
            }
        }
        _ => (None, true),
    }
}

fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=MAX_LABEL).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// The lowercased host and TCP port (default 443 for https, 80 for http) of a base URL; `None`
/// when it has no valid port, so that no policy ever carries an invalid one.
fn host_port(url: &str) -> Option<(String, i32)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(port) => port.parse().ok().filter(|p| (1..=65535).contains(p))?,
        None if scheme.eq_ignore_ascii_case("https") => 443,
        None => 80,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use crate::build::tests::{config, target};

    use super::*;

    fn names(policies: &[NetworkPolicy]) -> Vec<&str> {
        policies.iter().filter_map(|p| p.metadata.name.as_deref()).collect()
    }

    fn ports(rule: &NetworkPolicyEgressRule) -> Vec<(i32, &str)> {
        rule.ports
            .iter()
            .flatten()
            .map(|p| match (&p.port, &p.protocol) {
                (Some(IntOrString::Int(n)), Some(proto)) => (*n, proto.as_str()),
                _ => (0, ""),
            })
            .collect()
    }

    #[test]
    fn tenant_ingress_default_deny_and_egress() {
        let policies = network_policies(&config(), &target(), &BTreeMap::new());
        assert_eq!(
            names(&policies),
            ["switchboard-tenant-team", DENY_INGRESS_POLICY, EGRESS_POLICY],
            "one ingress policy per tenant with namespaces (not `headless`)"
        );
        let tenant = &policies[0];
        assert_eq!(tenant.metadata.labels.as_ref().unwrap()[TENANT_LABEL], "team");
        assert_eq!(tenant.metadata.annotations.as_ref().unwrap()[TENANT_ANNOTATION], "team");
        let ingress = tenant.spec.as_ref().unwrap().ingress.as_ref().unwrap();
        let from = ingress[0].from.as_ref().unwrap()[0].namespace_selector.as_ref().unwrap();
        assert_eq!(
            from.match_expressions.as_ref().unwrap()[0].values.as_deref(),
            Some(&["apps".to_owned(), "jobs".to_owned()][..])
        );

        let deny = policies[1].spec.as_ref().unwrap();
        assert_eq!(deny.policy_types.as_deref(), Some(&["Ingress".to_owned()][..]));
        assert_eq!(deny.ingress, None, "no rule: everything not allowed elsewhere is dropped");
        assert_eq!(deny.pod_selector.as_ref().unwrap().match_labels.as_ref(), Some(&target().pod_labels));

        let egress = policies[2].spec.as_ref().unwrap().egress.as_ref().unwrap();
        assert_eq!(egress.len(), 3, "{egress:?}");
        assert_eq!((ports(&egress[0]), &egress[0].to), (vec![(53, "UDP"), (53, "TCP")], &None));
        // https://api.openai.com on 443, and the ambiguous http://vllm.models:8000 (a Service in
        // `models`, or a public host `vllm.models`): anywhere but the metadata ranges.
        assert_eq!(ports(&egress[1]), [(443, "TCP"), (8000, "TCP")]);
        let blocks: Vec<_> = egress[1].to.iter().flatten().filter_map(|p| p.ip_block.as_ref()).collect();
        assert_eq!(blocks.iter().map(|b| b.cidr.as_str()).collect::<Vec<_>>(), ["0.0.0.0/0", "::/0"]);
        assert!(blocks[0].except.as_ref().unwrap().contains(&"169.254.0.0/16".to_owned()));
        assert!(blocks[1].except.as_ref().unwrap().contains(&"fd00:ec2::254/128".to_owned()));
        // ...and namespace `models` on 8000.
        assert_eq!(ports(&egress[2]), [(8000, "TCP")]);
        let peer = &egress[2].to.as_ref().unwrap()[0];
        assert_eq!(
            peer.namespace_selector.as_ref().unwrap().match_labels.as_ref().unwrap()[NAMESPACE_NAME_LABEL],
            "models"
        );
    }

    #[test]
    fn without_tenant_namespaces_the_gateway_still_denies_ingress() {
        let mut config = config();
        config.tenants.values_mut().for_each(|t| std::sync::Arc::make_mut(t).namespaces.clear());
        let policies = network_policies(&config, &target(), &BTreeMap::new());
        assert_eq!(names(&policies), [DENY_INGRESS_POLICY, EGRESS_POLICY]);
    }

    /// What the API server checks of object names (no per-label length limit).
    fn is_dns_subdomain(name: &str) -> bool {
        let part = |p: &str| {
            let b = p.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        };
        name.len() <= MAX_NAME && name.split('.').all(part)
    }

    fn is_label_value(value: &str) -> bool {
        let bytes = value.as_bytes();
        bytes.len() <= MAX_LABEL
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
            && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
            && bytes.last().is_none_or(u8::is_ascii_alphanumeric)
    }

    /// A valid DNS subdomain of `len` characters, with a dot at every `dot_every`th position.
    fn tenant_name(len: usize, dot_every: usize, seed: char) -> String {
        (0..len).map(|i| if i > 0 && i + 1 < len && (i + 1) % dot_every == 0 { '.' } else { seed }).collect()
    }

    #[test]
    fn names_and_labels_are_valid_for_any_tenant_name() {
        let cases = [
            tenant_name(63, 64, 'a'),
            tenant_name(64, 64, 'a'),
            tenant_name(234, 60, 'b'),
            tenant_name(235, 60, 'b'),
            tenant_name(253, 63, 'c'),
            tenant_name(253, 2, 'd'),
            "team.with.dots".to_owned(),
            // The prefix cut lands right after a dot or hyphen: trimmed so the result stays valid.
            format!("{}.{}", "e".repeat(215), "f".repeat(37)),
            format!("{}.x{}", "e".repeat(45), "f".repeat(200)),
            format!("{}-{}", "g".repeat(45), "h".repeat(200)),
        ];
        for tenant in &cases {
            assert!(is_dns_subdomain(tenant), "test case {tenant} is not a valid Tenant name");
            let name = tenant_policy_name(tenant);
            let label = tenant_label(tenant);
            assert!(is_dns_subdomain(&name), "{} characters: invalid name {name}", tenant.len());
            assert!(is_label_value(&label), "{} characters: invalid label {label}", tenant.len());
            assert_eq!((tenant_policy_name(tenant), tenant_label(tenant)), (name, label), "deterministic");
        }
    }

    #[test]
    fn short_names_stay_readable_and_long_ones_are_shortened() {
        let max = "a".repeat(63);
        assert_eq!(tenant_label(&max), max);
        let over = "a".repeat(64);
        let label = tenant_label(&over);
        assert_eq!(label.len(), 63);
        assert!(label.starts_with(&"a".repeat(46)) && label.contains('_'), "{label}");
        assert_eq!(tenant_policy_name("team.with.dots"), "switchboard-tenant-team.with.dots");
        assert_eq!(tenant_label("team.with.dots"), "team.with.dots");
        let fits = "b".repeat(MAX_NAME - TENANT_PREFIX.len());
        assert_eq!(tenant_policy_name(&fits), format!("{TENANT_PREFIX}{fits}"));
        let long = "b".repeat(MAX_NAME - TENANT_PREFIX.len() + 1);
        let name = tenant_policy_name(&long);
        assert_eq!(name.len(), MAX_NAME);
        assert!(name.starts_with("switchboard-tenant--bbb"), "{name}");
    }

    #[test]
    fn shortened_names_and_labels_do_not_collide() {
        // Same long prefix, different ends: the hash of the full name tells them apart.
        let a = format!("{}-a", "x".repeat(250));
        let b = format!("{}-b", "x".repeat(250));
        assert_ne!(tenant_policy_name(&a), tenant_policy_name(&b));
        assert_ne!(tenant_label(&a), tenant_label(&b));
        // The only Tenant name whose readable policy name or label would equal a shortened one is
        // not a valid object name (it starts with `-`, or holds `_`).
        let shortened = tenant_policy_name(&a);
        let lookalike = shortened.strip_prefix(TENANT_PREFIX).unwrap();
        assert!(!is_dns_subdomain(lookalike), "{lookalike}");
        assert!(!is_dns_subdomain(&tenant_label(&a)));
    }

    #[test]
    fn backends_are_classified_by_host() {
        let ns = |n: &str| Some(n.to_owned());
        let own = "sb";
        let domain = "cluster.local";
        assert_eq!(classify("vllm", own, domain), (ns("sb"), false));
        assert_eq!(classify("vllm.models", own, domain), (ns("models"), true));
        assert_eq!(classify("openrouter.ai", own, domain), (ns("ai"), true));
        assert_eq!(classify("vllm.models.svc", own, domain), (ns("models"), false));
        assert_eq!(classify("vllm.models.svc.cluster.local", own, domain), (ns("models"), false));
        assert_eq!(classify("vllm.models.svc.other.domain", own, domain), (None, true));
        assert_eq!(classify("vllm.models.svc.corp.example", own, "corp.example"), (ns("models"), false));
        assert_eq!(classify("api.openai.com", own, domain), (None, true));
        assert_eq!(classify("10.0.0.7", own, domain), (None, true));
        assert_eq!(classify("::1", own, domain), (None, true));
        assert_eq!(classify("localhost", own, domain), (None, true));
        assert_eq!(classify("a.under_score.svc", own, domain), (None, true), "not a namespace name");
    }

    #[test]
    fn hosts_and_ports() {
        let hp = |url: &str| host_port(url);
        let pair = |h: &str, p: i32| Some((h.to_owned(), p));
        assert_eq!(hp("https://api.anthropic.com/v1"), pair("api.anthropic.com", 443));
        assert_eq!(hp("http://127.0.0.1:18080/v1"), pair("127.0.0.1", 18080));
        assert_eq!(hp("http://user:pw@host:9000/v1"), pair("host", 9000));
        assert_eq!(hp("http://[::1]:8000/v1"), pair("::1", 8000));
        assert_eq!(hp("https://[::1]/v1"), pair("::1", 443));
        assert_eq!(hp("HTTP://VLLM.Models.:8000"), pair("vllm.models", 8000));
        assert_eq!(hp("http://host?x=1"), pair("host", 80));
        assert_eq!(hp("http://host:0/v1"), None, "port 0 would make the policy invalid");
        assert_eq!(hp("http://host:65536/v1"), None);
        assert_eq!(hp("http://host:https/v1"), None);
        assert_eq!(hp("http://:8000/v1"), None);
        assert_eq!(hp("not a url"), None);
    }
}
