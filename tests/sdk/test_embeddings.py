"""The real OpenAI Python SDK's embeddings.create against the gateway: the samples' mock embedding model
and an OpenAI-type route on the fake upstream, as floats and as base64 (the SDK's default, which it
decodes), batched, with `dimensions`; one priced ledger row per request."""

from __future__ import annotations

import math
import time

import openai
import pytest

from ledger import Expected, Usage, assert_ids_are_request_ids, assert_ledger

FAKE_EMBED_ROUTE = """
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: fake-embed}
spec:
  models:
    - {name: fake-embed, upstreamModel: text-embedding-fake, kind: Embedding, pricing: {inputPerMillion: "0.50"}}
  backends:
    - {name: embedder, provider: openai, baseUrl: "{FAKE_BASE_URL}"}
"""


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))


@pytest.mark.parametrize("model", ["demo-embed", "fake-embed"])
def test_embeddings_create_as_floats_and_base64_with_one_priced_row_each(start_gateway, fake_upstream, model):
    fake_upstream.clear()
    started_ms = int(time.time() * 1000)
    gateway = start_gateway({"fake-embed.yaml": FAKE_EMBED_ROUTE})
    client = gateway.openai()
    texts = ["my peanut allergy", "a peanut allergy again", "the weather in Lyon today"]
    expected: list[Expected] = []

    # The SDK's default: it asks for base64 and decodes the vectors itself.
    default = client.embeddings.with_raw_response.create(model=model, input=texts)
    decoded = default.parse()
    assert [d.index for d in decoded.data] == [0, 1, 2]
    assert all(isinstance(x, float) for x in decoded.data[0].embedding)
    expected.append(Expected(default.request_id, model, "embeddings", False, Usage(decoded.usage.prompt_tokens)))

    floats = client.embeddings.create(model=model, input=texts, encoding_format="float")
    for as_floats, as_base64 in zip(floats.data, decoded.data, strict=True):
        assert as_floats.embedding == pytest.approx(as_base64.embedding, abs=1e-6)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == sum(len(t.split()) for t in texts)
    expected.append(Expected(floats._request_id, model, "embeddings", False, Usage(floats.usage.prompt_tokens)))

    sized = client.embeddings.create(model=model, input="one text", dimensions=12, encoding_format="float")
    assert len(sized.data) == 1 and len(sized.data[0].embedding) == 12
    expected.append(Expected(sized._request_id, model, "embeddings", False, Usage(sized.usage.prompt_tokens)))

    if model == "demo-embed":
        # The mock's vectors are bags of words: texts sharing words point the same way.
        vectors = [d.embedding for d in floats.data]
        assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
        assert math.isclose(math.hypot(*vectors[0]), 1.0, rel_tol=1e-5)
    else:
        sent = [r for r in fake_upstream.requests() if r["path"] == "/v1/embeddings"]
        assert [r["body"]["model"] for r in sent] == ["text-embedding-fake"] * 3
        assert sent[0]["body"]["encoding_format"] == "base64" and sent[2]["body"]["dimensions"] == 12

    # A chat model is refused in the API's own error shape, and leaves no ledger row (nothing spent).
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="demo-echo", input="hi")
    assert refused.value.code == "model_not_supported"

    gateway.stop()
    rows = gateway.ledger()
    assert_ledger(rows, expected, started_ms)
    assert_ids_are_request_ids(rows, expected)
