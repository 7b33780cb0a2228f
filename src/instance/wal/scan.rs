//! Records found rather than given: where the valid WAL after a record ends, as crash
//! recovery would find it ([`end_of_valid_wal`]), which record ends at a given position
//! ([`record_ending_at`]), the last checkpoint before a position ([`checkpoint_before`]) and
//! every record between two positions ([`records_between`]), as pg_rewind walks them. All
//! read through one [`CachedReader`], so that the pages many records share are read once.

use std::path::Path;

use crate::deadline::Deadline;
use crate::lsn::{Lsn, TimelineId};

use super::decode::{CheckpointRecord, WalRecord};
use super::error::{DecodeError, WalError, WalkError};
use super::format::{
    xlp, MAX_ALIGN, MAX_RECORD_LEN, RMGR_INFO_MASK, RM_XLOG_ID, WAL_PAGE_SIZE, XLOG_SWITCH,
};
use super::page::{past_page_header, SHORT_PAGE_HEADER};
use super::reader::{CachedReader, Segments};

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
    walk(pg_wal, timeline, from, segment_size, deadline, |_| {}).map(|(end, _)| end)
}

/// [`end_of_valid_wal`], only where crash recovery would stop there too: the WAL ends in
/// zeros, a recycled page, a missing segment file, or a last record torn by the crash (bad
/// length, CRC or back link). `None` for any other stop: an unreadable file, a page it
/// would read differently (a record the server abandoned and wrote past, marked
/// `XLP_FIRST_IS_OVERWRITE_CONTRECORD`), where the true end may be further.
pub fn end_of_wal_for_recovery(
    pg_wal: &Path,
    timeline: TimelineId,
    from: Lsn,
    segment_size: u32,
    deadline: &Deadline,
) -> Option<Lsn> {
    records_to_end_for_recovery(pg_wal, timeline, from, segment_size, deadline, |_| {})
}

/// Whether an error reading the next record is the end of the WAL for crash recovery.
fn ends_wal(stop: &WalError) -> bool {
    match stop {
        WalError::Invalid { source, .. } => {
            source.is_unwritten()
                || matches!(
                    source,
                    DecodeError::Crc { .. }
                        | DecodeError::RecordLength { .. }
                        | DecodeError::PrevLink { .. }
                )
        }
        other => other.is_not_received(),
    }
}

/// [`end_of_wal_for_recovery`], calling `visit` with each record of the chain on the way:
/// one pass where a caller wants both the records and where recovery would stop.
pub fn records_to_end_for_recovery(
    pg_wal: &Path,
    timeline: TimelineId,
    from: Lsn,
    segment_size: u32,
    deadline: &Deadline,
    visit: impl FnMut(&WalRecord),
) -> Option<Lsn> {
    let (end, stop) = walk(pg_wal, timeline, from, segment_size, deadline, visit)?;
    let failed = match &stop {
        Stop::Read(e) if !ends_wal(e) => return None,
        Stop::Read(e) => e.failed_record(),
        Stop::Chain(at) => Some(*at),
    };
    let goes_on = failed.is_some_and(|at| {
        CachedReader::new(pg_wal, timeline, segment_size)
            .map_or(true, |mut reader| goes_on_after(&mut reader, at, deadline))
    });
    (!goes_on).then_some(end)
}

/// Why the chain of records ended.
enum Stop {
    /// The next record did not read.
    Read(WalError),
    /// The record at this position read, but its `xl_prev` is not the record before.
    Chain(Lsn),
}

/// Whether this WAL goes on past the record at `at`, which did not read (a bad length, CRC
/// or back link): a later page of this WAL (its address, its timeline) where a record
/// starts, found past the pages that only continue the one at `at`. A crash leaves none
/// after its torn last record (the pages after it are zeros or an older use of the file);
/// a reader that misread a valid record would, and its end is not believed (crash
/// recovery then runs: a guard against this reader's own mistakes).
fn goes_on_after(reader: &mut CachedReader, at: Lsn, deadline: &Deadline) -> bool {
    let payload = u64::from(WAL_PAGE_SIZE) - SHORT_PAGE_HEADER;
    let most_pages = u64::from(MAX_RECORD_LEN) / payload + 2;
    let mut page = Lsn(at.0 - at.0 % u64::from(WAL_PAGE_SIZE));
    for _ in 0..most_pages {
        if deadline.expired() {
            return true;
        }
        page = Lsn(page.0 + u64::from(WAL_PAGE_SIZE));
        let Some(next) = reader.checked_page(page) else {
            // Zeros or an older page here; but an XLOG_SWITCH record (or damage to one)
            // leaves the rest of its segment zeroed, and the WAL goes on in the next.
            let segment_size = reader.segment_size();
            let next_segment = Lsn((page.0 / segment_size + 1) * segment_size);
            return next_segment.0 > page.0 && reader.checked_page(next_segment).is_some();
        };
        let continued = next.info & xlp::FIRST_IS_CONTRECORD != 0;
        let room = u64::from(WAL_PAGE_SIZE) - next.header_len;
        if !continued || u64::from(next.rem_len) < room {
            return true;
        }
    }
    true
}

/// The end of the last record of the chain from `from`, and why the chain stopped there;
/// `visit` sees each record of the chain.
fn walk(
    pg_wal: &Path,
    timeline: TimelineId,
    from: Lsn,
    segment_size: u32,
    deadline: &Deadline,
    mut visit: impl FnMut(&WalRecord),
) -> Option<(Lsn, Stop)> {
    let mut reader = CachedReader::new(pg_wal, timeline, segment_size).ok()?;
    let mut at = past_page_header(from, segment_size);
    let mut last: Option<WalRecord> = None;
    let mut step = 0u64;
    let stop = loop {
        if deadline.expired_by_step(step) {
            return None;
        }
        let record = match reader.read(at) {
            Ok(record) => record,
            Err(e) => break Stop::Read(e),
        };
        if last.as_ref().is_some_and(|l| record.prev != l.lsn) {
            break Stop::Chain(at);
        }
        visit(&record);
        at = next_record_start(&record, segment_size);
        last = Some(record);
        step += 1;
    };
    last.map(|r| (r.end, stop))
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

/// Where the record after `record` starts: past its end, or at the next segment after an
/// `XLOG_SWITCH` (the rest of that segment is unused), and past a page header there.
fn next_record_start(record: &WalRecord, segment_size: u32) -> Lsn {
    let segment = u64::from(segment_size);
    let mut next = record.end.0;
    if record.rmid == RM_XLOG_ID && record.info & RMGR_INFO_MASK == XLOG_SWITCH {
        next = next.div_ceil(segment).saturating_mul(segment);
    }
    past_page_header(Lsn(next), segment_size)
}

/// The last checkpoint record that starts before `before`, found as pg_rewind finds the last
/// common checkpoint: from the record at `before` (past a page header there), back along
/// `xl_prev`. Online and shutdown checkpoints count; 17's `XLOG_CHECKPOINT_REDO` does not.
pub fn checkpoint_before(
    pg_wal: &Path,
    timeline: TimelineId,
    before: Lsn,
    segment_size: u32,
    deadline: &Deadline,
) -> Result<(WalRecord, CheckpointRecord), WalkError> {
    let mut reader = CachedReader::new(pg_wal, timeline, segment_size)?;
    let mut at = past_page_header(before, segment_size);
    loop {
        if deadline.expired() {
            return Err(WalkError::Expired { at });
        }
        let record = reader.read(at)?;
        if record.lsn < before {
            if let Some(checkpoint) = record.checkpoint() {
                return Ok((record, checkpoint));
            }
        }
        if record.prev.0 == 0 || record.prev >= record.lsn {
            return Err(WalkError::NoCheckpoint { before });
        }
        at = record.prev;
    }
}

/// Calls `visit` with every record from the one at `from` to the one that ends exactly at
/// `to`, in order, each one's `xl_prev` checked against the one before. `to` must be the end
/// of a record (a record that crosses it is pg_rewind's "not a valid end point"). Returns how
/// many records were read.
pub fn records_between(
    pg_wal: &Path,
    timeline: TimelineId,
    from: Lsn,
    to: Lsn,
    segment_size: u32,
    deadline: &Deadline,
    mut visit: impl FnMut(&WalRecord),
) -> Result<u64, WalkError> {
    let mut reader = CachedReader::new(pg_wal, timeline, segment_size)?;
    let mut at = past_page_header(from, segment_size);
    let mut prev: Option<Lsn> = None;
    let mut count = 0;
    loop {
        if deadline.expired_by_step(count) {
            return Err(WalkError::Expired { at });
        }
        let record = reader.read(at)?;
        if let Some(prev) = prev.filter(|p| *p != record.prev) {
            return Err(WalkError::Chain { at, prev });
        }
        if record.end > to {
            return Err(WalkError::PastEnd {
                at,
                end: record.end,
                to,
            });
        }
        visit(&record);
        count += 1;
        if record.end == to {
            return Ok(count);
        }
        prev = Some(record.lsn);
        at = next_record_start(&record, segment_size);
    }
}

/// Calls `visit` with every record from the one at `from` to the last one before `before`,
/// where a later record starts (a checkpoint's redo point), in order, each one's `xl_prev`
/// checked against the one before, from `segments` (another server's WAL may be fetched).
/// A record that crosses `before` is [`WalkError::PastEnd`]. `visit` returning `false` ends
/// the walk there. Returns how many records were read.
pub fn records_before(
    segments: Segments<'_, '_>,
    timeline: TimelineId,
    from: Lsn,
    before: Lsn,
    segment_size: u32,
    deadline: &Deadline,
    mut visit: impl FnMut(&WalRecord) -> bool,
) -> Result<u64, WalkError> {
    // Fetched WAL is asked of another server as it is read, each request given some time
    // even past the deadline: there, the deadline is looked at before every record.
    let fetched = matches!(segments, Segments::Fetched { .. });
    let mut reader = CachedReader::over(segments, timeline, segment_size)?;
    let before = past_page_header(before, segment_size);
    let mut at = past_page_header(from, segment_size);
    let mut prev: Option<Lsn> = None;
    let mut count = 0;
    while at < before {
        let expired = if fetched {
            deadline.expired()
        } else {
            deadline.expired_by_step(count)
        };
        if expired {
            return Err(WalkError::Expired { at });
        }
        let record = reader.read(at)?;
        if let Some(prev) = prev.filter(|p| *p != record.prev) {
            return Err(WalkError::Chain { at, prev });
        }
        let next = next_record_start(&record, segment_size);
        if next > before {
            return Err(WalkError::PastEnd {
                at,
                end: record.end,
                to: before,
            });
        }
        count += 1;
        if !visit(&record) {
            break;
        }
        prev = Some(record.lsn);
        at = next;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn invalid(source: DecodeError) -> WalError {
        WalError::Invalid {
            file: PathBuf::from("pg_wal/000000010000000000000003"),
            offset: 0x2000,
            source,
        }
    }

    #[test]
    fn crash_recovery_stops_only_at_an_end_of_wal() {
        let at = Lsn(0x0300_2000);
        let table: [(WalError, bool); 9] = [
            (invalid(DecodeError::Unwritten { at, what: "record" }), true),
            (
                invalid(DecodeError::PageAddress {
                    at,
                    found: Lsn(0x0100_2000),
                    expected: at,
                }),
                true,
            ),
            (
                WalError::Missing {
                    file: PathBuf::from("pg_wal/000000010000000000000004"),
                    lsn: at,
                },
                true,
            ),
            (
                invalid(DecodeError::Crc {
                    at,
                    stored: 1,
                    computed: 2,
                }),
                true,
            ),
            (invalid(DecodeError::RecordLength { at, found: 3 }), true),
            // The server abandoned a record cut by a crash and wrote on: the WAL goes on.
            (
                invalid(DecodeError::Overwritten {
                    at,
                    record: Lsn(0x0300_1ff0),
                }),
                false,
            ),
            (
                invalid(DecodeError::PageAddress {
                    at,
                    found: Lsn(0x0500_2000),
                    expected: at,
                }),
                false,
            ),
            (
                WalError::Io {
                    file: PathBuf::from("pg_wal/000000010000000000000003"),
                    source: std::io::Error::from_raw_os_error(5),
                },
                false,
            ),
            (
                WalError::Short {
                    file: PathBuf::from("pg_wal/000000010000000000000003"),
                    len: 8192,
                    expected: 16 << 20,
                },
                false,
            ),
        ];
        for (stop, expected) in table {
            assert_eq!(ends_wal(&stop), expected, "{stop}");
        }
    }

    /// Review of the 64 kB rows' change: a walk over fetched WAL (the source's, over SQL,
    /// whose requests get some time even past the deadline) must not read up to 255 more
    /// records once the deadline has passed, as a walk over local files may.
    #[test]
    fn a_fetched_walk_looks_at_the_deadline_before_every_record() {
        use super::super::fixtures::{listed_of, pg_wal, MIB};
        use std::time::Duration;
        let dir = pg_wal();
        let long = Deadline::after(Duration::from_secs(30));
        // Two records in a row: the first, then the one its end leads to.
        let (from, before) = listed_of(15)
            .iter()
            .filter(|l| l.timeline == 1)
            .find_map(|l| {
                let mut reader = CachedReader::new(dir.path(), 1, MIB).ok()?;
                let first = reader.read(l.lsn).ok()?;
                let second = reader.read(next_record_start(&first, MIB)).ok()?;
                (second.prev == first.lsn).then(|| (first.lsn, next_record_start(&second, MIB)))
            })
            .expect("two records in a row among the fixtures");
        let local = records_before(
            Segments::Dir(dir.path()),
            1,
            from,
            before,
            MIB,
            &long,
            |_| true,
        );
        assert_eq!(local.unwrap(), 2);
        // The first request outlives the deadline.
        let mut first_request = true;
        let mut fetch = |name: &str, offset: u64, len: u64| -> std::io::Result<Option<Vec<u8>>> {
            if std::mem::take(&mut first_request) {
                std::thread::sleep(Duration::from_millis(60));
            }
            let bytes = std::fs::read(dir.path().join(name))?;
            let from = usize::try_from(offset).unwrap();
            let to = from + usize::try_from(len).unwrap();
            Ok(bytes.get(from..to.min(bytes.len())).map(<[u8]>::to_vec))
        };
        let fetched = Segments::Fetched {
            shown: std::path::Path::new("the source's pg_wal"),
            fetch: &mut fetch,
        };
        let short = Deadline::after(Duration::from_millis(20));
        let mut seen = 0;
        let walked = records_before(fetched, 1, from, before, MIB, &short, |_| {
            seen += 1;
            true
        });
        assert!(
            matches!(walked, Err(WalkError::Expired { .. })),
            "{walked:?}"
        );
        assert_eq!(seen, 1);
    }
}
