//! WAL records, read natively: `pg_wal/` segment files in, one [`WalRecord`] out.
//!
//! This module owns reading records out of the segment files, with every check PostgreSQL's
//! own reader (`xlogreader.c`) makes on the way: page headers, records continued over pages
//! and segments, the record header, the CRC-32C, and the layout of the record body. It reads,
//! never writes, and does not walk timeline history files: the caller names the timeline
//! whose files hold the WAL. What a record means for a switchover is the caller's business;
//! [`WalRecord::checkpoint`] only decodes a checkpoint record's main data.
//!
//! The parts, in the order the WAL is built; each imports only parts listed before it:
//! - `format`: what the other parts share and every major has alike (page and record header
//!   sizes, alignment, the resource manager ids pgha looks at) and bounds-checked reads;
//! - `major`: what differs between majors, one row per major: the place to add one;
//! - `error`: why bytes are not a record ([`DecodeError`], [`BodyProblem`]) and why the
//!   files give none ([`WalError`]);
//! - `page`: segment file names, positions past a page header, page header checks;
//! - `decode`: what a record's bytes say: header fields, block references, main data, and a
//!   checkpoint record's `CheckPoint`;
//! - `record`: one record assembled across pages and segments, its header and CRC checked,
//!   from any source of pages ([`decode_record`]: bytes in memory);
//! - `reader`: the segment files as that source ([`read_record`]), read once and cached;
//! - `scan`: records found rather than given: [`end_of_valid_wal`] follows `xl_prev`
//!   forward, [`record_ending_at`] tries the starts before a known end.
//!
//! Where the facts come from: each major's own headers, 13 to 19 (`major` names them), and
//! WAL each major's server wrote (`tests/fixtures/wal/pgN`, decoded in the tests and compared
//! with that major's `pg_waldump` and `pg_controldata`). The structures read here are the
//! same in 13–19 on 64-bit little-endian builds; the majors differ in the page magic, the
//! resource manager ids allowed, the `XLR_BLOCK_ID_TOPLEVEL_XID` header (14+), the bits of a
//! full-page image's `bimg_info` (15 changed them), the `xlp_info` flags (19 dropped
//! `XLP_BKP_REMOVABLE` and moved the overwrite flag) and the size of a checkpoint record's
//! `CheckPoint` (19); the page magic tells which major wrote a page, and WAL of any other
//! major is refused.
//!
//! Two layers: [`decode_record`] is pure (WAL bytes in memory, no I/O), and [`read_record`]
//! puts the segment files under it, so that every error names the file and the offset.
//!
//! Sizes are fixed at the defaults: 8 kB WAL pages (`XLOG_BLCKSZ`, checked against every
//! segment's long page header) and 8 kB data blocks (`BLCKSZ`, used only to check full-page
//! image headers). A build with other sizes is refused with an error, never misread.

// Every read is bounds-checked through `get`: corrupt lengths are errors, not panics. The
// lint covers every part below.
#![deny(clippy::indexing_slicing)]

mod decode;
mod error;
mod format;
mod major;
mod page;
mod reader;
mod record;
mod scan;

#[cfg(test)]
mod fixtures;

pub use decode::{BlockRef, CheckpointRecord, WalRecord};
pub use error::{BodyProblem, DecodeError, WalError, WalkError};
pub use format::{RM_XLOG_ID, WAL_PAGE_SIZE, XLOG_CHECKPOINT_ONLINE, XLOG_CHECKPOINT_SHUTDOWN};
pub use page::{parse_segment_name, past_page_header, segment_file_name, segno_file_name};
pub use reader::{read_record, FetchRange, Segments, FETCH_CHUNK};
pub use record::decode_record;
pub use scan::{
    checkpoint_before, end_of_valid_wal, end_of_wal_for_recovery, record_ending_at, records_before,
    records_between, records_to_end_for_recovery,
};
