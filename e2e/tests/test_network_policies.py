"""The NetworkPolicies the operator publishes, as the API server accepts them: a Tenant with a
200-character dotted name gets a valid policy name and label (and everyone else stays Ready); the
egress policy opens provider ports to any address but the cloud metadata endpoints and in-cluster
backends by namespace; the gateway pods deny ingress by default, with no Tenant listing namespaces
too. The chart's complementary policy excludes the same metadata addresses.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from typing import Any

import pytest

from e2e_harness import (
    API_VERSION,
    CONVERGE_TIMEOUT,
    MANAGED_BY,
    SAMPLES,
    Kubectl,
    helm_template,
    is_ready,
    secret,
    summary,
    tenant,
    wait_until,
)

# Dotted like a DNS subdomain, 200 characters: the CRD accepts it; a label value could not hold it.
LONG_TENANT = ".".join(["a" * 60, "b" * 60, "c" * 60, "d" * 17])
assert len(LONG_TENANT) == 200
# The longest name there is: `switchboard-tenant-<name>` would not fit, so the policy name is shortened.
LONGEST_TENANT = ".".join(["e" * 63, "f" * 63, "g" * 63, "h" * 61])
assert len(LONGEST_TENANT) == 253
TENANT_LABEL = "switchboard.dev/tenant"
TENANT_ANNOTATION = "switchboard.dev/tenant-name"
EGRESS = "switchboard-gateway-egress"
DENY_INGRESS = "switchboard-gateway-deny-ingress"
GATEWAY_SELECTOR = {"app.kubernetes.io/name": "switchboard", "app.kubernetes.io/component": "gateway"}
# The operator's default --gateway-selector.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
METADATA = [ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")]

ROUTE = {
    "apiVersion": API_VERSION,
    "kind": "ProviderRoute",
    "metadata": {"name": "mixed"},
    "spec": {
        "models": [{"name": "mixed"}],
        "backends": [
            {"name": "public", "provider": "openai", "baseUrl": "https://api.example.com/v1"},
            {"name": "vllm", "provider": "openai", "baseUrl": "http://vllm.models.svc:8000/v1"},
            {"name": "llama", "provider": "openai", "baseUrl": "http://llama.models.svc.cluster.local:9000/v1"},
            {"name": "tgi", "provider": "openai", "baseUrl": "http://tgi.inference:8088/v1"},
        ],
    },
}


def policies(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in kubectl.items(namespace, "networkpolicies", MANAGED_BY)}


@pytest.fixture(scope="module")
def published(kubectl: Kubectl, namespace: str, start_operator) -> str:  # noqa: ANN001
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    kubectl.apply(
        namespace,
        secret("long-key", "sk-e2e-long-tenant-7f3a"),
        tenant(LONG_TENANT, "long-key", namespaces=["long-apps"], display="Long tenant"),
        secret("longest-key", "sk-e2e-longest-tenant-5d81"),
        tenant(LONGEST_TENANT, "longest-key", namespaces=["longest-apps"], display="Longest tenant"),
        secret("short-key", "sk-e2e-short-tenant-91c2"),
        tenant("short-team", "short-key", namespaces=["short-apps"]),
        ROUTE,
    )
    start_operator(namespace)
    wanted = [f"tenant/{LONG_TENANT}", f"tenant/{LONGEST_TENANT}", "tenant/short-team", "tenant/demo", "providerroute/mixed"]

    def ready() -> bool:
        return all(is_ready(kubectl.get(namespace, w)) for w in wanted)

    wait_until(
        ready,
        CONVERGE_TIMEOUT,
        "every Tenant Ready, the 200- and 253-character ones included",
        describe=lambda: summary(kubectl.get(namespace, "tenants,providerroutes")["items"]),
    )
    return namespace


@pytest.mark.parametrize(
    ("name", "namespaces"), [(LONG_TENANT, ["long-apps"]), (LONGEST_TENANT, ["longest-apps"])], ids=["200", "253"]
)
def test_long_tenant_name_gets_a_valid_policy(kubectl: Kubectl, published: str, name: str, namespaces: list[str]) -> None:
    namespace = published
    uid = kubectl.get(namespace, f"tenant/{name}")["metadata"]["uid"]
    by_tenant = {
        (p["metadata"].get("annotations") or {}).get(TENANT_ANNOTATION): p for p in policies(kubectl, namespace).values()
    }
    assert {name, "short-team", "demo"} <= set(by_tenant), sorted(map(str, by_tenant))
    policy = by_tenant[name]
    policy_name, label = policy["metadata"]["name"], policy["metadata"]["labels"][TENANT_LABEL]
    assert len(policy_name) <= 253 and DNS_SUBDOMAIN.match(policy_name), policy_name
    # Readable while `switchboard-tenant-<name>` fits, else shortened (prefix and hash).
    assert (policy_name == f"switchboard-tenant-{name}") == (len(name) <= 234), policy_name
    assert len(label) <= 63 and LABEL_VALUE.match(label), label
    assert [(o["kind"], o["uid"]) for o in policy["metadata"]["ownerReferences"]] == [("Tenant", uid)]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == namespaces
    # The label selects exactly this policy.
    selected = kubectl.items(namespace, "networkpolicies", f"{TENANT_LABEL}={label}")
    assert [p["metadata"]["name"] for p in selected] == [policy_name]


def test_short_tenant_names_stay_readable(kubectl: Kubectl, published: str) -> None:
    policy = kubectl.get(published, "networkpolicy/switchboard-tenant-short-team")
    assert policy["metadata"]["labels"][TENANT_LABEL] == "short-team"
    assert policy["metadata"]["annotations"][TENANT_ANNOTATION] == "short-team"


def egress_rules(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    policy = policies(kubectl, namespace)[EGRESS]
    assert policy["spec"]["policyTypes"] == ["Egress"], policy["spec"]
    assert policy["spec"]["podSelector"]["matchLabels"] == GATEWAY_SELECTOR
    return policy["spec"]["egress"]


def ports_of(rule: dict[str, Any]) -> set[tuple[int, str]]:
    return {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports") or []}


def excluded(block: dict[str, Any], address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])


def assert_metadata_denied(rules: list[dict[str, Any]], where: str) -> None:
    """Every rule opening more than DNS names its peers, and no ipBlock peer reaches a metadata address."""
    for rule in rules:
        if ports_of(rule) <= {(53, "UDP"), (53, "TCP")} and rule.get("ports"):
            continue
        assert rule.get("to"), f"{where}: a rule with no peers opens {sorted(ports_of(rule)) or 'every port'} to any host: {rule}"
        for peer in rule["to"]:
            block = peer.get("ipBlock")
            if not block:
                continue
            network = ipaddress.ip_network(block["cidr"])
            for address in METADATA:
                if address.version == network.version and address in network:
                    assert excluded(block, address), f"{where}: {block} reaches {address}"


def test_egress_excludes_cloud_metadata(kubectl: Kubectl, published: str) -> None:
    rules = egress_rules(kubectl, published)
    assert_metadata_denied(rules, EGRESS)
    blocks = [p["ipBlock"] for r in rules for p in r.get("to") or [] if "ipBlock" in p]
    cidrs = {b["cidr"] for b in blocks}
    assert cidrs == {"0.0.0.0/0", "::/0"}, blocks
    # 443 for api.example.com, 18080 for the sample's 127.0.0.1 backend, 8088 for the ambiguous
    # `tgi.inference` (a Service, or a public host if no namespace `inference` exists).
    (external,) = [r for r in rules if any("ipBlock" in p for p in r.get("to") or [])]
    assert ports_of(external) == {(443, "TCP"), (18080, "TCP"), (8088, "TCP")}, external
    # DNS is kept.
    assert any(ports_of(r) == {(53, "UDP"), (53, "TCP")} for r in rules), rules


def test_in_cluster_backends_by_namespace(kubectl: Kubectl, published: str) -> None:
    rules = egress_rules(kubectl, published)
    by_namespace: dict[str, set[tuple[int, str]]] = {}
    for rule in rules:
        for peer in rule.get("to") or []:
            selector = peer.get("namespaceSelector")
            if selector is not None:
                assert "podSelector" not in peer, peer
                (namespace,) = selector["matchLabels"].values()
                by_namespace[namespace] = ports_of(rule)
    assert by_namespace == {"models": {(8000, "TCP"), (9000, "TCP")}, "inference": {(8088, "TCP")}}, by_namespace


def deny_ingress(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    found = wait_until(
        lambda: policies(kubectl, namespace).get(DENY_INGRESS),
        CONVERGE_TIMEOUT,
        f"NetworkPolicy {DENY_INGRESS}",
        describe=lambda: str(sorted(policies(kubectl, namespace))),
    )
    spec = found["spec"]
    assert spec["podSelector"]["matchLabels"] == GATEWAY_SELECTOR, spec
    assert spec["policyTypes"] == ["Ingress"] and not spec.get("ingress"), spec
    return found


def test_gateway_denies_ingress_by_default(kubectl: Kubectl, published: str) -> None:
    deny_ingress(kubectl, published)


def test_default_deny_without_tenant_namespaces(kubectl: Kubectl, start_operator) -> None:  # noqa: ANN001
    """No Tenant lists namespaces: no tenant policy, but the gateway pods still deny ingress."""
    namespace = f"network-policies-empty-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl.apply(namespace, secret("solo-key", "sk-e2e-solo-0c4e"), tenant("solo", "solo-key"))
    start_operator(namespace, identity="operator-empty")
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/solo", timeout=90)
    deny_ingress(kubectl, namespace)
    ingress = [p for p in policies(kubectl, namespace).values() if "Ingress" in p["spec"]["policyTypes"]]
    assert [p["metadata"]["name"] for p in ingress] == [DENY_INGRESS]


def chart_policy(kubectl: Kubectl, helm: str, *values: str) -> dict[str, Any]:
    (policy,) = kubectl.to_json(helm_template(helm, "sb", "sb", ["templates/gateway/networkpolicy.yaml"], *values))
    return policy


def test_chart_policy_denies_metadata_too(kubectl: Kubectl, helm: str, published: str) -> None:
    """NetworkPolicies add up: the chart's own policy must not reopen what the operator's closes."""
    operator_blocks = {
        p["ipBlock"]["cidr"]: sorted(p["ipBlock"]["except"])
        for r in egress_rules(kubectl, published)
        for p in r.get("to") or []
        if "ipBlock" in p
    }
    postgres = ["--set", "gateway.database.type=postgres", "--set", "gateway.database.postgres.existingSecret=pg"]
    redis = ["--set", "gateway.redis.existingSecret=redis"]
    for values in ([], postgres + redis):
        policy = chart_policy(kubectl, helm, *values)
        rules = policy["spec"]["egress"]
        assert_metadata_denied(rules, f"chart {values or 'defaults'}")
        for rule in rules:
            for peer in rule.get("to") or []:
                if "ipBlock" in peer:
                    block = peer["ipBlock"]
                    assert sorted(block["except"]) == operator_blocks[block["cidr"]], block
        # The API server accepts it.
        policy["metadata"]["namespace"] = published
        kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(policy))
        ports = set().union(*(ports_of(r) for r in rules))
        assert (443, "TCP") in ports and (6443, "TCP") in ports, ports
        if values:
            assert {(5432, "TCP"), (6379, "TCP")} <= ports, ports
        else:
            assert not {(5432, "TCP"), (6379, "TCP")} & ports, ports
