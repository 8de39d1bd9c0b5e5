//! Transcript files on disk: which ones sync trusts, and reading them in
//! bounded memory. The transcript folders are written by other programs (and
//! whoever else can write there), so nothing found in them may hang a sync,
//! lead it outside its root, or make it hold a whole file in memory.

use super::transcript::TranscriptInfo;
use crate::agent::AgentKind;
use nix::fcntl::OFlag;
use std::{
    collections::HashSet,
    fs::{File, Metadata, OpenOptions},
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

/// Longest transcript line that is parsed. Longer lines are skipped (and
/// counted) without being held in memory; real lines are far shorter.
pub const MAX_TRANSCRIPT_LINE_BYTES: usize = 8 << 20;

/// The one read buffer per file: large enough that reading costs a syscall
/// per 64 KiB, not per line.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// A regular `*.jsonl` file found under a root, as it was when listed.
#[derive(Debug, Clone)]
pub struct Found {
    /// The path as found (through the root as configured), which is the
    /// file's key in `transcript_files`.
    pub path: PathBuf,
    pub agent: AgentKind,
    pub size: i64,
    /// Unix milliseconds.
    pub mtime: i64,
    /// Device and inode: opening must reach this same file.
    identity: (u64, u64),
}

/// The transcript files under the agents' roots.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<Found>,
    /// Entries named like transcripts (or folders of them) that are not
    /// read: FIFOs, sockets, devices, and symlinks that leave the root or do
    /// not resolve (dangling, or a loop).
    pub skipped: usize,
    seen_dirs: HashSet<(u64, u64)>,
    seen_files: HashSet<(u64, u64)>,
}

impl Listing {
    /// Adds every regular `*.jsonl` under `root`, skipping Claude's
    /// `subagents/` folders. Symlinks are followed only when their canonical
    /// target is inside the root; a file or folder reachable by two names is
    /// listed once, under the first name in sorted order.
    pub fn add_root(&mut self, root: &Path, agent: AgentKind) {
        let Ok(canonical_root) = std::fs::canonicalize(root) else {
            return;
        };
        let Ok(meta) = std::fs::metadata(&canonical_root) else {
            return;
        };
        if meta.is_dir() && self.seen_dirs.insert(identity(&meta)) {
            self.walk(root, &canonical_root, agent);
        }
    }

    fn walk(&mut self, dir: &Path, root: &Path, agent: AgentKind) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
            let mut is_subagents = entry.file_name() == "subagents";
            let meta = if kind.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(root) => {
                        is_subagents |= target.file_name().is_some_and(|n| n == "subagents");
                        std::fs::metadata(&target)
                    }
                    Ok(_) => {
                        // Outside the root: count it when it is a transcript
                        // or a folder that may hold some.
                        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
                        self.skipped += usize::from(is_jsonl || is_dir);
                        continue;
                    }
                    Err(_) => {
                        self.skipped += usize::from(is_jsonl);
                        continue;
                    }
                }
            } else {
                entry.metadata()
            };
            let Ok(meta) = meta else {
                continue;
            };
            if meta.is_dir() {
                // A folder already seen is a loop or a second name for it.
                if !is_subagents && self.seen_dirs.insert(identity(&meta)) {
                    self.walk(&path, root, agent);
                }
            } else if is_jsonl {
                if !meta.is_file() {
                    self.skipped += 1;
                } else if self.seen_files.insert(identity(&meta)) {
                    self.files.push(Found {
                        path,
                        agent,
                        size: size(&meta),
                        mtime: mtime(&meta),
                        identity: identity(&meta),
                    });
                }
            }
        }
    }
}

/// Opens a listed file for reading, or `None` when what is at its path now
/// is not that regular file (swapped for a FIFO, a device or another file
/// since listing). `O_NONBLOCK` keeps the open itself from waiting on a FIFO.
pub fn open(found: &Found) -> io::Result<Option<(File, Metadata)>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(&found.path)?;
    let meta = file.metadata()?;
    Ok((meta.is_file() && identity(&meta) == found.identity).then_some((file, meta)))
}

/// Size in bytes, as stored in `transcript_files`.
pub fn size(meta: &Metadata) -> i64 {
    i64::try_from(meta.len()).unwrap_or(i64::MAX)
}

/// Modification time in Unix milliseconds (0 when unknown).
pub fn mtime(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn identity(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Where reading a file stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadEnd {
    /// The next sync reads on from here.
    pub read_to: u64,
    /// A half-written last line (no newline yet, within the cap) was left
    /// for the next sync: `read_to` is where it starts.
    pub partial: bool,
}

/// Reads the complete lines from `offset` on into `info`, through one
/// fixed buffer. Lines over [`MAX_TRANSCRIPT_LINE_BYTES`] are discarded as
/// they stream past and counted in `info.skipped_lines`, as are lines that
/// are not UTF-8.
///
/// An unfinished last line within the cap is left for the next sync. One
/// over the cap is skipped now, and `read_to` moves past it so it is not
/// re-read on every sync; the next sync sees it resumes mid-line (the byte
/// before `offset` is not a newline) and discards the rest of that line.
pub fn read_new_lines<R: Read + Seek>(
    source: R,
    agent: AgentKind,
    offset: u64,
    info: &mut TranscriptInfo,
) -> io::Result<ReadEnd> {
    read_lines(source, agent, offset, MAX_TRANSCRIPT_LINE_BYTES, info)
}

fn read_lines<R: Read + Seek>(
    source: R,
    agent: AgentKind,
    offset: u64,
    cap: usize,
    info: &mut TranscriptInfo,
) -> io::Result<ReadEnd> {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, source);
    let mut at = offset;
    if offset == 0 {
        reader.seek(SeekFrom::Start(0))?;
    } else {
        reader.seek(SeekFrom::Start(offset - 1))?;
        let mut before = [0];
        if reader.read(&mut before)? == 1 && before[0] != b'\n' {
            // The rest of an over-long line skipped (and counted) before.
            at += as_u64(reader.skip_until(b'\n')?);
        }
    }
    let limit = as_u64(cap) + 1;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader).take(limit).read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            at += as_u64(read);
            line.pop();
            match std::str::from_utf8(&line) {
                Ok(text) => info.read_line(agent, text),
                Err(_) => info.skipped_lines += 1,
            }
        } else if read > cap {
            at += as_u64(read) + as_u64(reader.skip_until(b'\n')?);
            info.skipped_lines += 1;
        } else {
            return Ok(ReadEnd {
                read_to: at,
                partial: true,
            });
        }
    }
    Ok(ReadEnd {
        read_to: at,
        partial: false,
    })
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const CLAUDE: &str = r#"{"type":"user","sessionId":"s","message":{"content":"hi"}}"#;

    /// Reads `text` from `offset` with a 70-byte cap (a Claude line fits).
    fn read(text: &str, offset: u64) -> (ReadEnd, TranscriptInfo) {
        let mut info = TranscriptInfo::default();
        let end = read_lines(Cursor::new(text), AgentKind::Claude, offset, 70, &mut info).unwrap();
        (end, info)
    }

    fn counts(info: &TranscriptInfo) -> (i32, i32) {
        (info.message_count, info.skipped_lines)
    }

    #[test]
    fn complete_lines_are_read_and_a_half_written_one_is_left() {
        let text = format!("{CLAUDE}\n\n{CLAUDE}\n{{\"type\":\"us");
        let (end, info) = read(&text, 0);
        let complete = text.rfind('\n').unwrap() + 1;
        assert_eq!(
            end,
            ReadEnd {
                read_to: complete as u64,
                partial: true
            }
        );
        assert_eq!(counts(&info), (2, 0));
        // Finished later: the next read starts at the line and takes it.
        let text = format!("{text}er\",\"message\":{{\"content\":\"x\"}}}}\n");
        let (end, info) = read(&text, complete as u64);
        assert_eq!((end.read_to, end.partial), (text.len() as u64, false));
        assert_eq!(counts(&info), (1, 0));
    }

    #[test]
    fn lines_over_the_cap_are_skipped_and_counted() {
        let long = format!("{{\"type\":\"user\",\"x\":\"{}\"}}", "y".repeat(200));
        let text = format!("{CLAUDE}\n{long}\n{CLAUDE}\n");
        let (end, info) = read(&text, 0);
        assert_eq!(
            end,
            ReadEnd {
                read_to: text.len() as u64,
                partial: false
            }
        );
        assert_eq!(counts(&info), (2, 1));
        // Exactly at the cap is still a line; one byte more is not.
        let at_cap = format!("{CLAUDE}{}", " ".repeat(70 - CLAUDE.len()));
        assert_eq!(counts(&read(&format!("{at_cap}\n"), 0).1), (1, 0));
        assert_eq!(counts(&read(&format!("{at_cap} \n"), 0).1), (0, 1));
    }

    #[test]
    fn an_unfinished_line_over_the_cap_is_passed_once_and_its_rest_dropped() {
        let head = format!("{CLAUDE}\n{}", "z".repeat(100));
        let (end, info) = read(&head, 0);
        assert_eq!(
            end,
            ReadEnd {
                read_to: head.len() as u64,
                partial: false
            }
        );
        assert_eq!(counts(&info), (1, 1));
        // Unchanged: nothing to do, nothing counted again.
        let (again, info) = read(&head, end.read_to);
        assert_eq!((again, counts(&info)), (end, (0, 0)));
        // Grown further and then finished: the rest is dropped, not parsed
        // as a line of its own; the lines after it are read.
        let text = format!("{head}zzz\"}}\n{CLAUDE}\n");
        let (end, info) = read(&text, end.read_to);
        assert_eq!(
            end,
            ReadEnd {
                read_to: text.len() as u64,
                partial: false
            }
        );
        assert_eq!(counts(&info), (1, 0));
    }

    #[test]
    fn lines_that_are_not_utf8_are_skipped() {
        let mut bytes = format!("{CLAUDE}\n").into_bytes();
        bytes.extend_from_slice(b"{\"type\":\"\xff\"}\n");
        let mut info = TranscriptInfo::default();
        let end = read_lines(Cursor::new(&bytes), AgentKind::Claude, 0, 70, &mut info).unwrap();
        assert_eq!(end.read_to, bytes.len() as u64);
        assert_eq!(counts(&info), (1, 1));
    }
}
