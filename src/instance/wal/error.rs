//! The WAL reader's errors: why bytes are not the record asked for ([`DecodeError`], with
//! [`BodyProblem`] for a body whose headers do not describe it), and why the segment files
//! give no record ([`WalError`], which names the file and the offset). They carry the LSN of
//! the byte at fault and PostgreSQL's field names, so an operator can look with `pg_waldump`.

use std::io;
use std::path::{Path, PathBuf};

use crate::lsn::{Lsn, TimelineId};

use super::format::{MAX_RECORD_LEN, RECORD_HEADER, WAL_PAGE_SIZE};

/// Why WAL bytes are not the record asked for. Each variant holds the LSN of the byte at
/// fault (`at`, a page header field or the record's start), from which
/// [`read_record`](super::read_record) names the file and the offset. Field names are
/// PostgreSQL's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{at} is not a multiple of 8: no record starts there")]
    Unaligned { at: Lsn },
    #[error("{at} is inside the {header_len}-byte header of its WAL page: no record starts there")]
    InPageHeader { at: Lsn, header_len: u64 },
    /// The page says its first `rem_len` bytes (and maybe the whole page) continue a record
    /// from an earlier page (`contrecord is requested by …`).
    #[error(
        "{at} is inside a record continued from an earlier page (xlp_rem_len {rem_len} at the \
         start of this page): no record starts there"
    )]
    InContinuation { at: Lsn, rem_len: u32 },
    /// Zeros where a page header or a record should be: WAL not written (or not received)
    /// up to here. PostgreSQL's reader reports this as the end of the WAL.
    #[error("{at}: zeros, where a WAL {what} should be: no WAL was written here")]
    Unwritten { at: Lsn, what: &'static str },
    /// The WAL bytes given to [`decode_record`](super::decode_record) end before the record
    /// does.
    #[error("the WAL given ends before the page at {at}, which the record needs")]
    Truncated { at: Lsn },
    #[error(
        "xlp_magic at {at} is {found:#06X}, not the WAL page magic of PostgreSQL 13–19: \
         WAL of a major pgha does not read, or not WAL"
    )]
    Magic { at: Lsn, found: u16 },
    /// One record's pages from two majors.
    #[error(
        "xlp_magic at {at} is {found:#06X}, where the record's first page has {expected:#06X}"
    )]
    MagicChanged { at: Lsn, found: u16, expected: u16 },
    #[error(
        "xlp_info at {at} is {found:#06X}: unknown bits (PostgreSQL {major} knows {known:#06X})"
    )]
    InfoBits {
        at: Lsn,
        found: u16,
        known: u16,
        major: u32,
    },
    /// A segment's first page must have a long header, and (stricter than PostgreSQL's
    /// reader, but PostgreSQL writes no other) no other page may.
    #[error(
        "xlp_info at {at} is {found:#06X}: XLP_LONG_HEADER must be set exactly on the first \
         page of a segment"
    )]
    LongHeader { at: Lsn, found: u16 },
    #[error("xlp_seg_size at {at} is {found}, expected {expected} (pg_control's xlog_seg_size)")]
    SegmentSize { at: Lsn, found: u32, expected: u32 },
    #[error(
        "xlp_xlog_blcksz at {at} is {found}: pgha reads only WAL of {WAL_PAGE_SIZE}-byte pages"
    )]
    PageSize { at: Lsn, found: u32 },
    #[error(
        "xlp_sysid at {at} is {found}, where an earlier segment of the record has {expected}: \
         WAL from another database system"
    )]
    SystemIdentifier { at: Lsn, found: u64, expected: u64 },
    /// The page is not the one this place in the WAL should hold. Found below expected: a
    /// recycled segment file not yet overwritten, that is, WAL not written up to here.
    #[error("xlp_pageaddr at {at} is {found}, expected {expected}")]
    PageAddress { at: Lsn, found: Lsn, expected: Lsn },
    /// The file of timeline `timeline` holds pages of that timeline and of earlier ones
    /// (copied from the parent timeline at the switch), never of a later one.
    #[error("xlp_tli at {at} is {found}, but the segment file is timeline {timeline}'s")]
    Timeline {
        at: Lsn,
        found: TimelineId,
        timeline: TimelineId,
    },
    #[error("xlp_tli at {at} is {found}, after {previous} on an earlier page of the record")]
    TimelineBackwards {
        at: Lsn,
        found: TimelineId,
        previous: TimelineId,
    },
    /// A record continues onto a page that does not say it continues one.
    #[error("xlp_info at {at} is {found:#06X}: no XLP_FIRST_IS_CONTRECORD, but the record at {record} continues on this page")]
    NoContrecord { at: Lsn, found: u16, record: Lsn },
    /// The record was cut short by a crash, and the WAL continues after it (the server marks
    /// the next page `XLP_FIRST_IS_OVERWRITE_CONTRECORD`): the record does not exist.
    #[error(
        "the record at {record} was never completed: the page at {at} is marked \
         XLP_FIRST_IS_OVERWRITE_CONTRECORD"
    )]
    Overwritten { at: Lsn, record: Lsn },
    #[error(
        "xlp_rem_len at {at} is {found}, expected {expected} (what is left of the record at \
         {record})"
    )]
    ContrecordLength {
        at: Lsn,
        found: u32,
        expected: u32,
        record: Lsn,
    },
    #[error(
        "xl_tot_len of the record at {at} is {found}: expected {RECORD_HEADER} to {MAX_RECORD_LEN}"
    )]
    RecordLength { at: Lsn, found: u32 },
    #[error(
        "xl_rmid of the record at {at} is {found}: not a resource manager of PostgreSQL {major}"
    )]
    ResourceManager { at: Lsn, found: u8, major: u32 },
    /// At a random start, the previous record must start before this one.
    #[error("xl_prev of the record at {at} is {found}, not before the record")]
    PrevLink { at: Lsn, found: Lsn },
    #[error(
        "xl_crc of the record at {at} is {stored:#010x}, computed {computed:#010x}: the record \
         is corrupt"
    )]
    Crc { at: Lsn, stored: u32, computed: u32 },
    /// The CRC is right but the body's headers do not describe its bytes.
    #[error("the body of the record at {at}, byte {offset} of the record: {problem}")]
    Body {
        at: Lsn,
        offset: usize,
        problem: BodyProblem,
    },
}

impl DecodeError {
    /// The LSN of the byte at fault.
    pub fn at(&self) -> Lsn {
        match self {
            DecodeError::Unaligned { at }
            | DecodeError::InPageHeader { at, .. }
            | DecodeError::InContinuation { at, .. }
            | DecodeError::Unwritten { at, .. }
            | DecodeError::Truncated { at }
            | DecodeError::Magic { at, .. }
            | DecodeError::MagicChanged { at, .. }
            | DecodeError::InfoBits { at, .. }
            | DecodeError::LongHeader { at, .. }
            | DecodeError::SegmentSize { at, .. }
            | DecodeError::PageSize { at, .. }
            | DecodeError::SystemIdentifier { at, .. }
            | DecodeError::PageAddress { at, .. }
            | DecodeError::Timeline { at, .. }
            | DecodeError::TimelineBackwards { at, .. }
            | DecodeError::NoContrecord { at, .. }
            | DecodeError::Overwritten { at, .. }
            | DecodeError::ContrecordLength { at, .. }
            | DecodeError::RecordLength { at, .. }
            | DecodeError::ResourceManager { at, .. }
            | DecodeError::PrevLink { at, .. }
            | DecodeError::Crc { at, .. }
            | DecodeError::Body { at, .. } => *at,
        }
    }

    /// The bytes show WAL that was never written here (zeros, or a recycled segment's old
    /// pages) rather than damaged WAL: on a standby, not received yet.
    pub fn is_unwritten(&self) -> bool {
        match self {
            DecodeError::Unwritten { .. } => true,
            DecodeError::PageAddress {
                found, expected, ..
            } => found < expected,
            _ => false,
        }
    }
}

/// What is wrong in a record body (`DecodeXLogRecord`'s checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyProblem {
    #[error("the headers run past the end of the record")]
    Short,
    #[error("invalid block id {0}")]
    InvalidBlockId(u8),
    #[error("block id {id} after block id {previous}: ids must increase")]
    OutOfOrderBlockId { id: u8, previous: u8 },
    #[error("fork number {0} (fork_flags low nibble) is not one of 0–3")]
    Fork(u8),
    #[error("BKPBLOCK_HAS_DATA is {has_data} but data_length is {len}")]
    DataFlag { has_data: bool, len: u16 },
    #[error(
        "inconsistent full-page image header: length {len}, hole_offset {hole_offset}, \
         hole_length {hole_length}, bimg_info {info:#04x}"
    )]
    Image {
        len: u16,
        hole_offset: u16,
        hole_length: u16,
        info: u8,
    },
    #[error("BKPBLOCK_SAME_REL on the first block reference")]
    SameRelFirst,
    #[error("the headers announce {announced} bytes of payload, {present} follow them")]
    Length { announced: u64, present: usize },
}

/// Why [`read_record`](super::read_record) has no record to give. Every variant names the
/// segment file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(
        "WAL segment size {0} is not a power of two from 1 MiB to 1 GiB (pg_control's \
         xlog_seg_size)"
    )]
    SegmentSize(u32),
    /// The segment file does not exist: on a standby, not received (or already removed).
    #[error("{} does not exist: no WAL segment there for {lsn}", file.display())]
    Missing { file: PathBuf, lsn: Lsn },
    #[error("could not read {}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    /// Segment files are created at their full size; a shorter one is a damaged copy.
    #[error("{} is {len} bytes, but WAL segments are {expected}", file.display())]
    Short {
        file: PathBuf,
        len: u64,
        expected: u64,
    },
    #[error("{} offset {offset:#X}: {source}", file.display())]
    Invalid {
        file: PathBuf,
        offset: u64,
        source: DecodeError,
    },
}

impl WalError {
    /// The WAL at the place asked for was not written (received, on a standby) yet, as
    /// opposed to present but corrupt or unreadable: the segment file is missing, or holds
    /// zeros or a recycled segment's old pages there.
    pub fn is_not_received(&self) -> bool {
        match self {
            WalError::Missing { .. } => true,
            WalError::Invalid { source, .. } => source.is_unwritten(),
            WalError::SegmentSize(_) | WalError::Io { .. } | WalError::Short { .. } => false,
        }
    }

    /// The record that did not read because its own bytes are wrong (a bad length, CRC or
    /// back link), where a crash's torn last record would be.
    pub fn failed_record(&self) -> Option<Lsn> {
        match self {
            WalError::Invalid {
                source:
                    source @ (DecodeError::Crc { .. }
                    | DecodeError::RecordLength { .. }
                    | DecodeError::PrevLink { .. }),
                ..
            } => Some(source.at()),
            _ => None,
        }
    }

    /// The segment file the error is about.
    pub fn file(&self) -> Option<&Path> {
        match self {
            WalError::SegmentSize(_) => None,
            WalError::Missing { file, .. }
            | WalError::Io { file, .. }
            | WalError::Short { file, .. }
            | WalError::Invalid { file, .. } => Some(file),
        }
    }
}

/// An error from reading: one from the page source (I/O), or one about the bytes.
pub(super) enum Failure<E> {
    Source(E),
    Invalid(DecodeError),
}

impl<E> From<DecodeError> for Failure<E> {
    fn from(e: DecodeError) -> Self {
        Failure::Invalid(e)
    }
}

/// Why a walk over consecutive records ([`records_between`](super::records_between),
/// [`checkpoint_before`](super::checkpoint_before)) stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Read(#[from] WalError),
    /// The record read after the one at `prev` does not point back at it.
    #[error("the record at {at} does not point back at the one before it, at {prev}")]
    Chain { at: Lsn, prev: Lsn },
    /// pg_rewind's "end pointer is not a valid end point": the end given is inside a record.
    #[error("the record at {at} ends at {end}, past {to}: no record ends at {to}")]
    PastEnd { at: Lsn, end: Lsn, to: Lsn },
    #[error("no checkpoint record before {before}: the walk back reached the start of the WAL")]
    NoCheckpoint { before: Lsn },
    #[error("the time limit passed while reading the WAL at {at}")]
    Expired { at: Lsn },
}
