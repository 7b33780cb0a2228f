//! Facts about the local data directory (the rewind's target), read without changing it.
//!
//! pg_control (through `instance::control`), the history file of the target's timeline, the
//! list of WAL segments in `pg_wal`, and the length of the latest checkpoint record, read
//! from its WAL segment: 8 bytes of `XLogRecord`'s header (layout: pgha's pg_rewind notes
//! §3.2). That one record is all pgha reads of WAL; where the target's WAL ends follows from
//! it (`decision::record_end`), instead of Patroni's scraping of `pg_waldump` output.

// Reads go through `get`, never indexing: a short file is an error, not a panic.
#![deny(clippy::indexing_slicing)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::decision::{record_end, History, TargetFacts, WalSegments};
use super::RewindError;
use crate::deadline::Deadline;
use crate::instance::control::ControlFile;
use crate::instance::Instance;
use crate::lsn::{Lsn, TimelineId};

/// `RM_XLOG_ID`, and the two checkpoint record kinds (`XLOG_CHECKPOINT_SHUTDOWN`, `_ONLINE`).
const RM_XLOG: u8 = 0;
const CHECKPOINT_INFOS: [u8; 2] = [0x00, 0x10];
/// `SizeOfXLogRecord`.
const RECORD_HEADER: u32 = 24;

/// Reads the target's facts. `restore_command` is asked of the server's configuration
/// (`postgres -C`) by the caller, as it costs a child process.
pub fn facts(
    instance: &Instance,
    restore_command: bool,
) -> Result<(ControlFile, TargetFacts), RewindError> {
    let control = instance.control()?;
    let datadir = instance.datadir();
    let timeline = control
        .checkpoint_timeline
        .max(control.min_recovery_point_timeline);
    let history = read_history(datadir, timeline)?;
    let wal_segments = list_segments(datadir, u64::from(control.wal_segment_size))?;
    let checkpoint_end = checkpoint_end(datadir, &control, timeline);
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
    let text = std::fs::read_to_string(&path).map_err(|e| RewindError::Io {
        context: format!("could not read the history of timeline {tli}, {}", path.display()),
        source: e,
    })?;
    Ok(History::parse(tli, &text)?)
}

pub fn history_file_name(tli: TimelineId) -> String {
    format!("{tli:08X}.history")
}

/// `%08X%08X%08X`: timeline, then the segment number split as the server does.
pub fn segment_file_name(tli: TimelineId, segno: u64, segment_size: u64) -> String {
    let per_id = 0x1_0000_0000 / segment_size.max(1);
    format!("{tli:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
}

/// Parses a segment file name back; `None` for anything else (history, `.partial`, …).
pub fn parse_segment_name(name: &str, segment_size: u64) -> Option<(TimelineId, u64)> {
    if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(name.get(0..8)?, 16).ok()?;
    let hi = u64::from_str_radix(name.get(8..16)?, 16).ok()?;
    let lo = u64::from_str_radix(name.get(16..24)?, 16).ok()?;
    let per_id = 0x1_0000_0000 / segment_size.max(1);
    Some((tli, hi * per_id + lo))
}

fn list_segments(datadir: &Path, segment_size: u64) -> Result<WalSegments, RewindError> {
    let dir = datadir.join("pg_wal");
    let entries = std::fs::read_dir(&dir).map_err(|e| RewindError::Io {
        context: format!("could not list {}", dir.display()),
        source: e,
    })?;
    let mut present: Vec<(TimelineId, u64)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_segment_name(&e.file_name().to_string_lossy(), segment_size))
        .collect();
    present.sort_unstable();
    Ok(WalSegments {
        segment_size,
        present,
    })
}

/// Where the latest checkpoint record ends, if its WAL is there and looks like one.
fn checkpoint_end(datadir: &Path, control: &ControlFile, newest: TimelineId) -> Option<Lsn> {
    let seg = u64::from(control.wal_segment_size);
    if seg == 0 {
        return None;
    }
    let segno = control.checkpoint.0 / seg;
    let offset = control.checkpoint.0 % seg;
    // The record was written on the checkpoint's timeline; a later switch copies the
    // segment under the newer timeline's name, so any of these holds it.
    let total_len = (control.checkpoint_timeline..=newest.max(control.checkpoint_timeline))
        .rev()
        .map(|tli| {
            datadir
                .join("pg_wal")
                .join(segment_file_name(tli, segno, seg))
        })
        .find_map(|path| read_record_length(&path, offset, control.wal_block_size))?;
    record_end(control.checkpoint, total_len, control.wal_block_size, seg)
}

/// `xl_tot_len` of the record at `offset`, checked to be a checkpoint record when its header
/// lies on one page.
fn read_record_length(path: &PathBuf, offset: u64, page_size: u32) -> Option<u32> {
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut header = [0u8; RECORD_HEADER as usize];
    let in_page = u64::from(page_size).saturating_sub(offset % u64::from(page_size.max(1)));
    let wanted = usize::try_from(in_page.min(u64::from(RECORD_HEADER))).ok()?;
    file.read_exact(header.get_mut(..wanted)?).ok()?;
    let total_len = u32::from_le_bytes(header.get(0..4)?.try_into().ok()?);
    if wanted == RECORD_HEADER as usize {
        let info = header.get(16)? & 0xF0;
        let rmid = *header.get(17)?;
        if rmid != RM_XLOG || !CHECKPOINT_INFOS.contains(&info) {
            log::warn!(
                "{}: the record at offset {offset} is not a checkpoint (rmgr {rmid}, info \
                 {info:#04x})",
                path.display()
            );
            return None;
        }
    }
    (total_len >= RECORD_HEADER).then_some(total_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let seg = 16u64 << 20;
        assert_eq!(segment_file_name(1, 0x1FF, seg), "0000000100000001000000FF");
        assert_eq!(
            parse_segment_name("0000000100000001000000FF", seg),
            Some((1, 0x1FF))
        );
        let seg = 1u64 << 20;
        assert_eq!(segment_file_name(2, 0x1003, seg), "000000020000000100000003");
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

    #[test]
    fn history_file_names() {
        assert_eq!(history_file_name(10), "0000000A.history");
    }
}
