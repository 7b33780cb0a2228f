//! WAL bytes in memory (`pg_wal` is the postgres account's): `instance::wal::decode_record`
//! on arbitrary pages, at an arbitrary position, timeline and segment size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::instance::wal::{decode_record, WAL_PAGE_SIZE};
use pgha::lsn::Lsn;

/// The input: a header, little-endian, then the WAL bytes.
struct Input<'a> {
    /// The first page's position (made a multiple of the page size).
    start: u64,
    /// The record's offset from `start`.
    offset: u16,
    timeline: u32,
    /// 0: 16 MiB, 1: 1 MiB, else the value as given.
    segment_size: u32,
    wal: &'a [u8],
}

impl Input<'_> {
    fn read(data: &[u8]) -> Option<Input<'_>> {
        let (head, wal) = data.split_at_checked(18)?;
        Some(Input {
            start: u64::from_le_bytes(head[0..8].try_into().ok()?),
            offset: u16::from_le_bytes(head[8..10].try_into().ok()?),
            timeline: u32::from_le_bytes(head[10..14].try_into().ok()?),
            segment_size: u32::from_le_bytes(head[14..18].try_into().ok()?),
            wal,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let start = input.start - input.start % u64::from(WAL_PAGE_SIZE);
    let lsn = Lsn(start.saturating_add(u64::from(input.offset)));
    let segment_size = match input.segment_size {
        0 => 16 << 20,
        1 => 1 << 20,
        n => n,
    };
    match decode_record(input.wal, Lsn(start), lsn, input.timeline, segment_size) {
        Ok(record) => {
            assert_eq!(record.lsn, lsn);
            assert!(record.end > record.lsn, "{record:?}");
            assert!(record.end.0 % 8 == 0);
            assert!(record.total_len as usize >= 24);
            assert!(record.main_data.len() < record.total_len as usize);
            let _ = record.checkpoint();
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = (e.at(), e.is_unwritten());
        }
    }
});
