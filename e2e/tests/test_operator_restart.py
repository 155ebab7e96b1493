"""Killing the operator (SIGKILL, no cleanup) in the middle of its work and starting it again
converges to the same state a fresh reconcile produces, with no duplicate objects.

The kill points are chosen from a watch, not from timing: right after a batch is applied (before
the operator acted), on the first NetworkPolicy of a batch (ConfigMap written, policies half done,
no finalizers or statuses yet), and on the first policy deletion of a batch of Tenant deletions
(finalizers half removed). After each restart the whole namespace is checked; at the end the
operator is stopped, its outputs deleted, and a fresh operator must produce them identically.
"""

from __future__ import annotations

import difflib
import json
import time
from typing import Any, Callable

import pytest

from e2e_harness import (
    CONFIGMAP,
    FINALIZER,
    LEASE_TAKEOVER_TIMEOUT,
    MANAGED_BY,
    OPERATOR_LEASE,
    SAMPLES,
    VERSION_ANNOTATION,
    Cluster,
    Kubectl,
    Operator,
    ProcessExited,
    Watch,
    budget,
    is_ready,
    published_config,
    report,
    report_timing,
    secret,
    summary,
    tenant,
    wait_until,
)

BATCH = 8
CRS = "tenants,personas,providerroutes,budgets"


def batch_objects(prefix: str, count: int) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for i in range(count):
        name = f"{prefix}-{i}"
        objects.append(secret(f"{name}-key", f"sk-e2e-{name}-{i:04d}"))
        objects.append(tenant(name, f"{name}-key", namespaces=[f"{name}-apps"]))
        objects.append(budget(f"{name}-budget", name))
    return objects


def state(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """What the operator owns and reports, comparable across runs (no timestamps, no resourceVersions)."""
    cm = kubectl.get(namespace, f"configmap/{CONFIGMAP}")
    policies = {}
    for p in kubectl.items(namespace, "networkpolicies", MANAGED_BY):
        policies[p["metadata"]["name"]] = {
            "labels": p["metadata"].get("labels"),
            "ownerReferences": p["metadata"].get("ownerReferences"),
            "spec": p["spec"],
        }
    conditions = {}
    for obj in kubectl.get(namespace, CRS)["items"]:
        conditions[f"{obj['kind']}/{obj['metadata']['name']}"] = sorted(
            (c["type"], c["status"], c["reason"], c["message"], c.get("observedGeneration"))
            for c in (obj.get("status") or {}).get("conditions", [])
        )
    return {
        "version": cm["metadata"]["annotations"][VERSION_ANNOTATION],
        "config": published_config(kubectl, namespace),
        "policies": policies,
        "conditions": conditions,
    }


def check_converged(kubectl: Kubectl, namespace: str, identity: str) -> Callable[[], bool]:
    """A check for wait_until: everything Ready and owned objects exactly as the Tenants say."""

    def check() -> bool:
        objects = kubectl.get(namespace, CRS)["items"]
        not_ready = [o for o in objects if not is_ready(o)]
        assert not not_ready, "not Ready:\n" + summary(not_ready)
        tenants = [o for o in objects if o["kind"] == "Tenant"]
        for o in objects:
            types = [c["type"] for c in o["status"]["conditions"]]
            assert len(types) == len(set(types)), f"{o['kind']}/{o['metadata']['name']}: duplicate conditions {types}"
        for t in tenants:
            assert t["metadata"].get("finalizers") == [FINALIZER], f"tenant/{t['metadata']['name']}: {t['metadata'].get('finalizers')}"
            assert not t["metadata"].get("deletionTimestamp"), f"tenant/{t['metadata']['name']} still being deleted"

        # Exactly the head and the shards it names (no stale shard), with the config of exactly these Tenants.
        config_maps = kubectl.items(namespace, "configmaps", MANAGED_BY)
        config = published_config(kubectl, namespace)
        head = next(c for c in config_maps if c["metadata"]["name"] == CONFIGMAP)
        shards = json.loads(head["data"]["head.json"])["shards"]
        names = sorted(c["metadata"]["name"] for c in config_maps)
        assert names == sorted([CONFIGMAP] + [f"{CONFIGMAP}-{s}" for s in shards]), names
        assert head["metadata"]["annotations"][VERSION_ANNOTATION] == config["version"]
        assert set(config["tenants"]) == {t["metadata"]["name"] for t in tenants}, set(config["tenants"])

        # Exactly one policy per Tenant with namespaces (+ the egress policy), owned by that Tenant's
        # current incarnation (uid), and none anywhere else in the cluster for these Tenants.
        uids = {t["metadata"]["name"]: t["metadata"]["uid"] for t in tenants if t["spec"].get("namespaces")}
        policies = kubectl.items(namespace, "networkpolicies", MANAGED_BY)
        names = sorted(p["metadata"]["name"] for p in policies)
        shared = ["switchboard-gateway-egress", "switchboard-gateway-deny-ingress"]
        expected = sorted([f"switchboard-tenant-{n}" for n in uids] + shared)
        assert names == expected, f"policies {names}, expected {expected}"
        for p in policies:
            tenant_name = p["metadata"]["labels"].get("switchboard.dev/tenant")
            if tenant_name:
                owners = p["metadata"].get("ownerReferences") or []
                assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [("Tenant", tenant_name, uids[tenant_name])], owners
        for name in uids:
            copies = [p for p in policies if p["metadata"]["labels"].get("switchboard.dev/tenant") == name]
            assert len(copies) == 1, f"{len(copies)} policies for tenant {name}"

        lease = kubectl.get(namespace, f"lease/{OPERATOR_LEASE}")
        assert lease["spec"]["holderIdentity"] == identity, lease["spec"]
        return True

    return check


@pytest.fixture(scope="module")
def setup(kubectl: Kubectl, namespace: str, start_operator) -> dict[str, Any]:  # noqa: ANN001
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    operator = start_operator(namespace, identity="operator-a")
    wait_until(check_converged(kubectl, namespace, "operator-a"), LEASE_TAKEOVER_TIMEOUT, "initial convergence")
    return {"operator": operator}


def kill_and_restart(
    kubectl: Kubectl, namespace: str, start_operator, setup: dict[str, Any], identity: str, label: str  # noqa: ANN001
) -> Operator:
    """SIGKILLs the running operator, notes what it left half done, starts `identity`, waits for convergence."""
    setup["operator"].process.kill()
    killed = time.monotonic()
    objects = kubectl.get(namespace, CRS)["items"]
    tenants = [o for o in objects if o["kind"] == "Tenant"]
    policies = kubectl.items(namespace, "networkpolicies", MANAGED_BY)
    report(
        f"{label}: state left by the kill",
        f"{len(tenants)} tenants, {sum(1 for t in tenants if FINALIZER in t['metadata'].get('finalizers', []))} with finalizer, "
        f"{sum(1 for o in objects if is_ready(o))}/{len(objects)} resources Ready, {len(policies)} policies",
    )
    operator = start_operator(namespace, identity=identity)
    setup["operator"] = operator
    converged = check_converged(kubectl, namespace, identity)

    def check() -> bool:
        if not operator.process.alive():
            raise ProcessExited(f"{operator.process.name} exited:\n{operator.process.log_tail()}")
        return converged()

    wait_until(
        check,
        LEASE_TAKEOVER_TIMEOUT,
        f"convergence after {label}",
        interval=0.25,
        describe=lambda: operator.process.log_tail(20),
    )
    report_timing(f"{label}: SIGKILL -> converged again ({identity})", time.monotonic() - killed)
    return operator


def test_kill_right_after_a_batch_is_applied(kubectl: Kubectl, namespace: str, start_operator, setup: dict) -> None:  # noqa: ANN001
    """Before the operator could act (it coalesces changes for 200 ms). A new pod (new identity)
    takes over once the dead holder's Lease expires."""
    kubectl.apply(namespace, *batch_objects("early", BATCH))
    kill_and_restart(kubectl, namespace, start_operator, setup, "operator-b", "kill after apply")


def test_kill_while_policies_are_written(
    cluster: Cluster, kubectl: Kubectl, namespace: str, start_operator, setup: dict  # noqa: ANN001
) -> None:
    """In the middle of a reconcile: the first NetworkPolicy of the batch exists. The same pod's
    container restarts (same identity: the Lease is taken back at once)."""
    watch = Watch(kubectl, namespace, "networkpolicies", cluster.pid_dir, selector=MANAGED_BY)
    try:
        watch.wait_for(lambda t, n: n == "switchboard-gateway-egress", 30, "listing the egress policy")
        kubectl.apply(namespace, *batch_objects("mid", BATCH))
        watch.wait_for(lambda t, n: t == "ADDED" and n.startswith("switchboard-tenant-mid-"), 30, "a mid-* policy added")
        kill_and_restart(kubectl, namespace, start_operator, setup, "operator-b", "kill while writing policies")
    finally:
        watch.stop()


def test_kill_while_tenants_are_deleted_and_changed(
    cluster: Cluster, kubectl: Kubectl, namespace: str, start_operator, setup: dict  # noqa: ANN001
) -> None:
    """Half the Tenants deleted, others changed (namespaces), one deleted and re-created with the same
    name: killed on the first policy deletion, i.e. with finalizers half removed."""
    # Re-creation needs the old object gone first; do that one before the kill so its uid changes.
    kubectl("delete", "-n", namespace, "tenant/early-0", "--wait=true", "--timeout=60s", timeout=90)
    kubectl.apply(namespace, tenant("early-0", "early-0-key", namespaces=["early-0-recreated"]))
    watch = Watch(kubectl, namespace, "networkpolicies", cluster.pid_dir, selector=MANAGED_BY)
    try:
        watch.wait_for(lambda t, n: n == "switchboard-gateway-egress", 30, "listing the egress policy")
        changed = [tenant(f"early-{i}", f"early-{i}-key", namespaces=[f"early-{i}-moved", "shared-apps"]) for i in (1, 2, 3)]
        kubectl.apply(namespace, *changed)
        names = [f"{kind}/mid-{i}{suffix}" for i in range(BATCH // 2) for kind, suffix in (("tenant", ""), ("budget", "-budget"))]
        kubectl("delete", "-n", namespace, *names, "--wait=false")
        watch.wait_for(lambda t, n: t == "DELETED" and n.startswith("switchboard-tenant-mid-"), 30, "a mid-* policy deleted")
        kill_and_restart(kubectl, namespace, start_operator, setup, "operator-c", "kill while deleting tenants")
    finally:
        watch.stop()
    remaining = {t["metadata"]["name"] for t in kubectl.items(namespace, "tenants")}
    assert not remaining & {f"mid-{i}" for i in range(BATCH // 2)}, remaining
    config = published_config(kubectl, namespace)
    assert config["tenants"]["early-1"]["namespaces"] == ["early-1-moved", "shared-apps"]
    assert config["tenants"]["early-0"]["namespaces"] == ["early-0-recreated"]
    policy = kubectl.get(namespace, "networkpolicy/switchboard-tenant-early-1")
    values = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert values == ["early-1-moved", "shared-apps"], values


def test_state_equals_a_fresh_reconcile(kubectl: Kubectl, namespace: str, start_operator, setup: dict) -> None:  # noqa: ANN001
    """Stop the operator gracefully, delete everything it wrote, start a fresh one: it must write
    exactly what the restarted operators had converged to (same config version, same policies)."""
    identity = setup["operator"].identity
    wait_until(check_converged(kubectl, namespace, identity), LEASE_TAKEOVER_TIMEOUT, "convergence")
    before = state(kubectl, namespace)
    assert setup["operator"].process.terminate() == 0, setup["operator"].process.log_tail()
    kubectl("delete", "-n", namespace, "configmap", "-l", MANAGED_BY)
    kubectl("delete", "-n", namespace, "networkpolicies", "-l", MANAGED_BY)
    assert kubectl.items(namespace, "networkpolicies", MANAGED_BY) == []

    stopped = time.monotonic()
    setup["operator"] = start_operator(namespace, identity="operator-fresh")
    # A graceful stop releases the Lease: the new identity takes over without waiting for expiry.
    wait_until(check_converged(kubectl, namespace, "operator-fresh"), 30, "fresh convergence", interval=0.25)
    report_timing("graceful stop -> fresh operator (new identity) converged", time.monotonic() - stopped)
    after = state(kubectl, namespace)
    differences = [
        f"{part} differs from a fresh reconcile:\n{diff(before[part], after[part])}"
        for part in ("version", "config", "policies", "conditions")
        if after[part] != before[part]
    ]
    if differences:
        pytest.fail("\n\n".join(differences), pytrace=False)


def diff(before: Any, after: Any) -> str:
    lines = difflib.unified_diff(
        json.dumps(before, indent=1, sort_keys=True).splitlines(),
        json.dumps(after, indent=1, sort_keys=True).splitlines(),
        "after the restarts",
        "fresh reconcile",
        lineterm="",
    )
    return "\n".join(list(lines)[:80])
