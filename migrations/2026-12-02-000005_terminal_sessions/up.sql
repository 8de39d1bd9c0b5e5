-- "Needs you": what a working session waits for from the person (approval,
-- input), kept beside its state (the three states stay as they are).
-- Every entry of the change log records the session's attention after it,
-- so a page replaying the log learns it too.
ALTER TABLE sessions ADD COLUMN attention TEXT NULL;
ALTER TABLE session_transitions ADD COLUMN attention TEXT NULL;

-- Sessions running in a terminal report through hooks: when a hook last
-- reported for the session (NULL: never, not a terminal session).
ALTER TABLE sessions ADD COLUMN last_hook_at BIGINT NULL;
-- When the agent said the session ended (SessionEnd); a new prompt clears it.
ALTER TABLE sessions ADD COLUMN ended_at BIGINT NULL;
CREATE INDEX sessions_state_changed_idx ON sessions (state, state_changed_at);

-- The agent process a terminal session's hooks came from: its pid, its
-- start time (so a reused pid is not mistaken for it) and the machine it
-- runs on. A watchdog ends a turn whose process is gone.
CREATE TABLE agent_processes (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    pid INTEGER NOT NULL,
    started BIGINT NULL,
    host TEXT NOT NULL
);

-- The last hook each agent sent, whatever became of it, for `hooks status`.
CREATE TABLE hook_reports (
    agent TEXT PRIMARY KEY NOT NULL CHECK (agent IN ('claude', 'codex')),
    last_at BIGINT NOT NULL,
    last_event TEXT NOT NULL,
    last_cwd TEXT NULL,
    -- What became of it: 'applied', 'unchanged', 'no_project', 'own_run', 'ignored'.
    outcome TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0
);
