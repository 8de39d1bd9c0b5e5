DROP INDEX sessions_project_updated_idx;
DROP INDEX sessions_state_idx;
DROP TABLE sessions;
DROP TABLE projects;
