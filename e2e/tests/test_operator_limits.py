"""The operator past one ConfigMap and under a refused write: a config larger than 1 MiB is published
in shards and every Tenant becomes Ready; a NetworkPolicy the API server refuses fails its own Tenant
(a condition and a Warning Event) while the others become Ready and a deleted Tenant's access is
still revoked; a change cuts the retry backoff short once the cause is gone."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from e2e_harness import (
    API_VERSION,
    CONFIGMAP,
    CONVERGE_TIMEOUT,
    FINALIZER,
    SAMPLES,
    Gateway,
    Kubectl,
    Operator,
    condition,
    is_ready,
    published_config,
    report_timing,
    summary,
    wait_until,
)

# Each big Tenant carries the schema's maximum of keys and namespaces: about 6.5 KB of config, so
# BIG_TENANTS of them are well past the 1 MiB a single ConfigMap can hold.
BIG_TENANTS = 200
KEYS = 16
NAMESPACES = 64
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def running(kubectl: Kubectl, namespace: str, start_operator, start_gateway) -> tuple[Operator, Gateway]:  # noqa: ANN001
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    operator = start_operator(namespace)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/demo", timeout=90)
    return operator, start_gateway(namespace)


def partial_reconciles(operator: Operator) -> int:
    match = re.search(r'^switchboard_operator_reconciles_total\{result="partial"\} (\d+)', operator.metrics(), re.M)
    return int(match.group(1)) if match else 0


def big_tenant(index: int) -> list[dict[str, Any]]:
    name = f"big-{index}"
    keys = {f"k{k}": f"sk-e2e-{name}-{k:02d}" for k in range(KEYS)}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-keys"}, "stringData": keys}
    namespaces = [f"{name}-team-namespace-with-a-long-name-{n:02d}".ljust(63, "x")[:63] for n in range(NAMESPACES)]
    spec = {
        "apiKeys": [{"name": k, "secretRef": {"name": f"{name}-keys", "key": k}} for k in keys],
        "namespaces": namespaces,
    }
    return [secret, {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}]


def keyed_tenant(name: str, namespaces: list[str]) -> list[dict[str, Any]]:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-keys"}, "stringData": {"k": f"sk-e2e-{name}"}}
    spec = {"apiKeys": [{"name": "k", "secretRef": {"name": f"{name}-keys", "key": "k"}}], "namespaces": namespaces}
    return [secret, {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}]


def all_ready(kubectl: Kubectl, namespace: str) -> bool:
    tenants = kubectl.items(namespace, "tenants")
    not_ready = [t for t in tenants if not is_ready(t)]
    assert len(tenants) > BIG_TENANTS
    return not not_ready


def test_a_config_past_one_configmap_is_sharded_and_every_tenant_is_ready(
    kubectl: Kubectl, namespace: str, running: tuple[Operator, Gateway]
) -> None:
    _, gateway = running
    objects = [o for i in range(BIG_TENANTS) for o in big_tenant(i)]
    for start in range(0, len(objects), 100):
        kubectl.apply(namespace, *objects[start : start + 100])
    wait_until(
        lambda: all_ready(kubectl, namespace),
        2 * CONVERGE_TIMEOUT,
        "every Tenant Ready",
        describe=lambda: summary([t for t in kubectl.items(namespace, "tenants") if not is_ready(t)][:5]),
    )
    config = published_config(kubectl, namespace)
    assert {f"big-{i}" for i in range(BIG_TENANTS)} <= set(config["tenants"])
    published = kubectl.items(namespace, "configmaps", f"switchboard.dev/config={CONFIGMAP}")
    sizes = {c["metadata"]["name"]: len(json.dumps(c["data"])) for c in published}
    assert sum(sizes.values()) > MIB, f"the config ({sum(sizes.values())} bytes) should not fit one ConfigMap"
    assert len(sizes) >= 3 and max(sizes.values()) < MIB, sizes
    assert gateway.key_works(f"sk-e2e-big-{BIG_TENANTS - 1}-{KEYS - 1:02d}")

    # One more Tenant's key works at this size, writing one shard and the head.
    kubectl.apply(namespace, *keyed_tenant("one-more", ["one-more-apps"]))
    started = time.monotonic()
    wait_until(lambda: gateway.key_works("sk-e2e-one-more"), CONVERGE_TIMEOUT, "the new Tenant's key to work", interval=0.05)
    report_timing(f"one more Tenant's key works with {BIG_TENANTS} big Tenants published (from apply)", time.monotonic() - started)


def refuse_policy(kubectl: Kubectl, namespace: str, policy_name: str) -> tuple[str, dict[str, Any]]:
    """A ValidatingAdmissionPolicy refusing one NetworkPolicy name in `namespace`: a write the API
    server refuses, as a quota, a webhook or a policy engine would."""
    name = f"refuse-{namespace}"
    vap = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["networking.k8s.io"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["networkpolicies"],
                    }
                ]
            },
            "validations": [
                {"expression": f"object.metadata.name != '{policy_name}'", "message": "refused by the e2e admission policy"}
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [vap, binding]}))
    probe = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy_name, "namespace": namespace},
        "spec": {"podSelector": {}},
    }

    def refused() -> bool:
        result = kubectl.run("create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        return result.returncode != 0 and "refused by the e2e admission policy" in result.stderr

    wait_until(refused, CONVERGE_TIMEOUT, "the admission policy to take effect")
    return name, probe


def test_a_refused_write_fails_its_tenant_alone_and_a_change_retries_at_once(
    kubectl: Kubectl, namespace: str, running: tuple[Operator, Gateway]
) -> None:
    operator, gateway = running
    kubectl.apply(namespace, *keyed_tenant("doomed", ["doomed-apps"]))
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/doomed", timeout=90)
    policy, probe = refuse_policy(kubectl, namespace, "switchboard-tenant-blocked")
    try:
        kubectl.apply(namespace, *keyed_tenant("blocked", ["blocked-apps"]), *keyed_tenant("fine", ["fine-apps"]))
        kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/fine", timeout=90)

        def blocked_reported() -> dict[str, Any] | None:
            ready = condition(kubectl.get(namespace, "tenant/blocked"), "Ready")
            return ready if ready and ready["status"] == "False" and "refused" in ready["message"] else None

        ready = wait_until(blocked_reported, CONVERGE_TIMEOUT, "tenant/blocked not Ready with the refusal")
        assert ready["reason"] == "Pending", ready
        events = [
            e
            for e in kubectl.items(namespace, "events.v1.events.k8s.io")
            if (e.get("regarding") or {}).get("name") == "blocked" and e.get("type") == "Warning"
        ]
        assert events, "a Warning Event on tenant/blocked"

        # A Tenant deleted meanwhile loses its access, its policy and its finalizer.
        kubectl("delete", "-n", namespace, "tenant/doomed", "--wait=false")
        wait_until(
            lambda: kubectl.get_or_none(namespace, "tenant", "doomed") is None, CONVERGE_TIMEOUT, "tenant/doomed gone"
        )
        assert kubectl.get_or_none(namespace, "networkpolicy", "switchboard-tenant-doomed") is None
        assert not gateway.key_works("sk-e2e-doomed")
        assert "doomed" not in published_config(kubectl, namespace)["tenants"]
        # Let the failures pile up: after five retries the operator waits 16 s, then 30 s.
        wait_until(lambda: partial_reconciles(operator) >= 5, 2 * CONVERGE_TIMEOUT, "five retries of the refused write")
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", policy, "--ignore-not-found")
        kubectl("delete", "validatingadmissionpolicy", policy, "--ignore-not-found")

    # The fix is not announced to the operator; the next change to a watched object is, and it
    # retries at once instead of waiting out its backoff.
    def accepted() -> bool:
        result = kubectl.run("create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False)
        return result.returncode == 0 or "AlreadyExists" in result.stderr

    wait_until(accepted, CONVERGE_TIMEOUT, "the admission policy's removal to take effect")
    started = time.monotonic()
    kubectl("annotate", "-n", namespace, "tenant/blocked", "e2e/touched=1", "--overwrite")
    wait_until(lambda: is_ready(kubectl.get(namespace, "tenant/blocked")), 10.0, "tenant/blocked Ready after a change")
    report_timing("a refused Tenant Ready after the cause is gone and it changes", time.monotonic() - started)
    assert kubectl.get(namespace, "networkpolicy/switchboard-tenant-blocked")["metadata"]["annotations"]
    metadata = kubectl.get(namespace, "tenant/fine")["metadata"]
    assert metadata.get("finalizers") == [FINALIZER]
    managers = {m["manager"] for m in metadata.get("managedFields", [])}
    assert "unknown" not in managers, managers
