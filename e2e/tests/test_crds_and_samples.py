"""The CRDs install; config/samples applies with kubectl; printer columns; kubectl wait for Ready."""

from __future__ import annotations

import pytest

from e2e_harness import (
    CONVERGE_TIMEOUT,
    KINDS,
    SAMPLES,
    Kubectl,
    is_ready,
    parse_tables,
    summary,
    wait_until,
)

# The resources config/samples defines (ARCHITECTURE.md contract), as kubectl names them.
SAMPLE_RESOURCES = [
    "tenant/demo",
    "persona/ada",
    "providerroute/demo-echo",
    "providerroute/local-model",
    "budget/demo-monthly",
]

# Printer columns users rely on, per kind (a subset: new columns may be added).
COLUMNS = {
    "tenant": ["NAME", "DISPLAY", "KEYS", "REQUESTS", "SPEND", "READY", "AGE"],
    "persona": ["NAME", "TENANT", "MODEL", "READY", "AGE"],
    "providerroute": ["NAME", "MODELS", "BACKENDS", "READY", "AGE"],
    "budget": ["NAME", "TENANT", "SCOPE", "LIMIT", "SPENT", "PERIOD", "READY", "AGE"],
}


def test_crds_are_established(kubectl: Kubectl, crds: list[str]) -> None:
    for kind in KINDS:
        crd = kubectl.get(None, f"crd/{kind}.switchboard.dev")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", conditions
        assert conditions.get("NamesAccepted") == "True", conditions
        versions = [v for v in crd["spec"]["versions"] if v["served"]]
        assert versions, f"{kind}: no served version"
        for version in versions:
            assert "status" in version.get("subresources", {}), f"{kind} {version['name']}: no status subresource"
            names = [c["name"] for c in version.get("additionalPrinterColumns", [])]
            assert "Ready" in names, f"{kind} {version['name']}: printer columns {names}"
    # The API server serves them (discovery), with the short names kubectl users type.
    resources = kubectl("api-resources", "--api-group=switchboard.dev", "-o", "name").split()
    assert sorted(resources) == sorted(f"{kind}.switchboard.dev" for kind in KINDS)


@pytest.fixture(scope="module")
def samples(kubectl: Kubectl, namespace: str, start_operator) -> str:  # noqa: ANN001
    out = kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    for resource in SAMPLE_RESOURCES + ["secret/demo-api-key"]:
        kind, name = resource.split("/")
        assert f"{kind}.switchboard.dev/{name} created" in out or f"{kind}/{name} created" in out, out
    start_operator(namespace)
    return namespace


def test_samples_apply_and_get_shows_printer_columns(kubectl: Kubectl, samples: str) -> None:
    namespace = samples

    def all_ready_in_table() -> list[list[dict[str, str]]]:
        text = kubectl("get", "-n", namespace, "tenants,personas,providerroutes,budgets")
        tables = parse_tables(text)
        rows = [row for table in tables for row in table[1:]]
        assert len(rows) == len(SAMPLE_RESOURCES), text
        assert all(row["READY"] == "True" for row in rows), text
        return tables

    tables = wait_until(
        all_ready_in_table,
        CONVERGE_TIMEOUT,
        "every sample to show READY True in `kubectl get`",
        describe=lambda: kubectl("get", "-n", namespace, "tenants,personas,providerroutes,budgets"),
    )
    by_kind: dict[str, list[dict[str, str]]] = {}
    for table in tables:
        header, *rows = table
        kind = rows[0]["NAME"].split("/")[0].split(".")[0]
        by_kind[kind] = rows
        names = header["__header__"].split()
        for column in COLUMNS[kind]:
            assert column in names, f"{kind}: header {names} lacks {column}"
    row = {r["NAME"].split("/")[1]: r for rows in by_kind.values() for r in rows}
    # The columns show useful values, not just headers.
    assert row["demo"]["DISPLAY"] == "Demo team" and row["demo"]["KEYS"] == "1", row["demo"]
    assert row["ada"]["TENANT"] == "demo" and row["ada"]["MODEL"] == "demo-echo", row["ada"]
    assert row["demo-echo"]["MODELS"] == "demo-echo" and row["demo-echo"]["BACKENDS"] == "mock", row["demo-echo"]
    assert row["local-model"]["BACKENDS"] == "llama-cpp", row["local-model"]
    budget = row["demo-monthly"]
    assert (budget["TENANT"], budget["SCOPE"], budget["LIMIT"], budget["PERIOD"]) == ("demo", "Tenant", "100", "Monthly")


def test_kubectl_wait_ready_for_each_sample(kubectl: Kubectl, samples: str) -> None:
    namespace = samples
    for resource in SAMPLE_RESOURCES:
        out = kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", resource, timeout=90)
        assert "condition met" in out, out
    objects = [kubectl.get(namespace, resource) for resource in SAMPLE_RESOURCES]
    for obj in objects:
        assert is_ready(obj), summary(objects)
        types = [c["type"] for c in obj["status"]["conditions"]]
        for expected in ("Accepted", "ResolvedRefs", "Ready"):
            assert types.count(expected) == 1, f"{obj['kind']}/{obj['metadata']['name']}: {types}"
        assert obj["status"].get("observedGeneration") == obj["metadata"]["generation"], summary([obj])


def test_reapplying_samples_changes_nothing(kubectl: Kubectl, samples: str) -> None:
    """Re-applying the same samples is a no-op: kubectl says `unchanged` for every object, and no
    resource and not the operator's head ConfigMap gets a new generation or resourceVersion."""
    namespace = samples
    wait_until(lambda: all(is_ready(kubectl.get(namespace, r)) for r in SAMPLE_RESOURCES), CONVERGE_TIMEOUT, "samples Ready")
    watched = [*SAMPLE_RESOURCES, "configmap/switchboard-gateway-config"]
    before = {r: kubectl.get(namespace, r)["metadata"] for r in watched}
    printed = kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    assert all(line.endswith(" unchanged") for line in printed.splitlines()), printed
    after = {r: kubectl.get(namespace, r)["metadata"] for r in watched}
    for resource in watched:
        assert after[resource].get("generation") == before[resource].get("generation"), resource
        assert after[resource]["resourceVersion"] == before[resource]["resourceVersion"], resource
