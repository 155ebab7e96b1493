"""Persona memory that understands meaning, with a real sentence-embedding model (all-MiniLM-L6-v2
behind /v1/embeddings, the `embedder` fixture): memories learnt from conversations through the
OpenAI SDK are recalled by questions that share no word with them, on SQLite and PostgreSQL; the
embedding calls are metered and counted against the tenant's budget; a change of embedding model
re-embeds every memory in the background; a persona shared with another tenant never recalls the
owner's memories for it; a failing embedding model leaves recall to words, never fails the chat."""

from __future__ import annotations

import json
import time

import pytest

from harness import ADMIN_TOKEN, DEMO_KEY, http

OTHER_KEY = "sk-switchboard-other-tenant"

# What grace tells the personas, one fact a sentence (each one a memory by the extraction rules),
# and questions that share no word or stem with the fact they are about.
FACTS = [
    "I am allergic to peanuts.",
    "My uncle has a house in Lyon.",
    "My car is a red Toyota.",
    "My dog is called Rex.",
    "I work as a night nurse.",
]
QUESTIONS = {
    "What food should I avoid?": "I am allergic to peanuts.",
    "Where does my family live?": "My uncle has a house in Lyon.",
    "What vehicle do I own?": "My car is a red Toyota.",
}


def manifests(embedder_url: str, model: str = "minilm") -> dict[str, str]:
    route = f"""
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: minilm}}
spec:
  models:
    - {{name: minilm, upstreamModel: all-minilm-l6-v2, kind: Embedding, pricing: {{inputPerMillion: "1000"}}}}
    - {{name: minilm-v2, upstreamModel: all-minilm-l6-v2, kind: Embedding, pricing: {{inputPerMillion: "1000"}}}}
  backends:
    - {{name: embedder, provider: openai, baseUrl: "{embedder_url}"}}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: broken-embed}}
spec:
  models:
    - {{name: broken-embed, kind: Embedding, pricing: {{inputPerMillion: "1000"}}}}
  backends:
    - {{name: nowhere, provider: openai, baseUrl: "http://127.0.0.1:9/v1", connectTimeoutSeconds: 1}}
"""

    def persona(name: str, embedding: str | None, shared: str = "[]") -> str:
        memory = "{extraction: Rules" + (f", embeddingModel: {embedding}" if embedding else "") + "}"
        return f"""
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {{name: {name}}}
spec:
  tenant: demo
  systemPrompt: You are {name}, a helpful assistant.
  model: local-model
  sharedWithTenants: {shared}
  memory: {memory}
"""
    other = f"""
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
    return {
        "route-minilm.yaml": route,
        "persona-meaning.yaml": persona("meaning", model, shared="[other]"),
        "persona-words.yaml": persona("words", None),
        "persona-broken.yaml": persona("broken", "broken-embed"),
        "tenant-other.yaml": other,
    }


def admin(gateway, path: str) -> dict:
    status, _, body = http("GET", f"{gateway.admin_url}{path}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200, body
    return json.loads(body)


def without_vector(gateway, persona: str) -> int | None:
    [row] = [p for p in admin(gateway, "/admin/v1/personas")["data"] if p["name"] == persona]
    return row["memories_without_vector"]


def memory_count(gateway, subject: str, key: str = DEMO_KEY) -> int:
    status, _, body = http(
        "GET", f"{gateway.url}/v1/subjects/{subject}/memories", headers={"authorization": f"Bearer {key}"}
    )
    assert status == 200, body
    return len(json.loads(body)["memories"])


def wait_until(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


def teach(client, persona: str, subject: str = "grace") -> None:
    client.chat.completions.create(
        model=f"persona/{persona}", messages=[{"role": "user", "content": " ".join(FACTS)}], user=subject
    )


def recalled(client, fake_upstream, persona: str, question: str, subject: str = "grace") -> list[str]:
    """The memories the persona's system message carried for `question`, most relevant first."""
    fake_upstream.clear()
    client.chat.completions.create(
        model=f"persona/{persona}", messages=[{"role": "user", "content": question}], user=subject
    )
    [request] = [r for r in fake_upstream.requests() if r["body"].get("messages")]
    system = request["body"]["messages"][0]["content"]
    return [line[2:] for line in system.splitlines() if line.startswith("- ")]


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_questions_sharing_no_word_recall_by_meaning_metered_and_budgeted(
    start_gateway, fake_upstream, embedder, db
):
    gateway = start_gateway(extra_manifests=manifests(embedder))
    client = gateway.openai()
    for persona in ("meaning", "words"):
        teach(client, persona)
    wait_until("the memories", lambda: memory_count(gateway, "grace") == 2 * len(FACTS))
    wait_until("their vectors", lambda: without_vector(gateway, "meaning") == 0)
    assert without_vector(gateway, "words") is None, "no embedding model, nothing to embed"

    for question, fact in QUESTIONS.items():
        by_meaning = recalled(client, fake_upstream, "meaning", question)
        assert by_meaning[0] == fact, (question, by_meaning)
        # The same memories by words alone: the question shares no word with its fact.
        assert fact not in recalled(client, fake_upstream, "words", question), question

    gateway.stop()  # flushes the ledger
    rows = [r for r in gateway.ledger() if r["endpoint"] == "memory_embedding"]
    # Two calls for the first turn (its message to recall by, then the memories it taught), one
    # per question asked of "meaning" (a question teaches nothing).
    assert len(rows) == 2 + len(QUESTIONS), rows
    for row in rows:
        assert row["tenant"] == "demo" and row["persona"] == "meaning" and row["status"] == 200, row
        assert row["input_tokens"] > 0 and row["cost_nanos"] == row["input_tokens"] * 1_000_000, row
    # The tenant's budget counts them like any other spend.
    spent = sum(r["cost_nanos"] for r in gateway.ledger() if r["tenant"] == "demo")
    restarted = start_gateway(extra_manifests=manifests(embedder))
    [budget] = [b for b in admin(restarted, "/admin/v1/budgets")["data"] if b["name"] == "demo-monthly"]
    assert round(float(budget["spent_usd"]) * 1e9) == spent, (budget, spent)
    assert spent > sum(r["cost_nanos"] for r in rows) > 0


def test_a_new_embedding_model_re_embeds_every_memory_in_the_background(start_gateway, fake_upstream, embedder, db):
    gateway = start_gateway(extra_manifests=manifests(embedder))
    client = gateway.openai()
    teach(client, "meaning")
    teach(client, "meaning", subject="linus")
    wait_until("the memories", lambda: memory_count(gateway, "linus") == len(FACTS))
    wait_until("their vectors", lambda: without_vector(gateway, "meaning") == 0)

    # The Persona now names another model: every memory waits for its vector, and the background
    # embedder (billed to the memories' tenant under its own key name) works through them.
    path = gateway.config_dir / "persona-meaning.yaml"
    path.write_text(manifests(embedder, model="minilm-v2")["persona-meaning.yaml"])
    wait_until("the new model", lambda: any(
        p["name"] == "meaning" and p["memory"].get("embeddingModel") == "minilm-v2"
        for p in admin(gateway, "/admin/v1/personas")["data"]))
    wait_until("the re-embedding", lambda: without_vector(gateway, "meaning") == 0, timeout=60)
    assert recalled(client, fake_upstream, "meaning", "What food should I avoid?")[0] == FACTS[0]

    gateway.stop()
    background = [r for r in gateway.ledger() if r["api_key"] == "switchboard:persona-memory"]
    assert background and all(r["endpoint"] == "memory_embedding" and r["tenant"] == "demo" for r in background)
    assert sum(r["input_tokens"] for r in background) > 0


def test_a_shared_persona_recalls_only_the_callers_tenants_memories(start_gateway, fake_upstream, embedder, db):
    gateway = start_gateway(extra_manifests=manifests(embedder))
    teach(gateway.openai(), "meaning")
    wait_until("the vectors", lambda: memory_count(gateway, "grace") == len(FACTS)
               and without_vector(gateway, "meaning") == 0)
    # Tenant other talks to the same persona about a subject of the same name: demo's memories
    # of grace are demo's, by meaning as by words.
    other = gateway.openai(key=OTHER_KEY)
    assert recalled(other, fake_upstream, "meaning", "What food should I avoid?") == []
    other.chat.completions.create(
        model="persona/meaning", messages=[{"role": "user", "content": "I am allergic to shellfish."}], user="grace"
    )
    wait_until("other's memory", lambda: memory_count(gateway, "grace", key=OTHER_KEY) == 1
               and without_vector(gateway, "meaning") == 0)
    assert recalled(other, fake_upstream, "meaning", "What food should I avoid?") == ["I am allergic to shellfish."]
    assert recalled(gateway.openai(), fake_upstream, "meaning", "What food should I avoid?")[0] == FACTS[0]


def test_a_failing_embedding_model_leaves_recall_to_words(start_gateway, fake_upstream, embedder, db):
    gateway = start_gateway(extra_manifests=manifests(embedder))
    client = gateway.openai()
    teach(client, "broken")
    wait_until("the memories", lambda: memory_count(gateway, "grace") == len(FACTS))
    # The chat is served; the memories are recalled by their words; the gateway says why.
    assert recalled(client, fake_upstream, "broken", "Is the red Toyota mine?")[0] == "My car is a red Toyota."
    assert without_vector(gateway, "broken") == len(FACTS), "left for the background embedder to retry"
    wait_until("the warning", lambda: "memory embedding failed; recalling by words" in gateway.process.log_tail(200))
    gateway.stop()
    failed = [r for r in gateway.ledger() if r["endpoint"] == "memory_embedding"]
    assert failed and all(r["status"] >= 500 and r["cost_nanos"] == 0 for r in failed), failed


def test_a_new_fact_supersedes_the_old_one_and_recall_returns_what_is_true_now(start_gateway, fake_upstream, embedder, db):
    gateway = start_gateway(extra_manifests=manifests(embedder))
    client = gateway.openai()
    for said in ("I live in Leeds. My car is a red Toyota.", "I moved to York. My car is a blue Volvo."):
        client.chat.completions.create(model="persona/meaning", messages=[{"role": "user", "content": said}], user="grace")
    wait_until("the memories", lambda: memory_count(gateway, "grace") == 4 and without_vector(gateway, "meaning") == 0)
    remembered = recalled(client, fake_upstream, "meaning", "Where is my home and what do I drive?")
    assert "I moved to York." in remembered and "My car is a blue Volvo." in remembered, remembered
    assert "I live in Leeds." not in remembered and "My car is a red Toyota." not in remembered, remembered
    # The old facts are history: exported with when, and by which memory, they were superseded.
    status, _, body = http(
        "GET", f"{gateway.url}/v1/subjects/grace/memories", headers={"authorization": f"Bearer {DEMO_KEY}"}
    )
    exported = {m["content"]: m for m in json.loads(body)["memories"]}
    by_id = {m["id"]: m["content"] for m in exported.values()}
    assert by_id[exported["I live in Leeds."]["supersededBy"]] == "I moved to York."
    assert by_id[exported["My car is a red Toyota."]["supersededBy"]] == "My car is a blue Volvo."
    assert exported["I live in Leeds."]["supersededAtMs"] >= exported["I live in Leeds."]["createdAtMs"]
    assert "supersededAtMs" not in exported["I moved to York."] and exported["I moved to York."]["slot"] == "home"
