"""OpenTelemetry traces, exported to a real OpenTelemetry Collector (scripts/otelcol.sh: built from the Go
module proxy with its OTLP receiver and file exporter) and read back from the file it writes.

A plain, a streamed, a retried-then-fallen-back and a budget-refused request, each with the GenAI
semantic conventions' attributes; a `traceparent` sent by the OpenAI SDK comes back as the parent of the
gateway's span, goes on to the upstream, and is stored in the request log.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from harness import ADMIN_TOKEN, ROOT, FakeUpstream, Gateway, http

OTELCOL = ROOT / "scripts" / "otelcol.sh"
SPAN_WAIT_S = 15.0
SERVER, CLIENT = 2, 3

ROUTES = """
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: fallback
spec:
  models:
    - name: fallback-model
      upstreamModel: local-model
      pricing: {inputPerMillion: "1", outputPerMillion: "2"}
  backends:
    - name: dead
      provider: openai
      # Nothing listens on port 9 of loopback: the attempt fails to connect.
      baseUrl: http://127.0.0.1:9/v1
      priority: 0
    - name: fake
      provider: openai
      baseUrl: {FAKE_BASE_URL}
      priority: 1
  retries: {attempts: 1, backoffMs: 10}
---
apiVersion: v1
kind: Secret
metadata:
  name: captured-provider-key
stringData:
  key: sk-provider-captured-0123456789
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata:
  name: captured
spec:
  models:
    - name: captured-model
      upstreamModel: local-model
      pricing: {inputPerMillion: "1", outputPerMillion: "2"}
  backends:
    - name: fake
      provider: openai
      baseUrl: {FAKE_BASE_URL}
      apiKeySecretRef: {name: captured-provider-key, key: key}
  telemetry:
    captureContent: true
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata:
  name: ada-tiny
spec:
  scope: {kind: Persona, tenant: demo, persona: ada}
  limitUsd: "0.000000001"
  period: Monthly
  enforcement: Hard
"""


@dataclass
class Collector:
    directory: Path
    grpc: str
    http: str

    def spans(self, trace_id: str, count: int) -> list[dict[str, Any]]:
        """The spans of `trace_id` once at least `count` have been written (bounded wait)."""
        deadline = time.monotonic() + SPAN_WAIT_S
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = [span for span in self.all_spans() if span["traceId"] == trace_id]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        pytest.fail(f"{len(found)} spans of trace {trace_id} after {SPAN_WAIT_S}s, expected {count}", pytrace=False)

    def all_spans(self) -> list[dict[str, Any]]:
        path = self.directory / "spans.json"
        if not path.exists():
            return []
        spans = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            for resource in json.loads(line)["resourceSpans"]:
                service = attributes(resource["resource"])["service.name"]
                for scope in resource["scopeSpans"]:
                    spans += [{**span, "service": service} for span in scope["spans"]]
        return spans


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    directory = tmp_path_factory.mktemp("otelcol")
    started = subprocess.run(
        [str(OTELCOL), "start", str(directory)], capture_output=True, text=True, timeout=300, check=False
    )
    assert started.returncode == 0, f"the collector did not start:\n{started.stderr}"
    endpoints = dict(line.split("=", 1) for line in started.stdout.split())
    yield Collector(directory, endpoints["OTLP_GRPC"], endpoints["OTLP_HTTP"])
    subprocess.run([str(OTELCOL), "stop", str(directory)], timeout=60, check=False)


def traced_gateway(start_gateway, collector: Collector, protocol: str = "http/protobuf") -> Gateway:
    """`protocol`: `grpc` or `http/protobuf`, optionally with `+zstd` or `+gzip` compression."""
    protocol, _, compression = protocol.partition("+")
    endpoint = collector.grpc if protocol == "grpc" else collector.http
    return start_gateway(
        extra_manifests={"tracing.yaml": ROUTES},
        args=["--otlp-endpoint", endpoint, "--otlp-protocol", protocol],
        # Export within a fraction of a second instead of the default 5 s.
        env={
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": None,
            "OTEL_EXPORTER_OTLP_COMPRESSION": compression or None,
        },
    )


def attributes(item: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON attributes as plain values."""
    def value(v: dict[str, Any]) -> Any:
        if "intValue" in v:
            return int(v["intValue"])
        if "arrayValue" in v:
            return [value(x) for x in v["arrayValue"].get("values", [])]
        return next(iter(v.values()), None)

    return {a["key"]: value(a["value"]) for a in item.get("attributes", [])}


def split(spans: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The request's server span and its attempt spans, oldest first."""
    servers = [s for s in spans if s["kind"] == SERVER]
    assert len(servers) == 1, spans
    attempts = sorted((s for s in spans if s["kind"] == CLIENT), key=lambda s: int(s["startTimeUnixNano"]))
    return servers[0], attempts


def parse_traceparent(value: str) -> tuple[str, str, str]:
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00", value
    return trace_id, span_id, flags


def upstream_traceparents(fake: FakeUpstream, trace_id: str) -> list[str]:
    values = []
    for request in fake.requests():
        for name, value in request["headers"]:
            if name == "traceparent" and value.split("-")[1] == trace_id:
                values.append(value)
    return values


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc", "grpc+zstd", "http/protobuf+gzip"])
def test_a_plain_request_is_one_genai_span_whose_parent_is_the_sdk_callers(
    start_gateway, collector: Collector, fake_upstream: FakeUpstream, protocol: str
) -> None:
    gateway = traced_gateway(start_gateway, collector, protocol)
    # A trace of its own per run: the collector's file keeps every test's spans.
    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="local-model",
        messages=[{"role": "user", "content": "trace me please"}],
        max_tokens=50,
        extra_headers={"traceparent": f"00-{client_trace}-{client_span}-01", "tracestate": "vendor=abc"},
    )
    reply = raw.parse()
    trace_id, gateway_span, flags = parse_traceparent(raw.headers["traceresponse"])
    assert (trace_id, flags) == (client_trace, "01")

    request, attempts = split(collector.spans(client_trace, 2))
    assert request["spanId"] == gateway_span
    assert request["parentSpanId"] == client_span, "the SDK caller's span is the parent"
    assert request["name"] == "chat local-model"
    assert request["service"] == "switchboard-gateway"
    attrs = attributes(request)
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "local-model",
        "gen_ai.response.model": "local-model",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.usage.input_tokens": reply.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": reply.usage.completion_tokens,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.id": reply.id,
        "server.address": "127.0.0.1",
        "server.port": fake_upstream.port,
        "http.response.status_code": 200,
        "switchboard.request.id": raw.headers["x-request-id"],
        "switchboard.tenant": "demo",
        "switchboard.api_key.name": "default",
        "switchboard.route": "local-model",
        "switchboard.backend": "llama-cpp",
        "switchboard.stream": False,
        "switchboard.cache_hit": False,
        "switchboard.attempts": 1,
        "switchboard.budget.outcome": "reserved",
        "switchboard.rate_limit.outcome": "allowed",
    }
    assert {k: attrs.get(k) for k in expected} == expected
    # 0.10 and 0.40 dollars per million tokens.
    cost = (reply.usage.prompt_tokens * 0.10 + reply.usage.completion_tokens * 0.40) / 1e6
    assert attrs["switchboard.cost.usd"] == pytest.approx(cost)
    assert "error.type" not in attrs
    events = [e["name"] for e in request.get("events", [])]
    assert events[:2] == ["switchboard.budget.reserved", "switchboard.queue.admitted"], events
    assert events[-1] == "switchboard.budget.settled", events
    no_content = json.dumps(request) + json.dumps(attempts)
    assert "trace me please" not in no_content and reply.choices[0].message.content not in no_content

    (attempt,) = attempts
    assert attempt["parentSpanId"] == gateway_span and attempt["name"] == "chat local-model"
    attempt_attrs = attributes(attempt)
    assert attempt_attrs["switchboard.backend"] == "llama-cpp"
    assert attempt_attrs["switchboard.breaker.state"] == "closed"
    assert attempt_attrs["server.port"] == fake_upstream.port
    assert int(request["startTimeUnixNano"]) <= int(attempt["startTimeUnixNano"])
    assert int(attempt["endTimeUnixNano"]) <= int(request["endTimeUnixNano"])

    # The upstream saw the attempt's span as its parent, with the caller's tracestate.
    assert upstream_traceparents(fake_upstream, client_trace) == [f"00-{client_trace}-{attempt['spanId']}-01"]
    tracestates = [v for r in fake_upstream.requests() for n, v in r["headers"] if n == "tracestate"]
    assert "vendor=abc" in tracestates

    # And the request log keeps the trace id.
    status, _, body = http(
        "GET",
        f"{gateway.admin_url}/admin/v1/requests/{raw.headers['x-request-id']}",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    wait_until = time.monotonic() + 10
    while status == 404 and time.monotonic() < wait_until:
        time.sleep(0.2)
        status, _, body = http(
            "GET",
            f"{gateway.admin_url}/admin/v1/requests/{raw.headers['x-request-id']}",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert status == 200, body
    assert json.loads(body)["trace_id"] == client_trace


def test_a_stream_records_its_first_token(start_gateway, collector: Collector) -> None:
    gateway = traced_gateway(start_gateway, collector)
    with gateway.openai().chat.completions.with_streaming_response.create(
        model="local-model",
        messages=[{"role": "user", "content": "stream me a few words"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        trace_id, _, _ = parse_traceparent(response.headers["traceresponse"])
        chunks = list(response.parse())
    usage = chunks[-1].usage
    request, attempts = split(collector.spans(trace_id, 2))
    assert "parentSpanId" not in request or not request["parentSpanId"], "a new trace: no parent"
    attrs = attributes(request)
    assert attrs["switchboard.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.response.id"] == chunks[0].id
    events = {e["name"]: int(e["timeUnixNano"]) for e in request.get("events", [])}
    assert "gen_ai.first_token" in events, events
    assert int(request["startTimeUnixNano"]) < events["gen_ai.first_token"] <= int(request["endTimeUnixNano"])
    assert len(attempts) == 1


def test_retries_and_fallbacks_are_sibling_attempt_spans(start_gateway, collector: Collector) -> None:
    gateway = traced_gateway(start_gateway, collector)
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="fallback-model", messages=[{"role": "user", "content": "fall back"}]
    )
    trace_id, gateway_span, _ = parse_traceparent(raw.headers["traceresponse"])
    request, attempts = split(collector.spans(trace_id, 3))
    assert [attributes(a)["switchboard.backend"] for a in attempts] == ["dead", "fake"]
    assert {a["parentSpanId"] for a in attempts} == {gateway_span}
    failed, served = (attributes(a) for a in attempts)
    assert failed["error.type"] == "connect" and attempts[0]["status"].get("code") == 2, attempts[0]
    assert failed["server.port"] == 9
    assert "error.type" not in served
    attrs = attributes(request)
    assert (attrs["switchboard.attempts"], attrs["switchboard.backend"]) == (2, "fake")
    assert "error.type" not in attrs


def test_a_refused_request_is_a_span_with_the_refusal_and_no_attempt(
    start_gateway, collector: Collector, fake_upstream: FakeUpstream
) -> None:
    gateway = traced_gateway(start_gateway, collector)
    status, headers, body = gateway.post(
        "/v1/chat/completions", {"model": "persona/ada", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert status == 429 and json.loads(body)["error"]["code"] == "budget_exceeded", body
    trace_id, _, _ = parse_traceparent(headers["traceresponse"])
    request, attempts = split(collector.spans(trace_id, 1))
    assert attempts == []
    attrs = attributes(request)
    assert attrs["error.type"] == "budget_exceeded"
    assert attrs["switchboard.budget.outcome"] == "refused"
    assert attrs["http.response.status_code"] == 429
    assert attrs["switchboard.persona"] == "ada"
    assert "gen_ai.usage.input_tokens" not in attrs, "nothing was billed"
    assert request["status"].get("code") in (None, 0), "a 4xx is the client's error, not the server span's"


def test_an_unsampled_caller_is_not_recorded_but_passed_on(
    start_gateway, collector: Collector, fake_upstream: FakeUpstream
) -> None:
    gateway = traced_gateway(start_gateway, collector)
    quiet, loud = secrets.token_hex(16), secrets.token_hex(16)
    for trace_id, flags in ((quiet, "00"), (loud, "01")):
        gateway.openai().chat.completions.create(
            model="local-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-{flags}"},
        )
    collector.spans(loud, 2)
    assert [s for s in collector.all_spans() if s["traceId"] == quiet] == []
    (sent,) = upstream_traceparents(fake_upstream, quiet)
    assert sent.endswith("-00"), sent


def test_an_mcp_tool_call_is_a_span_with_the_model_request_inside(start_gateway, collector: Collector) -> None:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    gateway = traced_gateway(start_gateway, collector)
    client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = {"authorization": "Bearer sk-switchboard-demo", "traceparent": f"00-{client_trace}-{client_span}-01"}

    async def scenario():
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http_client:
            transport = streamable_http_client(f"{gateway.url}/mcp", http_client=http_client)
            async with Client(transport) as client:
                # ada's budget (ROUTES) refuses the turn: the tool fails, after its exchange began.
                result = await client.call_tool("chat", {"persona": "ada", "message": "hello"})
                assert result.is_error

    anyio.run(scenario)
    spans = collector.spans(client_trace, 2)
    (tool,) = [s for s in spans if s["name"] == "tools/call chat"]
    (chat,) = [s for s in spans if s["name"] == "chat persona/ada"]
    assert tool["kind"] == SERVER and tool["parentSpanId"] == client_span
    assert chat["parentSpanId"] == tool["spanId"], "the model request is inside the tool call"
    attrs = attributes(tool)
    assert attrs["mcp.method.name"] == "tools/call"
    assert attrs["gen_ai.tool.name"] == "chat"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["error.type"] == "budget_exceeded"
    assert attributes(chat)["switchboard.endpoint"] == "mcp"


def test_a_route_that_opts_in_records_prompts_and_replies_without_secrets(
    start_gateway, collector: Collector
) -> None:
    gateway = traced_gateway(start_gateway, collector)
    secret = "sk-provider-captured-0123456789"
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="captured-model",
        messages=[
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": f"remember the words blue harbour and {secret}"},
        ],
    )
    reply = raw.parse()
    trace_id, _, _ = parse_traceparent(raw.headers["traceresponse"])
    request, _ = split(collector.spans(trace_id, 2))
    attrs = attributes(request)
    assert secret not in json.dumps(request), "a secret the config holds is never recorded"
    system = json.loads(attrs["gen_ai.system_instructions"])
    assert system == [{"type": "text", "content": "Answer in one word."}]
    (message,) = json.loads(attrs["gen_ai.input.messages"])
    assert message["role"] == "user"
    assert message["parts"][0]["content"].startswith("remember the words blue harbour and [REDACTED]")
    (answer,) = json.loads(attrs["gen_ai.output.messages"])
    assert answer["role"] == "assistant" and answer["finish_reason"] == "stop"
    recorded = answer["parts"][0]["content"]
    assert "blue harbour" in recorded and secret not in recorded
    # The client got the reply redacted too: an upstream echoing a key never passes it on.
    assert recorded == reply.choices[0].message.content
