-- "Needs you": what a working session waits for from the person (approval,
-- input), kept beside its state (the three states stay as they are).
-- Every entry of the change log records the session's attention after it,
-- so a page replaying the log learns it too.
ALTER TABLE sessions ADD COLUMN attention TEXT NULL;
--
-- The change log gains that column and two reasons ('ended', 'attention'):
-- its CHECK constraint can only change by rebuilding the table, keeping
-- every seq and the AUTOINCREMENT counter (a seq is never handed out twice,
-- even after the rows of a removed project are gone).
CREATE TEMP TABLE kept_sequence AS
    SELECT seq FROM sqlite_sequence WHERE name = 'session_transitions';
CREATE TABLE session_transitions_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    session_id TEXT NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    from_state TEXT NOT NULL CHECK (from_state IN ('idle', 'working', 'error')),
    to_state TEXT NOT NULL CHECK (to_state IN ('idle', 'working', 'error')),
    error_message TEXT NULL,
    reason TEXT NOT NULL CHECK (reason IN (
        'sent', 'succeeded', 'failed', 'cancelled', 'interrupted', 'synced', 'ended',
        'created', 'renamed', 'deleted', 'attention'
    )),
    at BIGINT NOT NULL,
    attention TEXT NULL CHECK (attention IN ('approval', 'input'))
);
INSERT INTO session_transitions_new
    (seq, session_id, project_id, from_state, to_state, error_message, reason, at)
    SELECT seq, session_id, project_id, from_state, to_state, error_message, reason, at
    FROM session_transitions;
DROP TABLE session_transitions;
ALTER TABLE session_transitions_new RENAME TO session_transitions;
CREATE INDEX session_transitions_session_idx ON session_transitions (session_id, seq);
CREATE INDEX session_transitions_project_idx ON session_transitions (project_id, seq);
UPDATE sqlite_sequence SET seq = (SELECT seq FROM kept_sequence)
    WHERE name = 'session_transitions' AND seq < (SELECT seq FROM kept_sequence);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'session_transitions', seq FROM kept_sequence
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'session_transitions');
DROP TABLE kept_sequence;

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
