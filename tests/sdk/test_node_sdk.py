"""The official OpenAI and Anthropic Node SDKs (pinned in tests/sdk/node/package-lock.json, installed by
scripts/node-sdk.sh) against the gateway: tests/sdk/node/clients.mjs makes every call a Node client
makes (chat, the Responses API plain, streamed, continued and retrieved, Messages, token counting,
structured output on an Anthropic route, embeddings, legacy completions, model lookup) on the
samples' mock and on the fake's OpenAI and Anthropic routes."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from harness import DEMO_KEY, ROOT
from ledger import FAKE_REPLY_PREFIX
from test_anthropic_upstream import ANTHROPIC_ROUTE


@pytest.fixture(scope="session")
def node_sdks() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "node-sdk.sh")], check=True, timeout=900)


def test_the_node_sdks_call_every_surface_on_every_backend(node_sdks, start_gateway, fake_upstream):
    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    env = {**os.environ, "GATEWAY_URL": gateway.url, "GATEWAY_KEY": DEMO_KEY}
    run = subprocess.run(
        ["node", "clients.mjs"], cwd=ROOT / "tests" / "sdk" / "node", env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)

    mock = seen["demo-echo"]
    assert mock["response"] == "echo (demo-echo, 2 messages, system prompt: yes): hello node"
    assert mock["continued"] == "echo (demo-echo, 3 messages, system prompt: no): again"
    assert mock["streamed"] == "echo (demo-echo, 1 messages, system prompt: no): hello node"
    assert (mock["firstEvent"], mock["lastEvent"]) == ("response.created", "response.completed")
    for model in ("local-model", "fake-claude"):
        backend = seen[model]
        assert backend["chat"] == backend["message"] == FAKE_REPLY_PREFIX + "hello node", backend
        assert backend["response"] == backend["streamed"] == FAKE_REPLY_PREFIX + "hello node", backend
        assert backend["continued"] == FAKE_REPLY_PREFIX + "again"
    for model in ("demo-echo", "local-model", "fake-claude"):
        backend = seen[model]
        assert backend["retrieved"] == backend["response"] and backend["continuedFrom"].startswith("resp_")
        assert backend["responseUsage"]["total_tokens"] > 0
    # Anthropic's count is exact, and so is the mock's; the OpenAI route's is an estimate.
    assert seen["fake-claude"]["counted"] == seen["fake-claude"]["messageInput"]
    assert seen["demo-echo"]["counted"] == seen["demo-echo"]["messageInput"]
    assert seen["local-model"]["counted"] > 0
    assert seen["structured"] == {"sky": "fake"}
    assert seen["embeddings"] == [8, 8] and seen["embeddingTokens"] == 5
    assert seen["completion"] == "fake-upstream completion of: Once upon a time"
    assert (seen["openaiModel"], seen["anthropicModel"]) == ("demo-echo", "model")
