-- What the guardrails of the policies that applied found and did: a JSON array of
-- {"on", "kind", "action", "count"} (never the text), NULL when nothing was found.
ALTER TABLE request_log ADD COLUMN guardrails TEXT;
