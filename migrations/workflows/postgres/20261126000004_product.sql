-- Avatars: one per training run (the avatar's id is its training run's id).
CREATE TABLE avatars (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    trigger_phrase TEXT NOT NULL UNIQUE,
    preset         TEXT NOT NULL,
    steps          BIGINT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('training', 'ready', 'failed')),
    lora_key       TEXT,
    error          TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX avatars_user ON avatars (user_id, created_at);

-- Portraits we generated and kept, one row per image of a run.
CREATE TABLE gallery (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    avatar_id    TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    idx          BIGINT NOT NULL,
    blob_key     TEXT NOT NULL,
    width        BIGINT,
    height       BIGINT,
    content_type TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    prompt       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (run_id, idx)
);
CREATE INDEX gallery_user ON gallery (user_id, created_at);

-- What the user is told: one row per (run, step, kind), sent by a delivery worker.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    step       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at    BIGINT,
    UNIQUE (run_id, step, kind)
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;
