//! Sync: find transcript files, read what is new in them (remembering size,
//! mtime and offset per file), import the sessions whose recorded `cwd` is
//! the project's path, and clear stale errors through the state writer.

use super::{
    files::{self, Found, Listing},
    transcript::TranscriptInfo,
    SyncSummary,
};
use crate::db::DbConn;
use crate::{
    agent::AgentKind,
    db::{
        now_millis,
        schema::{runs, sessions, transcript_files},
        Db,
    },
    error::AppError,
    live::LiveEvent,
    project::Project,
    session::Session,
    session_state::SessionState,
    transition::{
        writer::{self, record_lifecycle, Applied},
        Reason, TransitionEvent,
    },
};
use diesel::prelude::*;
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

/// Where the agents keep their transcripts.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Claude Code: `~/.claude/projects`.
    pub claude_root: PathBuf,
    /// Codex: `~/.codex/sessions`.
    pub codex_root: PathBuf,
}

impl Default for SyncConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        Self {
            claude_root: home.join(".claude/projects"),
            codex_root: home.join(".codex/sessions"),
        }
    }
}

/// Runs syncs one at a time.
pub struct Syncer {
    pub db: Db,
    config: SyncConfig,
    running: tokio::sync::Mutex<()>,
}

/// The stored state of one transcript file.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = transcript_files, treat_none_as_null = true)]
struct FileRow {
    path: String,
    agent: AgentKind,
    size: i64,
    mtime: i64,
    read_offset: i64,
    external_id: Option<String>,
    cwd: Option<String>,
    title: Option<String>,
    first_message: Option<String>,
    first_at: Option<i64>,
    last_at: Option<i64>,
    message_count: i32,
    skipped_lines: i32,
}

impl FileRow {
    fn info(&self) -> TranscriptInfo {
        TranscriptInfo {
            external_id: self.external_id.clone(),
            cwd: self.cwd.clone(),
            title: self.title.clone(),
            first_message: self.first_message.clone(),
            first_at: self.first_at,
            last_at: self.last_at,
            message_count: self.message_count,
            skipped_lines: self.skipped_lines,
        }
    }
}

impl Syncer {
    pub fn new(db: Db, config: SyncConfig) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            db,
            config,
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Syncs a project just added, without waiting: sessions started from
    /// the terminal in its directory appear by themselves.
    pub fn sync_in_background(self: &std::sync::Arc<Self>, project: Project) {
        let syncer = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            if let Err(err) = syncer.sync(&project).await {
                tracing::warn!(project_id = project.id, error = %err, "sync after adding the project failed");
            }
        });
    }

    /// Syncs one project. Files are read once for all projects; the import
    /// then takes the transcripts whose `cwd` is this project's path.
    pub async fn sync(&self, project: &Project) -> Result<SyncSummary, AppError> {
        let _one_at_a_time = self.running.lock().await;
        let mut summary = self.read_files(project.id).await?;
        let (project_id, path) = (project.id, project.path.clone());
        let counts = self
            .db
            .write(move |conn| import(conn, project_id, &path))
            .await?;
        summary.imported = counts.imported;
        summary.updated = counts.updated;
        summary.errors_cleared = counts.errors_cleared;
        tracing::info!(project_id, %summary, "sync finished");
        Ok(summary)
    }

    /// Reads new and changed transcript files into `transcript_files`.
    async fn read_files(&self, project_id: i32) -> Result<SyncSummary, AppError> {
        let config = self.config.clone();
        let hub = self.db.hub().clone();
        self.db
            .run(move |conn| {
                let mut listing = Listing::default();
                listing.add_root(&config.claude_root, AgentKind::Claude);
                listing.add_root(&config.codex_root, AgentKind::Codex);
                let known: HashMap<String, FileRow> = transcript_files::table
                    .select(FileRow::as_select())
                    .load(conn)?
                    .into_iter()
                    .map(|row| (row.path.clone(), row))
                    .collect();
                let files = listing.files;
                let mut summary = SyncSummary {
                    files_total: files.len(),
                    files_skipped: listing.skipped,
                    ..SyncSummary::default()
                };
                // Counted and published under one lock, so pages see it only grow.
                let scanned = Mutex::new(0);
                let progress = |_: &Found| {
                    let mut scanned = scanned.lock().unwrap_or_else(PoisonError::into_inner);
                    *scanned += 1;
                    if *scanned % 25 == 1 || *scanned == files.len() {
                        hub.publish_sync_progress(project_id, *scanned, files.len());
                    }
                };
                let mut read = Vec::with_capacity(FILE_ROWS_PER_COMMIT);
                for outcome in read_in_parallel(&files, &known, &progress) {
                    match outcome {
                        FileRead::Unchanged | FileRead::Failed => {}
                        FileRead::Skipped => summary.files_skipped += 1,
                        FileRead::Read { row, lines_skipped } => {
                            summary.files_read += 1;
                            summary.lines_skipped += lines_skipped;
                            read.push(row);
                            if read.len() == FILE_ROWS_PER_COMMIT {
                                save_file_rows(conn, &mut read)?;
                            }
                        }
                    }
                }
                save_file_rows(conn, &mut read)?;
                Ok(summary)
            })
            .await
    }
}

/// The canonical form of a recorded directory, when it still exists.
fn canonical(dir: &str) -> String {
    std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| dir.to_owned())
}

/// Whether `external_id` is the conversation of one of agentdeck's own
/// runs (a new Claude conversation gets its id before it starts): then the
/// transcript is that session's, linked to it here, never a second session.
fn link_to_own_run(
    conn: &mut DbConn,
    agent: AgentKind,
    external_id: &str,
) -> Result<bool, AppError> {
    let own: Option<String> = runs::table
        .inner_join(sessions::table)
        .filter(runs::agent_session_id.eq(external_id))
        .filter(sessions::agent.eq(agent))
        .select(sessions::id)
        .first(conn)
        .optional()?;
    let Some(session_id) = own else {
        return Ok(false);
    };
    diesel::update(
        sessions::table
            .find(&session_id)
            .filter(sessions::external_id.is_null()),
    )
    .set(sessions::external_id.eq(external_id))
    .execute(conn)?;
    Ok(true)
}

/// What an import changed.
struct ImportCounts {
    imported: usize,
    updated: usize,
    errors_cleared: usize,
}

/// What reading one listed file gave.
enum FileRead {
    /// Same size and mtime as when it was last read.
    Unchanged,
    /// Not a regular file (or a link leaving the root): counted as skipped.
    Skipped,
    /// It went away or could not be read.
    Failed,
    Read {
        row: FileRow,
        lines_skipped: usize,
    },
}

/// Reads the new part of each file, on a few threads (parsing JSON lines is
/// most of a first sync's time); the outcomes come back in `files`' order.
fn read_in_parallel(
    files: &[Found],
    known: &HashMap<String, FileRow>,
    progress: &(dyn Fn(&Found) + Sync),
) -> Vec<FileRead> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4);
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let readers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|found| {
                            let outcome = read_one(found, known);
                            progress(found);
                            outcome
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        readers
            .into_iter()
            .flat_map(|reader| reader.join().unwrap_or_default())
            .collect()
    })
}

/// Reads what is new in `found` since the row `known` has for it.
fn read_one(found: &Found, known: &HashMap<String, FileRow>) -> FileRead {
    let Some(path_text) = found.path.to_str() else {
        return FileRead::Failed;
    };
    let previous = known.get(path_text);
    if previous.is_some_and(|row| row.size == found.size && row.mtime == found.mtime) {
        return FileRead::Unchanged;
    }
    let (file, meta) = match files::open(found) {
        Ok(Some(opened)) => opened,
        Ok(None) => return FileRead::Skipped,
        Err(_) => return FileRead::Failed,
    };
    let (size, mtime) = (files::size(&meta), files::mtime(&meta));
    // A file that shrank was rewritten: read it from the start.
    let previous = previous.filter(|row| row.read_offset <= size);
    let (mut info, offset) = previous.map_or((TranscriptInfo::default(), 0), |row| {
        (row.info(), row.read_offset)
    });
    let skipped_before = info.skipped_lines;
    let offset = u64::try_from(offset).unwrap_or(0);
    let Ok(end) = files::read_new_lines(file, found.agent, offset, &mut info) else {
        return FileRead::Failed;
    };
    let lines_skipped = usize::try_from(info.skipped_lines - skipped_before).unwrap_or(0)
        + usize::from(end.partial);
    if let Some(cwd) = &info.cwd {
        info.cwd = Some(canonical(cwd));
    }
    let row = FileRow {
        path: path_text.to_owned(),
        agent: found.agent,
        size,
        mtime,
        read_offset: i64::try_from(end.read_to).unwrap_or(i64::MAX),
        external_id: info.external_id,
        cwd: info.cwd,
        title: info.title,
        first_message: info.first_message,
        first_at: info.first_at,
        last_at: info.last_at,
        message_count: info.message_count,
        skipped_lines: info.skipped_lines,
    };
    FileRead::Read { row, lines_skipped }
}

/// Rows of files read that are saved in one transaction: one commit per
/// file made a first sync of many files commit-bound, and a transaction
/// over the whole scan would hold other writers (a run's end) off too long.
const FILE_ROWS_PER_COMMIT: usize = 256;

/// Saves (and clears) the rows of files read, in one transaction.
fn save_file_rows(conn: &mut DbConn, rows: &mut Vec<FileRow>) -> Result<(), AppError> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::db::write_tx(conn, |conn| {
        for row in rows.iter() {
            crate::db::on_backend!(conn, |inner| diesel::insert_into(transcript_files::table)
                .values(row)
                .on_conflict(transcript_files::path)
                .do_update()
                .set(row)
                .execute(inner))?;
        }
        Ok::<_, AppError>(())
    })?;
    rows.clear();
    Ok(())
}

/// Imports (or refreshes) the sessions of transcripts recorded in `path`,
/// and clears stale errors in the project.
fn import(
    conn: &mut DbConn,
    project_id: i32,
    path: &str,
) -> Result<(ImportCounts, Vec<LiveEvent>), AppError> {
    crate::db::write_tx(conn, |conn| {
        let files: Vec<FileRow> = transcript_files::table
            .filter(transcript_files::cwd.eq(path))
            .filter(transcript_files::external_id.is_not_null())
            .select(FileRow::as_select())
            .load(conn)?;
        let (mut imported, mut updated, mut events) = (0, 0, Vec::new());
        for file in files {
            let info = file.info();
            let Some(external_id) = info.external_id.clone() else {
                continue;
            };
            let name = info.name(file.agent);
            let now = now_millis();
            let existing: Option<Session> = sessions::table
                .filter(sessions::agent.eq(file.agent))
                .filter(sessions::external_id.eq(&external_id))
                .select(Session::as_select())
                .first(conn)
                .optional()?;
            if existing.is_none() && link_to_own_run(conn, file.agent, &external_id)? {
                continue;
            }
            match existing {
                None => {
                    let created_at = info.first_at.unwrap_or(now);
                    let session = Session {
                        updated_at: info.last_at.unwrap_or(created_at),
                        external_id: Some(external_id),
                        message_count: info.message_count,
                        ..Session::new(project_id, name, file.agent, created_at)
                    };
                    diesel::insert_into(sessions::table)
                        .values(&session)
                        .execute(conn)?;
                    let change = record_lifecycle(conn, &session, Reason::Created)?;
                    events.push(LiveEvent::lifecycle(change, session));
                    imported += 1;
                }
                Some(known) => {
                    let updated_at = info
                        .last_at
                        .unwrap_or(known.updated_at)
                        .max(known.updated_at);
                    if known.name == name
                        && known.message_count == info.message_count
                        && known.updated_at == updated_at
                    {
                        continue;
                    }
                    let session = diesel::update(sessions::table.find(&known.id))
                        .set((
                            sessions::name.eq(&name),
                            sessions::message_count.eq(info.message_count),
                            sessions::updated_at.eq(updated_at),
                        ))
                        .returning(crate::db::columns_of::<Session>())
                        .get_result(conn)?;
                    let change = record_lifecycle(conn, &session, Reason::Renamed)?;
                    events.push(LiveEvent::lifecycle(change, session));
                    updated += 1;
                }
            }
        }
        // Stale errors: back to idle through the single writer. The writer
        // only moves `error → idle` on sync, so a working session is never touched.
        let in_error: Vec<String> = sessions::table
            .filter(sessions::project_id.eq(project_id))
            .filter(sessions::state.eq(SessionState::Error))
            .select(sessions::id)
            .load(conn)?;
        let mut cleared = 0;
        for id in in_error {
            if let Applied::Changed(change) = writer::apply(conn, &id, &TransitionEvent::Sync)? {
                events.push(LiveEvent::change(change));
                cleared += 1;
            }
        }
        let counts = ImportCounts {
            imported,
            updated,
            errors_cleared: cleared,
        };
        Ok((counts, events))
    })
}
