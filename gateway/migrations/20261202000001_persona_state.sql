-- A persona's mood and interaction statistics, per owning tenant. Valence -1..1, arousal 0..1, as
-- of at_ms (decay toward neutral is applied when read).
CREATE TABLE IF NOT EXISTS persona_states (
    tenant TEXT NOT NULL,
    persona TEXT NOT NULL,
    valence DOUBLE PRECISION NOT NULL,
    arousal DOUBLE PRECISION NOT NULL,
    at_ms BIGINT NOT NULL,
    interactions BIGINT NOT NULL,
    quality_sum DOUBLE PRECISION NOT NULL,
    last_interaction_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, persona)
);

-- How `persona` relates to `other` (both of `tenant`), as of at_ms.
CREATE TABLE IF NOT EXISTS persona_relationships (
    tenant TEXT NOT NULL,
    persona TEXT NOT NULL,
    other TEXT NOT NULL,
    affinity DOUBLE PRECISION NOT NULL,
    trust DOUBLE PRECISION NOT NULL,
    familiarity DOUBLE PRECISION NOT NULL,
    interactions BIGINT NOT NULL,
    last_interaction_ms BIGINT,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, persona, other)
);
