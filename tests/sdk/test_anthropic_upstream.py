"""Both SDKs against a route whose upstream speaks Anthropic's Messages API (the fake's /v1/messages).

OpenAI clients go through the OpenAI<->Anthropic translation (also for streams); Anthropic clients
reach an Anthropic upstream. The upstream gets the route's provider key, never the tenant's.
"""

from __future__ import annotations

import json
import time

from harness import DEMO_KEY
from ledger import FAKE_REPLY_PREFIX, Expected, Usage, assert_ids_are_request_ids, assert_ledger

UPSTREAM_KEY = "sk-upstream-anthropic-test"

ANTHROPIC_ROUTE = f"""
apiVersion: v1
kind: Secret
metadata:
  name: fake-claude-key
type: Opaque
stringData:
  key: {UPSTREAM_KEY}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: fake-claude
spec:
  models:
    - name: fake-claude
      upstreamModel: claude-upstream
      pricing: {{inputPerMillion: "3", outputPerMillion: "15", cachedInputPerMillion: "0.30", cacheWritePerMillion: "3.75"}}
  backends:
    - name: claude
      provider: anthropic
      baseUrl: "{{FAKE_BASE_URL}}"
      apiKeySecretRef: {{name: fake-claude-key, key: key}}
  retries: {{attempts: 0}}
"""

MODEL = "fake-claude"


def test_openai_and_anthropic_clients_on_an_anthropic_upstream(start_gateway, fake_upstream):
    fake_upstream.clear()
    started_ms = int(time.time() * 1000)
    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    prompt = "Translate this request for the Anthropic upstream"
    messages = [{"role": "user", "content": prompt}]
    expected: list[Expected] = []

    openai_client = gateway.openai()
    completion = openai_client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content == FAKE_REPLY_PREFIX + prompt
    assert completion.choices[0].finish_reason == "stop"
    usage = Usage.from_openai(completion.usage)
    expected.append(Expected(completion._request_id, MODEL, "chat_completions", False, usage))

    stream = openai_client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == FAKE_REPLY_PREFIX + prompt
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert Usage.from_openai(chunks[-1].usage) == usage
    expected.append(
        Expected(stream.response.headers.get("x-request-id"), MODEL, "chat_completions", True, usage)
    )

    anthropic_client = gateway.anthropic()
    message = anthropic_client.messages.create(model=MODEL, max_tokens=256, messages=messages)
    assert message.content[0].text == FAKE_REPLY_PREFIX + prompt
    expected.append(Expected(message._request_id, MODEL, "messages", False, Usage.from_anthropic(message.usage)))

    with anthropic_client.messages.stream(model=MODEL, max_tokens=256, messages=messages) as s:
        assert "".join(s.text_stream) == FAKE_REPLY_PREFIX + prompt
        final = s.get_final_message()
        request_id = s.request_id or s.response.headers.get("request-id")
    expected.append(Expected(request_id, MODEL, "messages", True, Usage.from_anthropic(final.usage)))

    gateway.stop()
    rows = gateway.ledger()
    assert_ledger(rows, expected, started_ms)
    assert_ids_are_request_ids(rows, expected)

    recorded = [r for r in fake_upstream.requests() if r["path"].endswith("/messages")]
    assert len(recorded) == 4, f"the fake saw {len(recorded)} /messages requests, expected 4"
    for r in recorded:
        pairs = r["headers"].items() if isinstance(r["headers"], dict) else r["headers"]  # [[name, value], ...]
        headers = {name.lower(): value for name, value in pairs}
        body = json.loads(r["body"]) if isinstance(r["body"], str) else r["body"]
        assert body["model"] == "claude-upstream", body
        assert DEMO_KEY not in json.dumps(r["headers"]), "the tenant's API key was forwarded upstream"
        assert headers.get("x-api-key") == UPSTREAM_KEY, f"upstream auth header missing: {r['headers']}"
        assert "anthropic-version" in headers, r["headers"]


def test_messages_count_tokens_is_anthropics_own_count_and_unmetered(start_gateway, fake_upstream):
    """The Anthropic SDK's messages.count_tokens: asked of the Anthropic upstream (the input the same
    messages are then billed for), the samples' mock counting as it bills, and no ledger row."""
    fake_upstream.clear()
    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    client = gateway.anthropic()
    messages = [{"role": "user", "content": "How many tokens is this question?"}]
    for model in (MODEL, "demo-echo"):
        counted = client.messages.with_raw_response.count_tokens(model=model, system="Be brief.", messages=messages)
        assert counted.headers["x-switchboard-token-count"] == "exact"
        sent = client.messages.create(model=model, max_tokens=32, system="Be brief.", messages=messages)
        assert counted.parse().input_tokens == sent.usage.input_tokens, model
    counts = [r for r in fake_upstream.requests() if r["path"] == "/v1/messages/count_tokens"]
    assert len(counts) == 1, counts
    assert [value for name, value in counts[0]["headers"] if name.lower() == "x-api-key"] == [UPSTREAM_KEY]
    gateway.stop()
    assert [row["endpoint"] for row in gateway.ledger()] == ["messages", "messages"], "counting is free"


def test_structured_outputs_parse_on_an_anthropic_route(start_gateway, fake_upstream):
    """chat.completions.parse (whole and streamed) on an Anthropic upstream: the schema goes up as a
    forced tool, and the tool's input comes back as the JSON reply the SDK parses."""
    from pydantic import BaseModel

    class Sky(BaseModel):
        colour: str
        clouds: int

    fake_upstream.clear()
    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    client = gateway.openai()
    messages = [{"role": "user", "content": "Describe the sky."}]
    parsed = client.chat.completions.parse(model=MODEL, messages=messages, response_format=Sky)
    assert parsed.choices[0].message.parsed == Sky(colour="fake", clouds=0)
    assert parsed.choices[0].finish_reason == "stop"
    with client.chat.completions.stream(model=MODEL, messages=messages, response_format=Sky) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Sky(colour="fake", clouds=0)
    sent = [r["body"] for r in fake_upstream.requests() if r["path"] == "/v1/messages"]
    sent = [json.loads(b) if isinstance(b, str) else b for b in sent]
    assert [b["tool_choice"] for b in sent] == [{"type": "tool", "name": "switchboard_structured_output"}] * 2
    assert sent[0]["tools"][0]["input_schema"]["required"] == ["colour", "clouds"]


def test_thinking_and_output_formats_from_the_anthropic_sdk(start_gateway, fake_upstream):
    """`thinking` reaches an Anthropic upstream as sent and an OpenAI-type one as `reasoning_effort`;
    `output_format` comes back as JSON text on an Anthropic route."""
    fake_upstream.clear()
    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    client = gateway.anthropic()
    thinking = {"type": "enabled", "budget_tokens": 2048}
    messages = [{"role": "user", "content": "Think first."}]
    for model in (MODEL, "local-model"):
        client.messages.create(model=model, max_tokens=4096, thinking=thinking, messages=messages)
    sent = [json.loads(r["body"]) if isinstance(r["body"], str) else r["body"] for r in fake_upstream.requests()]
    to_anthropic = next(b for b in sent if b.get("model") == "claude-upstream")
    to_openai = next(b for b in sent if b.get("model") == "local-model")
    assert to_anthropic["thinking"] == thinking
    assert to_openai["reasoning_effort"] == "low" and "thinking" not in to_openai, to_openai

    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    reply = client.messages.create(
        model=MODEL, max_tokens=256, messages=messages, extra_body={"output_format": {"type": "json_schema", "schema": schema}}
    )
    assert json.loads(reply.content[0].text) == {"answer": "fake"}
    assert reply.stop_reason == "end_turn"


def test_langchain_with_structured_output_on_an_anthropic_route(start_gateway, fake_upstream):
    """LangChain's ChatOpenAI.with_structured_output on an Anthropic upstream, both of its methods:
    a JSON schema (the gateway forces a tool) and function calling (the client forces one)."""
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class Sky(BaseModel):
        colour: str
        clouds: int

    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    chat = ChatOpenAI(model=MODEL, base_url=f"{gateway.url}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)
    for method in ("json_schema", "function_calling"):
        sky = chat.with_structured_output(Sky, method=method).invoke("Describe the sky.")
        assert sky == Sky(colour="fake", clouds=0), method
