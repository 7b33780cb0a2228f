//! The "rewind in progress" marker: written before anything may change the data directory,
//! removed only once it is whole again and configured as a standby.
//!
//! A data directory with a marker is never started ([`is_marked`]; the start action asks):
//! after a pg_rewind killed half-way, `pg_control` is still the old primary's while some
//! files already are the new primary's, and PostgreSQL would start it without a word.
//!
//! The marker sits next to the data directory (`<datadir>.pgha-rewind`), not inside it:
//! pg_rewind removes every file of the target that the source does not have, so a marker
//! inside would vanish exactly when it matters.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::RewindError;

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

/// Whether a rewind or re-clone of this data directory started and did not finish.
pub fn is_marked(datadir: &Path) -> bool {
    path(datadir).exists()
}

pub fn read(datadir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(path(datadir)).ok()?;
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
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    })
}

/// Writes the marker durably (temporary file, fsync, rename, fsync of the directory).
pub fn write(datadir: &Path, marker: &Marker) -> Result<(), RewindError> {
    let final_path = path(datadir);
    let tmp = PathBuf::from(format!("{}.tmp", final_path.display()));
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
    let io = |what: &str, e| RewindError::io(format!("{what} {}", tmp.display()), e);
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("could not create", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("could not write", e))?;
    std::fs::rename(&tmp, &final_path).map_err(|e| io("could not rename", e))?;
    sync_parent(&final_path);
    log::info!("wrote the rewind marker {}", final_path.display());
    Ok(())
}

/// Removes the marker durably; a missing one is fine.
pub fn remove(datadir: &Path) -> Result<(), RewindError> {
    let p = path(datadir);
    match std::fs::remove_file(&p) {
        Ok(()) => {
            sync_parent(&p);
            log::info!("removed the rewind marker {}", p.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RewindError::io(
            format!("could not remove {}", p.display()),
            e,
        )),
    }
}

/// fsync of the directory holding `path`, so a rename or unlink survives a crash.
pub(super) fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

/// Now in UTC, `YYYY-MM-DDTHH:MM:SSZ` (and a compact form for directory names).
pub fn utc_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = civil(secs);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
    )
}

/// Seconds since the epoch → UTC date and time (days-to-civil, proleptic Gregorian).
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

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
        write(&data, &marker).unwrap();
        assert!(is_marked(&data));
        assert_eq!(read(&data), Some(marker));
        remove(&data).unwrap();
        assert!(!is_marked(&data));
        remove(&data).unwrap();
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_767_323_045), (2026, 1, 2, 3, 4, 5));
    }
}
