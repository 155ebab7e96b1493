-- People signed in to the admin API (OIDC authorization code with PKCE): logins under way (the
-- state the identity provider sends back, with the PKCE verifier and the nonce) and sessions (by
-- the SHA-256 of the cookie's value, so that a copy of this table signs no one in).
CREATE TABLE IF NOT EXISTS sign_in_pending (
    state TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sign_in_sessions (
    id_sha256 TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    email TEXT,
    groups_json TEXT NOT NULL,
    issuer TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
