-- One row per request that reached the exchange, served or refused (a 401 never gets this far):
-- what the request log, /admin/v1/requests and /v1/usage/requests read. The usage ledger stays
-- the record of money; this table can be trimmed by the retention setting without touching it.
-- Ids are UUIDv7, which sort by the time the request began: the primary key is the time index.
-- Byte order ("C") for the id, whatever the database's collation.
CREATE TABLE IF NOT EXISTS request_log (
    id TEXT COLLATE "C" PRIMARY KEY,
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
    latency_ms BIGINT NOT NULL,
    subject TEXT,
    attempts TEXT NOT NULL,
    ttft_ms BIGINT,
    queue_ms BIGINT,
    cache_hit INTEGER NOT NULL,
    trace_id TEXT
);
CREATE INDEX IF NOT EXISTS request_log_tenant ON request_log (tenant, id);
