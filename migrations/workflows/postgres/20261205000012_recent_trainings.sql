-- A training's expected duration is the median of the last finished trainings of its preset
-- (Avatars::typical_training, asked by every waiting training's progress hook).
CREATE INDEX avatars_ready_recent ON avatars (preset, updated_at) WHERE status = 'ready';
