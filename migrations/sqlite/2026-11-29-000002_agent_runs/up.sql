-- The agent's own id for the conversation (Claude session id, Codex thread
-- id), so later messages continue it.
ALTER TABLE sessions ADD COLUMN external_id TEXT NULL;
CREATE UNIQUE INDEX sessions_agent_external_id_idx ON sessions (agent, external_id);

-- The change log: every state transition, and every session created,
-- renamed or deleted, in commit order. `seq` is the global, strictly
-- increasing position that live views resume from. No foreign key to
-- sessions: the record of a deletion outlives the session.
CREATE TABLE session_transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    session_id TEXT NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    from_state TEXT NOT NULL CHECK (from_state IN ('idle', 'working', 'error')),
    to_state TEXT NOT NULL CHECK (to_state IN ('idle', 'working', 'error')),
    error_message TEXT NULL,
    reason TEXT NOT NULL CHECK (reason IN (
        'sent', 'succeeded', 'failed', 'cancelled', 'interrupted', 'synced',
        'created', 'renamed', 'deleted'
    )),
    at BIGINT NOT NULL
);
CREATE INDEX session_transitions_session_idx ON session_transitions (session_id, seq);
CREATE INDEX session_transitions_project_idx ON session_transitions (project_id, seq);

-- One agent process per sent message.
CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NULL,
    outcome TEXT NULL CHECK (outcome IN ('succeeded', 'failed', 'cancelled', 'interrupted')),
    exit_code INTEGER NULL,
    duration_ms BIGINT NULL,
    pid INTEGER NULL,
    agent_session_id TEXT NULL,
    cost_usd DOUBLE NULL,
    error_message TEXT NULL
);
CREATE INDEX runs_session_idx ON runs (session_id, started_at);

-- The conversation: what was sent, and what the agent answered.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    run_id TEXT NULL REFERENCES runs (id) ON DELETE SET NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'agent')),
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX messages_session_idx ON messages (session_id, id);
