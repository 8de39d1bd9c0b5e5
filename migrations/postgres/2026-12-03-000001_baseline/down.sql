-- Children before the tables they reference.
DROP TABLE instances;
DROP TABLE notify_targets;
DROP TABLE unseen_ends;
DROP TABLE approvals;
DROP TABLE hook_reports;
DROP TABLE agent_processes;
DROP TABLE transcript_files;
DROP TABLE messages;
DROP TABLE runs;
DROP SEQUENCE session_transitions_seq_seq;
-- Drops its triggers too.
DROP TABLE session_transitions;
DROP FUNCTION agentdeck_notify_changes();
DROP FUNCTION agentdeck_next_seq();
DROP TABLE sessions;
DROP TABLE projects;
