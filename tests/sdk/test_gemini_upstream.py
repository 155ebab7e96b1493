"""Both SDKs against a route whose upstream speaks Google Gemini's API (the fake's generateContent):
chat and the Responses API with the OpenAI SDK, Messages and Gemini's own token count with the
Anthropic SDK, streamed and not, a forced tool call, and one priced ledger row per request."""

from __future__ import annotations

import json
import time

from ledger import FAKE_REPLY_PREFIX

GEMINI_ROUTE = """
apiVersion: v1
kind: Secret
metadata: {name: fake-gemini-key}
stringData: {key: fake-gemini-secret}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: fake-gemini}
spec:
  models:
    - {name: fake-gemini, upstreamModel: gemini-2.5-flash, pricing: {inputPerMillion: "0.30", outputPerMillion: "2.50"}}
  backends:
    - {name: gemini, provider: gemini, baseUrl: "{FAKE_BASE_URL}beta", apiKeySecretRef: {name: fake-gemini-key, key: key}}
"""
MODEL = "fake-gemini"


def test_both_clients_on_a_gemini_upstream(start_gateway, fake_upstream):
    fake_upstream.clear()
    started_ms = int(time.time() * 1000)
    gateway = start_gateway({"route-fake-gemini.yaml": GEMINI_ROUTE})
    openai_client, anthropic_client = gateway.openai(), gateway.anthropic()
    prompt = "Hello Gemini route"
    expected_text = FAKE_REPLY_PREFIX + prompt

    completion = openai_client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
    assert completion.choices[0].message.content == expected_text
    stream = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected_text
    assert chunks[-1].usage.completion_tokens == completion.usage.completion_tokens
    response = openai_client.responses.create(model=MODEL, input=prompt)
    assert response.output_text == expected_text

    message = anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": prompt}])
    assert message.content[0].text == expected_text and message.stop_reason == "end_turn"
    with anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": prompt}]) as s:
        assert s.get_final_text() == expected_text
    counted = anthropic_client.messages.with_raw_response.count_tokens(model=MODEL, messages=[{"role": "user", "content": prompt}])
    assert counted.headers["x-switchboard-token-count"] == "exact", "Gemini's own countTokens"
    assert counted.parse().input_tokens == message.usage.input_tokens

    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    called = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=tools, tool_choice="required"
    )
    call = called.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("weather", {"city": "fake"})

    sent = [r for r in fake_upstream.requests() if r["path"].startswith("/v1beta/models/gemini-2.5-flash:")]
    assert len(sent) == 7 and sent[5]["path"].endswith(":countTokens")
    for r in sent:
        headers = {name.lower(): value for name, value in r["headers"]}
        assert headers.get("x-goog-api-key") == "fake-gemini-secret", "the route's key, never the tenant's"

    gateway.stop()
    rows = [row for row in gateway.ledger() if row["created_at_ms"] >= started_ms - 1000]
    assert len(rows) == 6 and {row["provider"] for row in rows} == {"gemini"}
    costs = {(row["endpoint"], row["stream"]): row["cost_nanos"] for row in rows if row["input_tokens"] == completion.usage.prompt_tokens}
    assert costs[("chat_completions", 0)] == costs[("chat_completions", 1)] > 0, costs
