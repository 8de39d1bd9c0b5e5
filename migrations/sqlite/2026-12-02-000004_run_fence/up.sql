-- The run a working session is in: every end of a run is fenced by it, so
-- a late end of an older run (or a cancel racing a new send) can never end
-- or overwrite a newer one. NULL whenever the session is not working.
ALTER TABLE sessions ADD COLUMN current_run_id TEXT NULL;
CREATE INDEX sessions_current_run_idx ON sessions (current_run_id);
-- The agent's own conversation id is recorded on the run as it starts (for
-- Claude, the id passed as --session-id), so a transcript sync during the
-- run's first turn links that transcript to this session instead of
-- importing it as a second one.
CREATE INDEX runs_agent_session_idx ON runs (agent_session_id);
