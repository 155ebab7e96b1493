"""Invalid resources are rejected by the API server itself (CRD schema and CEL rules), with a message
that says what is wrong. No operator runs here: this is the apiserver's job."""

from __future__ import annotations

from typing import Any

import pytest

from e2e_harness import API_VERSION, SAMPLES, Kubectl


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


PRICING = {"inputPerMillion": "1", "outputPerMillion": "1"}
TENANT_SCOPE = {"kind": "Tenant", "tenant": "demo"}

# (id, object, substrings the apiserver's message must contain)
CASES = [
    pytest.param(
        obj("Persona", "no-prompt", {"tenant": "demo", "displayName": "Nobody", "model": "demo-echo"}),
        ['Persona "no-prompt" is invalid', "spec.systemPrompt: Required value"],
        id="missing-required-field",
    ),
    pytest.param(
        obj("Tenant", "key-without-secret", {"displayName": "x", "apiKeys": [{"name": "default"}]}),
        ["spec.apiKeys[0].secretRef: Required value"],
        id="missing-nested-required-field",
    ),
    pytest.param(
        obj("Budget", "yearly", {"scope": TENANT_SCOPE, "limitUsd": "5", "period": "Yearly"}),
        ['spec.period: Unsupported value: "Yearly"', '"Daily", "Weekly", "Monthly", "Total"'],
        id="bad-enum-period",
    ),
    pytest.param(
        obj(
            "ProviderRoute",
            "bad-provider",
            {"models": [{"name": "m", "pricing": PRICING}], "backends": [{"name": "a", "provider": "azure"}]},
        ),
        ['spec.backends[0].provider: Unsupported value: "azure"', '"openai", "anthropic", "gemini", "mock"'],
        id="bad-enum-provider",
    ),
    pytest.param(
        obj("Budget", "negative", {"scope": TENANT_SCOPE, "limitUsd": "-5", "period": "Monthly"}),
        ['spec.limitUsd: Invalid value: "-5"'],
        id="negative-budget",
    ),
    pytest.param(
        obj("Budget", "zero", {"scope": TENANT_SCOPE, "limitUsd": "0.00", "period": "Monthly"}),
        ["spec.limitUsd", "limitUsd must be greater than zero"],
        id="zero-budget-cel",
    ),
    pytest.param(
        obj("Tenant", "negative-rpm", {"displayName": "x", "apiKeys": [], "rateLimits": {"requestsPerMinute": -1}}),
        ["spec.rateLimits.requestsPerMinute", "should be greater than or equal to 1"],
        id="negative-rate-limit",
    ),
    pytest.param(
        obj("Budget", "persona-scope", {"scope": {"kind": "Persona", "tenant": "demo"}, "limitUsd": "5", "period": "Monthly"}),
        ["spec.scope", "scope.persona is required when kind is Persona"],
        id="cross-field-cel-budget-scope",
    ),
    pytest.param(
        obj(
            "ProviderRoute",
            "no-base-url",
            {"models": [{"name": "m", "pricing": PRICING}], "backends": [{"name": "a", "provider": "openai"}]},
        ),
        ["spec.backends[0]", "baseUrl is required unless provider is mock"],
        id="cross-field-cel-base-url",
    ),
    pytest.param(
        obj(
            "Tenant",
            "duplicate-keys",
            {
                "displayName": "x",
                "apiKeys": [
                    {"name": "k", "secretRef": {"name": "s1", "key": "key"}},
                    {"name": "k", "secretRef": {"name": "s2", "key": "key"}},
                ],
            },
        ),
        ["spec.apiKeys", "API key names must be unique"],
        id="cel-unique-key-names",
    ),
    pytest.param(
        obj(
            "Tenant",
            "bad-namespace",
            {"displayName": "x", "apiKeys": [], "namespaces": ["Not_A_Label"]},
        ),
        ["spec.namespaces", "namespaces must be DNS labels"],
        id="cel-namespace-labels",
    ),
]


@pytest.mark.parametrize(("manifest", "expected"), CASES)
def test_invalid_resource_is_rejected(kubectl: Kubectl, namespace: str, manifest: dict, expected: list[str]) -> None:
    result = kubectl.create(namespace, manifest)
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    if result.returncode == 0:
        kubectl.run("delete", "-n", namespace, kind, name, "--wait=false", check=False)
        pytest.fail(f"{kind}/{name} was accepted: {result.stdout}")
    message = result.stderr
    assert "is invalid" in message, message
    for text in expected:
        assert text in message, f"the apiserver's message lacks {text!r}:\n{message}"
    assert kubectl.get_or_none(namespace, kind.lower(), name) is None, f"{kind}/{name} exists after rejection"


def test_invalid_update_is_rejected_and_object_unchanged(kubectl: Kubectl, namespace: str) -> None:
    """Validation applies to updates too: a valid Budget cannot be patched into a negative one."""
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "budget-demo.yaml"))
    before = kubectl.get(namespace, "budget/demo-monthly")
    result = kubectl.run(
        "patch", "-n", namespace, "budget/demo-monthly", "--type=merge", "-p", '{"spec":{"limitUsd":"-1"}}', check=False
    )
    assert result.returncode != 0, result.stdout
    assert 'spec.limitUsd: Invalid value: "-1"' in result.stderr, result.stderr
    after = kubectl.get(namespace, "budget/demo-monthly")
    assert after["spec"]["limitUsd"] == before["spec"]["limitUsd"] == "100"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
