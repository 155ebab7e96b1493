-- A memory's vector for recall by meaning (the Persona's spec.memory.embeddingModel): unit-length
-- little-endian f32s, with the model that made them and their dimension. NULL until embedded; a
-- vector of another model than the persona's is re-embedded in the background.
ALTER TABLE persona_memories ADD COLUMN embedding BYTEA;
ALTER TABLE persona_memories ADD COLUMN embedding_model TEXT;
ALTER TABLE persona_memories ADD COLUMN embedding_dim INTEGER;
CREATE INDEX IF NOT EXISTS persona_memories_embedding ON persona_memories (persona, embedding_model);
