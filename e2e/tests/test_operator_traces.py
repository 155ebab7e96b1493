"""The operator's reconciles as OpenTelemetry spans, exported to a real OpenTelemetry Collector
(scripts/otelcol.sh, built from the Go module proxy): one `switchboard.reconcile` span per reconcile
with the resources it saw, the broken ones it set aside, and the config it published.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e_harness import CONFIGMAP, ROOT, Kubectl, published_config, secret, tenant, wait_until

OTELCOL = ROOT / "scripts" / "otelcol.sh"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("otelcol")
    started = subprocess.run([str(OTELCOL), "start", str(directory)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, f"the collector did not start:\n{started.stderr}"
    endpoints = dict(line.split("=", 1) for line in started.stdout.split())
    yield directory, endpoints["OTLP_GRPC"]
    subprocess.run([str(OTELCOL), "stop", str(directory)], timeout=60, check=False)


def reconcile_spans(directory: Path) -> list[dict[str, Any]]:
    path = directory / "spans.json"
    spans = []
    for line in path.read_text().splitlines() if path.exists() else []:
        for resource in json.loads(line)["resourceSpans"]:
            service = {a["key"]: a["value"].get("stringValue") for a in resource["resource"]["attributes"]}
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    if span["name"] == "switchboard.reconcile":
                        attributes = {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}
                        spans.append({**span, "attrs": attributes, "service": service.get("service.name")})
    return spans


def test_each_reconcile_is_a_span_naming_what_it_touched(
    kubectl: Kubectl, namespace: str, start_operator, collector: tuple[Path, str]  # noqa: ANN001
) -> None:
    directory, grpc = collector
    kubectl.apply(namespace, secret("traced-key", "sk-e2e-traced-0001"))
    kubectl.apply(namespace, tenant("traced", "traced-key", namespaces=["traced-apps"]))
    # A Tenant whose key Secret does not exist: set aside, named on the span.
    kubectl.apply(namespace, tenant("broken", "missing-key", namespaces=["broken-apps"]))
    start_operator(
        namespace,
        args=["--configmap", CONFIGMAP, "--otlp-endpoint", grpc, "--otlp-protocol", "grpc"],
        env={"OTEL_BSP_SCHEDULE_DELAY": "100"},
    )
    wait_until(lambda: "traced" in published_config(kubectl, namespace)["tenants"], 60, "the config is published")

    def published_span() -> dict[str, Any] | None:
        spans = [s for s in reconcile_spans(directory) if s["attrs"].get("switchboard.config.published") is True]
        return spans[-1] if spans else None

    span = wait_until(published_span, 30, "a reconcile span with the published config")
    attrs = span["attrs"]
    assert span["service"] == "switchboard-operator"
    assert int(attrs["switchboard.tenants"]) == 2
    assert int(attrs["switchboard.broken.count"]) == 1
    assert [v["stringValue"] for v in attrs["switchboard.broken"]["values"]] == ["broken"]
    assert attrs["switchboard.config.version"] == published_config(kubectl, namespace)["version"]
    events = [e["name"] for e in span.get("events", [])]
    assert events[:2] == ["switchboard.rendered", "switchboard.network_policies.enforced"], events
    assert int(span["endTimeUnixNano"]) > int(span["startTimeUnixNano"])
    # A change wakes the operator: another span.
    before = len(reconcile_spans(directory))
    kubectl.apply(namespace, tenant("traced-2", "traced-key", namespaces=["traced-apps"]))
    wait_until(lambda: len(reconcile_spans(directory)) > before, 30, "a reconcile span after a change")
