//! WAL segment files in a `pg_wal` (the postgres account's): `instance::wal::read_record`,
//! `end_of_valid_wal` and `record_ending_at` on the real PostgreSQL 15 pages of timeline 1,
//! segments 0/8 and 0/9 (1 MiB segments), with fuzzed bytes written over them.
#![no_main]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pgha::deadline::Deadline;
use pgha::instance::wal::{end_of_valid_wal, read_record, record_ending_at};
use pgha::lsn::Lsn;

const SEGMENT: u32 = 1 << 20;
/// Where segment 0/8 starts.
const BASE: u64 = 8 << 20;

/// The fixture pages of each segment file, at their offsets.
const PAGES: &[(&str, u64, &[u8])] = &[
    (
        "000000010000000000000008",
        0x00000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00000000.page"),
    ),
    (
        "000000010000000000000008",
        0x30000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00030000.page"),
    ),
    (
        "000000010000000000000008",
        0x32000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00032000.page"),
    ),
    (
        "000000010000000000000008",
        0x34000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00034000.page"),
    ),
    (
        "000000010000000000000008",
        0x36000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00036000.page"),
    ),
    (
        "000000010000000000000008",
        0x38000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-00038000.page"),
    ),
    (
        "000000010000000000000008",
        0xFE000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000008-000FE000.page"),
    ),
    (
        "000000010000000000000009",
        0x00000,
        include_bytes!("../../tests/fixtures/wal/pg15/000000010000000000000009-00000000.page"),
    ),
];

/// The input: positions as offsets from 0/800000 (u32, little-endian: where a record is
/// read, where a scan starts, where a record should end), a window (u16), then patches:
/// an offset (u32), a length (u16), the bytes written there.
struct Input<'a> {
    read_at: u32,
    scan_from: u32,
    ending_at: u32,
    window: u16,
    patches: Vec<(u32, &'a [u8])>,
}

impl Input<'_> {
    fn read(data: &[u8]) -> Option<Input<'_>> {
        let u32_at = |at: usize| Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?));
        let mut input = Input {
            read_at: u32_at(0)?,
            scan_from: u32_at(4)?,
            ending_at: u32_at(8)?,
            window: u16::from_le_bytes(data.get(12..14)?.try_into().ok()?),
            patches: Vec::new(),
        };
        let mut rest = &data[14..];
        while let Some((head, tail)) = rest.split_at_checked(6) {
            let offset = u32::from_le_bytes(head[0..4].try_into().ok()?);
            let len = usize::from(u16::from_le_bytes(head[4..6].try_into().ok()?)).min(tail.len());
            let (bytes, next) = tail.split_at(len);
            input.patches.push((offset, bytes));
            rest = next;
        }
        Some(input)
    }
}

fn pg_wal() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(pgha_fuzz::scratch).path()
}

fn lsn(offset: u32) -> Lsn {
    Lsn(BASE + u64::from(offset) % (2 * u64::from(SEGMENT)))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let dir = pg_wal();
    for name in ["000000010000000000000008", "000000010000000000000009"] {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(dir.join(name))
            .unwrap();
        file.set_len(u64::from(SEGMENT)).unwrap();
    }
    let write = |name: &str, offset: u64, bytes: &[u8]| {
        let file = OpenOptions::new().write(true).open(dir.join(name)).unwrap();
        let room = u64::from(SEGMENT).saturating_sub(offset) as usize;
        file.write_all_at(&bytes[..bytes.len().min(room)], offset)
            .unwrap();
    };
    for (name, offset, bytes) in PAGES {
        write(name, *offset, bytes);
    }
    for (at, bytes) in input.patches.iter().take(8) {
        let at = lsn(*at).0 - BASE;
        let (segment, offset) = (at / u64::from(SEGMENT), at % u64::from(SEGMENT));
        write(PAGES[if segment == 0 { 0 } else { 7 }].0, offset, bytes);
    }

    let at = lsn(input.read_at);
    if let Ok(record) = read_record(dir, 1, at, SEGMENT) {
        assert_eq!(record.lsn, at);
        assert!(record.end > at);
    }
    let from = lsn(input.scan_from);
    let deadline = Deadline::after(Duration::from_millis(200));
    if let Some(end) = end_of_valid_wal(dir, 1, from, SEGMENT, &deadline) {
        assert!(end > from, "{end} after {from}");
    }
    let end = lsn(input.ending_at);
    if let Some(record) = record_ending_at(dir, 1, end, SEGMENT, u64::from(input.window % 4096)) {
        assert_eq!(record.end, end);
    }
});
