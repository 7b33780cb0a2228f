//! The native rewind engine (issue 14): does what pg_rewind does, from the [`NativeView`]
//! (the target's changed blocks and the file map): fetches from the source only the changed
//! blocks, the missing tails and the files pg_rewind copies whole, writes them in place, and
//! leaves a `backup_label` and a `pg_control` that make the server replay from the last
//! common checkpoint to a consistent point on the source's timeline. Only what was written
//! is synced, with the directories whose entries changed.
//!
//! It runs where pg_rewind would, inside the rejoin's steps (`job.rs`): the discarded WAL and
//! the node's configuration are kept first, the marker is written before the first byte
//! changes and removed after success, and a failure leaves the marker for the next attempt
//! (a re-clone) to repair. What it does not do yet (tablespaces, a source in recovery) it
//! hands over to pg_rewind before changing anything ([`unsupported`]).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::changes::TargetChanges;
use super::error::RewindError;
use super::filemap::NativeView;
use super::filemap::{Action, FileType, MapEntry, BLOCK_SIZE};
use super::forensics::io;
use super::listing::Tree;
use super::source::SourceSession;
use crate::clock;
use crate::deadline::{Deadline, Expired};
use crate::failpoint;
use crate::instance::control;
use crate::instance::wal::segment_file_name;
use crate::lsn::{Lsn, TimelineId};
use crate::safe_fs::{Dir, Owner};

/// The most bytes asked of the source in one read (pg_rewind's chunk too).
const CHUNK: u64 = 1 << 20;
/// Mode of the files the engine creates (PostgreSQL's default).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Where the source's files are read from.
pub(super) enum SourceFiles<'a> {
    /// The running source, over SQL (`pg_read_binary_file`).
    Server(&'a SourceSession),
    /// A stopped source's data directory.
    Pgdata(Tree),
}

impl SourceFiles<'_> {
    /// Up to `len` bytes of `path` from `offset`; fewer at its end; `None` when the file is
    /// gone.
    fn read(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        deadline: &Deadline,
    ) -> Result<Option<Vec<u8>>, RewindError> {
        match self {
            SourceFiles::Server(session) => session.read_range(path, offset, len, deadline),
            SourceFiles::Pgdata(tree) => read_local(tree, path, offset, len),
        }
    }
}

fn read_local(
    tree: &Tree,
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Option<Vec<u8>>, RewindError> {
    let shown = tree.root().join(path);
    let (dir, name) = tree
        .parent_of(path)
        .map_err(|e| io("open the source's", &shown, e))?;
    let (file, _) = match dir.open_file(name) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open the source's", &shown, e)),
    };
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut filled = 0;
    while filled < bytes.len() {
        let at = offset + filled as u64;
        match file.read_at(bytes.get_mut(filled..).unwrap_or_default(), at) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(io("read the source's", &shown, e)),
        }
    }
    bytes.truncate(filled);
    Ok(Some(bytes))
}

/// Why the engine will not run on this view (it then hands over to pg_rewind), before
/// anything changes.
pub(super) fn unsupported(view: &NativeView, source_in_recovery: bool) -> Option<String> {
    if source_in_recovery {
        return Some("the source is a standby".into());
    }
    view.map.plan().into_iter().find_map(|e| {
        let link = [&e.source, &e.target]
            .into_iter()
            .flatten()
            .any(|f| f.file_type == FileType::Symlink);
        (e.path.starts_with("pg_tblspc/") || link)
            .then(|| format!("{} is a tablespace or a link", e.path))
    })
}

/// What a run moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub fetched: u64,
    pub entries: usize,
}

/// Runs the map against the data directory `data`, in pg_rewind's order: each entry's
/// changed blocks, then its action. Each file written is synced, then the directories whose
/// entries changed.
pub(super) fn apply(
    data: &Dir,
    owner: Option<Owner>,
    view: &NativeView,
    source: &SourceFiles,
    deadline: &Deadline,
) -> Result<Applied, RewindError> {
    let tree = data
        .try_clone()
        .and_then(|root| Tree::open(root, owner))
        .map_err(|e| io("open", data.path(), e))?;
    let mut applied = Applied::default();
    let plan = view.map.plan();
    for entry in &plan {
        if applied.entries == plan.len() / 2 {
            failpoint::hit("native-mid-apply");
        }
        if deadline.expired() {
            return Err(RewindError::Expired(Expired {
                what: format!("the native rewind, at {}", entry.path),
                waited: deadline.elapsed(),
            }));
        }
        applied.fetched += apply_entry(&tree, owner, entry, source, deadline)?;
        applied.entries += 1;
    }
    for dir in dirs_to_sync(&plan) {
        tree.dir_at(&dir)
            .and_then(|d| d.sync())
            .map_err(|e| io("sync", &data.join(&dir), e))?;
    }
    Ok(applied)
}

/// The directories whose entries `plan` creates, copies or removes, but those it removes
/// (with everything under them): there is nothing left to sync.
fn dirs_to_sync(plan: &[&MapEntry]) -> BTreeSet<String> {
    let parent = |path: &str| path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let removed: Vec<&str> = plan
        .iter()
        .filter(|e| e.action == Action::Remove && is_dir(e))
        .map(|e| e.path.as_str())
        .collect();
    let gone = |dir: &str| {
        removed.iter().any(|r| {
            dir == *r
                || dir
                    .strip_prefix(r)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    plan.iter()
        .filter(|e| matches!(e.action, Action::Create | Action::Copy | Action::Remove))
        .map(|e| parent(&e.path))
        .filter(|dir| !gone(dir))
        .collect()
}

/// Whether the target's side of `entry` is a directory.
fn is_dir(entry: &MapEntry) -> bool {
    entry
        .target
        .as_ref()
        .is_some_and(|t| t.file_type == FileType::Directory)
}

/// One entry: its blocks, then its action. Returns the bytes fetched.
fn apply_entry(
    tree: &Tree,
    owner: Option<Owner>,
    entry: &MapEntry,
    source: &SourceFiles,
    deadline: &Deadline,
) -> Result<u64, RewindError> {
    let shown = tree.root().join(&entry.path);
    let (dir, name) = tree
        .parent_of(&entry.path)
        .map_err(|e| io("open", &shown, e))?;
    let source_size = entry.source.as_ref().map_or(0, |f| f.size);
    let target_size = entry.target.as_ref().map_or(0, |f| f.size);
    let mut fetched = 0;
    if !entry.blocks.is_empty() {
        let file = dir
            .open_writable(name, false, FILE_MODE, owner)
            .map_err(|e| io("open", &shown, e))?;
        for &block in &entry.blocks {
            let at = u64::from(block) * BLOCK_SIZE;
            fetched += copy_range(&file, &entry.path, at, at + BLOCK_SIZE, source, deadline)?;
        }
        file.sync_all().map_err(|e| io("sync", &shown, e))?;
    }
    match entry.action {
        Action::None => {}
        Action::Create => {
            dir.create_dir(name, DIR_MODE, owner)
                .map_err(|e| io("create", &shown, e))?;
        }
        Action::Copy | Action::CopyTail => {
            let whole = entry.action == Action::Copy;
            let file = dir
                .open_writable(name, whole, FILE_MODE, owner)
                .map_err(|e| io("open", &shown, e))?;
            let from = if whole {
                file.set_len(0).map_err(|e| io("truncate", &shown, e))?;
                0
            } else {
                target_size
            };
            fetched += copy_range(&file, &entry.path, from, source_size, source, deadline)?;
            file.sync_all().map_err(|e| io("sync", &shown, e))?;
        }
        Action::Truncate => {
            let file = dir
                .open_writable(name, false, FILE_MODE, owner)
                .map_err(|e| io("open", &shown, e))?;
            file.set_len(source_size)
                .and_then(|()| file.sync_all())
                .map_err(|e| io("truncate", &shown, e))?;
        }
        Action::Remove => {
            let removed = if is_dir(entry) {
                dir.remove_tree(name, owner)
            } else {
                dir.remove_file(name)
            };
            removed.map_err(|e| io("remove", &shown, e))?;
        }
    }
    Ok(fetched)
}

/// Copies `[from, to)` of the source's `path` into `file` at the same offsets, a chunk at a
/// time; a source file that shrank or went meanwhile is copied as far as it goes (replay
/// repairs it, as after pg_rewind). Returns the bytes copied.
fn copy_range(
    file: &std::fs::File,
    path: &str,
    from: u64,
    to: u64,
    source: &SourceFiles,
    deadline: &Deadline,
) -> Result<u64, RewindError> {
    let mut at = from;
    while at < to {
        if deadline.expired() {
            return Err(RewindError::Expired(Expired {
                what: format!("the native rewind, copying {path}"),
                waited: deadline.elapsed(),
            }));
        }
        let len = (to - at).min(CHUNK);
        let Some(bytes) = source.read(path, at, len, deadline)? else {
            break;
        };
        if bytes.len() as u64 > len {
            return Err(RewindError::io(
                format!("the source sent more of {path} than asked"),
                std::io::Error::other("too many bytes"),
            ));
        }
        file.write_all_at(&bytes, at)
            .map_err(|e| RewindError::io(format!("could not write {path}"), e))?;
        at += bytes.len() as u64;
        if (bytes.len() as u64) < len {
            break;
        }
    }
    Ok(at - from)
}

/// The `backup_label` pg_rewind writes (`createBackupLabel`) for `changes`, at `now`
/// (`clock::utc_now`'s form). One word after BACKUP METHOD (the server reads one);
/// pg_rewind's, which the server treats as it treats ours. 19's prints the low half of an
/// LSN in 8 digits (`%X/%08X`), as 19 prints every LSN; the server reads either.
fn backup_label(changes: &TargetChanges, segment_size: u32, major: u32, now: &str) -> String {
    let lsn = |lsn: Lsn| {
        if major >= 19 {
            format!("{:X}/{:08X}", lsn.0 >> 32, lsn.0 & 0xFFFF_FFFF)
        } else {
            lsn.to_string()
        }
    };
    format!(
        "START WAL LOCATION: {} (file {})\nCHECKPOINT LOCATION: {}\nBACKUP METHOD: pg_rewind\n\
         BACKUP FROM: standby\nSTART TIME: {}\n",
        lsn(changes.checkpoint_redo),
        segment_file_name(
            changes.checkpoint_timeline,
            changes.checkpoint_redo,
            segment_size
        ),
        lsn(changes.checkpoint),
        now.replace('T', " ").replace('Z', " UTC"),
    )
}

/// The end of a native rewind: the `backup_label` that starts replay at the last common
/// checkpoint's redo point, then the source's `pg_control` (`source_control`, read last) in
/// archive recovery up to `end` on `timeline`.
pub(super) fn finish(
    data: &Dir,
    owner: Option<Owner>,
    view: &NativeView,
    source_control: &[u8],
    end: (Lsn, TimelineId),
    segment_size: u32,
) -> Result<(), RewindError> {
    let major = control::decode(source_control)
        .map(|c| c.major)
        .map_err(|e| RewindError::Source {
            source_conninfo: String::new(),
            what: format!("its global/pg_control: {e}"),
        })?;
    let (now, _) = clock::utc_now();
    let label = backup_label(&view.changes, segment_size, major, &now);
    data.write_file("backup_label", label.as_bytes(), FILE_MODE, owner)
        .map_err(|e| io("write", &data.join("backup_label"), e))?;
    failpoint::hit("native-before-control");
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let bytes =
        control::for_rewound_target(source_control, end.0, end.1, seconds).map_err(|e| {
            RewindError::Source {
                source_conninfo: String::new(),
                what: format!("its global/pg_control: {e}"),
            }
        })?;
    let global = data
        .open_dir("global")
        .map_err(|e| io("open", &data.join("global"), e))?;
    let mut written = global
        .open_writable("pg_control", false, FILE_MODE, owner)
        .map_err(|e| io("open", &global.join("pg_control"), e))?;
    written
        .write_all(&bytes)
        .and_then(|()| written.sync_all())
        .map_err(|e| io("write", &global.join("pg_control"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewind::filemap::FileEntry;

    fn entry(path: &str, action: Action, file_type: FileType) -> MapEntry {
        let side = Some(FileEntry {
            path: path.into(),
            file_type,
            size: 0,
        });
        MapEntry {
            path: path.into(),
            action,
            source: if action == Action::Remove {
                None
            } else {
                side.clone()
            },
            target: side,
            blocks: BTreeSet::new(),
        }
    }

    /// Found by the differential suite (seed 1): a database only the target had was removed
    /// (its files, then its directory), and the sync afterwards of the directories whose
    /// entries changed tried to open the removed one and failed the rewind.
    #[test]
    fn a_directory_removed_is_not_synced_after_its_removal() {
        use Action::{Copy, Create, Remove};
        use FileType::{Directory, Regular};
        let entries = [
            entry("base/16442/1259", Remove, Regular),
            entry("base/16442/sub/x", Remove, Regular),
            entry("base/16442/sub", Remove, Directory),
            entry("base/16442", Remove, Directory),
            entry("base/16440/2608", Remove, Regular),
            entry("base/164420", Create, Directory),
            entry("base/164420/1259", Copy, Regular),
            entry("pg_xact/0000", Copy, Regular),
        ];
        let plan: Vec<&MapEntry> = entries.iter().collect();
        let synced: Vec<String> = dirs_to_sync(&plan).into_iter().collect();
        assert_eq!(synced, ["base", "base/16440", "base/164420", "pg_xact"]);
    }

    /// Found by the differential suite on 19: its pg_rewind writes the label's LSNs with 8
    /// digits after the slash, as 19 prints every LSN; the native engine wrote them as 18's.
    #[test]
    fn backup_label_lsns_are_written_as_each_majors_pg_rewind_writes_them() {
        let changes = TargetChanges {
            checkpoint: Lsn(0x1_0012_3458),
            checkpoint_redo: Lsn(0x1_0012_3420),
            checkpoint_timeline: 1,
            ..TargetChanges::default()
        };
        let label = |major| backup_label(&changes, 1 << 20, major, "2026-12-05T11:20:00Z");
        assert_eq!(
            label(18),
            "START WAL LOCATION: 1/123420 (file 000000010000000100000001)\n\
             CHECKPOINT LOCATION: 1/123458\nBACKUP METHOD: pg_rewind\nBACKUP FROM: standby\n\
             START TIME: 2026-12-05 11:20:00 UTC\n"
        );
        assert_eq!(
            label(19),
            "START WAL LOCATION: 1/00123420 (file 000000010000000100000001)\n\
             CHECKPOINT LOCATION: 1/00123458\nBACKUP METHOD: pg_rewind\nBACKUP FROM: standby\n\
             START TIME: 2026-12-05 11:20:00 UTC\n"
        );
    }
}
