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
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use super::config::copy_tree;
use super::target::parse_segment_name;
use super::RewindError;
use crate::deadline::Deadline;
use crate::lsn::Lsn;
use crate::process::RunAs;

/// Creates this run's folder, owned by the system user.
pub fn create_run_dir(
    keep_dir: &Path,
    node: &str,
    stamp: &str,
    owner: &RunAs,
) -> Result<PathBuf, RewindError> {
    std::fs::create_dir_all(keep_dir)
        .map_err(|e| RewindError::io(format!("could not create {}", keep_dir.display()), e))?;
    let mut dir = keep_dir.join(format!("{node}-{stamp}"));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = keep_dir.join(format!("{node}-{stamp}-{n}"));
    }
    std::fs::create_dir(&dir)
        .map_err(|e| RewindError::io(format!("could not create {}", dir.display()), e))?;
    if owner.needs_switch() {
        for d in [keep_dir, dir.as_path()] {
            let _ = chown(d, Some(owner.uid.as_raw()), Some(owner.gid.as_raw()));
        }
    }
    Ok(dir)
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
/// on the data directory's file system.
pub fn keep_discarded_wal(
    datadir: &Path,
    run_dir: &Path,
    fork_point: Option<Lsn>,
    end: Option<Lsn>,
    segment_size: u64,
    source_wal: Option<&HashSet<String>>,
    deadline: &Deadline,
) -> Result<u64, RewindError> {
    let wal = datadir.join("pg_wal");
    let into = run_dir.join("pg_wal");
    std::fs::create_dir_all(&into)
        .map_err(|e| RewindError::io(format!("could not create {}", into.display()), e))?;
    let first_segno = fork_point.map_or(0, |lsn| lsn.0 / segment_size.max(1));
    let last_segno = end.map_or(u64::MAX, |lsn| lsn.0 / segment_size.max(1));
    let entries = std::fs::read_dir(&wal)
        .map_err(|e| RewindError::io(format!("could not list {}", wal.display()), e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
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
                what: format!("the copy of the discarded WAL into {}", into.display()),
                waited: deadline.elapsed(),
            });
        }
        let (from, to) = (wal.join(name), into.join(name));
        let source_lacks = source_wal.is_some_and(|names| !names.contains(name));
        if source_lacks && !name.ends_with(".history") && std::fs::hard_link(&from, &to).is_ok() {
            linked += 1;
        } else {
            copy_tree(&from, &to)?;
        }
        bytes += std::fs::metadata(&to).map_or(0, |m| m.len());
    }
    copy_tree(
        &datadir.join("global").join("pg_control"),
        &run_dir.join("pg_control"),
    )?;
    log::info!(
        "kept {} WAL files ({bytes} bytes, {linked} of them hard-linked) from {} on in {}",
        names.len(),
        fork_point.map_or("the start".to_owned(), |l| l.to_string()),
        into.display()
    );
    Ok(bytes)
}
