-- FAL submissions: the intent is written before the POST (FAL's submit has no idempotency
-- key), the request id and FAL's URLs right after it. One open submission per (run, step).
CREATE TABLE fal_submissions (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    app          TEXT NOT NULL,
    request_id   TEXT,
    status_url   TEXT,
    response_url TEXT,
    cancel_url   TEXT,
    intent_at    BIGINT NOT NULL,
    submitted_at BIGINT,
    closed_at    BIGINT
);
CREATE UNIQUE INDEX fal_submissions_open ON fal_submissions (run_id, step) WHERE closed_at IS NULL;
CREATE UNIQUE INDEX fal_submissions_request ON fal_submissions (request_id);

-- Verified webhook deliveries, stored before FAL gets its 200; handed to the engine after.
CREATE TABLE fal_inbox (
    request_id   TEXT PRIMARY KEY,
    endpoint     TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    outcome      TEXT
);
CREATE INDEX fal_inbox_unprocessed ON fal_inbox (received_at) WHERE processed_at IS NULL;

-- Generated secrets every process of a deployment shares (e.g. the webhook token key when
-- WEBHOOK_SECRET is not set).
CREATE TABLE aisha_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
