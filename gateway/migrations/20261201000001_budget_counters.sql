-- Budget counters shared by gateway replicas. Only the PostgreSQL ledger uses them (the SQLite
-- one serves a single replica, which counts in memory), but the SQL is portable so that one set
-- of migrations serves both databases.

-- Settled spend per budget ("namespace/name") and period start, in nano-dollars.
CREATE TABLE IF NOT EXISTS budget_counters (
    budget TEXT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    spent_nanos BIGINT NOT NULL,
    PRIMARY KEY (budget, period_start_ms)
);

-- A reservation: its holds count until expires_at_ms, which the replica serving the request keeps
-- pushing back, so a replica that dies mid-request stops holding budget soon after. A settled
-- reservation keeps its row (settled_at_ms) for a while, so that a retried settle charges once.
CREATE TABLE IF NOT EXISTS budget_reservations (
    id TEXT PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL,
    settled_at_ms BIGINT
);
CREATE INDEX IF NOT EXISTS budget_reservations_expiry ON budget_reservations (expires_at_ms);

-- What a reservation holds against each of its hard budgets.
CREATE TABLE IF NOT EXISTS budget_holds (
    reservation TEXT NOT NULL,
    budget TEXT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    amount_nanos BIGINT NOT NULL,
    PRIMARY KEY (reservation, budget)
);
CREATE INDEX IF NOT EXISTS budget_holds_counter ON budget_holds (budget, period_start_ms);
