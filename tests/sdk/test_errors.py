"""Bad input and failing upstreams: status codes, error shapes, and which requests reach the ledger.

Requests rejected before routing (401, 400, 404, 413) leave no ledger row; requests that reached an
upstream leave exactly one, with the error status.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import openai
import pytest

from harness import Gateway, post_large

UPSTREAM_ERROR_ROUTES = """
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: upstream-500
spec:
  models:
    - name: upstream-500
      upstreamModel: error-500
      pricing: {inputPerMillion: "1", outputPerMillion: "2"}
  backends:
    - name: fake
      provider: openai
      baseUrl: {FAKE_BASE_URL}
  retries: {attempts: 0}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: upstream-hang
spec:
  models:
    - name: upstream-hang
      upstreamModel: hang
      pricing: {inputPerMillion: "1", outputPerMillion: "2"}
  backends:
    - name: fake
      provider: openai
      baseUrl: {FAKE_BASE_URL}
      requestTimeoutSeconds: 1
  retries: {attempts: 0}
"""

HELLO = [{"role": "user", "content": "hello"}]


def openai_error(raw: bytes, code: str | None = None) -> dict[str, Any]:
    """Checks OpenAI's error shape {"error": {"message", "type", "param", "code"}}; returns the error."""
    body = json.loads(raw)
    assert isinstance(body.get("error"), dict), f"not OpenAI's error shape: {body}"
    error = body["error"]
    missing = {"message", "type", "param", "code"} - set(error)
    assert not missing, f"OpenAI error without {sorted(missing)}: {body}"
    assert isinstance(error["message"], str) and error["message"], body
    if code is not None:
        assert error["code"] == code, body
    return error


def anthropic_error(raw: bytes, error_type: str | None = None) -> dict[str, Any]:
    """Checks Anthropic's error shape {"type": "error", "error": {"type", "message"}}; returns the error."""
    body = json.loads(raw)
    assert body.get("type") == "error" and isinstance(body.get("error"), dict), f"not Anthropic's error shape: {body}"
    assert isinstance(body["error"].get("type"), str) and isinstance(body["error"].get("message"), str), body
    if error_type is not None:
        assert body["error"]["type"] == error_type, body
    return body["error"]


def stop_and_check_no_rows(gateway: Gateway) -> None:
    gateway.stop()
    rows = gateway.ledger()
    assert rows == [], f"requests rejected before routing must leave no ledger row, found: {rows}"


def test_wrong_key_is_401(start_gateway):
    gateway = start_gateway()
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.openai(key="sk-wrong").chat.completions.create(model="demo-echo", messages=HELLO)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key", caught.value.body
    openai_error(caught.value.response.content, "invalid_api_key")

    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key="sk-wrong").chat.completions.create(model="demo-echo", messages=HELLO, stream=True)

    # No key at all: 401 too (the code may say why, e.g. missing_api_key).
    status, _, raw = gateway.post("/v1/chat/completions", {"model": "demo-echo", "messages": HELLO}, key=None)
    assert status == 401, raw
    openai_error(raw)

    with pytest.raises(anthropic.AuthenticationError) as caught_a:
        gateway.anthropic(key="sk-wrong").messages.create(model="demo-echo", max_tokens=16, messages=HELLO)
    assert caught_a.value.status_code == 401
    anthropic_error(caught_a.value.response.content, "authentication_error")

    stop_and_check_no_rows(gateway)


def test_unknown_model_is_404(start_gateway):
    gateway = start_gateway()
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.openai().chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found", caught.value.body
    openai_error(caught.value.response.content, "model_not_found")

    with pytest.raises(anthropic.NotFoundError) as caught_a:
        gateway.anthropic().messages.create(model="no-such-model", max_tokens=16, messages=HELLO)
    assert caught_a.value.status_code == 404
    anthropic_error(caught_a.value.response.content, "not_found_error")

    stop_and_check_no_rows(gateway)


def test_malformed_json_is_400(start_gateway):
    gateway = start_gateway()
    status, _, raw = gateway.post("/v1/chat/completions", '{"model": "demo-echo", "messages": [')
    assert status == 400, raw
    openai_error(raw)

    status, _, raw = gateway.post("/v1/messages", '{"model": "demo-echo", "max_tokens": 16, "messages": [')
    assert status == 400, raw
    anthropic_error(raw, "invalid_request_error")

    stop_and_check_no_rows(gateway)


def test_valid_json_missing_messages_is_400_not_422(start_gateway):
    gateway = start_gateway()
    status, _, raw = gateway.post("/v1/chat/completions", {"model": "demo-echo"})
    assert status == 400, (status, raw)
    openai_error(raw)
    stop_and_check_no_rows(gateway)


def big_request(total_bytes: int) -> bytes:
    """A valid chat request of about `total_bytes` bytes."""
    head = b'{"model": "demo-echo", "messages": [{"role": "user", "content": "'
    tail = b'"}]}'
    filler = b"word " * ((total_bytes - len(head) - len(tail)) // 5 + 1)
    return head + filler[: total_bytes - len(head) - len(tail)] + tail


AUTH = {"Authorization": "Bearer sk-switchboard-demo", "Content-Type": "application/json"}


def test_body_over_max_request_bytes_is_413(start_gateway):
    gateway = start_gateway(args=["--max-request-bytes", "65536"])
    status, raw = post_large(gateway.port, "/v1/chat/completions", big_request(200_000), AUTH)
    assert status == 413, raw[:300]
    if raw:
        openai_error(raw)
    # Just under the limit is served.
    status, _, raw = gateway.post("/v1/chat/completions", big_request(60_000))
    assert status == 200, raw[:300]
    gateway.stop()
    rows = gateway.ledger()
    assert [r["status"] for r in rows] == [200], rows


def test_default_limit_is_4_mib(start_gateway):
    gateway = start_gateway()
    status, raw = post_large(gateway.port, "/v1/chat/completions", big_request(4 * 1024 * 1024 + 4096), AUTH)
    assert status == 413, raw[:300]
    # 3 MiB is under the documented default (and over axum's own 2 MB default).
    status, _, raw = gateway.post("/v1/chat/completions", big_request(3 * 1024 * 1024))
    assert status == 200, raw[:300]
    gateway.stop()
    assert [r["status"] for r in gateway.ledger()] == [200]


def assert_error_rows(rows: list[dict[str, Any]], model: str, status: int, count: int) -> None:
    listing = "\n".join(map(str, rows))
    assert len(rows) == count, f"expected {count} ledger rows (one per request that reached the upstream):\n{listing}"
    for row in rows:
        assert row["model"] == model and row["status"] == status, row
        assert row["error_code"], f"a failed request's row needs an error_code: {row}"
        assert row["output_tokens"] == 0 and row["cost_nanos"] == 0, row
        assert row["tenant"] == "demo" and row["api_key"] == "default", row


def test_upstream_500_is_502(start_gateway):
    gateway = start_gateway({"routes-errors.yaml": UPSTREAM_ERROR_ROUTES})
    client = gateway.openai()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="upstream-500", messages=HELLO)
    assert caught.value.status_code == 502
    openai_error(caught.value.response.content, "upstream_error")

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="upstream-500", messages=HELLO, stream=True)
    assert caught.value.status_code == 502
    openai_error(caught.value.response.content, "upstream_error")

    with pytest.raises(anthropic.APIStatusError) as caught_a:
        gateway.anthropic().messages.create(model="upstream-500", max_tokens=16, messages=HELLO)
    assert caught_a.value.status_code == 502
    anthropic_error(caught_a.value.response.content)

    gateway.stop()
    assert_error_rows(gateway.ledger(), "upstream-500", 502, 3)


def test_upstream_timeout_is_504(start_gateway):
    gateway = start_gateway({"routes-errors.yaml": UPSTREAM_ERROR_ROUTES})
    client = gateway.openai()
    for stream in (False, True):
        began = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="upstream-hang", messages=HELLO, stream=stream)
        elapsed = time.monotonic() - began
        assert caught.value.status_code == 504, caught.value
        openai_error(caught.value.response.content, "upstream_timeout")
        assert 0.9 <= elapsed < 10, f"requestTimeoutSeconds is 1, the gateway answered after {elapsed:.1f}s"
    gateway.stop()
    assert_error_rows(gateway.ledger(), "upstream-hang", 504, 2)
