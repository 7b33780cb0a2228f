//! Records found rather than given: where the valid WAL after a record ends, as crash
//! recovery would find it ([`end_of_valid_wal`]), and which record ends at a given position
//! ([`record_ending_at`]). Both read through one [`CachedReader`], so that the pages many
//! records share are read once.

use std::path::Path;

use crate::deadline::Deadline;
use crate::lsn::{Lsn, TimelineId};

use super::decode::WalRecord;
use super::format::{MAX_ALIGN, RMGR_INFO_MASK, RM_XLOG_ID, XLOG_SWITCH};
use super::page::past_page_header;
use super::reader::CachedReader;

/// Where the valid WAL that continues from the record at `from` ends, as crash recovery
/// would find it: records are read one after the other (each one's `xl_prev` must point at
/// the one before) until one is missing, unwritten or invalid; the end of the last good one
/// is returned. `from` may be the start of a page (a timeline's switch point can be): the
/// record is then after the page header. `None` when there is no valid record at `from`, or
/// when `deadline` passes first.
///
/// This tells, without running the server, whether a crashed primary wrote past a fork
/// point and how far.
pub fn end_of_valid_wal(
    pg_wal: &Path,
    timeline: TimelineId,
    from: Lsn,
    segment_size: u32,
    deadline: &Deadline,
) -> Option<Lsn> {
    let mut reader = CachedReader::new(pg_wal, timeline, segment_size).ok()?;
    let segment = u64::from(segment_size);
    let mut at = past_page_header(from, segment_size);
    let mut last: Option<WalRecord> = None;
    while !deadline.expired() {
        let Ok(record) = reader.read(at) else {
            break;
        };
        if last.as_ref().is_some_and(|l| record.prev != l.lsn) {
            break;
        }
        let mut next = record.end.0;
        if record.rmid == RM_XLOG_ID && record.info & RMGR_INFO_MASK == XLOG_SWITCH {
            next = next.div_ceil(segment).saturating_mul(segment);
        }
        at = past_page_header(Lsn(next), segment_size);
        last = Some(record);
    }
    if deadline.expired() {
        return None;
    }
    last.map(|r| r.end)
}

/// The record that ends exactly at `end` (MAXALIGNed, as the server's flush and receive
/// positions are), found by trying the record starts of the `window` bytes before it: for
/// the last record a standby received. `None` when no record of at most about `window`
/// bytes ends there.
pub fn record_ending_at(
    pg_wal: &Path,
    timeline: TimelineId,
    end: Lsn,
    segment_size: u32,
    window: u64,
) -> Option<WalRecord> {
    let mut reader = CachedReader::new(pg_wal, timeline, segment_size).ok()?;
    let lowest = end.0.saturating_sub(window);
    (lowest..end.0)
        .rev()
        .filter(|at| at.is_multiple_of(MAX_ALIGN))
        .filter_map(|at| reader.read(Lsn(at)).ok())
        .find(|record| record.end == end)
}
