//! The "rewind in progress" marker: written before anything may change the data directory,
//! removed only once it is whole again and configured as a standby.
//!
//! A data directory with a marker is never started ([`is_marked`]; the start action asks):
//! after a pg_rewind killed half-way, `pg_control` is still the old primary's while some
//! files already are the new primary's, and PostgreSQL would start it without a word.
//!
//! The marker sits next to the data directory (`<datadir>.pgha-rewind`), not inside it:
//! pg_rewind removes every file of the target that the source does not have, so a marker
//! inside would vanish exactly when it matters. Inside, the data directory carries a guard
//! that PostgreSQL itself obeys, for a hand-run `pg_ctl start` that knows nothing of the
//! marker: its mode gives others search and nothing else (`--x`), and the server refuses to
//! start from a data directory whose mode allows anything to others ("data directory has
//! invalid permissions"), while pg_rewind, `postgres -C` and pg_basebackup work as before.

use std::io;
use std::path::{Path, PathBuf};

use super::error::RewindError;
use crate::safe_fs::Dir;

/// The others' bits of a guarded data directory's mode (see the module's doc): no
/// PostgreSQL tool sets them so.
pub const GUARD_BITS: u32 = 0o001;
const OTHERS: u32 = 0o007;

/// The most pgha reads of a marker (a few lines it wrote itself).
const MARKER_LIMIT: u64 = 64 * 1024;

/// What the marker records, for the operator and for the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// `pg_rewind` or `re-clone`.
    pub operation: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started: String,
    pub node: String,
    /// Where the discarded WAL and the node's configuration were saved.
    pub saved_in: Option<PathBuf>,
}

/// `/var/lib/postgresql/15/main` → `/var/lib/postgresql/15/main.pgha-rewind`.
pub fn path(datadir: &Path) -> PathBuf {
    let trimmed = datadir.to_string_lossy().trim_end_matches('/').to_owned();
    PathBuf::from(format!("{trimmed}.pgha-rewind"))
}

/// The folder holding the marker, and the marker's name there.
fn place(datadir: &Path) -> io::Result<(Dir, String)> {
    Dir::parent_of(&path(datadir))
}

/// Whether a rewind or re-clone of this data directory started and did not finish: a
/// marker (whatever kind of entry bears its name), or the guard on the directory.
pub fn is_marked(datadir: &Path) -> bool {
    let marker = place(datadir).is_ok_and(|(dir, name)| dir.kind(&name).ok().flatten().is_some());
    marker || is_guarded(datadir)
}

/// Whether the data directory carries the guard.
pub fn is_guarded(datadir: &Path) -> bool {
    Dir::open(datadir)
        .and_then(|d| d.mode())
        .is_ok_and(|mode| mode & OTHERS == GUARD_BITS)
}

/// The marker's content, when it is one pgha wrote: a regular file of root's (when pgha
/// runs as root). postgres can write the marker's folder; a marker of its making counts as a
/// marker (the directory is not started) but nothing in it is believed.
pub fn read(datadir: &Path) -> Option<Marker> {
    let (dir, name) = place(datadir).ok()?;
    let (file, stat) = dir.open_file(&name).ok()?;
    let ours = stat.st_uid == nix::unistd::geteuid().as_raw();
    let text = crate::safe_fs::read_limited(file, MARKER_LIMIT, &dir.join(&name)).ok()?;
    let text = String::from_utf8(text).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    Some(Marker {
        operation: field("operation").unwrap_or_default(),
        started: field("started").unwrap_or_default(),
        node: field("node").unwrap_or_default(),
        saved_in: field("saved_in")
            .filter(|s| ours && !s.is_empty())
            .map(PathBuf::from),
    })
}

/// Writes the marker durably (a new root-owned file, synced, renamed over any entry of that
/// name, the folder synced), then puts the guard on the data directory `data`.
pub fn write(data: &Dir, marker: &Marker) -> Result<(), RewindError> {
    let datadir = data.path();
    let text = format!(
        "# pgha: a rewind of {} started and has not finished.\n\
         # Do not start this data directory: it may be half rewound. pgha repairs it at the\n\
         # next start (a new rewind or a re-clone), or re-clone it by hand and remove this file.\n\
         operation={}\nstarted={}\nnode={}\nsaved_in={}\n",
        datadir.display(),
        marker.operation,
        marker.started,
        marker.node,
        marker
            .saved_in
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let shown = path(datadir);
    let io = |what: &str, e| RewindError::io(format!("could not {what} {}", shown.display()), e);
    let (dir, name) = place(datadir).map_err(|e| io("write", e))?;
    dir.write_file(&name, text.as_bytes(), 0o644, None)
        .map_err(|e| io("write", e))?;
    set_guard(data, true)?;
    log::info!("wrote the rewind marker {}", shown.display());
    Ok(())
}

/// Takes the guard off the data directory `data`, then removes the marker durably; a
/// missing one is fine.
pub fn remove(data: &Dir) -> Result<(), RewindError> {
    set_guard(data, false)?;
    let shown = path(data.path());
    let io = |e| RewindError::io(format!("could not remove {}", shown.display()), e);
    let (dir, name) = place(data.path()).map_err(io)?;
    if dir.kind(&name).map_err(io)?.is_some() {
        dir.remove_file(&name)
            .and_then(|()| dir.sync())
            .map_err(io)?;
        log::info!("removed the rewind marker {}", shown.display());
    }
    Ok(())
}

fn set_guard(data: &Dir, on: bool) -> Result<(), RewindError> {
    let io = |e| {
        RewindError::io(
            format!("could not change the mode of {}", data.path().display()),
            e,
        )
    };
    let mode = data.mode().map_err(io)?;
    let others = if on { GUARD_BITS } else { 0 };
    let wanted = (mode & !OTHERS) | others;
    if wanted != mode {
        data.set_owner_and_mode(wanted, None).map_err(io)?;
        data.sync().map_err(io)?;
    }
    Ok(())
}

pub use crate::clock::{utc, utc_now};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_sits_next_to_the_data_directory() {
        assert_eq!(
            path(Path::new("/var/lib/postgresql/15/main/")),
            PathBuf::from("/var/lib/postgresql/15/main.pgha-rewind")
        );
    }

    #[test]
    fn written_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        assert!(!is_marked(&data));
        let marker = Marker {
            operation: "pg_rewind".into(),
            started: "2026-01-02T03:04:05Z".into(),
            node: "pg1".into(),
            saved_in: Some(dir.path().join("keep")),
        };
        let handle = Dir::open(&data).unwrap();
        write(&handle, &marker).unwrap();
        assert!(is_marked(&data));
        assert!(is_guarded(&data));
        assert_eq!(read(&data), Some(marker));
        remove(&handle).unwrap();
        assert!(!is_marked(&data));
        assert!(!is_guarded(&data));
        remove(&handle).unwrap();
    }

    /// The security review: the marker sits in a folder postgres can write, and its
    /// `saved_in` named the folder root restored the configuration from.
    #[test]
    fn a_marker_root_did_not_write_marks_but_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(path(&data), "operation=pg_rewind\nsaved_in=/etc\n").unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(path(&data), Some(65534), Some(65534)).unwrap();
            assert_eq!(read(&data).unwrap().saved_in, None);
        }
        assert!(is_marked(&data));
    }
}
