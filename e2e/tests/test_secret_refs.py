"""Secret references: a resource naming a missing Secret (or key) is reported with ResolvedRefs=False,
a reason, a message naming the Secret and a Warning Event; it becomes Ready once the Secret appears.
Broken resources are isolated: the rest of the config stays Ready and published."""

from __future__ import annotations

from typing import Any

import pytest

from e2e_harness import (
    API_VERSION,
    CONVERGE_TIMEOUT,
    SAMPLES,
    Kubectl,
    condition,
    is_ready,
    published_config,
    secret,
    summary,
    tenant,
    wait_until,
)


@pytest.fixture(scope="module")
def operator_ns(kubectl: Kubectl, namespace: str, start_operator) -> str:  # noqa: ANN001
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    start_operator(namespace)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/demo", timeout=90)
    return namespace


def events_for(kubectl: Kubectl, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    """events.k8s.io Events about one object (the API the operator writes)."""
    return [
        e
        for e in kubectl.items(namespace, "events.v1.events.k8s.io")
        if (e.get("regarding") or {}).get("kind") == kind and (e.get("regarding") or {}).get("name") == name
    ]


def wait_condition(
    kubectl: Kubectl, namespace: str, resource: str, type_: str, status: str, reason: str
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = kubectl.get(namespace, resource)
        c = condition(obj, type_)
        if c and c["status"] == status and c["reason"] == reason:
            return obj
        return None

    return wait_until(
        check,
        CONVERGE_TIMEOUT,
        f"{resource} {type_}={status} reason {reason}",
        describe=lambda: summary([kubectl.get(namespace, resource)]),
    )


def test_tenant_with_missing_secret_reports_it_then_becomes_ready(kubectl: Kubectl, operator_ns: str) -> None:
    namespace = operator_ns
    kubectl.apply(namespace, tenant("lost", "lost-key", namespaces=["lost-team"]))

    obj = wait_condition(kubectl, namespace, "tenant/lost", "ResolvedRefs", "False", "SecretNotFound")
    generation = obj["metadata"]["generation"]
    resolved = condition(obj, "ResolvedRefs")
    assert f"{namespace}/lost-key" in resolved["message"], resolved
    assert "spec.apiKeys[0].secretRef" in resolved["message"], resolved
    assert resolved["observedGeneration"] == generation
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound"), ready
    accepted = condition(obj, "Accepted")
    assert accepted["status"] == "True", accepted
    # `kubectl wait` sees it as not Ready.
    result = kubectl.run("wait", "-n", namespace, "--for=condition=Ready", "--timeout=1s", "tenant/lost", check=False)
    assert result.returncode != 0, result.stdout

    # A Warning Event with the reason, about this Tenant.
    warning = wait_until(
        lambda: [e for e in events_for(kubectl, namespace, "Tenant", "lost") if e.get("reason") == "SecretNotFound"],
        CONVERGE_TIMEOUT,
        "a SecretNotFound Event about tenant/lost",
    )[0]
    assert warning["type"] == "Warning", warning
    assert "lost-key" in warning.get("note", ""), warning
    assert warning.get("reportingController") == "switchboard-operator", warning

    # Isolation: the broken Tenant keeps nothing else from being Ready and published.
    assert is_ready(kubectl.get(namespace, "tenant/demo"))
    tenants = published_config(kubectl, namespace)["tenants"]
    assert "demo" in tenants and "lost" not in tenants
    assert kubectl.get_or_none(namespace, "networkpolicy", "switchboard-tenant-lost") is None

    # The Secret appears: Ready, without touching the Tenant (the operator watches Secrets).
    kubectl.apply(namespace, secret("lost-key", "sk-e2e-lost-0001"))
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/lost", timeout=90)
    obj = kubectl.get(namespace, "tenant/lost")
    assert obj["metadata"]["generation"] == generation, "the operator must not change the spec"
    assert condition(obj, "ResolvedRefs")["status"] == "True", summary([obj])
    assert obj["status"].get("keyCount") == 1, obj["status"]
    normal = wait_until(
        lambda: [e for e in events_for(kubectl, namespace, "Tenant", "lost") if e["type"] == "Normal"],
        CONVERGE_TIMEOUT,
        "a Normal Event once tenant/lost is Ready",
    )
    assert normal[0]["reason"] == "Published", normal
    wait_until(
        lambda: kubectl.get_or_none(namespace, "networkpolicy", "switchboard-tenant-lost"),
        CONVERGE_TIMEOUT,
        "the NetworkPolicy of tenant/lost",
    )


def test_secret_without_the_key_is_secret_key_not_found(kubectl: Kubectl, operator_ns: str) -> None:
    namespace = operator_ns
    kubectl.apply(namespace, secret("wrong-key", "sk-e2e-wrong-0001", key="other"), tenant("wrongkey", "wrong-key"))
    obj = wait_condition(kubectl, namespace, "tenant/wrongkey", "ResolvedRefs", "False", "SecretKeyNotFound")
    message = condition(obj, "ResolvedRefs")["message"]
    assert f"{namespace}/wrong-key" in message and '"key"' in message, message
    # Fixing the Secret fixes the Tenant.
    kubectl.apply(namespace, secret("wrong-key", "sk-e2e-wrong-0001", key="key"))
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/wrongkey", timeout=90)


def test_provider_route_with_missing_api_key_secret(kubectl: Kubectl, operator_ns: str) -> None:
    namespace = operator_ns
    route = {
        "apiVersion": API_VERSION,
        "kind": "ProviderRoute",
        "metadata": {"name": "keyed"},
        "spec": {
            "models": [{"name": "keyed-model", "pricing": {"inputPerMillion": "1", "outputPerMillion": "2"}}],
            "backends": [
                {
                    "name": "upstream",
                    "provider": "openai",
                    "baseUrl": "http://127.0.0.1:9/v1",
                    "apiKeySecretRef": {"name": "provider-key", "key": "apiKey"},
                }
            ],
        },
    }
    kubectl.apply(namespace, route)
    obj = wait_condition(kubectl, namespace, "providerroute/keyed", "ResolvedRefs", "False", "SecretNotFound")
    assert f"{namespace}/provider-key" in condition(obj, "ResolvedRefs")["message"]
    kubectl.apply(namespace, secret("provider-key", "sk-e2e-provider-0001", key="apiKey"))
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "providerroute/keyed", timeout=90)


def test_spec_change_moves_observed_generation(kubectl: Kubectl, operator_ns: str) -> None:
    namespace = operator_ns
    kubectl("patch", "-n", namespace, "tenant/demo", "--type=merge", "-p", '{"spec":{"displayName":"Demo, renamed"}}')
    generation = kubectl.get(namespace, "tenant/demo")["metadata"]["generation"]
    wait_until(
        lambda: all(
            c.get("observedGeneration") == generation
            for c in kubectl.get(namespace, "tenant/demo")["status"]["conditions"]
            if c["type"] in ("Accepted", "ResolvedRefs", "Ready")
        )
        and kubectl.get(namespace, "tenant/demo")["status"].get("observedGeneration") == generation,
        CONVERGE_TIMEOUT,
        f"tenant/demo conditions at generation {generation}",
    )
    assert published_config(kubectl, namespace)["tenants"]["demo"]["displayName"] == "Demo, renamed"
