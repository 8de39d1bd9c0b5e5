DROP INDEX messages_session_idx;
DROP TABLE messages;
DROP INDEX runs_session_idx;
DROP TABLE runs;
DROP INDEX session_transitions_project_idx;
DROP INDEX session_transitions_session_idx;
DROP TABLE session_transitions;
DROP INDEX sessions_agent_external_id_idx;
ALTER TABLE sessions DROP COLUMN external_id;
