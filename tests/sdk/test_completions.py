"""The real OpenAI Python SDK's legacy completions.create against the gateway, on the samples' mock and
on an OpenAI-type upstream (the fake): whole and streamed, with and without the usage chunk, refused
on an Anthropic route, and one priced ledger row per request, the same for the same usage."""

from __future__ import annotations

import time

import openai
import pytest

from ledger import Expected, Usage, assert_ids_are_request_ids, assert_ledger, words
from test_anthropic_upstream import ANTHROPIC_ROUTE


@pytest.mark.parametrize("model", ["demo-echo", "local-model"])
def test_completions_whole_and_streamed_leave_one_priced_row_each(start_gateway, fake_upstream, model):
    fake_upstream.clear()
    started_ms = int(time.time() * 1000)
    gateway = start_gateway()
    client = gateway.openai()
    prompt = "Once upon a time"
    expected: list[Expected] = []

    whole = client.completions.with_raw_response.create(model=model, prompt=prompt, max_tokens=20)
    completion = whole.parse()
    text = completion.choices[0].text
    assert completion.object == "text_completion" and completion.choices[0].finish_reason == "stop"
    if model == "local-model":
        assert text == f"fake-upstream completion of: {prompt}"
        assert completion.usage.prompt_tokens == words(prompt), "the upstream's usage"
    else:
        assert text == f"echo (demo-echo): {prompt}"
    usage = Usage(completion.usage.prompt_tokens, 0, 0, completion.usage.completion_tokens)
    expected.append(Expected(whole.request_id, model, "completions", False, usage))

    stream = client.completions.create(model=model, prompt=prompt, max_tokens=20, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == usage.output
    expected.append(Expected(stream.response.headers["x-request-id"], model, "completions", True, usage))

    plain = client.completions.create(model=model, prompt=prompt, max_tokens=20, stream=True)
    chunks = list(plain)
    assert all(c.choices for c in chunks), "no usage chunk unless asked for"
    expected.append(Expected(plain.response.headers["x-request-id"], model, "completions", True, usage))

    gateway.stop()
    rows = gateway.ledger()
    assert_ledger(rows, expected, started_ms)
    assert_ids_are_request_ids(rows, expected)
    if model == "local-model":
        sent = [r for r in fake_upstream.requests() if r["path"] == "/v1/completions"]
        assert [r["body"]["model"] for r in sent] == ["local-model"] * 3
        assert sent[1]["body"]["stream_options"] == {"include_usage": True}


def test_completions_on_an_anthropic_route_are_refused_before_anything_is_sent(start_gateway, fake_upstream):
    fake_upstream.clear()
    gateway = start_gateway({"route-fake-claude.yaml": ANTHROPIC_ROUTE})
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.openai().completions.create(model="fake-claude", prompt="hi")
    assert refused.value.code == "model_not_supported" and "/v1/chat/completions" in refused.value.message
    assert not [r for r in fake_upstream.requests() if r["path"].endswith("/messages")]
