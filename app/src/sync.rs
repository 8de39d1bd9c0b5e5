//! Importing sessions that agents started outside agentdeck, from their
//! transcripts on disk (the seed's `syncProjectSessions`).

#[cfg(feature = "ssr")]
pub mod files;
#[cfg(feature = "ssr")]
pub mod scan;
#[cfg(feature = "ssr")]
pub mod transcript;

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// Transcript files found under the agents' folders.
    pub files_total: usize,
    /// Files (re)read because they were new or had changed.
    pub files_read: usize,
    pub imported: usize,
    pub updated: usize,
    pub errors_cleared: usize,
    /// Malformed, half-written or over-long lines skipped while reading.
    pub lines_skipped: usize,
    /// Entries named like transcripts that were not read: FIFOs, sockets,
    /// devices, and symlinks that leave the agent's folder or do not resolve.
    #[serde(default)]
    pub files_skipped: usize,
}

impl std::fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} imported, {} updated, {} errors cleared, {} lines skipped, {} files skipped ({} of {} files read)",
            self.imported,
            self.updated,
            self.errors_cleared,
            self.lines_skipped,
            self.files_skipped,
            self.files_read,
            self.files_total
        )
    }
}

/// Imports the project's sessions from Claude Code and Codex transcripts.
#[server(prefix = "/rpc", endpoint = "sync_project")]
pub async fn sync_project(project_id: i32) -> Result<SyncSummary, AppError> {
    let syncer = expect_context::<std::sync::Arc<scan::Syncer>>();
    let project = crate::project::store::get(&syncer.db, project_id).await;
    crate::error::with_status(match project {
        Ok(project) => syncer.sync(&project).await,
        Err(err) => Err(err),
    })
}
