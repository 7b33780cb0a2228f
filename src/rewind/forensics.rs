//! The transactions a rewind discards, kept: before pg_rewind may touch the target, the
//! target's WAL from the fork point on is copied into a dated folder outside the data
//! directory, with the history files and the target's `pg_control`.
//!
//! Layout of one rewind's folder (`rewind_keep_dir`, by default next to the data directory):
//!
//! ```text
//! <keep_dir>/<node>-<YYYYMMDDTHHMMSSZ>/
//!     README          what this is, the fork point, the decision
//!     pg_wal/         every segment from the fork point's on, and the history files
//!     pg_control      the target's, as it was
//!     config/         the node's own configuration files (config.rs)
//! ```
//!
//! The segments can be read with `pg_waldump -p <folder>/pg_wal`, to find what was lost.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::target::parse_segment_name;
use super::RewindError;
use crate::deadline::Deadline;
use crate::lsn::Lsn;
use crate::safe_fs::{Dir, Kind, Owner};

/// The name a replaced data directory is kept under in its run's folder (`swap.rs`).
pub const KEPT_DATADIR: &str = "datadir";

/// The mode of every folder pgha creates here: the kept WAL and configuration may hold
/// anything the database held.
const FOLDER_MODE: u32 = 0o700;

fn io(what: &str, path: &Path, e: std::io::Error) -> RewindError {
    RewindError::io(format!("could not {what} {}", path.display()), e)
}

/// Opens `rewind_keep_dir`, creating the missing folders one level at a time (owned by
/// root, mode 0700). Its last component is never a link; an existing folder keeps its owner
/// and mode (a shared `/var/tmp` is not handed to the system user).
pub fn open_keep_dir(keep_dir: &Path) -> Result<Dir, RewindError> {
    let mut missing = Vec::new();
    let mut existing = keep_dir;
    let parent = loop {
        let Some(parent) = existing.parent().filter(|p| !p.as_os_str().is_empty()) else {
            break Dir::open(Path::new("/")).map_err(|e| io("open", Path::new("/"), e))?;
        };
        let name = existing
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                io(
                    "use",
                    keep_dir,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain path"),
                )
            })?;
        missing.push(name);
        match Dir::open(parent) {
            Ok(dir) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => existing = parent,
            Err(e) => return Err(io("open", parent, e)),
        }
    };
    let mut dir = parent;
    for name in missing.into_iter().rev() {
        dir = dir
            .ensure_dir(name, FOLDER_MODE, None)
            .map_err(|e| io("open or create", &dir.join(name), e))?;
    }
    Ok(dir)
}

/// Creates this run's folder `<node>-<stamp>` in `keep`, owned by the system user, mode
/// 0700.
pub fn create_run_dir(
    keep: &Dir,
    node: &str,
    stamp: &str,
    owner: Option<Owner>,
) -> Result<Dir, RewindError> {
    crate::pacemaker::check_node_name(node).map_err(|why| {
        io(
            "name a folder in",
            keep.path(),
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("node {node:?}: {why}"),
            ),
        )
    })?;
    let base = format!("{node}-{stamp}");
    let mut name = base.clone();
    let mut n = 1;
    loop {
        match keep.create_dir(&name, FOLDER_MODE, owner) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 99 => {
                n += 1;
                name = format!("{base}-{n}");
            }
            other => return other.map_err(|e| io("create", &keep.join(&name), e)),
        }
    }
}

/// Keeps the WAL the rewind is about to discard: every segment from the one holding
/// `fork_point` (the first when the fork is unknown) to the one holding `end`, the target's
/// end of WAL (segments past it are recycled or pre-allocated files that hold nothing of
/// this timeline's), and every history file. Returns the bytes kept.
///
/// A segment the source does not have (`source_wal`: the names in its pg_wal, `None` when
/// unknown) is hard-linked instead of copied: pg_rewind only unlinks such a file, which
/// leaves the link whole, while it rewrites in place every file the source has, so those
/// are copied. Linking makes the keeping nearly free (no data written) when the folder is
/// on the data directory's file system. Copies keep their source's owner and mode.
#[allow(clippy::too_many_arguments)]
pub fn keep_discarded_wal(
    data: &Dir,
    run: &Dir,
    fork_point: Option<Lsn>,
    end: Option<Lsn>,
    segment_size: u64,
    source_wal: Option<&HashSet<String>>,
    owner: Option<Owner>,
    deadline: &Deadline,
) -> Result<u64, RewindError> {
    // pg_wal may be a link made by `initdb --waldir`: followed, but it must be the system
    // user's.
    let wal_path = data.join("pg_wal");
    let wal = Dir::open_owned(&wal_path, owner).map_err(|e| io("open", &wal_path, e))?;
    let into = run
        .create_dir("pg_wal", FOLDER_MODE, owner)
        .map_err(|e| io("create", &run.join("pg_wal"), e))?;
    let first_segno = fork_point.map_or(0, |lsn| lsn.0 / segment_size.max(1));
    let last_segno = end.map_or(u64::MAX, |lsn| lsn.0 / segment_size.max(1));
    let mut names: Vec<String> = wal
        .entries()
        .map_err(|e| io("list", &wal_path, e))?
        .into_iter()
        .filter(|name| {
            name.ends_with(".history")
                || name.ends_with(".partial")
                || parse_segment_name(name, segment_size)
                    .is_some_and(|(_, s)| (first_segno..=last_segno).contains(&s))
        })
        .collect();
    names.sort();
    let mut bytes = 0u64;
    let mut linked = 0usize;
    for name in &names {
        if deadline.expired() {
            return Err(RewindError::Timeout {
                what: format!(
                    "the copy of the discarded WAL into {}",
                    into.path().display()
                ),
                waited: deadline.elapsed(),
            });
        }
        let source_lacks = source_wal.is_some_and(|names| !names.contains(name));
        if source_lacks && !name.ends_with(".history") && into.hard_link(&wal, name, name).is_ok() {
            linked += 1;
            bytes += wal
                .open_file(name)
                .map_or(0, |(_, stat)| stat.st_size as u64);
        } else {
            bytes += into
                .copy_file(&wal, name, name, None)
                .map_err(|e| io("keep", &wal.join(name), e))?;
        }
    }
    into.sync().map_err(|e| io("sync", into.path(), e))?;
    let global = data
        .open_dir("global")
        .map_err(|e| io("open", &data.join("global"), e))?;
    run.copy_file(&global, "pg_control", "pg_control", None)
        .map_err(|e| io("keep", &global.join("pg_control"), e))?;
    log::info!(
        "kept {} WAL files ({bytes} bytes, {linked} of them hard-linked) from {} on in {}",
        names.len(),
        fork_point.map_or("the start".to_owned(), |l| l.to_string()),
        into.path().display()
    );
    Ok(bytes)
}

/// One kept folder: `<node>-<stamp>` in `rewind_keep_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRun {
    pub name: String,
    pub node: String,
    /// When the folder last changed.
    pub modified: SystemTime,
}

/// The kept folders in `keep`, oldest first (by the stamp in their name).
pub fn list(keep: &Dir) -> Result<Vec<KeptRun>, RewindError> {
    let mut runs: Vec<KeptRun> = keep
        .entries()
        .map_err(|e| io("list", keep.path(), e))?
        .into_iter()
        .filter_map(|name| {
            let node = split_run_name(&name)?.0.to_owned();
            let modified = keep.modified(&name).ok()?;
            (keep.kind(&name).ok()?? == Kind::Dir).then_some(KeptRun {
                name,
                node,
                modified,
            })
        })
        .collect();
    let order = |r: &KeptRun| {
        let stamp = split_run_name(&r.name).map_or("", |(_, s)| s).to_owned();
        (stamp, r.name.len(), r.name.clone())
    };
    runs.sort_by_key(order);
    Ok(runs)
}

/// `pg1-20260102T030405Z-2` → (`pg1`, `20260102T030405Z`): a kept folder's node and stamp,
/// `None` for any other name.
fn split_run_name(name: &str) -> Option<(&str, &str)> {
    let base = match name.rsplit_once('-') {
        Some((head, n))
            if (1..=2).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
                && head
                    .get(head.len().saturating_sub(16)..)
                    .is_some_and(is_stamp) =>
        {
            head
        }
        _ => name,
    };
    let cut = base.len().checked_sub(17)?;
    let node = base.get(..cut)?;
    let stamp = base.get(cut..)?.strip_prefix('-')?;
    (is_stamp(stamp) && !node.is_empty()).then_some((node, stamp))
}

/// `YYYYMMDDTHHMMSSZ`.
fn is_stamp(text: &str) -> bool {
    text.len() == 16
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Removes `node`'s kept folders beyond the newest `keep_count` and those older than
/// `max_age` (each limit off when zero), never `current`. Returns the names removed.
pub fn apply_retention(
    keep: &Dir,
    node: &str,
    keep_count: usize,
    max_age: Duration,
    current: Option<&str>,
) -> Result<Vec<String>, RewindError> {
    let runs: Vec<KeptRun> = list(keep)?.into_iter().filter(|r| r.node == node).collect();
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let newer = runs.len() - 1 - i;
        let too_many = keep_count > 0 && newer >= keep_count;
        let too_old = !max_age.is_zero()
            && now
                .duration_since(run.modified)
                .is_ok_and(|age| age > max_age);
        if (too_many || too_old) && Some(run.name.as_str()) != current {
            keep.remove_tree(&run.name)
                .map_err(|e| io("remove", &keep.join(&run.name), e))?;
            log::info!("removed the kept folder {}", keep.join(&run.name).display());
            removed.push(run.name.clone());
        }
    }
    Ok(removed)
}
