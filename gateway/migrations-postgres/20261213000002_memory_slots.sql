-- A memory's slot: the single-valued attribute it states ("home", "job", "car"), when it has one.
-- A newer memory of the same tenant, persona, subject and slot supersedes it: the old one is kept
-- as history (when, and by which memory) and is no longer recalled.
ALTER TABLE persona_memories ADD COLUMN slot TEXT;
ALTER TABLE persona_memories ADD COLUMN superseded_at_ms BIGINT;
ALTER TABLE persona_memories ADD COLUMN superseded_by TEXT;
CREATE INDEX IF NOT EXISTS persona_memories_slot ON persona_memories (tenant, persona, subject, slot);
