-- Bounded credits: no balance above the ceiling the code also enforces
-- (aisha_workflows::credits::BALANCE_CEILING), whatever MAX_BALANCE says, and never a REAL
-- (SQLite turns an overflowing integer sum into one). SQLite cannot add a CHECK to a table,
-- so the table is rebuilt with it. An existing row out of bounds (only the overflow this
-- fixes could write one) stops the migration: correct it by hand first; money is never
-- clamped silently.
CREATE TABLE credit_accounts_bounded (
    user_id    TEXT PRIMARY KEY,
    balance    BIGINT NOT NULL CHECK (typeof(balance) = 'integer' AND balance BETWEEN 0 AND 1000000000000000),
    updated_at BIGINT NOT NULL
);
INSERT INTO credit_accounts_bounded (user_id, balance, updated_at)
    SELECT user_id, balance, updated_at FROM credit_accounts;
DROP TABLE credit_accounts;
ALTER TABLE credit_accounts_bounded RENAME TO credit_accounts;
