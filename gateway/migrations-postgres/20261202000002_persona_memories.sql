-- Long-term memories per tenant, persona and subject, with a generated English tsvector and a GIN
-- index for full-text relevance.
CREATE TABLE IF NOT EXISTS persona_memories (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    persona TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    content_key TEXT NOT NULL,
    importance INTEGER NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT NOT NULL,
    use_count BIGINT NOT NULL DEFAULT 0,
    search TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    UNIQUE (tenant, persona, subject, content_key)
);
CREATE INDEX IF NOT EXISTS persona_memories_subject ON persona_memories (tenant, subject, persona);
CREATE INDEX IF NOT EXISTS persona_memories_persona ON persona_memories (persona, last_used_at_ms);
CREATE INDEX IF NOT EXISTS persona_memories_search ON persona_memories USING GIN (search);
