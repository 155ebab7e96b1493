"""The real Anthropic Python SDK against the gateway's /v1/messages, and the ledger rows it leaves."""

from __future__ import annotations

import json
import time

import pytest
from harness import DEMO_KEY, http
from ledger import (
    FAKE_REPLY_PREFIX,
    Expected,
    Usage,
    assert_ids_are_request_ids,
    assert_ledger,
    check_sample_prices,
    words,
)

MODELS = ["demo-echo", "local-model"]
DATABASES = ["sqlite", "postgres"]


@pytest.mark.parametrize("db", DATABASES, indirect=True)
@pytest.mark.parametrize("model", MODELS)
def test_messages_create_and_stream_leave_one_priced_ledger_row_each(start_gateway, db, model):
    check_sample_prices()
    started_ms = int(time.time() * 1000)
    gateway = start_gateway()
    client = gateway.anthropic()
    expected: list[Expected] = []
    prompt = f"Hello switchboard, please answer the {model} messages test"
    messages = [{"role": "user", "content": prompt}]

    # 1. messages.create
    message = client.messages.create(model=model, max_tokens=256, messages=messages)
    assert message.type == "message" and message.role == "assistant", message
    text = "".join(block.text for block in message.content if block.type == "text")
    assert text, message
    usage = Usage.from_anthropic(message.usage)
    expected.append(Expected(message._request_id, model, "messages", False, usage))
    if model == "local-model":
        assert text == FAKE_REPLY_PREFIX + prompt
        assert message.usage.input_tokens == words(prompt) + 3, "usage must be the upstream's"
        assert message.usage.output_tokens == words(text), "usage must be the upstream's"
    assert message.stop_reason == "end_turn", message

    # 2. messages.stream: usage from message_start (input) and message_delta (output).
    with client.messages.stream(model=model, max_tokens=256, messages=messages) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.request_id or stream.response.headers.get("request-id")
    assert streamed, "the stream carried no text"
    stream_usage = Usage.from_anthropic(final.usage)
    expected.append(Expected(request_id, model, "messages", True, stream_usage))
    if model == "local-model":
        assert streamed == text
        assert stream_usage == usage
    assert final.stop_reason == "end_turn", final

    gateway.stop()
    rows = gateway.ledger()
    assert_ledger(rows, expected, started_ms)
    assert_ids_are_request_ids(rows, expected)


def test_models_list_and_retrieve_in_anthropics_shape(start_gateway):
    """Anthropic's SDK calls the same /v1/models as OpenAI's, and gets its own shape and paging."""
    import anthropic

    gateway = start_gateway()
    client = gateway.anthropic()
    every = [m.id for m in client.models.list(limit=1)]  # one a page: the SDK follows after_id
    openai_ids = [m.id for m in gateway.openai().models.list()]
    assert every == openai_ids, (every, openai_ids)
    model = client.models.retrieve("demo-echo")
    assert (model.type, model.id, model.display_name) == ("model", "demo-echo", "demo-echo")
    first = client.models.list(limit=2)
    assert (first.has_more, first.first_id, first.last_id) == (len(every) > 2, every[0], every[1])
    with pytest.raises(anthropic.NotFoundError) as refused:
        client.models.retrieve("no-such-model")
    assert refused.value.body["error"]["type"] == "not_found_error", refused.value.body
    with pytest.raises(anthropic.AuthenticationError) as refused:
        gateway.anthropic(key="sk-wrong").models.list()
    assert refused.value.body["type"] == "error", "refused in Anthropic's shape"
    # A key as `x-api-key` alone (curl after Anthropic's docs) gets Anthropic's shape too.
    status, _, body = http("GET", f"{gateway.url}/v1/models/demo-echo", headers={"x-api-key": DEMO_KEY})
    assert status == 200 and json.loads(body)["type"] == "model", body
