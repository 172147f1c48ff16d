-- A portrait's enlarged version (portrait_upscale), kept beside the original on its own
-- gallery row: the blob and its size, NULL until an upscale of it succeeded.
ALTER TABLE gallery ADD COLUMN upscaled_key TEXT;
ALTER TABLE gallery ADD COLUMN upscaled_width BIGINT;
ALTER TABLE gallery ADD COLUMN upscaled_height BIGINT;
