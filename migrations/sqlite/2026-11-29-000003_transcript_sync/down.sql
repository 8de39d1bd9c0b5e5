DROP INDEX transcript_files_cwd_idx;
DROP TABLE transcript_files;
ALTER TABLE sessions DROP COLUMN message_count;
