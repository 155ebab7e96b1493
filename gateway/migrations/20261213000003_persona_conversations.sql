-- A persona's conversation with a subject, for its summaries (a Persona's spec.memory.summaries):
-- turns since the last summary, when the last one was, and that turn's conversation as the client
-- sent it (its messages but the system's, bounded), which the summary is written from.
CREATE TABLE IF NOT EXISTS persona_conversations (
    tenant TEXT NOT NULL,
    persona TEXT NOT NULL,
    subject TEXT NOT NULL,
    turns BIGINT NOT NULL,
    last_turn_at_ms BIGINT NOT NULL,
    transcript TEXT NOT NULL,
    PRIMARY KEY (tenant, persona, subject)
);
-- Only conversations with turns to summarise: the idle sweep never reads the summarised ones.
CREATE INDEX IF NOT EXISTS persona_conversations_idle ON persona_conversations (persona, last_turn_at_ms)
    WHERE turns > 0;
