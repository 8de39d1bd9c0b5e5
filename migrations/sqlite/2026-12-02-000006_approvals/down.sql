DROP TABLE notify_targets;
DROP TABLE unseen_ends;
DROP TABLE approvals;
ALTER TABLE projects DROP COLUMN approval_wait_secs;
ALTER TABLE projects DROP COLUMN approve_from_dashboard;
ALTER TABLE runs DROP COLUMN denied_tools;
ALTER TABLE sessions DROP COLUMN permission_mode;
