-- Credits: balances are the sum of an append-only ledger. Every row carries an idempotency
-- key (for run-bound rows `run:kind:reason`), so no retry or crash can charge or refund twice.
CREATE TABLE credit_accounts (
    user_id    TEXT PRIMARY KEY,
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    updated_at BIGINT NOT NULL
);

CREATE TABLE credit_ledger (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('grant', 'purchase', 'reservation', 'capture', 'refund')),
    -- signed effect on the balance: grants, purchases and refunds add, reservations take
    amount          BIGINT NOT NULL,
    run_id          TEXT,
    reason          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL
);
CREATE INDEX credit_ledger_user ON credit_ledger (user_id, created_at);
CREATE INDEX credit_ledger_run ON credit_ledger (run_id) WHERE run_id IS NOT NULL;
