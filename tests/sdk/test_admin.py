"""Admin usage API and the operational endpoints, against the ledger."""

from __future__ import annotations

import json
import time

from harness import ADMIN_TOKEN, http

HELLO = [{"role": "user", "content": "hello admin"}]
FIELDS = ("requests", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "cost_nanos")


def usage(gateway, token: str = ADMIN_TOKEN):
    return http("GET", f"{gateway.admin_url}/admin/v1/usage", headers={"authorization": f"Bearer {token}"})


def test_admin_usage_matches_the_ledger(start_gateway):
    gateway = start_gateway()
    client = gateway.openai()
    for model in ("demo-echo", "local-model"):
        client.chat.completions.create(model=model, messages=HELLO)
    gateway.anthropic().messages.create(model="demo-echo", max_tokens=64, messages=HELLO)

    status, _, _ = usage(gateway, token="wrong-admin-token")
    assert status == 401
    status, _, _ = usage(gateway, token="sk-switchboard-demo")
    assert status in (401, 403), "a tenant key must not open the admin API"

    # The ledger is written in batches: poll until the three requests show, bounded.
    deadline = time.monotonic() + 15
    while True:
        status, _, raw = usage(gateway)
        assert status == 200, raw
        tenants = {t["tenant"]: t for t in json.loads(raw)["tenants"]}
        if tenants.get("demo", {}).get("requests") == 3:
            break
        assert time.monotonic() < deadline, f"admin usage did not reach 3 requests within 15s: {raw!r}"
        time.sleep(0.2)
    demo = tenants["demo"]

    gateway.stop()
    rows = gateway.ledger()
    assert len(rows) == 3
    for field in FIELDS[1:]:
        assert demo[field] == sum(r[field] for r in rows), (field, demo, rows)
    assert abs(float(demo["cost_usd"]) - demo["cost_nanos"] / 1e9) < 1e-9, demo


def test_health_ready_and_metrics(start_gateway):
    gateway = start_gateway()
    assert http("GET", f"{gateway.url}/healthz")[0] == 200
    assert http("GET", f"{gateway.url}/readyz")[0] == 200
    gateway.openai().chat.completions.create(model="demo-echo", messages=HELLO)
    status, headers, body = http("GET", f"{gateway.url}/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain"), headers
    assert b"# TYPE" in body, body[:300]
    assert b"sk-switchboard-demo" not in body
