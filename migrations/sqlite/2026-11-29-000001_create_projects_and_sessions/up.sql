-- Projects: a directory on disk that agents run in.
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) > 0),
    path TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Agent sessions. Times are Unix milliseconds (portable across backends).
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) > 0),
    agent TEXT NOT NULL CHECK (agent IN ('shell', 'claude', 'codex')),
    state TEXT NOT NULL DEFAULT 'idle' CHECK (state IN ('idle', 'working', 'error')),
    error_message TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state_changed_at BIGINT NOT NULL,
    -- The seed's invariant: an error message exactly when the session is in error.
    CHECK ((state = 'error') = (error_message IS NOT NULL)),
    CHECK (error_message IS NULL OR length(error_message) > 0)
);

CREATE INDEX sessions_state_idx ON sessions (state);
CREATE INDEX sessions_project_updated_idx ON sessions (project_id, updated_at);
