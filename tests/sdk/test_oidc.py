"""Callers identified by a real OpenID Connect provider: Ory Hydra (built from the Go module proxy by
scripts/hydra.sh, the module in tests/oidc), issuing OAuth 2.0 client-credentials access tokens as
RS256 JWTs. A Tenant trusts Hydra as its issuer (`spec.jwtIssuers`); the OpenAI SDK calls the
gateway with an access token as its API key and is metered as that Tenant; a token for another
audience is refused with the reason; Hydra's key rotation is picked up, and when Hydra is down the
keys already fetched keep working while a key never seen is refused."""

from __future__ import annotations

import json
import time
from typing import Callable

import anyio
import httpx2
import openai
import pytest
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from harness import Gateway, http
from hydra import Hydra, OAuthClient, hydra, kid_of  # noqa: F401 (the fixture)


def tenant_trusting(hydra: Hydra, client: OAuthClient) -> str:
    return f"""
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: platform-ci}}
spec:
  displayName: CI jobs signing in with the company's identity provider
  jwtIssuers:
    - name: hydra
      issuer: "{hydra.issuer}"
      audiences: [switchboard]
      requiredClaims: {{client_id: "{client.client_id}"}}
"""


def gateway_trusting(start_gateway: Callable[..., Gateway], hydra: Hydra, client: OAuthClient) -> Gateway:
    return start_gateway(extra_manifests={"tenant-oidc.yaml": tenant_trusting(hydra, client)})


def test_the_openai_sdk_calls_with_an_access_token(start_gateway, hydra: Hydra) -> None:
    client = hydra.client("switchboard")
    gateway = gateway_trusting(start_gateway, hydra, client)
    token = hydra.token(client, "switchboard")
    sdk = gateway.openai(key=token)
    completion = sdk.chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "hello"}])
    assert completion.choices[0].message.content
    chunks = list(
        sdk.chat.completions.create(model="demo-echo", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert chunks
    assert {m.id for m in sdk.models.list()} >= {"demo-echo"}

    # The ledger's writer batches rows off the request path: they may take a moment.
    deadline = time.monotonic() + 10
    while len(rows := [r for r in gateway.ledger() if r["tenant"] == "platform-ci"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(r["api_key"], r["status"]) for r in rows] == [("hydra", 200), ("hydra", 200)], rows
    # The token never reaches the log.
    assert token not in gateway.process.log_path.read_text()


def test_a_token_for_another_audience_or_client_is_refused(start_gateway, hydra: Hydra) -> None:
    trusted = hydra.client("switchboard")
    gateway = gateway_trusting(start_gateway, hydra, trusted)
    # Issued by the trusted provider, but for another service.
    elsewhere = hydra.client("billing-api")
    with pytest.raises(openai.AuthenticationError) as refused:
        gateway.openai(key=hydra.token(elsewhere, "billing-api")).models.list()
    assert refused.value.code == "invalid_token"
    assert "audience or claims" in refused.value.message
    # For this audience, but another client than the Tenant names.
    stranger = hydra.client("switchboard")
    with pytest.raises(openai.AuthenticationError) as refused:
        gateway.openai(key=hydra.token(stranger, "switchboard")).models.list()
    assert "audience or claims" in refused.value.message


def test_rotated_keys_are_fetched_and_an_outage_keeps_the_known_ones(start_gateway, hydra: Hydra) -> None:
    client = hydra.client("switchboard")
    gateway = gateway_trusting(start_gateway, hydra, client)
    first = hydra.token(client, "switchboard")
    gateway.openai(key=first).models.list()

    hydra.rotate("rotated-1")
    second = hydra.token(client, "switchboard")
    assert kid_of(second) == "rotated-1"
    # The gateway fetches a key set at most every 10 s: the new key is accepted once it may.
    deadline = time.monotonic() + 20
    while True:
        try:
            gateway.openai(key=second).models.list()
            break
        except openai.AuthenticationError as error:
            assert "has no key" in error.message, error.message
            assert time.monotonic() < deadline, "the rotated key was never accepted"
            time.sleep(0.5)

    hydra.rotate("rotated-2")
    third = hydra.token(client, "switchboard")
    hydra.process.terminate(timeout=10)
    # Down: the keys already fetched keep serving; a key never seen fails closed.
    gateway.openai(key=first).models.list()
    gateway.openai(key=second).models.list()
    with pytest.raises(openai.AuthenticationError) as refused:
        gateway.openai(key=third).models.list()
    assert "has no key" in refused.value.message


# The URL MCP clients reach /mcp at, as an operator sets it with --mcp-resource (behind an Ingress).
MCP_RESOURCE = "https://llm.switchboard.test/mcp"


def test_mcp_takes_tokens_issued_for_it_and_says_why_it_refuses(start_gateway, hydra: Hydra) -> None:
    client = hydra.client("switchboard")
    allow_audience(hydra, client, ["switchboard", MCP_RESOURCE])
    gateway = start_gateway(
        extra_manifests={"tenant-oidc.yaml": tenant_trusting(hydra, client)}, args=["--mcp-resource", MCP_RESOURCE]
    )
    # RFC 9728 metadata, at both well-known paths: this resource, and the providers tenants trust.
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        status, _, raw = http("GET", f"{gateway.url}{path}")
        assert status == 200, raw
        metadata = json.loads(raw)
        assert metadata["resource"] == MCP_RESOURCE and metadata["authorization_servers"] == [hydra.issuer]

    for_mcp = hydra.token(client, MCP_RESOURCE)
    tools = anyio.run(list_tools, gateway, for_mcp)
    assert "chat" in tools

    # A token of the same provider and client for the LLM API is not one for this MCP server,
    # and the other way round.
    for_api = hydra.token(client, "switchboard")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    status, answer_headers, raw = http("POST", f"{gateway.url}/mcp", body, {**headers, "authorization": f"Bearer {for_api}"})
    assert status == 401, raw
    challenge = answer_headers["www-authenticate"]
    assert 'resource_metadata="https://llm.switchboard.test/.well-known/oauth-protected-resource/mcp"' in challenge
    assert 'error="invalid_token"' in challenge and "another resource" in challenge
    assert "another resource" in json.loads(raw)["error"]["message"]  # a JSON-RPC error
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key=for_mcp).models.list()
    # Without any credential, the 401 still points to the metadata.
    status, answer_headers, _ = http("POST", f"{gateway.url}/mcp", body, headers)
    assert status == 401 and "resource_metadata=" in answer_headers["www-authenticate"]
    # The MCP Python SDK shows the gateway's reason.
    with pytest.raises(BaseException) as refused:
        anyio.run(list_tools, gateway, for_api)
    assert "another resource" in describe(refused.value), describe(refused.value)


def allow_audience(hydra: Hydra, client: OAuthClient, audiences: list[str]) -> None:
    """Lets `client` ask for tokens for each of `audiences` (Hydra's per-client allow-list)."""
    patch = [{"op": "replace", "path": "/audience", "value": audiences}]
    url = f"{hydra.admin}/admin/clients/{client.client_id}"
    status, _, raw = http("PATCH", url, patch, {"content-type": "application/json"})
    assert status == 200, raw


async def list_tools(gateway: Gateway, token: str) -> list[str]:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http_client:
        async with McpClient(streamable_http_client(f"{gateway.url}/mcp", http_client=http_client)) as session:
            return [tool.name for tool in (await session.list_tools()).tools]


def describe(error: BaseException) -> str:
    """An exception with everything it wraps (exception groups, causes), as text."""
    parts = [f"{type(error).__name__}: {error}"]
    for inner in getattr(error, "exceptions", ()):
        parts.append(describe(inner))
    if error.__cause__ is not None:
        parts.append(describe(error.__cause__))
    return "\n".join(parts)
