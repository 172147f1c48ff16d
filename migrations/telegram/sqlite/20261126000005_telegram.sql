-- Telegram updates as received: committed before Telegram is told we have them (the
-- getUpdates offset, or the webhook's 200), handled in order per chat, marked when handled.
-- A crash between the two leaves the row unhandled: it is handled after the restart.
CREATE TABLE tg_updates (
    update_id   BIGINT PRIMARY KEY,
    chat_id     BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    handled_at  BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX tg_updates_unhandled ON tg_updates (update_id) WHERE handled_at IS NULL;

-- Bot users: language and main avatar. `user_id` is the Telegram user id (also the private
-- chat's id and the subject of the user's runs).
CREATE TABLE tg_users (
    user_id     TEXT PRIMARY KEY,
    lang        TEXT NOT NULL,
    lang_chosen BIGINT NOT NULL DEFAULT 0,
    first_name  TEXT NOT NULL DEFAULT '',
    main_avatar TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Dialogue state per chat (what the bot is asking for), JSON.
CREATE TABLE tg_dialogues (
    chat_id    BIGINT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Stars payments we credited: one row per Telegram charge.
CREATE TABLE tg_payments (
    charge_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    credits     BIGINT NOT NULL,
    stars       BIGINT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    refunded_at BIGINT
);
CREATE INDEX tg_payments_user ON tg_payments (user_id, created_at);

-- Delivery bookkeeping of the outbox: how many parts of a notice were sent (an album and
-- its buttons are two), the claim of the worker sending it, and when to try again.
ALTER TABLE outbox ADD COLUMN progress BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
ALTER TABLE outbox ADD COLUMN next_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN failed_at BIGINT;
