"""Personas through the real OpenAI Python SDK: `model="persona/ada"` reaches the upstream with the
persona's system prompt and the memories relevant to the caller, which the gateway learned from an
earlier message; other tenants see neither; a subject's memories can be exported and forgotten."""

from __future__ import annotations

import json
import time

import openai
import pytest

from harness import DEMO_KEY, http

OTHER_KEY = "sk-switchboard-other-tenant"

# The sample persona, on the recording fake upstream instead of the built-in mock.
ADA_ON_FAKE = """
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {name: ada}
spec:
  tenant: demo
  displayName: Ada
  systemPrompt: You are Ada, a precise and friendly engineering assistant.
  traits: [precise, curious]
  interests: [engines]
  model: local-model
  memory: {extraction: Rules, sharing: {scope: Private}}
"""

OTHER_TENANT = f"""
apiVersion: v1
kind: Secret
metadata: {{name: other-key}}
stringData: {{key: {OTHER_KEY}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: other}}
spec:
  apiKeys: [{{name: default, secretRef: {{name: other-key, key: key}}}}]
"""

MANIFESTS = {"persona-ada.yaml": ADA_ON_FAKE, "tenant-other.yaml": OTHER_TENANT}


def system_message_of(request: dict) -> str:
    messages = request["body"]["messages"]
    assert messages[0]["role"] == "system", messages
    return messages[0]["content"]


def memories(gateway, subject: str, key: str = DEMO_KEY) -> list[dict]:
    status, _, body = http(
        "GET", f"{gateway.url}/v1/subjects/{subject}/memories", headers={"authorization": f"Bearer {key}"}
    )
    assert status == 200, body
    return json.loads(body)["memories"]


def wait_for_memories(gateway, subject: str, count: int) -> list[dict]:
    """Learning runs after the reply, off the request path: poll briefly for it."""
    deadline = time.monotonic() + 10
    while True:
        found = memories(gateway, subject)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_persona_speaks_with_its_prompt_and_remembers_the_caller(start_gateway, fake_upstream, db):
    gateway = start_gateway(extra_manifests=MANIFESTS)
    client = gateway.openai()
    fake_upstream.clear()

    first = client.chat.completions.create(
        model="persona/ada",
        messages=[{"role": "user", "content": "Hi! My name is Grace and I love sailing on the lake."}],
        user="grace",
    )
    assert first.choices[0].message.content
    [request] = fake_upstream.requests()
    system = system_message_of(request)
    assert system.startswith("You are Ada, a precise and friendly engineering assistant."), system
    assert "Your personality: precise and curious. You care about engines." in system, system
    assert "remember" not in system, "nothing is remembered before the first conversation"
    assert request["body"]["model"] != "persona/ada", "the upstream gets the persona's model, not its name"

    stored = wait_for_memories(gateway, "grace", 1)
    assert [m["content"] for m in stored] == ["My name is Grace and I love sailing on the lake."], stored
    assert stored[0]["persona"] == "ada" and stored[0]["kind"] == "fact"

    fake_upstream.clear()
    client.chat.completions.create(
        model="persona/ada",
        messages=[{"role": "user", "content": "Which boats suit sailing on a small lake?"}],
        user="grace",
    )
    [request] = fake_upstream.requests()
    system = system_message_of(request)
    assert "- My name is Grace and I love sailing on the lake." in system, system
    # The memory is the caller's: another subject's conversation does not carry it.
    fake_upstream.clear()
    client.chat.completions.create(
        model="persona/ada", messages=[{"role": "user", "content": "Sailing tips?"}], user="someone-else"
    )
    assert "Grace" not in system_message_of(fake_upstream.requests()[0])

    # Another tenant sees neither the persona nor the memories.
    other = gateway.openai(key=OTHER_KEY)
    with pytest.raises(openai.NotFoundError) as refused:
        other.chat.completions.create(model="persona/ada", messages=[{"role": "user", "content": "hi"}], user="grace")
    assert refused.value.body["code"] == "model_not_found"
    assert "persona/ada" not in [m.id for m in other.models.list()]
    assert "persona/ada" in [m.id for m in client.models.list()]
    assert memories(gateway, "grace", key=OTHER_KEY) == []

    # The right to be forgotten: everything about the subject goes, and the persona forgets it.
    status, _, body = http(
        "DELETE", f"{gateway.url}/v1/subjects/grace/memories", headers={"authorization": f"Bearer {DEMO_KEY}"}
    )
    assert status == 200 and json.loads(body)["deleted"] == 1, body
    assert memories(gateway, "grace") == []
    fake_upstream.clear()
    client.chat.completions.create(
        model="persona/ada", messages=[{"role": "user", "content": "Sailing again?"}], user="grace"
    )
    assert "Grace" not in system_message_of(fake_upstream.requests()[0])

    gateway.stop()  # flushes the ledger
    rows = [r for r in gateway.ledger() if r["model"] == "persona/ada"]
    assert len(rows) == 4 and all(r["persona"] == "ada" and r["tenant"] == "demo" for r in rows), rows


def test_subject_header_and_anthropic_sdk_reach_the_same_persona(start_gateway, fake_upstream, db):
    gateway = start_gateway(extra_manifests=MANIFESTS)
    client = gateway.anthropic(default_headers={"x-switchboard-subject": "linus"})
    fake_upstream.clear()
    reply = client.messages.create(
        model="persona/ada", max_tokens=64, messages=[{"role": "user", "content": "I prefer tabs over spaces."}]
    )
    assert reply.content[0].text
    assert system_message_of(fake_upstream.requests()[0]).startswith("You are Ada")
    stored = wait_for_memories(gateway, "linus", 1)
    assert [m["content"] for m in stored] == ["I prefer tabs over spaces."]
    assert stored[0]["kind"] == "preference"
