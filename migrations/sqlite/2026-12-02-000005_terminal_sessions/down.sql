DROP TABLE hook_reports;
DROP TABLE agent_processes;
DROP INDEX sessions_state_changed_idx;
ALTER TABLE sessions DROP COLUMN ended_at;
ALTER TABLE sessions DROP COLUMN last_hook_at;
DELETE FROM session_transitions WHERE reason IN ('ended', 'attention');
CREATE TEMP TABLE kept_sequence AS
    SELECT seq FROM sqlite_sequence WHERE name = 'session_transitions';
CREATE TABLE session_transitions_old (
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
INSERT INTO session_transitions_old
    SELECT seq, session_id, project_id, from_state, to_state, error_message, reason, at
    FROM session_transitions;
DROP TABLE session_transitions;
ALTER TABLE session_transitions_old RENAME TO session_transitions;
CREATE INDEX session_transitions_session_idx ON session_transitions (session_id, seq);
CREATE INDEX session_transitions_project_idx ON session_transitions (project_id, seq);
UPDATE sqlite_sequence SET seq = (SELECT seq FROM kept_sequence)
    WHERE name = 'session_transitions' AND seq < (SELECT seq FROM kept_sequence);
DROP TABLE kept_sequence;
ALTER TABLE sessions DROP COLUMN attention;
