//! The native rewind engine (issue 14): does what pg_rewind does, from the [`NativeView`]
//! (the target's changed blocks and the file map): fetches from the source only the changed
//! blocks, the missing tails and the files pg_rewind copies whole, writes them in place, and
//! leaves a `backup_label` and a `pg_control` that make the server replay from the last
//! common checkpoint (or the source's, [`super::replay`]) to a consistent point on the
//! source's timeline. Only what was written is synced, with the directories whose entries
//! changed.
//!
//! Where replay starts at the source's checkpoint, that is also every file the stopped
//! server may have left unsynced, unless its WAL before the fork created, truncated or
//! dropped a file ([`NativeView::why_the_server_syncs`]). `pg_control` then says "shut down
//! in recovery", and PostgreSQL skips its fsync of the whole directory at start
//! ([`control::for_rewound_target`]). Why that holds:
//! - The server's own last checkpoint synced everything written before its redo point.
//! - Each page it wrote after that changed in its WAL from there on (with `wal_log_hints` or
//!   checksums, a hint too; a standby dirties no page for a hint). The engine reads that WAL
//!   from the older of that redo point and the last common checkpoint's, so the block is
//!   fetched and its file written and synced. (Zeros a file is extended by without WAL, in a
//!   bulk extension or a hash index's split, are written later with WAL and so fetched, or
//!   leave its size unlike the source's, so its tail is cut or copied and the file synced,
//!   or hold nothing to lose.)
//! - Files outside relations' main forks are copied whole, or removed. What is left are files
//!   PostgreSQL empties or rebuilds at start (unlogged relations' main forks, `pg_stat_tmp`,
//!   `pg_subtrans` and the others pg_rewind excludes).
//! - WAL the target keeps for replay precedes the fork: a primary sends and archives only
//!   WAL it has flushed, and a standby replays only WAL it has flushed.
//! - A file the target made or cut past the fork differs from the source's, which made or
//!   cut none (or replay would start at the last common checkpoint): it is removed or
//!   copied. One it dropped is copied back, or the source dropped it too (left over at
//!   worst, as PostgreSQL leaves files after a crash).
//!
//! Otherwise it says "in archive recovery", as pg_rewind's does. Replay from the last common
//! checkpoint relies on full-page images to rewrite the target's pages between its redo point
//! and its record, which `full_page_writes = off` leaves out; and a truncation before the fork
//! leaves both sides the same size, so its file is not written.
//!
//! It runs where pg_rewind would, inside the rejoin's steps (`job.rs`): the discarded WAL and
//! the node's configuration are kept first, the marker is written before the first byte
//! changes and removed after success, and a failure leaves the marker for the next attempt
//! (a re-clone) to repair. What it does not do yet (tablespaces, a source in recovery) it
//! hands over to pg_rewind before changing anything ([`unsupported`]).

mod fetch;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::RewindError;
use super::filemap::{Action, FileType, MapEntry, BLOCK_SIZE};
use super::forensics::io;
use super::listing::Tree;
use super::replay::ReplayStart;
use super::view::NativeView;
use crate::clock;
use crate::deadline::{Deadline, Expired};
use crate::failpoint;
use crate::instance::control::{self, DbState};
use crate::instance::wal::{self, segment_file_name};
use crate::lsn::{Lsn, TimelineId};
use crate::ocf::params::SyncMethod;
use crate::safe_fs::{Dir, Owner};
pub(super) use fetch::SourceFiles;
use fetch::{joined, Fetcher, Target, CHUNK};

/// Mode of the files the engine creates (PostgreSQL's default).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

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

/// What a run moved, and where its time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub fetched: u64,
    pub entries: usize,
    /// Connections the source was read on.
    pub connections: usize,
    /// Waiting for the source's replies, summed over the connections.
    pub reading: Duration,
    /// Writing the replies in place.
    pub writing: Duration,
    /// Making what was written durable, with its directories.
    pub syncing: Duration,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source reads {:.2?} on {} connection(s), writes {:.2?}, sync {:.2?}",
            self.reading, self.connections, self.writing, self.syncing
        )
    }
}

/// Runs the map against the data directory `data`, in pg_rewind's order: each entry's
/// changed blocks, then its action; the reads from the source go in batches, each written by
/// a second thread while the next is read. Then what was written is made durable
/// ([`sync_written`]), with the directories whose entries changed.
pub(super) fn apply(
    data: &Dir,
    owner: Option<Owner>,
    view: &NativeView,
    source: &SourceFiles,
    sync: Option<SyncMethod>,
    deadline: &Deadline,
) -> Result<Applied, RewindError> {
    let tree = data
        .try_clone()
        .and_then(|root| Tree::open(root, owner))
        .map_err(|e| io("open", data.path(), e))?;
    let plan = view.map.plan();
    std::thread::scope(|scope| {
        let mut fetcher = Fetcher::start(scope, &tree, source, deadline)?;
        for (done, entry) in plan.iter().enumerate() {
            if done == plan.len() / 2 {
                // Killed here, with batches in flight: some written, some not.
                fetcher.flush(deadline)?;
                failpoint::hit("native-mid-apply");
            }
            if deadline.expired() {
                return Err(RewindError::Expired(Expired {
                    what: format!("the native rewind, at {}", entry.path),
                    waited: deadline.elapsed(),
                }));
            }
            apply_entry(&tree, owner, entry, &mut fetcher, deadline)?;
        }
        let connections = fetcher.connections();
        let mut files = std::mem::take(&mut fetcher.touched);
        let (written, reading) = fetcher.finish(deadline)?;
        let syncing = Instant::now();
        files.extend(written.files);
        files.retain(|path| !written.gone.contains(path));
        let mut dirs = dirs_to_sync(&plan);
        dirs.extend(written.gone.iter().map(|path| parent(path)));
        sync_written(&tree, &files, sync)?;
        for dir in dirs {
            tree.dir_at(&dir)
                .and_then(|d| d.sync())
                .map_err(|e| io("sync", &data.join(&dir), e))?;
        }
        Ok(Applied {
            fetched: written.fetched,
            entries: plan.len(),
            connections,
            reading,
            writing: written.writing,
            syncing: syncing.elapsed(),
        })
    })
}

/// Makes the files written durable before pg_control changes: with `syncfs`, one call for
/// each file system (the data directory's, `pg_wal`'s); else an fsync of each file, on a few
/// threads at once, so the file system commits its journal for many files together (one
/// after the other, 366 fsyncs took 1.6 s of a 2.1 s rewind in the benchmark).
fn sync_written(
    tree: &Tree,
    written: &BTreeSet<String>,
    method: Option<SyncMethod>,
) -> Result<(), RewindError> {
    if method == Some(SyncMethod::Syncfs) {
        for dir in [tree.root(), tree.wal()] {
            dir.sync_file_system()
                .map_err(|e| io("syncfs", dir.path(), e))?;
        }
        return Ok(());
    }
    let paths: Vec<&String> = written.iter().collect();
    let per_thread = paths.len().div_ceil(SYNC_THREADS).max(1);
    let sync_chunk = |chunk: &[&String]| chunk.iter().try_for_each(|p| sync_file(tree, p));
    std::thread::scope(|scope| {
        // A thread the system refuses (a pids limit) leaves its share to this one.
        let mut here = Vec::new();
        let workers: Vec<_> = paths
            .chunks(per_thread)
            .filter_map(|chunk| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || sync_chunk(chunk))
                    .map_err(|_| here.push(chunk))
                    .ok()
            })
            .collect();
        here.into_iter().try_for_each(sync_chunk)?;
        workers.into_iter().try_for_each(joined)
    })
}

/// Threads that fsync the files written.
const SYNC_THREADS: usize = 8;

fn sync_file(tree: &Tree, path: &str) -> Result<(), RewindError> {
    let shown = tree.root().join(path);
    let (dir, name) = tree.parent_of(path).map_err(|e| io("open", &shown, e))?;
    dir.open_file(name)
        .and_then(|(file, _)| file.sync_all())
        .map_err(|e| io("sync", &shown, e))
}

fn parent(path: &str) -> String {
    path.rsplit_once('/').map_or("", |(d, _)| d).to_owned()
}

/// The directories whose entries `plan` creates, copies or removes, but those it removes
/// (with everything under them): there is nothing left to sync.
fn dirs_to_sync(plan: &[&MapEntry]) -> BTreeSet<String> {
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

/// One entry: its blocks, then its action; the reads are queued in `fetcher`.
fn apply_entry(
    tree: &Tree,
    owner: Option<Owner>,
    entry: &MapEntry,
    fetcher: &mut Fetcher,
    deadline: &Deadline,
) -> Result<(), RewindError> {
    let shown = tree.root().join(&entry.path);
    let (dir, name) = tree
        .parent_of(&entry.path)
        .map_err(|e| io("open", &shown, e))?;
    let source_size = entry.source.as_ref().map_or(0, |f| f.size);
    let target_size = entry.target.as_ref().map_or(0, |f| f.size);
    let open = |create: bool| -> Result<Target, RewindError> {
        let file = dir
            .open_writable(name, create, FILE_MODE, owner)
            .map_err(|e| io("open", &shown, e))?;
        Ok(Arc::new((entry.path.clone(), file)))
    };
    // Opened once for the blocks and the action after them: the writer thread may remove
    // the file meanwhile (gone from the source), and a second open would then fail.
    let with_blocks = match entry.blocks.is_empty() {
        true => None,
        false => Some(open(false)?),
    };
    let reopen = |create: bool| match &with_blocks {
        Some(file) if !create => Ok(Arc::clone(file)),
        _ => open(create),
    };
    if let Some(file) = &with_blocks {
        for (first, count) in runs(&entry.blocks) {
            let at = u64::from(first) * BLOCK_SIZE;
            fetcher.queue(file, at, at + u64::from(count) * BLOCK_SIZE, deadline)?;
        }
    }
    match entry.action {
        Action::None => {}
        Action::Create => {
            dir.create_dir(name, DIR_MODE, owner)
                .map_err(|e| io("create", &shown, e))?;
        }
        Action::Copy | Action::CopyTail => {
            let whole = entry.action == Action::Copy;
            let file = reopen(whole)?;
            let from = if whole {
                file.1.set_len(0).map_err(|e| io("truncate", &shown, e))?;
                0
            } else {
                target_size
            };
            fetcher.touched.insert(entry.path.clone());
            let to = match entry.copy_len.filter(|_| whole) {
                Some(len) => {
                    // Zeros past what is fetched, allocated as a server allocates a segment.
                    fallocate(&file.1, source_size).map_err(|e| io("allocate", &shown, e))?;
                    len
                }
                None => source_size,
            };
            fetcher.queue(&file, from, to, deadline)?;
        }
        Action::Truncate => {
            let file = reopen(false)?;
            file.1
                .set_len(source_size)
                .map_err(|e| io("truncate", &shown, e))?;
            fetcher.touched.insert(entry.path.clone());
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
    Ok(())
}

/// Allocates `file` (empty) to `size` bytes of zeros.
fn fallocate(file: &std::fs::File, size: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let size = i64::try_from(size).map_err(std::io::Error::other)?;
    nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, size).map_err(std::io::Error::from)
}

/// Consecutive block numbers as runs (first block, count), none longer than a fetch chunk.
fn runs(blocks: &BTreeSet<u32>) -> Vec<(u32, u32)> {
    let most = u32::try_from(CHUNK / BLOCK_SIZE).unwrap_or(1);
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &block in blocks {
        match runs.last_mut() {
            Some((first, count)) if *first + *count == block && *count < most => *count += 1,
            _ => runs.push((block, 1)),
        }
    }
    runs
}

/// The `backup_label` pg_rewind writes (`createBackupLabel`) for replay from `start`, at `now`
/// (`clock::utc_now`'s form). One word after BACKUP METHOD (the server reads one);
/// pg_rewind's, which the server treats as it treats ours. 19's prints the low half of an
/// LSN in 8 digits (`%X/%08X`), as 19 prints every LSN; the server reads either.
fn backup_label(start: &ReplayStart, segment_size: u32, major: u32, now: &str) -> String {
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
        lsn(start.redo),
        segment_file_name(start.timeline, start.redo, segment_size),
        lsn(start.checkpoint),
        now.replace('T', " ").replace('Z', " UTC"),
    )
}

/// The end of a native rewind: the `backup_label` that starts replay where the view says
/// (the last common checkpoint's redo point, or the source's checkpoint's), then the
/// source's `pg_control` (`source_control`, read last) recovering up to `end` on `timeline`.
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
    if view.replay.from_source.is_some() {
        // The source may have recycled that WAL after it was listed: the node would then
        // not start ("could not locate a valid checkpoint record").
        let start = &view.replay.start;
        let pg_wal = data.path().join("pg_wal");
        wal::read_record(&pg_wal, start.timeline, start.checkpoint, segment_size).map_err(|e| {
            RewindError::Source {
                source_conninfo: String::new(),
                what: format!(
                    "its checkpoint at {}, where replay starts, is not in the WAL copied: {e}",
                    start.checkpoint
                ),
            }
        })?;
    }
    let (now, _) = clock::utc_now();
    let label = backup_label(&view.replay.start, segment_size, major, &now);
    data.write_file("backup_label", label.as_bytes(), FILE_MODE, owner)
        .map_err(|e| io("write", &data.join("backup_label"), e))?;
    failpoint::hit("native-before-control");
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let state = match view.why_the_server_syncs() {
        None => DbState::ShutDownInRecovery,
        Some(why) => {
            log::info!(
                "pg_control says \"in archive recovery\": the server syncs the whole data \
                 directory when it starts ({why})"
            );
            DbState::InArchiveRecovery
        }
    };
    let bytes =
        control::for_rewound_target(source_control, state, end.0, end.1, seconds).map_err(|e| {
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
            copy_len: None,
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

    #[test]
    fn consecutive_blocks_are_fetched_as_runs_of_at_most_a_chunk() {
        let set = |b: &[u32]| b.iter().copied().collect::<BTreeSet<u32>>();
        assert_eq!(runs(&set(&[])), []);
        assert_eq!(runs(&set(&[7])), [(7, 1)]);
        assert_eq!(runs(&set(&[1, 2, 3, 5, 9, 10])), [(1, 3), (5, 1), (9, 2)]);
        let long: Vec<u32> = (0..300).collect();
        assert_eq!(runs(&set(&long)), [(0, 128), (128, 128), (256, 44)]);
    }

    /// Review of the native engine (low): a file the source dropped between its listing and
    /// the fetch was left on the target as an empty file; pg_rewind removes it.
    #[test]
    fn finding_native_a_file_gone_from_the_source_is_removed_not_left_empty() {
        let (source, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for root in [source.path(), target.path()] {
            std::fs::create_dir_all(root.join("pg_wal")).unwrap();
            std::fs::create_dir_all(root.join("base/5")).unwrap();
        }
        std::fs::write(target.path().join("base/5/1234"), [1u8; 8192]).unwrap();
        std::fs::write(target.path().join("base/5/2345"), [1u8; 100]).unwrap();
        std::fs::write(source.path().join("base/5/2345"), [2u8; 300]).unwrap();
        let mut copied = entry("base/5/1234", Action::Copy, FileType::Regular);
        let mut kept = entry("base/5/2345", Action::Copy, FileType::Regular);
        copied.source.as_mut().unwrap().size = 8192;
        kept.source.as_mut().unwrap().size = 300;
        let changes = crate::rewind::changes::TargetChanges::default();
        let view = NativeView {
            fork: Lsn(0),
            map: crate::rewind::filemap::FileMap {
                entries: vec![copied, kept],
            },
            replay: crate::rewind::replay::Replay::from_last_common(&changes),
            changes,
        };
        let from =
            SourceFiles::Pgdata(Tree::open(Dir::open(source.path()).unwrap(), None).unwrap());
        let data = Dir::open(target.path()).unwrap();
        let deadline = Deadline::after(std::time::Duration::from_secs(30));
        for sync in [None, Some(SyncMethod::Syncfs)] {
            let applied = apply(&data, None, &view, &from, sync, &deadline).unwrap();
            assert_eq!(applied.fetched, 300);
            assert!(!target.path().join("base/5/1234").exists(), "{sync:?}");
            assert_eq!(
                std::fs::read(target.path().join("base/5/2345")).unwrap(),
                [2u8; 300]
            );
        }
    }

    /// A running source's last WAL segment: its bytes to just past the end of WAL, then
    /// zeros (not what the source's file holds further on).
    #[test]
    fn a_copy_of_part_of_a_file_is_zeros_past_that_part() {
        let (source, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for root in [source.path(), target.path()] {
            std::fs::create_dir_all(root.join("pg_wal")).unwrap();
        }
        let name = "pg_wal/000000020000000000000072";
        std::fs::write(source.path().join(name), [7u8; 65536]).unwrap();
        let mut segment = entry(name, Action::Copy, FileType::Regular);
        segment.target = None;
        segment.source.as_mut().unwrap().size = 65536;
        segment.copy_len = Some(16384);
        let changes = crate::rewind::changes::TargetChanges::default();
        let view = NativeView {
            fork: Lsn(0),
            map: crate::rewind::filemap::FileMap {
                entries: vec![segment],
            },
            replay: crate::rewind::replay::Replay::from_last_common(&changes),
            changes,
        };
        let from =
            SourceFiles::Pgdata(Tree::open(Dir::open(source.path()).unwrap(), None).unwrap());
        let data = Dir::open(target.path()).unwrap();
        let deadline = Deadline::after(std::time::Duration::from_secs(30));
        let applied = apply(&data, None, &view, &from, None, &deadline).unwrap();
        assert_eq!(applied.fetched, 16384);
        let copied = std::fs::read(target.path().join(name)).unwrap();
        assert_eq!(copied.len(), 65536);
        assert!(copied[..16384].iter().all(|&b| b == 7));
        assert!(copied[16384..].iter().all(|&b| b == 0));
    }

    /// Found by the differential suite on 19: its pg_rewind writes the label's LSNs with 8
    /// digits after the slash, as 19 prints every LSN; the native engine wrote them as 18's.
    #[test]
    fn backup_label_lsns_are_written_as_each_majors_pg_rewind_writes_them() {
        let start = ReplayStart {
            checkpoint: Lsn(0x1_0012_3458),
            redo: Lsn(0x1_0012_3420),
            timeline: 1,
        };
        let label = |major| backup_label(&start, 1 << 20, major, "2026-12-05T11:20:00Z");
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
