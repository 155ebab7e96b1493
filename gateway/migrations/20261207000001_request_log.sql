-- One row per request that reached the exchange, served or refused (a 401 never gets this far):
-- what the request log, /admin/v1/requests and /v1/usage/requests read. The usage ledger stays
-- the record of money; this table can be trimmed by the retention setting without touching it.
CREATE TABLE IF NOT EXISTS request_log (
    id TEXT PRIMARY KEY,
    created_at_ms BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    api_key TEXT NOT NULL,
    subject TEXT,
    persona TEXT,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    backend TEXT NOT NULL,
    provider TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    attempts TEXT NOT NULL,
    latency_ms BIGINT NOT NULL,
    ttft_ms BIGINT,
    queue_ms BIGINT,
    input_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    cache_hit INTEGER NOT NULL,
    trace_id TEXT
);
-- Newest first, whole gateway or one tenant; the id breaks ties for the cursor.
CREATE INDEX IF NOT EXISTS request_log_time ON request_log (created_at_ms, id);
CREATE INDEX IF NOT EXISTS request_log_tenant_time ON request_log (tenant, created_at_ms, id);
