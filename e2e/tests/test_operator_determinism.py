"""Every operator instance renders the same resources the same way: the same config version and the
same winner of a conflict, whichever replica (or restart) does the reconcile. A leader change must
not change what the gateway serves."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from e2e_harness import (
    API_VERSION,
    CONFIGMAP,
    CONVERGE_TIMEOUT,
    SAMPLES,
    VERSION_ANNOTATION,
    Kubectl,
    Operator,
    budget,
    condition,
    published_config,
    wait_until,
)

RESTARTS = 3
ROUTES = [f"claim-{c}" for c in "abcd"]


def route(name: str) -> dict[str, Any]:
    """A ProviderRoute serving model `contested`, which every route in ROUTES claims."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ProviderRoute",
        "metadata": {"name": name},
        "spec": {
            "models": [{"name": "contested", "pricing": {"inputPerMillion": "1", "outputPerMillion": "1"}}],
            "backends": [{"name": "mock", "provider": "mock"}],
        },
    }


def reconciled(operator: Operator) -> bool:
    match = re.search(r'^switchboard_operator_reconciles_total\{result="success"\} (\d+)', operator.metrics(), re.M)
    return bool(match and int(match.group(1)) > 0)


def observe(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    routes = {r["metadata"]["name"]: r for r in kubectl.items(namespace, "providerroutes")}
    ready = {name: condition(routes[name], "Ready") for name in ROUTES}
    winners = sorted(name for name, c in ready.items() if c and c["status"] == "True")
    conflicts = sorted(name for name, c in ready.items() if c and c["reason"] == "Conflict")
    assert len(winners) == 1 and len(conflicts) == len(ROUTES) - 1, ready
    cm = kubectl.get(namespace, f"configmap/{CONFIGMAP}")
    config = published_config(kubectl, namespace)
    return {
        "winner": winners[0],
        "served_by": [name for name in config["routes"] if name in ROUTES],
        "version": cm["metadata"]["annotations"][VERSION_ANNOTATION],
    }


@pytest.fixture(scope="module")
def resources(kubectl: Kubectl, namespace: str) -> str:
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    kubectl.apply(namespace, *[budget(f"extra-{i}", "demo", str(i + 1)) for i in range(8)], *[route(r) for r in ROUTES])
    return namespace


def test_every_operator_instance_renders_the_same(kubectl: Kubectl, resources: str, start_operator) -> None:  # noqa: ANN001
    namespace = resources
    seen = []
    for i in range(RESTARTS + 1):
        operator = start_operator(namespace, identity=f"replica-{i}")
        wait_until(lambda: reconciled(operator), CONVERGE_TIMEOUT, f"a successful reconcile by replica-{i}")
        seen.append(wait_until(lambda: observe(kubectl, namespace), CONVERGE_TIMEOUT, "one winner, the rest Conflict"))
        # Graceful stop: the Lease is released and the next instance leads at once.
        assert operator.process.terminate() == 0, operator.process.log_tail()
    first = seen[0]
    assert first["served_by"] == [first["winner"]], first
    different = [(i, s) for i, s in enumerate(seen) if s != first]
    if different:
        lines = [f"instance 0: {first}", *(f"instance {i}: {s}" for i, s in different)]
        pytest.fail("operator instances render the same resources differently:\n" + "\n".join(lines), pytrace=False)
