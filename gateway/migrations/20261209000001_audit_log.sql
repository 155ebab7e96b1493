-- The audit trail: who did what through the gateway's own surfaces (a refused credential, an
-- administrative read), when, from where and with what outcome. Never a credential.
CREATE TABLE IF NOT EXISTS audit_log (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    identity_provider TEXT NOT NULL,
    subject TEXT,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    source TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, id);
