"""What the ledger must hold: expected rows from the usage the SDKs saw, and the cost formula."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from harness import DEMO_KEY, SAMPLES

FAKE_REPLY_PREFIX = "fake-upstream reply to: "


@dataclass(frozen=True)
class Pricing:
    """USD per 1M tokens. Cached and cache-write prices default to the input price (crds ModelPricing)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None


# The sample routes' prices (config/samples/route-*.yaml); `check_sample_prices` guards against drift.
# `fake-claude` is test_anthropic_upstream.py's route, `fake-embed` test_embeddings.py's.
PRICES = {
    "demo-echo": Pricing(Decimal("0.15"), Decimal("0.60")),
    "local-model": Pricing(Decimal("0.10"), Decimal("0.40")),
    "fake-claude": Pricing(Decimal("3"), Decimal("15"), Decimal("0.30"), Decimal("3.75")),
    "demo-embed": Pricing(Decimal("0.02"), Decimal("0")),
    "fake-embed": Pricing(Decimal("0.50"), Decimal("0")),
}

# route, provider and backend names of the routes, as the ledger must name them.
ROUTES = {
    "demo-echo": {"route": "demo-echo", "provider": "mock", "backend": "mock"},
    "local-model": {"route": "local-model", "provider": "openai", "backend": "llama-cpp"},
    "fake-claude": {"route": "fake-claude", "provider": "anthropic", "backend": "claude"},
    "demo-embed": {"route": "demo-echo", "provider": "mock", "backend": "mock"},
    "fake-embed": {"route": "fake-embed", "provider": "openai", "backend": "embedder"},
}


def check_sample_prices() -> None:
    for model in ("demo-echo", "local-model"):
        pricing = PRICES[model]
        text = (SAMPLES / f"route-{model}.yaml").read_text()
        assert f'inputPerMillion: "{pricing.input}"' in text, f"sample price of {model} changed: update PRICES"
        assert f'outputPerMillion: "{pricing.output}"' in text, f"sample price of {model} changed: update PRICES"


def words(text: str) -> int:
    """The fake upstream's token count: whitespace-separated words."""
    return len(text.split())


@dataclass(frozen=True)
class Usage:
    """Usage as the ledger stores it: uncached input, cached input, cache writes, output."""

    input: int
    cached: int = 0
    write: int = 0
    output: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> "Usage":
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
        return cls(usage.prompt_tokens - cached, cached, 0, usage.completion_tokens)

    @classmethod
    def from_anthropic(cls, usage: Any) -> "Usage":
        return cls(
            usage.input_tokens,
            usage.cache_read_input_tokens or 0,
            usage.cache_creation_input_tokens or 0,
            usage.output_tokens,
        )


def cost_nanos(pricing: Pricing, usage: Usage) -> int:
    """round((input*in + cached*cached + write*write + output*out) / 1e6 * 1e9), prices per 1M tokens."""
    cached_price = pricing.cached_input if pricing.cached_input is not None else pricing.input
    write_price = pricing.cache_write if pricing.cache_write is not None else pricing.input
    usd_millionths = (
        usage.input * pricing.input
        + usage.cached * cached_price
        + usage.write * write_price
        + usage.output * pricing.output
    )
    return int((usd_millionths * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Expected:
    """One request the test made, and the ledger row it must leave."""

    request_id: str | None
    model: str
    endpoint: str  # "chat_completions" | "messages"
    stream: bool
    usage: Usage
    status: int = 200
    tenant: str = "demo"
    api_key: str = "default"

    def key(self) -> tuple:
        return (
            self.model,
            self.endpoint,
            int(self.stream),
            self.status,
            self.usage.input,
            self.usage.cached,
            self.usage.write,
            self.usage.output,
            cost_nanos(PRICES[self.model], self.usage) if self.model in PRICES else 0,
        )


def row_key(row: dict[str, Any]) -> tuple:
    return (
        row["model"],
        row["endpoint"],
        int(row["stream"]),
        row["status"],
        row["input_tokens"],
        row["cached_input_tokens"],
        row["cache_write_tokens"],
        row["output_tokens"],
        row["cost_nanos"],
    )


KEY_FIELDS = "(model, endpoint, stream, status, input, cached, write, output, cost_nanos)"


def assert_ledger(rows: list[dict[str, Any]], expected: list[Expected], started_ms: int) -> None:
    """Exactly one row per request, with the tokens the SDK saw and the formula's cost."""
    listing = "\n".join(str(row) for row in rows)
    assert len(rows) == len(expected), (
        f"expected {len(expected)} ledger rows (one per request), found {len(rows)}:\n{listing}"
    )
    assert sorted(map(row_key, rows), key=repr) == sorted((e.key() for e in expected), key=repr), (
        f"ledger rows differ from the usage the SDK saw; keys are {KEY_FIELDS}"
    )
    now_ms = int(time.time() * 1000) + 1000
    by_key = {}
    for e in expected:
        by_key.setdefault(e.key(), []).append(e)
    for row in rows:
        e = by_key[row_key(row)].pop()
        assert row["tenant"] == e.tenant, row
        assert row["api_key"] == e.api_key, row
        if e.model in ROUTES:
            for field, value in ROUTES[e.model].items():
                assert row[field] == value, f"{field}: {row}"
        if e.status == 200:
            assert row["error_code"] is None, row
        assert started_ms - 1000 <= row["created_at_ms"] <= now_ms, f"created_at_ms out of the test's time: {row}"
        assert row["latency_ms"] >= 0, row
        assert row["id"], row
        assert all(DEMO_KEY not in str(value) for value in row.values()), f"a key value leaked into the ledger: {row}"
    ids = Counter(row["id"] for row in rows)
    assert all(n == 1 for n in ids.values()), f"duplicate ledger ids: {ids}"


def assert_ids_are_request_ids(rows: list[dict[str, Any]], expected: list[Expected]) -> None:
    """The ledger id is the request id the client saw (x-request-id / request-id header)."""
    seen = sorted(e.request_id or "<no request id header>" for e in expected)
    assert sorted(row["id"] for row in rows) == seen, "ledger ids are not the request ids the clients saw"
