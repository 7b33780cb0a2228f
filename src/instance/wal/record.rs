//! One record, assembled: from a start checked to be one, over the pages and segments it
//! continues on, to its last byte; its header checked as soon as it is whole
//! (`ValidXLogRecordHeader`), then its CRC-32C, then its body. Pages come from a
//! [`PageSource`], so the same code reads the segment files
//! ([`read_record`](super::read_record)) and bytes in memory ([`decode_record`]).

use crate::lsn::{Lsn, TimelineId};

use super::decode::WalRecord;
use super::error::{DecodeError, Failure};
use super::format::{
    align, xlp, Bytes, CRC_OFFSET, MAX_ALIGN, MAX_RECORD_LEN, PAGE, RECORD_HEADER, WAL_PAGE_SIZE,
};
use super::major::Major;
use super::page::{field_at, Page, PageBytes, PageSource, Seen, Wal};

/// `RM_MIN_CUSTOM_ID`: custom resource managers, where the major has them, use ids from
/// here to 255.
const MIN_CUSTOM_RMID: u8 = 128;

/// Decodes the record that starts at `lsn` from WAL bytes in memory, with the same checks as
/// [`read_record`](super::read_record).
///
/// `wal` holds consecutive WAL pages, the first starting at `start` (a multiple of the page
/// size), as they would follow one another across segment files. It must cover every page
/// the record lies on; the first page of a segment is checked whenever it is among them,
/// as [`read_record`](super::read_record) always checks it. `timeline` is that of the
/// segment files the bytes come from, `segment_size` pg_control's `xlog_seg_size`.
pub fn decode_record(
    wal: &[u8],
    start: Lsn,
    lsn: Lsn,
    timeline: TimelineId,
    segment_size: u32,
) -> Result<WalRecord, DecodeError> {
    let wal_reader = Wal {
        timeline,
        segment_size: u64::from(segment_size.max(1)),
    };
    let mut pages = |page: Lsn| -> Result<Option<PageBytes>, DecodeError> {
        let Some(offset) = page.0.checked_sub(start.0) else {
            return Ok(None);
        };
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let to = from.saturating_add(WAL_PAGE_SIZE as usize);
        Ok(wal.get(from..to).map(PageBytes::from))
    };
    read(&wal_reader, lsn, &mut pages).map_err(|e| match e {
        Failure::Source(e) | Failure::Invalid(e) => e,
    })
}

/// Reads the record that starts at `lsn` from the pages `pages` gives: the first page, then
/// each page the record continues on, the header once whole, the CRC, the body.
pub(super) fn read<E>(
    wal: &Wal,
    lsn: Lsn,
    pages: &mut PageSource<'_, E>,
) -> Result<WalRecord, Failure<E>> {
    if !lsn.0.is_multiple_of(MAX_ALIGN) {
        return Err(DecodeError::Unaligned { at: lsn }.into());
    }
    let mut seen = Seen::default();
    let mut page_lsn = Lsn(lsn.0 - lsn.0 % PAGE);
    let first = wal.page(page_lsn, &mut seen, pages)?;
    let offset = lsn.0 % PAGE;
    let total_len = start_length(&first, lsn, offset)?;
    let major = first.major;
    let mut record = first.data(offset, u64::from(total_len)).to_vec();
    let mut end = lsn.0.saturating_add(record.len() as u64);
    if record.len() >= RECORD_HEADER {
        check_header(&record, lsn, major)?;
    }
    while record.len() < total_len as usize {
        page_lsn = Lsn(page_lsn
            .0
            .checked_add(PAGE)
            .ok_or(DecodeError::Truncated { at: page_lsn })?);
        let page = wal.page(page_lsn, &mut seen, pages)?;
        let had = record.len();
        end = continue_on(&page, page_lsn, lsn, total_len, &mut record)?;
        if had < RECORD_HEADER && record.len() >= RECORD_HEADER {
            check_header(&record, lsn, major)?;
        }
    }
    check_crc(&record, lsn)?;
    Ok(WalRecord::decode(&record, lsn, Lsn(align(end)), major)?)
}

/// `xl_tot_len` of the record at `lsn`, `offset` bytes into its first page, `first`, once
/// that offset is known to be a record's start: past the page header, past what the page
/// holds of a record continued from an earlier page, and not zeros.
fn start_length(first: &Page, lsn: Lsn, offset: u64) -> Result<u32, DecodeError> {
    if offset < first.header_len {
        return Err(DecodeError::InPageHeader {
            at: lsn,
            header_len: first.header_len,
        });
    }
    if first.info & xlp::FIRST_IS_CONTRECORD != 0
        && offset
            < first
                .header_len
                .saturating_add(align(u64::from(first.rem_len)))
    {
        return Err(DecodeError::InContinuation {
            at: lsn,
            rem_len: first.rem_len,
        });
    }

    // At least 8 bytes are left on the page (the offset is a multiple of 8 below the page
    // size), so xl_tot_len is always on the first page; the rest of the header may not be.
    let total_len = Bytes(first.data(offset, 4)).u32(0).unwrap_or(0);
    if total_len == 0 {
        return Err(DecodeError::Unwritten {
            at: lsn,
            what: "record",
        });
    }
    if !(RECORD_HEADER as u32..=MAX_RECORD_LEN).contains(&total_len) {
        return Err(DecodeError::RecordLength {
            at: lsn,
            found: total_len,
        });
    }
    Ok(total_len)
}

/// Appends to `record`, the first bytes of the `total_len`-byte record at `lsn`, what
/// `page` (at `page_lsn`) holds of the rest, once the page says it continues a record and
/// how much of it is left. Where the bytes appended end.
fn continue_on(
    page: &Page,
    page_lsn: Lsn,
    lsn: Lsn,
    total_len: u32,
    record: &mut Vec<u8>,
) -> Result<u64, DecodeError> {
    if page.info & page.major.overwrite_contrecord != 0 {
        return Err(DecodeError::Overwritten {
            at: field_at(page_lsn, 2),
            record: lsn,
        });
    }
    if page.info & xlp::FIRST_IS_CONTRECORD == 0 {
        return Err(DecodeError::NoContrecord {
            at: field_at(page_lsn, 2),
            found: page.info,
            record: lsn,
        });
    }
    // Called while fewer than total_len bytes are in: no underflow.
    let missing = total_len - record.len() as u32;
    if page.rem_len != missing {
        return Err(DecodeError::ContrecordLength {
            at: field_at(page_lsn, 16),
            found: page.rem_len,
            expected: missing,
            record: lsn,
        });
    }
    let data = page.data(page.header_len, u64::from(missing));
    record.extend_from_slice(data);
    Ok(page_lsn
        .0
        .saturating_add(page.header_len + data.len() as u64))
}

/// `ValidXLogRecordHeader`, for a record read at a random start (no previous record known).
/// `xl_tot_len` was checked before.
fn check_header(record: &[u8], lsn: Lsn, major: &Major) -> Result<(), DecodeError> {
    let raw = Bytes(record);
    let rmid = raw.u8(17).unwrap_or_default();
    let builtin = rmid <= major.max_builtin_rmid;
    let custom = major.custom_rmids && rmid >= MIN_CUSTOM_RMID;
    if !builtin && !custom {
        return Err(DecodeError::ResourceManager {
            at: lsn,
            found: rmid,
            major: major.version,
        });
    }
    let prev = Lsn(raw.u64(8).unwrap_or_default());
    if prev >= lsn {
        return Err(DecodeError::PrevLink {
            at: lsn,
            found: prev,
        });
    }
    Ok(())
}

/// `xl_crc`: the CRC-32C of the record after its header, then of the header up to `xl_crc`.
fn check_crc(record: &[u8], lsn: Lsn) -> Result<(), DecodeError> {
    let stored = Bytes(record).u32(CRC_OFFSET).unwrap_or(0);
    let computed = crc32c::crc32c_append(
        crc32c::crc32c(record.get(RECORD_HEADER..).unwrap_or_default()),
        record.get(..CRC_OFFSET).unwrap_or_default(),
    );
    if stored != computed {
        return Err(DecodeError::Crc {
            at: lsn,
            stored,
            computed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
