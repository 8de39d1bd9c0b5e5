DROP INDEX runs_open_idx;
ALTER TABLE runs DROP COLUMN cancel_requested_at;
ALTER TABLE runs DROP COLUMN owner_instance;
DROP TABLE instances;
