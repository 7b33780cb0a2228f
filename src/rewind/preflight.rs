//! What the actions ask before a rejoin, without a source: may this data directory start
//! ([`ensure_startable`], the start action's first step), and would a rejoin work on this
//! node ([`preflight`], validate-all's warnings).

use std::path::Path;

use super::error::RewindError;
use super::forensics;
use super::major::{pg_rewind, PG_REWINDS};
use super::marker::{self, is_marked, Marker};
use super::settings::{Fallback, RewindSettings};
use crate::instance::Instance;

/// The attempt a rewind or re-clone left unfinished, if any: its marker, or, when only the
/// guard on the data directory is left (the marker removed or unreadable), a rewind
/// started at an unknown time.
pub(super) fn unfinished(datadir: &Path, node: &str) -> Option<Marker> {
    marker::read(datadir).or_else(|| {
        is_marked(datadir).then(|| Marker {
            operation: "rewind".into(),
            started: "an unknown time".into(),
            node: node.into(),
            saved_in: None,
        })
    })
}

/// Refuses a data directory a rewind or re-clone left unfinished. Start calls this first.
pub fn ensure_startable(datadir: &Path) -> Result<(), RewindError> {
    match unfinished(datadir, "") {
        None => Ok(()),
        Some(m) => Err(RewindError::Marked {
            datadir: datadir.to_owned(),
            marker: marker::path(datadir),
            operation: m.operation,
            started: m.started,
        }),
    }
}

/// Refuses settings the pg_rewind of the instance's major does not take (`--sync-method`
/// before 17), before anything changes: [`rejoin`](fn@super::rejoin) calls it first,
/// `pgha rewind` before `--check` too, and validate-all (level 10). The agent's own
/// [`check`](super::check)s (is this standby diverged?) run no pg_rewind and do not ask.
pub fn ensure_supported(instance: &Instance, settings: &RewindSettings) -> Result<(), RewindError> {
    match settings.sync_method {
        Some(method) if !pg_rewind(instance.major).sync_method => Err(RewindError::Unsupported {
            option: format!("--sync-method={method}"),
            major: instance.major,
            since: PG_REWINDS
                .iter()
                .find(|row| row.sync_method)
                .map_or(0, |row| row.version),
        }),
        _ => Ok(()),
    }
}

/// What validate-all (level 10) should warn about for the rewind, checked on this node
/// without a server: the target-side precondition of pg_rewind (in pg_control), the binaries
/// of the data directory's major, and where the discarded WAL would go.
pub fn preflight(instance: &Instance, settings: &RewindSettings) -> Vec<String> {
    let mut warnings = Vec::new();
    if !settings.automatic {
        return warnings;
    }
    match instance.control() {
        Ok(c) if !c.can_rewind() => warnings.push(format!(
            "neither wal_log_hints nor data checksums are on in \"{}\": if it diverges, this \
             node can only be re-cloned, not rewound",
            instance.datadir().display()
        )),
        Ok(_) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    let mut tools = vec!["pg_rewind"];
    if settings.fallback == Fallback::Reclone {
        tools.push("pg_basebackup");
    }
    for tool in tools {
        if !instance.bin(tool).is_file() {
            warnings.push(format!(
                "{} is missing: a diverged node cannot be brought back",
                instance.bin(tool).display()
            ));
        }
    }
    let keep_dir = forensics::keep_dir(settings.keep_dir.as_deref(), instance.datadir());
    let existing = keep_dir.ancestors().find(|p| p.exists());
    if existing.is_none_or(|p| !p.is_dir()) {
        warnings.push(format!(
            "rewind_keep_dir {} cannot be created",
            keep_dir.display()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewind::plan::tests::marker;
    use crate::safe_fs::Dir;

    #[test]
    fn a_marked_directory_is_not_startable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        ensure_startable(&data).unwrap();
        marker::write(&Dir::open(&data).unwrap(), &marker()).unwrap();
        let err = ensure_startable(&data).unwrap_err();
        assert!(err.target_modified(), "{err}");
        assert!(err.to_string().contains("must not be started"), "{err}");
    }

    /// Finding 6: the marker lives outside PGDATA, where pg_ctl does not look; the guard on
    /// the data directory itself still stops pgha when the marker is gone.
    #[test]
    fn finding_6_the_guard_alone_keeps_a_directory_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        marker::write(&Dir::open(&data).unwrap(), &marker()).unwrap();
        std::fs::remove_file(marker::path(&data)).unwrap();
        assert!(marker::is_guarded(&data));
        assert!(ensure_startable(&data).is_err());
    }
}
