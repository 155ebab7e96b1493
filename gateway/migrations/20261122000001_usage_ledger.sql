-- One row per request that reached a provider. Money is integer nano-dollars (USD x 1e9).
CREATE TABLE IF NOT EXISTS usage_ledger (
    id TEXT PRIMARY KEY,
    created_at_ms BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    api_key TEXT NOT NULL,
    persona TEXT,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    backend TEXT NOT NULL,
    provider TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    input_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_ledger_tenant_time ON usage_ledger (tenant, created_at_ms);
