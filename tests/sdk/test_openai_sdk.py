"""The real OpenAI Python SDK against the gateway: completions and streams, and the ledger rows they leave."""

from __future__ import annotations

import json
import time

import pytest

from harness import DEMO_KEY
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


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("db", DATABASES, indirect=True)
@pytest.mark.parametrize("model", MODELS)
def test_chat_completions_and_streams_leave_one_priced_ledger_row_each(start_gateway, fake_upstream, db, model):
    check_sample_prices()
    fake_upstream.clear()
    started_ms = int(time.time() * 1000)
    gateway = start_gateway()
    client = gateway.openai()
    expected: list[Expected] = []
    problems: list[str] = []  # protocol details checked after the ledger, so they never hide it
    prompt = f"Hello switchboard, please answer the {model} test"

    # 1. Non-streaming.
    completion = client.chat.completions.create(model=model, messages=user(prompt))
    text = completion.choices[0].message.content
    assert text, completion
    assert completion.usage is not None, "a non-streaming completion must report usage"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    usage = Usage.from_openai(completion.usage)
    expected.append(Expected(completion._request_id, model, "chat_completions", False, usage))
    if model == "local-model":
        assert text == FAKE_REPLY_PREFIX + prompt
        assert completion.usage.prompt_tokens == words(prompt) + 3, "usage must be the upstream's"
        assert completion.usage.completion_tokens == words(text), "usage must be the upstream's"
    if completion.model != model:
        problems.append(f"completion.model is {completion.model!r}, the client asked for {model!r}")

    # 2. Streaming with stream_options.include_usage: the last chunk has no choices and the usage.
    stream = client.chat.completions.create(
        model=model, messages=user(prompt), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    request_id = stream.response.headers.get("x-request-id")
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed, "the stream carried no text"
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1, f"expected one chunk with usage, got {len(with_usage)}"
    assert chunks[-1].usage is not None and chunks[-1].choices == [], "usage must come in a last chunk without choices"
    stream_usage = Usage.from_openai(chunks[-1].usage)
    expected.append(Expected(request_id, model, "chat_completions", True, stream_usage))
    if model == "local-model":
        assert streamed == text
        assert stream_usage == usage
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    if finish != ["stop"]:
        problems.append(f"include_usage stream: finish reasons {finish}, expected exactly ['stop']")

    # 3. Streaming without include_usage: no usage reaches the client (OpenAI's behaviour), but the
    #    gateway still records it: same prompt and reply as stream 2, so the same tokens.
    stream = client.chat.completions.create(model=model, messages=user(prompt), stream=True)
    chunks = list(stream)
    request_id = stream.response.headers.get("x-request-id")
    plain = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert plain == streamed
    expected.append(Expected(request_id, model, "chat_completions", True, stream_usage))
    if any(c.usage is not None or not c.choices for c in chunks):
        problems.append(
            "stream without stream_options.include_usage sent a usage chunk / a chunk without choices "
            "(OpenAI sends none; clients doing chunk.choices[0] break)"
        )

    gateway.stop()
    rows = gateway.ledger()
    assert_ledger(rows, expected, started_ms)
    assert_ids_are_request_ids(rows, expected)

    if model == "local-model":
        recorded = [r for r in fake_upstream.requests() if r["path"].endswith("/chat/completions")]
        assert len(recorded) == 3, f"the fake upstream saw {len(recorded)} chat requests, expected 3"
        for r in recorded:
            body = r["body"]
            if isinstance(body, str):
                body = json.loads(body)
            if body.get("model") != "local-model":
                problems.append(f"upstream model was {body.get('model')!r}, the route says 'local-model'")
            if DEMO_KEY in str(r["headers"]):
                problems.append("the tenant's API key was forwarded to the upstream")
    assert not problems, "\n".join(problems)


def test_models_lists_and_retrieves_the_tenants_models(start_gateway):
    import openai

    gateway = start_gateway()
    client = gateway.openai()
    listed = {m.id: m for m in client.models.list()}
    assert {"demo-echo", "local-model", "persona/ada"} <= set(listed), listed
    model = client.models.retrieve("demo-echo")
    assert (model.id, model.object, model.owned_by) == ("demo-echo", "model", listed["demo-echo"].owned_by)
    assert client.models.retrieve("persona/ada").id == "persona/ada", "an id with a slash"
    with pytest.raises(openai.NotFoundError) as refused:
        client.models.retrieve("no-such-model")
    assert refused.value.code == "model_not_found"
