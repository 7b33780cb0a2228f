//! What the fuzz targets share: lookups built from `NAME=value` lines (the OCF environment), parts of a text input, a
//! scratch directory on tmpfs for the parsers that read files, and real PostgreSQL 15 WAL
//! pages with a way to frame a fuzzed record in them so that it passes the page and CRC
//! checks and reaches the record body decoder.
//!
//! The facts of the WAL layout used here (header sizes, flag bits, page magics, where the
//! CRC sits) are PostgreSQL's (`xlog_internal.h`, `xlogrecord.h`), written out again on
//! purpose: a fuzz target that took them from pgha could not catch pgha getting them wrong.

use std::path::PathBuf;

/// An environment written one `NAME=value` a line (lines without `=` are skipped), as a
/// lookup: the last value of a name wins, as in a shell.
pub fn env_lookup(text: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .rfind(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }
}

/// The `\0`-separated parts of a text input, `N` of them (missing ones empty).
pub fn parts<const N: usize>(text: &str) -> [&str; N] {
    let mut split = text.splitn(N, '\0');
    std::array::from_fn(|_| split.next().unwrap_or(""))
}

/// A scratch directory for one fuzz process, on tmpfs where there is one: the targets that
/// read files write one per input, and fsync on a disk would make them crawl.
pub fn scratch() -> tempfile::TempDir {
    let base = PathBuf::from("/dev/shm");
    if base.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(&base) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// The WAL page size (`XLOG_BLCKSZ`) of default builds.
pub const PAGE: usize = 8192;
/// `SizeOfXLogShortPHD`: the header of a page that does not start a segment.
pub const SHORT_HEADER: usize = 24;
/// `SizeOfXLogRecord`.
pub const RECORD_HEADER: usize = 24;
/// `XLP_FIRST_IS_CONTRECORD`.
const FIRST_IS_CONTRECORD: u16 = 0x0001;
/// PostgreSQL 19's page magic, and its `XLP_FIRST_IS_OVERWRITE_CONTRECORD` (0x0008 before).
const PG19_MAGIC: u16 = 0xD122;
const PG19_OVERWRITE_CONTRECORD: u16 = 0x0004;
/// The page magic (`XLOG_PAGE_MAGIC`) of PostgreSQL 12 to 19: pgha reads some of them
/// (12–17 on this branch, 13–19 on main once the majors are merged) and must refuse the
/// others with an error.
pub const MAGICS: [u16; 8] = [
    0xD101, 0xD106, 0xD10D, 0xD110, 0xD113, 0xD116, 0xD118, 0xD122,
];

/// Where [`FIXTURE_RUN`] starts: five consecutive pages of segment 0/8 on timeline 1,
/// written by PostgreSQL 15 (`tests/fixtures/wal/pg15`).
pub const RUN_START: u64 = 0x0083_0000;

/// Five consecutive real pages, from [`RUN_START`]; none starts a segment.
pub fn fixture_run() -> Vec<u8> {
    [
        &include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00030000.page")[..],
        &include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00032000.page")[..],
        &include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00034000.page")[..],
        &include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00036000.page")[..],
        &include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00038000.page")[..],
    ]
    .concat()
}

/// A record to frame: its header fields and body, and where it starts. Read from an input
/// of 17 bytes (these fields but the body, little-endian), then the body.
#[derive(Debug)]
pub struct FramedRecord {
    /// Offset of the record's start in the first page (made MAXALIGNed, past the header).
    pub offset: u16,
    /// Which major's page magic every page carries.
    pub major: u8,
    pub xid: u32,
    pub prev: u64,
    pub info: u8,
    pub rmid: u8,
    pub body: Vec<u8>,
}

impl FramedRecord {
    pub fn read(data: &[u8]) -> Option<FramedRecord> {
        let (head, body) = data.split_at_checked(17)?;
        Some(FramedRecord {
            offset: u16::from_le_bytes(head[0..2].try_into().ok()?),
            major: head[2],
            xid: u32::from_le_bytes(head[3..7].try_into().ok()?),
            prev: u64::from_le_bytes(head[7..15].try_into().ok()?),
            info: head[15],
            rmid: head[16],
            body: body.to_vec(),
        })
    }

    /// Where the record starts, in [`fixture_run`]'s pages, and those pages with the record
    /// written in: the first page marked as holding no continued record, each later page's
    /// header saying how much of the record it continues (`xlp_rem_len`), and the CRC-32C
    /// right (the body, then the header up to `xl_crc`). The body is cut to what fits.
    pub fn frame(&self) -> (u64, u32, Vec<u8>) {
        let mut pages = fixture_run();
        let offset = (SHORT_HEADER + usize::from(self.offset) % (PAGE - SHORT_HEADER)) & !7;
        let capacity = PAGE - offset + (pages.len() / PAGE - 1) * (PAGE - SHORT_HEADER);
        let body = &self.body[..self.body.len().min(capacity - RECORD_HEADER)];
        let total = (RECORD_HEADER + body.len()) as u32;
        let mut record = Vec::with_capacity(total as usize);
        record.extend_from_slice(&total.to_le_bytes());
        record.extend_from_slice(&self.xid.to_le_bytes());
        record.extend_from_slice(&self.prev.to_le_bytes());
        record.extend_from_slice(&[self.info, self.rmid, 0, 0]);
        let crc = crc32c::crc32c_append(crc32c::crc32c(body), &record);
        record.extend_from_slice(&crc.to_le_bytes());
        record.extend_from_slice(body);

        let magic = MAGICS[usize::from(self.major) % MAGICS.len()];
        let mut at = offset;
        let mut rest = &record[..];
        for (n, page) in pages.chunks_mut(PAGE).enumerate() {
            page[0..2].copy_from_slice(&magic.to_le_bytes());
            let mut info = u16::from_le_bytes([page[2], page[3]]) & !FIRST_IS_CONTRECORD;
            if magic == PG19_MAGIC {
                // The pages are 15's, whose XLP_BKP_REMOVABLE (0x0004) 19 dropped and gave to
                // XLP_FIRST_IS_OVERWRITE_CONTRECORD: a 19 page must not carry it.
                info &= !PG19_OVERWRITE_CONTRECORD;
            }
            let rem_len = if n == 0 { 0 } else { rest.len() as u32 };
            if n > 0 && !rest.is_empty() {
                info |= FIRST_IS_CONTRECORD;
                at = SHORT_HEADER;
            }
            page[2..4].copy_from_slice(&info.to_le_bytes());
            page[16..20].copy_from_slice(&rem_len.to_le_bytes());
            let take = rest.len().min(PAGE - at);
            page[at..at + take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        (RUN_START + offset as u64, total, pages)
    }
}
