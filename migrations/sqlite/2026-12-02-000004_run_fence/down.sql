DROP INDEX runs_agent_session_idx;
DROP INDEX sessions_current_run_idx;
ALTER TABLE sessions DROP COLUMN current_run_id;
