-- Engine state of record. Timestamps are unix milliseconds (BIGINT), identical in SQLite.
CREATE TABLE workflow_runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending','running','waiting','succeeded','failed','cancelled')),
    step             TEXT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 1,
    -- dispatch generation: every transition bumps it; a task carrying an older one is dropped
    seq              BIGINT NOT NULL DEFAULT 1,
    state            TEXT NOT NULL,
    subject          TEXT,
    idempotency_key  TEXT,
    parent_run_id    TEXT,
    error            TEXT,
    -- step to resume after compensation (the failed one) and the terminal status to settle in
    failed_step      TEXT,
    final_status     TEXT,
    callback_payload TEXT,
    wait_provider    TEXT,
    wait_external_id TEXT,
    wake_at          BIGINT,
    deadline_at      BIGINT,
    poll_every_ms    BIGINT,
    lease_id         TEXT,
    lease_until      BIGINT,
    due_at           BIGINT,
    held             TEXT,
    permit           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    UNIQUE (workflow, idempotency_key)
);
CREATE INDEX workflow_runs_status ON workflow_runs (status, workflow);
CREATE INDEX workflow_runs_subject ON workflow_runs (subject, workflow);
CREATE INDEX workflow_runs_wake ON workflow_runs (wake_at) WHERE status = 'waiting';
CREATE INDEX workflow_runs_due ON workflow_runs (due_at) WHERE status = 'pending';
CREATE INDEX workflow_runs_lease ON workflow_runs (lease_until) WHERE status = 'running';
CREATE INDEX workflow_runs_held ON workflow_runs (held, created_at) WHERE held IS NOT NULL;

CREATE TABLE step_attempts (
    run_id      TEXT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    step        TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    worker      TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE callbacks (
    provider    TEXT NOT NULL,
    external_id TEXT NOT NULL,
    run_id      TEXT,
    step        TEXT,
    seq         BIGINT,
    deadline_at BIGINT,
    payload     TEXT,
    created_at  BIGINT NOT NULL,
    received_at BIGINT,
    resolved_at BIGINT,
    duplicates  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, external_id)
);
CREATE INDEX callbacks_run ON callbacks (run_id);

CREATE TABLE provider_permits (
    provider TEXT PRIMARY KEY,
    capacity BIGINT NOT NULL,
    in_use   BIGINT NOT NULL DEFAULT 0 CHECK (in_use >= 0)
);
