"""The MCP server at /mcp through the official MCP Python SDK (`mcp` 2.x) over Streamable HTTP.

Both lifecycles: `auto` (the SDK's default: `server/discover`, protocol 2026-07-28) and `legacy`
(the `initialize` handshake, 2025-11-25). The gateway is the real binary with the sample config
(persona `ada` on the `demo-echo` mock model), plus a second tenant whose key must see none of
demo's personas or memories.
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from harness import DEMO_KEY, http

TOOLS = {"list_personas", "chat", "remember", "recall", "forget", "get_relationship", "get_persona_state"}
OTHER_KEY = "sk-switchboard-mcp-other"
TIGHT_KEY = "sk-switchboard-mcp-tight"

# A second tenant with two personas of its own (carol is shared with demo), a tenant allowed two
# requests a minute, and two more demo personas: linus (a declared relationship with ada) and mute
# (memory off).
TENANTS = f"""
apiVersion: v1
kind: Secret
metadata: {{name: mcp-other-key}}
stringData: {{key: {OTHER_KEY}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: mcp-other}}
spec:
  apiKeys: [{{name: default, secretRef: {{name: mcp-other-key, key: key}}}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: bob}}
spec:
  tenant: mcp-other
  systemPrompt: You are Bob.
  model: demo-echo
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: carol}}
spec:
  tenant: mcp-other
  systemPrompt: You are Carol.
  model: demo-echo
  sharedWithTenants: [demo]
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: linus}}
spec:
  tenant: demo
  displayName: Linus
  systemPrompt: You are Linus.
  traits: [pragmatic, curious]
  interests: [programming, kernels]
  model: demo-echo
  relationships: [{{persona: ada, affinity: 40, trust: 70}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: mute}}
spec:
  tenant: demo
  systemPrompt: You forget everything.
  model: demo-echo
  memory: {{enabled: false}}
---
apiVersion: v1
kind: Secret
metadata: {{name: mcp-tight-key}}
stringData: {{key: {TIGHT_KEY}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: mcp-tight}}
spec:
  apiKeys: [{{name: default, secretRef: {{name: mcp-tight-key, key: key}}}}]
  rateLimits: {{requestsPerMinute: 2}}
"""
MANIFESTS = {"tenants-mcp.yaml": TENANTS}

TEA = "Grace drinks green tea with honey every morning"
NOISE = ["Grace owns a red bicycle", "Grace works on the night shift at the harbour"]


@asynccontextmanager
async def connect(gateway, key: str = DEMO_KEY, mode: str = "auto") -> AsyncIterator[Client]:
    """An MCP client session with the tenant key on every request (the SDK takes headers through
    the httpx2 client it is given)."""
    headers = {"authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http_client:
        transport = streamable_http_client(f"{gateway.url}/mcp", http_client=http_client)
        async with Client(transport, mode=mode) as client:
            yield client


def run(scenario) -> None:
    anyio.run(scenario)


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must succeed; returns its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {text_of(result)}"
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def call_error(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A tool call that must fail as a tool error; returns (text, structured error)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result}"
    return text_of(result), result.structured_content["error"]


def wait_for(check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, f"timed out waiting for {what}"
            return found
        time.sleep(0.05)


@pytest.mark.parametrize("mode, version", [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_tools_listed_and_chat_runs_as_a_metered_persona_turn(start_gateway, mode, version):
    gateway = start_gateway()
    request_ids: list[str] = []

    async def scenario():
        async with connect(gateway, mode=mode) as client:
            assert client.protocol_version == version
            tools = (await client.list_tools()).tools
            assert {tool.name for tool in tools} == TOOLS
            for tool in tools:
                assert tool.input_schema.get("type") == "object", tool
                assert tool.description, tool
            chat = next(tool for tool in tools if tool.name == "chat")
            assert set(chat.input_schema["required"]) == {"persona", "message"}

            result = await client.call_tool("chat", {"persona": "ada", "message": f"Hello over {mode}!"})
            assert not result.is_error, text_of(result)
            # demo-echo echoes the last message and says whether a system prompt (the persona's) came.
            assert f"Hello over {mode}!" in text_of(result)
            assert "system prompt: yes" in text_of(result)
            usage = result.structured_content["usage"]
            assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0
            request_ids.append(result.structured_content["requestId"])

    run(scenario)
    # The turn went through the exchange: a ledger row for the persona, on the MCP endpoint.
    rows = wait_for(lambda: [r for r in gateway.ledger() if r["id"] == request_ids[0]], "the ledger row")
    assert rows[0]["endpoint"] == "mcp"
    assert rows[0]["persona"] == "ada"
    assert rows[0]["status"] == 200
    assert rows[0]["tenant"] == "demo"


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_memories_survive_a_restart_and_never_reach_another_tenant(start_gateway, db):
    first = start_gateway(extra_manifests=MANIFESTS)
    stored: dict[str, str] = {}

    async def remember():
        async with connect(first) as client:
            for content in NOISE:
                await call(client, "remember", {"persona": "ada", "subject": "grace", "content": content})
            tea = await call(
                client,
                "remember",
                {"persona": "ada", "subject": "grace", "content": TEA, "kind": "preference", "importance": 7},
            )
            assert tea["created"] is True and tea["kind"] == "preference"
            stored["id"] = tea["id"]
            again = await call(client, "remember", {"persona": "ada", "subject": "grace", "content": TEA + "!"})
            # The same words: refreshed, not duplicated.
            assert (again["id"], again["created"]) == (tea["id"], False)

    run(remember)
    first.stop()
    # Same database, new process: nothing lived only in the first one's memory.
    gateway = start_gateway(extra_manifests=MANIFESTS)

    async def recall():
        async with connect(gateway) as client:
            found = await call(
                client, "recall", {"persona": "ada", "subject": "grace", "query": "Which tea does she drink?"}
            )
            memories = found["memories"]
            assert memories, found
            assert memories[0]["id"] == stored["id"] and memories[0]["content"] == TEA
            assert memories[0]["importance"] == 7
            assert all(m["score"] <= memories[0]["score"] for m in memories)
            state = await call(client, "get_persona_state", {"persona": "ada"})
            assert state["memories"] == 3
            names = [p["name"] for p in (await call(client, "list_personas", {}))["personas"]]
            assert "ada" in names and "carol" in names and "bob" not in names
            # carol is shared with demo by mcp-other: what demo's users tell her stays demo's.
            await call(client, "remember", {"persona": "carol", "subject": "grace", "content": "Grace plays chess"})

        async with connect(gateway, key=OTHER_KEY) as other:
            listed = await call(other, "list_personas", {})
            assert [p["name"] for p in listed["personas"]] == ["bob", "carol"]
            chess = await call(other, "recall", {"persona": "carol", "subject": "grace", "query": "chess"})
            assert chess["memories"] == [], "the owner of a shared persona must not read the memories of its users"
            text, error = await call_error(other, "recall", {"persona": "ada", "subject": "grace", "query": "tea"})
            assert error["code"] == "persona_not_found"
            assert "tea" not in text.lower()
            # bob's memories are the other tenant's: demo's subject has none there.
            empty = await call(other, "recall", {"persona": "bob", "subject": "grace", "query": "tea"})
            assert empty["memories"] == []
            # Forgetting a subject only ever deletes the caller's tenant's memories.
            assert (await call(other, "forget", {"subject": "grace"}))["deleted"] == 0
            uris = [str(r.uri) for r in (await other.list_resources()).resources]
            assert uris == ["persona://bob", "persona://carol"]
            with pytest.raises(MCPError) as missing:
                await other.read_resource("persona://ada")
            assert missing.value.error.code in (-32602, -32002)

        async with connect(gateway, mode="legacy") as client:
            still = await call(client, "recall", {"persona": "ada", "subject": "grace", "query": "green tea"})
            assert still["memories"][0]["id"] == stored["id"]
            one = await call(client, "forget", {"subject": "grace", "persona": "ada", "memory_id": stored["id"]})
            assert one["deleted"] == 1
            rest = await call(client, "forget", {"subject": "grace"})
            assert rest["deleted"] == len(NOISE) + 1  # ada's and carol's
            gone = await call(client, "recall", {"persona": "ada", "subject": "grace", "query": "green tea"})
            assert gone["memories"] == []

    run(recall)


def test_chat_with_a_subject_teaches_the_persona(start_gateway):
    gateway = start_gateway()

    async def scenario():
        async with connect(gateway) as client:
            message = "Hi! My name is Grace and I love sailing on the lake."
            await call(client, "chat", {"persona": "ada", "message": message, "subject": "grace"})

            async def sailing() -> list:
                found = await call(client, "recall", {"persona": "ada", "subject": "grace", "query": "sailing"})
                return found["memories"]

            deadline = time.monotonic() + 10
            while not (memories := await sailing()) and time.monotonic() < deadline:
                await anyio.sleep(0.05)
            assert memories and "sailing" in memories[0]["content"].lower(), memories
            state = await call(client, "get_persona_state", {"persona": "ada"})
            assert state["interactions"] >= 1 and state["lastInteraction"]

    run(scenario)


def test_invalid_arguments_and_unknown_names_get_clear_errors(start_gateway):
    gateway = start_gateway(extra_manifests=MANIFESTS)

    async def scenario():
        async with connect(gateway) as client:
            text, error = await call_error(client, "remember", {"subject": "grace", "content": "x"})
            assert error["code"] == "invalid_arguments"
            assert '"persona" is a required property' in text
            text, _ = await call_error(
                client, "remember", {"persona": "ada", "subject": "grace", "content": "x", "importance": 11}
            )
            assert "`/importance`" in text and "maximum of 10" in text
            text, _ = await call_error(
                client, "recall", {"persona": "ada", "subject": "grace", "query": "x", "limit": 0}
            )
            assert "`/limit`" in text
            # An oversized argument is named, not echoed back (a 340 KB one came back twice once).
            huge = "x" * 340_000
            text, _ = await call_error(client, "remember", {"persona": "ada", "subject": "grace", "content": huge})
            assert "`/content`" in text and len(text) < 2_000, len(text)
            text, error = await call_error(client, "chat", {"persona": "nobody", "message": "hi"})
            assert error["code"] == "persona_not_found" and "`nobody`" in text
            text, error = await call_error(client, "remember", {"persona": "mute", "subject": "g", "content": "x"})
            assert error["code"] == "memory_disabled" and "memory disabled" in text
            text, _ = await call_error(client, "get_relationship", {"persona": "ada", "other": "ada"})
            assert "itself" in text
            with pytest.raises(MCPError) as unknown:
                await client.call_tool("no_such_tool", {})
            assert unknown.value.error.code == -32602

    run(scenario)


def test_relationships_start_from_the_spec_and_stay_within_an_owner(start_gateway):
    gateway = start_gateway(extra_manifests=MANIFESTS)

    async def scenario():
        async with connect(gateway) as client:
            linus = await call(client, "get_relationship", {"persona": "linus", "other": "ada"})
            bond = linus["bond"]
            assert (bond["affinity"], bond["trust"], bond["interactions"]) == (40, 70, 0)
            assert bond["lastInteraction"] is None and "Ada" in linus["description"]
            compatibility = linus["compatibility"]
            assert 0 <= compatibility["score"] <= 100
            assert compatibility["sharedInterests"] == ["programming"]
            # No declared relationship: neutral affinity, default trust.
            ada = await call(client, "get_relationship", {"persona": "ada", "other": "linus"})
            assert (ada["bond"]["affinity"], ada["bond"]["trust"]) == (0, 50)
            text, error = await call_error(client, "get_relationship", {"persona": "ada", "other": "carol"})
            assert error["code"] == "invalid_request" and "different owners" in text
            _, error = await call_error(client, "get_relationship", {"persona": "ada", "other": "bob"})
            assert error["code"] == "persona_not_found"
            profile = json.loads((await client.read_resource("persona://linus")).contents[0].text)
            assert [(r["persona"], r["bond"]["trust"]) for r in profile["relationships"]] == [("ada", 70)]

    run(scenario)


def test_persona_resources_list_and_read(start_gateway):
    gateway = start_gateway()

    async def scenario():
        async with connect(gateway) as client:
            resources = (await client.list_resources()).resources
            ada = next(r for r in resources if str(r.uri) == "persona://ada")
            assert ada.mime_type == "application/json"
            contents = (await client.read_resource("persona://ada")).contents
            profile = json.loads(contents[0].text)
            assert profile["name"] == "ada" and profile["displayName"] == "Ada"
            assert "precise" in profile["traits"] and profile["model"] == "demo-echo"
            assert set(profile["mood"]) == {"valence", "arousal", "description"}
            assert isinstance(profile["relationships"], list)
            with pytest.raises(MCPError) as missing:
                await client.read_resource("persona://nobody")
            assert missing.value.error.code == -32602  # resource not found, as of 2026-07-28
            assert missing.value.error.data == {"uri": "persona://nobody"}

    run(scenario)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_personas_are_prompts_with_the_subjects_memories_and_completion(start_gateway, mode):
    from mcp.types import PromptReference

    gateway = start_gateway(MANIFESTS)

    async def scenario():
        async with connect(gateway, mode=mode) as client:
            names = {p.name: p for p in (await client.list_prompts()).prompts}
            assert {"ada", "linus", "carol"} <= set(names) and "bob" not in names, names
            assert [a.name for a in names["ada"].arguments] == ["subject", "topic"]
            await call(client, "remember", {"persona": "ada", "subject": "grace-prompt", "content": TEA})
            await call(client, "remember", {"persona": "ada", "subject": "grant-prompt", "content": NOISE[0]})
            prompt = await client.get_prompt("ada", {"subject": "grace-prompt", "topic": "what does she drink"})
            text = prompt.messages[0].content.text
            assert prompt.messages[0].role == "user"
            assert "You are Ada" in text and TEA in text and NOISE[0] not in text, text
            bare = (await client.get_prompt("ada")).messages[0].content.text
            assert "You are Ada" in bare and TEA not in bare
            done = await client.complete(PromptReference(type="ref/prompt", name="ada"), {"name": "subject", "value": "gra"})
            assert done.completion.values == ["grace-prompt", "grant-prompt"]
            with pytest.raises(MCPError) as unknown:
                await client.get_prompt("bob")
            assert unknown.value.error.code == -32602
        async with connect(gateway, key=OTHER_KEY, mode=mode) as other:
            done = await other.complete(PromptReference(type="ref/prompt", name="carol"), {"name": "subject", "value": "gra"})
            assert done.completion.values == [], "another tenant's subjects never show"

    run(scenario)


def test_tool_calls_count_against_the_tenant_rate_limit(start_gateway):
    gateway = start_gateway(extra_manifests=MANIFESTS)

    async def scenario():
        async with connect(gateway, key=TIGHT_KEY) as client:
            for _ in range(2):
                await call(client, "list_personas", {})
            text, error = await call_error(client, "list_personas", {})
            assert error["code"] == "rate_limit_exceeded"
            assert error["retryAfterSeconds"] >= 1 and "retry in" in text

    run(scenario)


def test_mcp_needs_a_key_and_a_trusted_host(start_gateway):
    gateway = start_gateway()
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}}
    accept = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    status, _, _ = http("POST", f"{gateway.url}/mcp", body, accept)
    assert status == 401
    authorized = {**accept, "authorization": f"Bearer {DEMO_KEY}"}
    status, _, response = http("POST", f"{gateway.url}/mcp", body, {**authorized, "host": "evil.example.com"})
    assert status == 403, response
    status, _, response = http("POST", f"{gateway.url}/mcp", body, {**authorized, "origin": "http://evil.example.com"})
    assert status == 403, response
