-- Bounded credits: no balance above the ceiling the code also enforces
-- (aisha_workflows::credits::BALANCE_CEILING), whatever MAX_BALANCE says. With every balance
-- this far below BIGINT's range, no sum over accounts or the ledger can overflow.
-- An existing row out of bounds (only the overflow this fixes could write one) stops the
-- migration: correct it by hand first; money is never clamped silently.
ALTER TABLE credit_accounts
    ADD CONSTRAINT credit_accounts_balance_ceiling CHECK (balance <= 1000000000000000);
