-- Long-term memories per tenant, persona and subject, with an FTS5 index (Porter stemming) kept
-- in step by triggers. `seq` is the rowid the index points at: an INTEGER PRIMARY KEY, so that
-- VACUUM never renumbers it.
CREATE TABLE IF NOT EXISTS persona_memories (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
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
    UNIQUE (tenant, persona, subject, content_key)
);
CREATE INDEX IF NOT EXISTS persona_memories_subject ON persona_memories (tenant, subject, persona);
CREATE INDEX IF NOT EXISTS persona_memories_persona ON persona_memories (persona, last_used_at_ms);

CREATE VIRTUAL TABLE IF NOT EXISTS persona_memories_fts USING fts5(
    content, content = 'persona_memories', content_rowid = 'seq', tokenize = 'porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS persona_memories_fts_insert AFTER INSERT ON persona_memories BEGIN
    INSERT INTO persona_memories_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER IF NOT EXISTS persona_memories_fts_delete AFTER DELETE ON persona_memories BEGIN
    INSERT INTO persona_memories_fts (persona_memories_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER IF NOT EXISTS persona_memories_fts_update AFTER UPDATE OF content ON persona_memories BEGIN
    INSERT INTO persona_memories_fts (persona_memories_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO persona_memories_fts (rowid, content) VALUES (new.seq, new.content);
END;
