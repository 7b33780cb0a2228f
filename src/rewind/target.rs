//! Facts about the local data directory (the rewind's target), read without changing it.
//!
//! pg_control (through `instance::control`), the history file of the target's timeline, the
//! list of WAL segments in `pg_wal`, and where the latest checkpoint record ends, read
//! natively (`instance::wal`) instead of Patroni's scraping of `pg_waldump` output. That one
//! record is all the rewind reads of WAL.

// Reads go through `get`, never indexing: a short file is an error, not a panic.
#![deny(clippy::indexing_slicing)]

use std::path::Path;

use super::decision::{History, TargetFacts, WalSegments};
use super::error::RewindError;
use crate::deadline::Deadline;
use crate::instance::control::ControlFile;
use crate::instance::{wal, Instance, HISTORY_FILE};
use crate::lsn::{Lsn, TimelineId};
use crate::safe_fs::read_path_string;

/// Reads the target's facts. `restore_command` is asked of the server's configuration
/// (`postgres -C`) by the caller, as it costs a child process.
pub fn facts(
    instance: &Instance,
    restore_command: bool,
) -> Result<(ControlFile, TargetFacts), RewindError> {
    facts_from(instance, instance.control()?, restore_command)
}

/// The target's facts with `control` read by the caller (from the data directory, or as it
/// was kept before an unfinished pg_rewind).
pub fn facts_from(
    instance: &Instance,
    control: ControlFile,
    restore_command: bool,
) -> Result<(ControlFile, TargetFacts), RewindError> {
    let datadir = instance.datadir();
    let timeline = control
        .checkpoint_timeline
        .max(control.min_recovery_point_timeline);
    let history = read_history(datadir, timeline)?;
    timelines_agree(datadir, &control, &history)?;
    let wal_segments = list_segments(datadir, u64::from(control.wal_segment_size))?;
    let checkpoint_end = checkpoint_end(datadir, &control, &history);
    let facts = TargetFacts {
        system_identifier: control.system_identifier,
        catalog_version: control.catalog_version,
        state: control.state,
        checkpoint: control.checkpoint,
        checkpoint_timeline: control.checkpoint_timeline,
        checkpoint_end,
        min_recovery_point: control.min_recovery_point,
        min_recovery_point_timeline: control.min_recovery_point_timeline,
        can_rewind: control.can_rewind(),
        history,
        wal_segments,
        restore_command,
        never_replayed: instance.has_backup_label() || control.backup_start_point != Lsn::ZERO,
    };
    Ok((control, facts))
}

/// Whether the server would find a `restore_command` (PG ≥ 13: pg_rewind can use it).
pub fn has_restore_command(instance: &Instance, deadline: &Deadline) -> bool {
    instance.major >= 13
        && instance
            .configured("restore_command", deadline)
            .is_ok_and(|v| !v.trim().is_empty())
}

/// The history of `tli` from `pg_wal` (timeline 1 has none).
pub fn read_history(datadir: &Path, tli: TimelineId) -> Result<History, RewindError> {
    if tli <= 1 {
        return Ok(History::first());
    }
    let path = datadir.join("pg_wal").join(history_file_name(tli));
    let text = read_path_string(&path, HISTORY_FILE).map_err(|e| RewindError::Io {
        context: format!(
            "could not read the history of timeline {tli}, {}",
            path.display()
        ),
        source: e,
    })?;
    Ok(History::parse(tli, &text)?)
}

pub fn history_file_name(tli: TimelineId) -> String {
    format!("{tli:08X}.history")
}

fn list_segments(datadir: &Path, segment_size: u64) -> Result<WalSegments, RewindError> {
    let dir = datadir.join("pg_wal");
    let entries = std::fs::read_dir(&dir).map_err(|e| RewindError::Io {
        context: format!("could not list {}", dir.display()),
        source: e,
    })?;
    let mut present: Vec<(TimelineId, u64)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| wal::parse_segment_name(&e.file_name().to_string_lossy(), segment_size))
        .collect();
    present.sort_unstable();
    Ok(WalSegments {
        segment_size,
        present,
    })
}

/// Where the latest checkpoint record ends, if its WAL is there and reads as that checkpoint
/// (`instance::wal` checks pages, CRC and body).
fn checkpoint_end(datadir: &Path, control: &ControlFile, history: &History) -> Option<Lsn> {
    let pg_wal = datadir.join("pg_wal");
    let mut last_error = None;
    for tli in checkpoint_timelines(control.checkpoint_timeline, history) {
        match wal::read_record(&pg_wal, tli, control.checkpoint, control.wal_segment_size) {
            Ok(record) if record.checkpoint().is_some() => return Some(record.end),
            Ok(record) => {
                log::warn!(
                    "the record at {} (timeline {tli}) is not a checkpoint (rmgr {}, info \
                     {:#04x})",
                    control.checkpoint,
                    record.rmid,
                    record.info
                );
                return None;
            }
            Err(e) => last_error = Some(e),
        }
    }
    if let Some(e) = last_error {
        log::info!(
            "could not read the latest checkpoint record at {}: {e}",
            control.checkpoint
        );
    }
    None
}

/// pg_control's timelines must fit the history of the latest of them: the checkpoint's is
/// listed in it, and a minimum recovery point on a later timeline lies at or after where
/// that timeline begins. Both hold for every file the server writes (it moves timelines
/// forward along the history); a file that breaks them was not written by the server, and
/// nothing derived from it is believed.
fn timelines_agree(
    datadir: &Path,
    control: &ControlFile,
    history: &History,
) -> Result<(), RewindError> {
    let refused = |why: String| RewindError::Refused {
        datadir: datadir.to_owned(),
        why: format!("{why}: pg_control and the history files in pg_wal disagree"),
    };
    let entries = history.entries();
    if !entries.iter().any(|e| e.tli == control.checkpoint_timeline) {
        return Err(refused(format!(
            "pg_control's checkpoint is on timeline {}, which the history of timeline {} \
             does not list",
            control.checkpoint_timeline,
            history.timeline()
        )));
    }
    if control.min_recovery_point_timeline > control.checkpoint_timeline {
        let begin = entries
            .iter()
            .find(|e| e.tli == control.min_recovery_point_timeline)
            .map(|e| e.begin);
        if begin.is_none_or(|begin| control.min_recovery_point < begin) {
            return Err(refused(format!(
                "pg_control's minimum recovery point {} is on timeline {}, which begins at {} \
                 by its history",
                control.min_recovery_point,
                control.min_recovery_point_timeline,
                begin.map_or_else(|| "no known point".to_owned(), |b| b.to_string())
            )));
        }
    }
    Ok(())
}

/// The timelines whose segments may hold the checkpoint record, newest first: it was written
/// on the checkpoint's timeline, and a later switch copies the segment under each newer
/// timeline's name. Only timelines the history names, never a count up to a number read
/// from pg_control (0xFFFFFFFF there would mean four billion tries).
fn checkpoint_timelines(checkpoint: TimelineId, history: &History) -> Vec<TimelineId> {
    history
        .entries()
        .iter()
        .rev()
        .map(|e| e.tli)
        .filter(|&tli| tli > checkpoint)
        .chain(std::iter::once(checkpoint))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::wal::{parse_segment_name, segno_file_name};

    #[test]
    fn segment_names_round_trip() {
        let seg = 16u64 << 20;
        assert_eq!(segno_file_name(1, 0x1FF, seg), "0000000100000001000000FF");
        assert_eq!(
            parse_segment_name("0000000100000001000000FF", seg),
            Some((1, 0x1FF))
        );
        let seg = 1u64 << 20;
        assert_eq!(segno_file_name(2, 0x1003, seg), "000000020000000100000003");
        assert_eq!(
            parse_segment_name("000000020000000100000003", seg),
            Some((2, 0x1003))
        );
        assert_eq!(parse_segment_name("00000002.history", seg), None);
        assert_eq!(
            parse_segment_name("000000010000000000000003.partial", seg),
            None
        );
    }

    /// A data directory whose pg_control says minRecoveryPointTLI = 0xFFFFFFFF, with a
    /// history for that timeline planted in pg_wal.
    fn crafted_min_recovery_point_timeline() -> (tempfile::TempDir, ControlFile, History) {
        let dir =
            crate::instance::control::tests::datadir_with_min_recovery_point_timeline(u32::MAX);
        std::fs::create_dir(dir.path().join("pg_wal")).unwrap();
        std::fs::write(
            dir.path().join("pg_wal/FFFFFFFF.history"),
            "1\t0/3000000\tcrafted\n",
        )
        .unwrap();
        let control = crate::instance::control::read(dir.path()).unwrap();
        let history = read_history(dir.path(), u32::MAX).unwrap();
        (dir, control, history)
    }

    /// pg_control says minRecoveryPointTLI = 0xFFFFFFFF and postgres planted a history
    /// for it: the checkpoint record is looked for on the two timelines that history names,
    /// not on four billion.
    #[test]
    fn finding_9_crafted_min_recovery_point_timeline_is_not_counted_up_to() {
        let (dir, control, history) = crafted_min_recovery_point_timeline();
        assert_eq!(
            checkpoint_timelines(control.checkpoint_timeline, &history),
            [u32::MAX, 1]
        );
        let started = std::time::Instant::now();
        assert_eq!(checkpoint_end(dir.path(), &control, &history), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    /// The same crafted pg_control as `facts` reads it: refused at once, with a reason.
    #[test]
    fn finding_9_crafted_min_recovery_point_timeline_is_refused() {
        let (dir, control, history) = crafted_min_recovery_point_timeline();
        let err = timelines_agree(dir.path(), &control, &history)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("minimum recovery point 0/0 is on timeline 4294967295"),
            "{err}"
        );
        // A history that does not list the checkpoint's timeline is refused too.
        let other = History::parse(u32::MAX, "2\t0/3000000\tcrafted\n").unwrap();
        let err = timelines_agree(dir.path(), &control, &other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkpoint is on timeline 1"), "{err}");
    }

    #[test]
    fn checkpoint_timelines_follow_the_history_newest_first() {
        let history = History::parse(5, "1\t0/3000000\tx\n3\t0/5000000\tx\n").unwrap();
        assert_eq!(checkpoint_timelines(1, &history), [5, 3, 1]);
        assert_eq!(checkpoint_timelines(3, &history), [5, 3]);
        assert_eq!(checkpoint_timelines(5, &history), [5]);
        assert_eq!(checkpoint_timelines(1, &History::first()), [1]);
    }

    #[test]
    fn history_file_names() {
        assert_eq!(history_file_name(10), "0000000A.history");
    }
}
