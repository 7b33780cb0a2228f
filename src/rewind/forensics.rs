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
//!     pg_wal.held/    during pg_rewind only: links to the target's WAL up to the fork
//! ```
//!
//! The segments can be read with `pg_waldump -p <folder>/pg_wal`, to find what was lost.

use std::collections::HashSet;
use std::path::Path;

use super::error::RewindError;
use crate::deadline::{Deadline, Expired};
use crate::instance::wal::parse_segment_name;
use crate::instance::HISTORY_FILE;
use crate::lsn::Lsn;
use crate::safe_fs::{Dir, Owner};

/// The name a replaced data directory is kept under in its run's folder (`swap.rs`).
pub const KEPT_DATADIR: &str = "datadir";

/// The mode of every folder pgha creates here: the kept WAL and configuration may hold
/// anything the database held.
const FOLDER_MODE: u32 = 0o700;

pub(super) fn io(what: &str, path: &Path, e: std::io::Error) -> RewindError {
    RewindError::io(format!("could not {what} {}", path.display()), e)
}

/// `rewind_keep_dir` when set, else `pgha-rewind` next to the data directory.
pub fn keep_dir(configured: Option<&Path>, datadir: &Path) -> std::path::PathBuf {
    configured.map(Path::to_owned).unwrap_or_else(|| {
        datadir
            .parent()
            .unwrap_or(Path::new("/"))
            .join("pgha-rewind")
    })
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
                    && is_whole_segment(&wal, name, segment_size)
        })
        .collect();
    names.sort();
    let mut bytes = 0u64;
    let mut linked = 0usize;
    for name in &names {
        if deadline.expired() {
            return Err(Expired {
                what: format!(
                    "the copy of the discarded WAL into {}",
                    into.path().display()
                ),
                waited: deadline.elapsed(),
            }
            .into());
        }
        // Linked only past the fork's segment: pg_rewind (16 and later) keeps the segments
        // recovery needs up to the fork, which the server recycles in place later, and a
        // link would see them overwritten.
        let past_fork = parse_segment_name(name, segment_size)
            .is_some_and(|(_, segno)| segno > first_segno || fork_point.is_none());
        let source_lacks = source_wal.is_some_and(|names| !names.contains(name));
        let limit = if name.ends_with(".history") {
            HISTORY_FILE
        } else {
            segment_size
        };
        if past_fork && source_lacks && into.hard_link(&wal, name, name).is_ok() {
            linked += 1;
            bytes += segment_size;
        } else {
            bytes += into
                .copy_file(&wal, name, name, owner, limit)
                .map_err(|e| io("keep", &wal.join(name), e))?;
        }
    }
    into.sync().map_err(|e| io("sync", into.path(), e))?;
    let global = data
        .open_dir("global")
        .map_err(|e| io("open", &data.join("global"), e))?;
    run.copy_file(&global, "pg_control", "pg_control", owner, PG_CONTROL_LIMIT)
        .map_err(|e| io("keep", &global.join("pg_control"), e))?;
    log::info!(
        "kept {} WAL files ({bytes} bytes, {linked} of them hard-linked) from {} on in {}",
        names.len(),
        fork_point.map_or("the start".to_owned(), |l| l.to_string()),
        into.path().display()
    );
    Ok(bytes)
}

/// The folder of a run that holds, during pg_rewind, hard links to the target's segments up
/// to the fork point's ([`hold_wal_to_fork`]).
const HELD_WAL: &str = "pg_wal.held";

/// Before pg_rewind: hard links, in `run`, to the target's whole segments up to the fork
/// point's. Recovery after a rewind replays them, from the last common checkpoint on, but
/// some pg_rewind builds (13.16, Debian bullseye's) remove every target file the source
/// lacks, pg_wal included, so a rewound node whose source recycled that WAL can never
/// start ("requested WAL segment … has already been removed"); later ones keep them. Links
/// cost nothing and cannot change what pg_rewind does; a segment that cannot be linked (the
/// run's folder on another file system) is only logged. Returns how many are held.
pub fn hold_wal_to_fork(
    data: &Dir,
    run: &Dir,
    fork_point: Lsn,
    segment_size: u64,
    owner: Option<Owner>,
) -> Result<usize, RewindError> {
    let wal_path = data.join("pg_wal");
    let wal = Dir::open_owned(&wal_path, owner).map_err(|e| io("open", &wal_path, e))?;
    let held = run
        .create_dir(HELD_WAL, FOLDER_MODE, owner)
        .map_err(|e| io("create", &run.join(HELD_WAL), e))?;
    let fork_segno = fork_point.0 / segment_size.max(1);
    let mut count = 0;
    for name in wal.entries().map_err(|e| io("list", &wal_path, e))? {
        let up_to_fork =
            parse_segment_name(&name, segment_size).is_some_and(|(_, segno)| segno <= fork_segno);
        if !up_to_fork || !is_whole_segment(&wal, &name, segment_size) {
            continue;
        }
        match held.hard_link(&wal, &name, &name) {
            Ok(()) => count += 1,
            Err(e) => log::warn!(
                "could not hold {} during pg_rewind: {e}",
                wal.join(&name).display()
            ),
        }
    }
    Ok(count)
}

/// After pg_rewind: moves back into pg_wal every held segment pg_rewind removed, then drops
/// the held links. Returns the names put back.
pub fn put_back_held_wal(
    data: &Dir,
    run: &Dir,
    owner: Option<Owner>,
) -> Result<Vec<String>, RewindError> {
    let wal_path = data.join("pg_wal");
    let wal = Dir::open_owned(&wal_path, owner).map_err(|e| io("open", &wal_path, e))?;
    let held = run
        .open_dir(HELD_WAL)
        .map_err(|e| io("open", &run.join(HELD_WAL), e))?;
    let mut put_back = Vec::new();
    for name in held.entries().map_err(|e| io("list", held.path(), e))? {
        if wal
            .kind(&name)
            .map_err(|e| io("read", &wal.join(&name), e))?
            .is_none()
        {
            held.move_to(&name, &wal, &name)
                .map_err(|e| io("put back", &wal.join(&name), e))?;
            put_back.push(name);
        }
    }
    wal.sync().map_err(|e| io("sync", &wal_path, e))?;
    run.remove_tree(HELD_WAL, owner)
        .map_err(|e| io("remove", &run.join(HELD_WAL), e))?;
    Ok(put_back)
}

/// Writes back the `PG_VERSION` of every database directory under `base/` that lacks one,
/// with the data directory's own (a database's holds the same major). 13's pg_rewind leaves
/// them out (`major::PgRewind::copies_database_pg_version`). Returns the directories mended.
pub fn put_back_database_versions(
    data: &Dir,
    owner: Option<Owner>,
) -> Result<Vec<String>, RewindError> {
    const PG_VERSION: &str = "PG_VERSION";
    let version = data
        .read(PG_VERSION, 16)
        .map_err(|e| io("read", &data.join(PG_VERSION), e))?;
    let base_path = data.join("base");
    let base = data
        .open_dir("base")
        .map_err(|e| io("open", &base_path, e))?;
    let mut mended = Vec::new();
    for name in base.entries().map_err(|e| io("list", &base_path, e))? {
        // A database's directory; anything else planted there is not pgha's to mend.
        let is_dir = base.kind(&name).ok().flatten() == Some(crate::safe_fs::Kind::Dir);
        if !is_dir || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let db = base
            .open_dir(&name)
            .map_err(|e| io("open", &base.join(&name), e))?;
        if db
            .kind(PG_VERSION)
            .map_err(|e| io("read", &db.join(PG_VERSION), e))?
            .is_none()
        {
            db.write_file(PG_VERSION, &version, 0o600, owner)
                .map_err(|e| io("write", &db.join(PG_VERSION), e))?;
            db.sync().map_err(|e| io("sync", db.path(), e))?;
            mended.push(format!("base/{name}"));
        }
    }
    Ok(mended)
}

/// Whether `name` is a regular file of exactly one segment: anything else named like a
/// segment is not WAL the server wrote, and is not kept (nor copied at any size).
fn is_whole_segment(wal: &Dir, name: &str, segment_size: u64) -> bool {
    let whole = wal
        .open_file(name)
        .is_ok_and(|(_, stat)| stat.st_size as u64 == segment_size);
    if !whole {
        log::warn!(
            "{} is not a whole WAL segment: not kept",
            wal.join(name).display()
        );
    }
    whole
}

/// `pg_control` is 8 kB.
pub(super) const PG_CONTROL_LIMIT: u64 = 8192;

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    use super::*;

    /// Finding 2: `create_dir_all` + `chown` followed a `rewind_keep_dir` link planted by
    /// postgres, and handed an existing shared folder (such as /var/tmp) to postgres.
    #[test]
    fn finding_2_keep_dir_link_is_refused_and_existing_folders_keep_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&victim, tmp.path().join("pgha-rewind")).unwrap();
        assert!(open_keep_dir(&tmp.path().join("pgha-rewind")).is_err());
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o777, 0o755);

        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        open_keep_dir(&shared).unwrap();
        assert_eq!(std::fs::metadata(&shared).unwrap().mode() & 0o7777, 0o1777);

        let deep = tmp.path().join("a/b/keep");
        let keep = open_keep_dir(&deep).unwrap();
        for made in ["a", "a/b", "a/b/keep"] {
            let mode = std::fs::metadata(tmp.path().join(made)).unwrap().mode();
            assert_eq!(mode & 0o777, 0o700, "{made}");
        }
        let run = create_run_dir(&keep, "pg1", "20260102T030405Z", None).unwrap();
        assert_eq!(run.mode().unwrap(), 0o700);
        let again = create_run_dir(&keep, "pg1", "20260102T030405Z", None).unwrap();
        assert!(again.path().ends_with("pg1-20260102T030405Z-2"));
    }

    /// Finding 9: node names went into folder names unchecked.
    #[test]
    fn finding_9_node_names_that_leave_the_keep_dir_name_no_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = Dir::open(tmp.path()).unwrap();
        for node in ["../../etc", "a/b", "", ".."] {
            assert!(
                create_run_dir(&keep, node, "20260102T030405Z", None).is_err(),
                "{node:?}"
            );
        }
        assert!(keep.entries().unwrap().is_empty());
    }
}
