DROP TABLE hook_reports;
DROP TABLE agent_processes;
DROP INDEX sessions_state_changed_idx;
ALTER TABLE sessions DROP COLUMN ended_at;
ALTER TABLE sessions DROP COLUMN last_hook_at;
ALTER TABLE session_transitions DROP COLUMN attention;
ALTER TABLE sessions DROP COLUMN attention;
