-- How many messages an imported transcript held at the last sync.
ALTER TABLE sessions ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;

-- Every agent transcript file seen on disk, with where reading stopped and
-- what was learnt from it so far: an unchanged file is not opened again, an
-- appended one is read from `read_offset`.
CREATE TABLE transcript_files (
    path TEXT PRIMARY KEY NOT NULL,
    agent TEXT NOT NULL CHECK (agent IN ('claude', 'codex')),
    size BIGINT NOT NULL,
    mtime BIGINT NOT NULL,
    read_offset BIGINT NOT NULL,
    external_id TEXT NULL,
    cwd TEXT NULL,
    title TEXT NULL,
    first_message TEXT NULL,
    first_at BIGINT NULL,
    last_at BIGINT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    skipped_lines INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX transcript_files_cwd_idx ON transcript_files (cwd);
