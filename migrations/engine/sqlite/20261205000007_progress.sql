-- Live progress of a parked run: what its workflow's progress hook last reported (JSON, the
-- workflow's own shape), when, how often the hook is asked while the run waits, and when it
-- is asked next (pushed forward before the hook is called, so a busy scheduler never asks
-- the same run twice at once).
ALTER TABLE workflow_runs ADD COLUMN progress TEXT;
ALTER TABLE workflow_runs ADD COLUMN progress_at BIGINT;
ALTER TABLE workflow_runs ADD COLUMN progress_every_ms BIGINT;
ALTER TABLE workflow_runs ADD COLUMN progress_due BIGINT;
CREATE INDEX workflow_runs_progress_due ON workflow_runs (progress_due) WHERE status = 'waiting';
