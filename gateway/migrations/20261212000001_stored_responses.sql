-- Responses API objects a tenant stored (`store`, the default): the `response` as answered, and
-- the conversation so far in the chat form, which a later request continues by naming it in
-- `previous_response_id`. Kept for 30 days.
CREATE TABLE IF NOT EXISTS stored_responses (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    response_json TEXT NOT NULL,
    conversation_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_responses_created ON stored_responses (created_at_ms);
