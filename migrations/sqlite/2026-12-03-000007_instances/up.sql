-- Every agentdeck server process that shares this database registers
-- itself, and keeps a heartbeat while it runs. A run is owned by the
-- instance that started its process: only that instance ends it, and a
-- survivor interrupts the runs of an instance that stopped or whose
-- heartbeat is older than the lease.
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT NULL
);

-- NULL: a run from before instances (its owner is gone by definition).
ALTER TABLE runs ADD COLUMN owner_instance TEXT NULL;
-- A Cancel pressed on another instance, for the owner to act on.
ALTER TABLE runs ADD COLUMN cancel_requested_at BIGINT NULL;
CREATE INDEX runs_open_idx ON runs (owner_instance) WHERE ended_at IS NULL;
