"""The gateway in cluster mode (no --config-dir: it watches the operator's ConfigMap and the Secrets)
serves the real OpenAI SDK; Tenants created and deleted with kubectl take effect within seconds;
the ConfigMap carries key hashes, never secret values; the gateway writes spend into Budget status."""

from __future__ import annotations

import hashlib
import json
import re
import time
from decimal import Decimal
from typing import Any

import openai
import pytest

from e2e_harness import (
    condition,
    API_VERSION,
    CONVERGE_TIMEOUT,
    DEMO_KEY,
    FINALIZER,
    MANAGED_BY,
    SAMPLES,
    Gateway,
    Kubectl,
    b64decode,
    budget,
    is_ready,
    published_config,
    report_timing,
    secret,
    summary,
    tenant,
    wait_until,
)

# How soon a kubectl change must reach the gateway. Typically well under a second; the bound is
# loose for a loaded 2-core machine.
PROPAGATION_TIMEOUT = 15.0
# demo-echo's pricing in config/samples/route-demo-echo.yaml, USD per million tokens.
DEMO_ECHO_INPUT = Decimal("0.15")
DEMO_ECHO_OUTPUT = Decimal("0.60")


@pytest.fixture(scope="module")
def gateway(kubectl: Kubectl, namespace: str, start_operator, start_gateway) -> Gateway:  # noqa: ANN001
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    start_operator(namespace)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/demo", timeout=90)
    return start_gateway(namespace)


def test_openai_sdk_with_the_demo_key(gateway: Gateway) -> None:
    client = gateway.client(DEMO_KEY)
    models = {m.id for m in client.models.list()}
    assert {"demo-echo", "local-model"} <= models, models

    completion = client.chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "hello from the e2e test"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "demo-echo"
    assert "hello from the e2e test" in completion.choices[0].message.content
    assert completion.usage and completion.usage.total_tokens > 0

    stream = client.chat.completions.create(
        model="demo-echo",
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "stream this please" in text, text
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.total_tokens > 0, chunks[-1]

    with pytest.raises(openai.AuthenticationError):
        gateway.client("sk-not-a-key").models.list()


def test_new_tenant_key_works_within_seconds_and_stops_after_delete(
    kubectl: Kubectl, namespace: str, gateway: Gateway
) -> None:
    key = "sk-e2e-newteam-7f3a9c"
    assert not gateway.key_works(key)

    # Created with kubectl, Tenant and Secret in one apply, as a user would.
    kubectl.apply(namespace, secret("newteam-key", key), tenant("newteam", "newteam-key", namespaces=["newteam-apps"]))
    created = time.monotonic()
    wait_until(lambda: gateway.key_works(key), PROPAGATION_TIMEOUT, "the new tenant's key to work", interval=0.05)
    report_timing("kubectl apply Tenant+Secret -> new key works at the gateway", time.monotonic() - created)

    obj = wait_until(
        lambda: (o := kubectl.get(namespace, "tenant/newteam")) and is_ready(o) and o, CONVERGE_TIMEOUT, "newteam Ready"
    )
    assert obj["metadata"]["finalizers"] == [FINALIZER], obj["metadata"]
    policy = kubectl.get(namespace, "networkpolicy/switchboard-tenant-newteam")
    assert policy["metadata"]["labels"]["switchboard.dev/tenant"] == "newteam"
    assert [o["name"] for o in policy["metadata"].get("ownerReferences", [])] == ["newteam"]
    peers = policy["spec"]["ingress"][0]["from"]
    assert peers[0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["newteam-apps"], peers

    # Deleting the Tenant revokes the key; the finalizer lets the object go only after that.
    kubectl("delete", "-n", namespace, "tenant/newteam", "--wait=false")
    deleted = time.monotonic()
    wait_until(lambda: not gateway.key_works(key), PROPAGATION_TIMEOUT, "the deleted tenant's key to fail")
    report_timing("kubectl delete Tenant -> key rejected with 401", time.monotonic() - deleted)
    with pytest.raises(openai.AuthenticationError) as error:
        gateway.client(key).chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "x"}])
    assert error.value.status_code == 401

    wait_until(
        lambda: kubectl.get_or_none(namespace, "tenant", "newteam") is None,
        CONVERGE_TIMEOUT,
        "tenant/newteam to be gone (finalizer removed)",
        describe=lambda: json.dumps((kubectl.get_or_none(namespace, "tenant", "newteam") or {}).get("metadata")),
    )
    report_timing("kubectl delete Tenant -> object gone (finalizer removed)", time.monotonic() - deleted)
    # No garbage collector runs here: the operator itself deleted the policy.
    assert kubectl.get_or_none(namespace, "networkpolicy", "switchboard-tenant-newteam") is None
    names = {p["metadata"]["name"] for p in kubectl.items(namespace, "networkpolicies", MANAGED_BY)}
    assert names == {"switchboard-gateway-egress", "switchboard-gateway-deny-ingress", "switchboard-tenant-demo"}, names
    # The demo tenant is untouched.
    assert gateway.key_works(DEMO_KEY)


def test_configmap_holds_hashes_never_secret_values(kubectl: Kubectl, namespace: str, gateway: Gateway) -> None:
    # A provider key in a Secret, referenced by a route, next to the tenant keys.
    provider_key = "sk-e2e-provider-secret-value-91c2"
    route = {
        "apiVersion": API_VERSION,
        "kind": "ProviderRoute",
        "metadata": {"name": "with-provider-key"},
        "spec": {
            "models": [{"name": "keyed", "pricing": {"inputPerMillion": "1", "outputPerMillion": "1"}}],
            "backends": [
                {
                    "name": "remote",
                    "provider": "openai",
                    "baseUrl": "http://127.0.0.1:9/v1",
                    "apiKeySecretRef": {"name": "provider-key", "key": "apiKey"},
                }
            ],
        },
    }
    kubectl.apply(namespace, secret("provider-key", provider_key, key="apiKey"), route)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "providerroute/with-provider-key", timeout=90)

    published = kubectl.items(namespace, "configmaps", "switchboard.dev/config=switchboard-gateway-config")
    text = json.dumps(published)  # the head and every shard: data, annotations, labels
    config = published_config(kubectl, namespace)
    assert "with-provider-key" in config["routes"], "the route is in the published config"

    secret_values = {
        b64decode(v) for s in kubectl.items(namespace, "secrets") for v in (s.get("data") or {}).values()
    }
    assert {DEMO_KEY, provider_key} <= secret_values
    for value in secret_values:
        assert value not in text, f"a Secret value ({value[:6]}...) is in the ConfigMap"
    assert not re.search(r"sk-[A-Za-z0-9_-]{4,}", text), re.findall(r"sk-[A-Za-z0-9_-]{4,}", text)

    # Keys as SHA-256 hashes; the provider key as a reference to its Secret.
    demo_hash = hashlib.sha256(DEMO_KEY.encode()).hexdigest()
    assert [k["sha256"] for k in config["tenants"]["demo"]["apiKeys"]] == [demo_hash]
    backend = config["routes"]["with-provider-key"]["backends"][0]
    assert "provider-key" in json.dumps(backend["apiKey"]), backend
    head = kubectl.get(namespace, "configmap/switchboard-gateway-config")
    assert head["metadata"]["annotations"]["switchboard.dev/config-version"] == config["version"]

    # The one Secret the gateway reads holds the provider key and no tenant key.
    copied = kubectl.get(namespace, "secret/switchboard-gateway-provider-keys")["data"]
    assert {b64decode(v) for v in copied.values()} == {provider_key}, sorted(copied)


def key_accepted(gateway: Gateway, key: str) -> bool:
    """Like key_works(), with GET /v1/models: no completion, so nothing in the ledger."""
    try:
        gateway.client(key).models.list()
        return True
    except openai.AuthenticationError:
        return False


def test_budget_status_shows_the_spend_of_requests(kubectl: Kubectl, namespace: str, gateway: Gateway) -> None:
    """The gateway's status writer (the holder of its Lease) puts the ledger's spend into Budget and
    Tenant status: exactly the cost of the requests made, from the usage the SDK saw."""
    key = "sk-e2e-spender-4d1e"
    kubectl.apply(
        namespace, secret("spender-key", key), tenant("spender", "spender-key"), budget("spender-budget", "spender", "5")
    )
    wait_until(lambda: key_accepted(gateway, key), PROPAGATION_TIMEOUT, "the spender key to be accepted")
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "budget/spender-budget", timeout=90)

    client = gateway.client(key)
    usages = []
    for i in range(3):
        completion = client.chat.completions.create(
            model="demo-echo", messages=[{"role": "user", "content": f"spend {i} " + "x " * (10 * i)}]
        )
        usages.append(completion.usage)
    stream = client.chat.completions.create(
        model="demo-echo",
        messages=[{"role": "user", "content": "stream spend"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usages.append(list(stream)[-1].usage)
    expected = sum(
        ((u.prompt_tokens * DEMO_ECHO_INPUT + u.completion_tokens * DEMO_ECHO_OUTPUT) / 1_000_000 for u in usages),
        Decimal(0),
    )
    assert expected > 0

    def budget_status() -> dict[str, Any]:
        return kubectl.get(namespace, "budget/spender-budget").get("status") or {}

    status = wait_until(
        lambda: (s := budget_status()) and Decimal(s.get("spentUsd") or "0") == expected and s,
        CONVERGE_TIMEOUT,
        f"Budget status spentUsd == {expected}",
        describe=lambda: json.dumps(budget_status()),
    )
    assert Decimal(status["remainingUsd"]) == Decimal("5") - expected, status
    assert status.get("periodStart"), status
    gateway_conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert gateway_conditions.get("Exhausted") == "False", status["conditions"]
    assert gateway_conditions.get("ThresholdReached") == "False", status["conditions"]
    # The operator's conditions are kept next to the gateway's (lists keyed by type under server-side apply).
    budget_obj = kubectl.get(namespace, "budget/spender-budget")
    assert is_ready(budget_obj), summary([budget_obj])
    # kubectl shows the spend in the SPENT column.
    row = kubectl("get", "-n", namespace, "budget/spender-budget", "--no-headers").split()
    assert status["spentUsd"] in row, row

    # Backend health from the gateway's circuit breakers: the sample's mock backend is healthy.
    wait_until(
        lambda: (kubectl.get(namespace, "providerroute/demo-echo").get("status") or {}).get("healthyBackends") == 1,
        CONVERGE_TIMEOUT,
        "ProviderRoute demo-echo status healthyBackends == 1",
        describe=lambda: json.dumps(kubectl.get(namespace, "providerroute/demo-echo").get("status")),
    )

    def tenant_status() -> dict[str, Any]:
        return kubectl.get(namespace, "tenant/spender").get("status") or {}

    status = wait_until(
        lambda: (s := tenant_status()) and s.get("requests") == len(usages) and s,
        CONVERGE_TIMEOUT,
        f"Tenant status requests == {len(usages)}",
        describe=lambda: json.dumps(tenant_status()),
    )
    assert Decimal(status["spendUsd"]) == expected, status
    assert status.get("tokens") == sum(u.total_tokens for u in usages), status


def test_persona_status_shows_memories_interactions_and_mood(kubectl: Kubectl, namespace: str, gateway: Gateway) -> None:
    """A conversation with persona/ada leaves a memory and moves her mood; the gateway's status writer
    shows both on the Persona, beside the operator's conditions, and kubectl prints the mood."""
    client = gateway.client(DEMO_KEY)
    reply = client.chat.completions.create(
        model="persona/ada",
        messages=[{"role": "user", "content": "My favourite engine is the Analytical Engine. Thanks, you are wonderful!"}],
        user="e2e-subject",
    )
    assert reply.choices[0].message.content

    def persona_status() -> dict[str, Any]:
        return kubectl.get(namespace, "persona/ada").get("status") or {}

    status = wait_until(
        lambda: (s := persona_status()) and s.get("memoryCount", 0) >= 1 and s.get("interactions", 0) >= 1 and s,
        CONVERGE_TIMEOUT,
        "Persona status with a memory and an interaction",
        describe=lambda: json.dumps(persona_status()),
    )
    assert status["mood"]["valence"] > 0, status
    assert status["mood"]["description"], status
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["lastInteraction"]), status
    assert is_ready(kubectl.get(namespace, "persona/ada")), "the operator's conditions are kept"
    row = kubectl("get", "-n", namespace, "persona/ada", "--no-headers").split()
    assert status["mood"]["description"] in row, row


GATEKEEPER_KEY = "sk-e2e-gatekeeper-41d0"
GATE_POLICY = """package switchboard
import rego.v1
deny contains "demo-echo is closed to this team" if input.model == "demo-echo"
"""


def test_a_tenant_policy_decides_and_one_that_does_not_compile_is_reported(
    kubectl: Kubectl, namespace: str, gateway: Gateway
) -> None:
    """The operator compiles a Tenant's Rego policy when it renders: one that compiles is published and
    the gateway enforces it (403 with the policy's reason); an edit that does not compile makes the
    Tenant `Ready=False`, reason InvalidPolicy with the compiler's message, while its last good policy
    keeps applying (neither open nor shut). Fixed, the Tenant is Ready again."""
    gatekeeper = tenant("gatekeeper", "gatekeeper-key")
    gatekeeper["spec"]["policy"] = {"rego": GATE_POLICY}
    kubectl.apply(namespace, secret("gatekeeper-key", GATEKEEPER_KEY), gatekeeper)
    client = gateway.client(GATEKEEPER_KEY)

    def refused_by_policy() -> str:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "x"}])
        return refused.value.message

    message = wait_until(refused_by_policy, PROPAGATION_TIMEOUT, "the policy to be enforced")
    assert message.endswith("denied by the policy of Tenant gatekeeper: demo-echo is closed to this team"), message

    def ready() -> dict[str, Any] | None:
        return condition(kubectl.get(namespace, "tenant/gatekeeper"), "Ready")

    gatekeeper["spec"]["policy"] = {"rego": GATE_POLICY.replace('if input.model == "demo-echo"', "if {")}
    kubectl.apply(namespace, gatekeeper)
    broken = wait_until(lambda: (c := ready()) and c["status"] == "False" and c, CONVERGE_TIMEOUT, "gatekeeper not Ready")
    assert broken["reason"] == "InvalidPolicy", broken
    assert "spec.policy.rego" in broken["message"] and "policy.rego:" in broken["message"], broken
    assert "the last good policy keeps applying" in broken["message"], broken
    # The last good policy still decides: the key is neither refused (401) nor let through.
    assert refused_by_policy().endswith("demo-echo is closed to this team")

    gatekeeper["spec"]["policy"] = {"rego": GATE_POLICY.replace("closed to this team", "closed, fixed")}
    kubectl.apply(namespace, gatekeeper)
    wait_until(lambda: ready()["status"] == "True", CONVERGE_TIMEOUT, "gatekeeper Ready again")
    wait_until(lambda: refused_by_policy().endswith("closed, fixed"), PROPAGATION_TIMEOUT, "the fixed policy")
    assert gateway.key_works(DEMO_KEY)
