"""The real OpenAI Python SDK's Responses API against the gateway, on the samples' mock and on an
OpenAI-type upstream (the fake): plain and streamed, conversations continued with
`previous_response_id`, function call items, stored responses fetched and deleted, and one priced
ledger row per request, the same for the same usage streamed or not."""

from __future__ import annotations

import json
import time

import openai
import pytest

from ledger import Expected, Usage, assert_ids_are_request_ids, assert_ledger


def usage_of(response) -> Usage:
    cached = response.usage.input_tokens_details.cached_tokens or 0
    return Usage(response.usage.input_tokens - cached, cached, 0, response.usage.output_tokens)


def test_responses_create_stream_continue_retrieve_and_delete_on_the_mock(start_gateway):
    started_ms = int(time.time() * 1000)
    gateway = start_gateway()
    client = gateway.openai()
    expected: list[Expected] = []

    first = client.responses.with_raw_response.create(model="demo-echo", input="Hello there", instructions="Be brief.")
    response = first.parse()
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "echo (demo-echo, 2 messages, system prompt: yes): Hello there"
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief." and response.store is True
    expected.append(Expected(first.request_id, "demo-echo", "responses", False, usage_of(response)))

    # Streamed, through the SDK's own event accumulator.
    with client.responses.stream(model="demo-echo", input="Hello there", instructions="Be brief.") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed", kinds
    assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds
    assert final.output_text == response.output_text
    assert usage_of(final) == usage_of(response), "the same usage streamed or not"
    streamed_id = stream._response.headers.get("x-request-id")
    expected.append(Expected(streamed_id, "demo-echo", "responses", True, usage_of(final)))

    # The conversation continues: the earlier turn (without its instructions) comes first.
    second = client.responses.create(model="demo-echo", input="And again", previous_response_id=response.id)
    assert second.output_text == "echo (demo-echo, 3 messages, system prompt: no): And again"
    assert second.previous_response_id == response.id
    expected.append(Expected(second._request_id, "demo-echo", "responses", False, usage_of(second)))

    # Function call items: the call and its output reach the model as a tool round trip.
    items = [
        {"role": "user", "content": "What is the weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city": "Lyon"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}}]
    called = client.responses.create(model="demo-echo", input=items, tools=tools, store=False)
    assert called.output_text.startswith("echo (demo-echo, 3 messages"), called.output_text
    assert called.tools[0].name == "weather"
    expected.append(Expected(called._request_id, "demo-echo", "responses", False, usage_of(called)))

    assert client.responses.retrieve(response.id).output_text == response.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(called.id)  # store=False: never kept
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="demo-echo", input="x", previous_response_id=response.id)

    # What the translation cannot express is refused, naming the field; nothing is dropped silently.
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="demo-echo", input="x", tools=[{"type": "web_search"}])
    assert refused.value.code == "unsupported_parameter" and "tools[0].type" in refused.value.message

    gateway.stop()
    rows = [row for row in gateway.ledger() if row["status"] == 200]
    assert_ledger(rows, expected, started_ms)
    assert_ids_are_request_ids(rows, expected)


# The fake answers this route with the chat request it received, as its reply's text.
ECHO_ROUTE = """
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: fake-echo}
spec:
  models: [{name: fake-echo, upstreamModel: echo-request}]
  backends: [{name: fake, provider: openai, baseUrl: "{FAKE_BASE_URL}"}]
"""


def test_responses_reach_an_openai_upstream_as_chat_with_tools_and_structured_output(start_gateway, fake_upstream):
    fake_upstream.clear()
    gateway = start_gateway({"fake-echo.yaml": ECHO_ROUTE})
    client = gateway.openai()
    items = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Use the tool."}]},
        {"role": "user", "content": "Weather in Lyon?"},
        {"type": "function_call", "call_id": "call_9", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
    ]
    # The echoed chat request is the reply: it must match the schema, which the gateway checks.
    schema = {"type": "object", "properties": {"model": {"type": "string"}}, "required": ["model", "messages"]}
    response = client.responses.create(
        model="fake-echo",
        input=items,
        tools=[{"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}}],
        tool_choice="auto",
        max_output_tokens=50,
    )
    sent = json.loads(response.output_text)
    assert [m["role"] for m in sent["messages"]] == ["developer", "user", "assistant", "tool"], sent
    assert sent["messages"][2]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent["messages"][3] == {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}
    assert sent["tools"][0] == {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}
    assert (sent["max_tokens"], sent["tool_choice"], sent["model"]) == (50, "auto", "echo-request")
    assert "store" not in sent and "previous_response_id" not in sent, "the gateway's own fields stay with it"
    formatted = client.responses.create(
        model="fake-echo",
        input="Sky?",
        text={"format": {"type": "json_schema", "name": "request", "schema": schema}},
    )
    sent = json.loads(formatted.output_text)
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "request", "schema": schema}}
