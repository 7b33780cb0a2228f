//! Record assembly against the PostgreSQL 15 fixtures (a header split over two pages, a record
//! over three pages, one over two segments), damaged records, bad start positions, and
//! arbitrary bytes.

#![allow(clippy::indexing_slicing)] // tests index their own buffers

use proptest::prelude::*;

use super::*;
use crate::instance::wal::decode::decode_body;
use crate::instance::wal::fixtures::{
    fixture_pages, invalid, listed_lsn, patch, pg, pg_wal, read, read_byte, MIB,
};
use crate::instance::wal::{read_record, WalError};

#[test]
fn fixtures_cover_the_hard_layouts() {
    let dir = pg_wal();
    let page = |name: &str| listed_lsn(name).0 % 8192;
    // The header split: 16 of its 24 bytes on the first page.
    assert_eq!(page("message-header-split"), 8192 - 16);
    let pages = read(dir.path(), 1, listed_lsn("message-pages")).unwrap();
    assert!(
        pages.end.0 / 8192 - pages.lsn.0 / 8192 >= 2,
        "three pages or more"
    );
    let segment = read(dir.path(), 1, listed_lsn("message-segment")).unwrap();
    assert_ne!(
        segment.lsn.0 / u64::from(MIB),
        segment.end.0 / u64::from(MIB)
    );
    // It ends on the next segment's first page, after its 40-byte long header.
    assert_eq!(segment.end, listed_lsn("checkpoint-shutdown"));
}

#[test]
fn decode_record_reads_bytes_in_memory() {
    let pages = fixture_pages();
    let run = |segment: &str, offsets: &[u64]| -> Vec<u8> {
        offsets
            .iter()
            .flat_map(|o| pages[&(segment.to_owned(), *o)].clone())
            .collect()
    };
    let dir = pg_wal();
    let lsn = listed_lsn("message-pages");
    let wal = run("000000010000000000000008", &[0x34000, 0x36000, 0x38000]);
    let record = decode_record(&wal, Lsn(0x83_4000), lsn, 1, MIB).unwrap();
    assert_eq!(record, read(dir.path(), 1, lsn).unwrap());
    assert_eq!(
        decode_record(&wal[..2 * 8192], Lsn(0x83_4000), lsn, 1, MIB),
        Err(DecodeError::Truncated { at: Lsn(0x83_8000) })
    );
    // Across segments: the last page of one, the first of the next.
    let lsn = listed_lsn("message-segment");
    let mut wal = run("000000010000000000000008", &[0xFE000]);
    wal.extend(run("000000010000000000000009", &[0]));
    let record = decode_record(&wal, Lsn(0x8F_E000), lsn, 1, MIB).unwrap();
    assert_eq!(record, read(dir.path(), 1, lsn).unwrap());
    // The long header of the next segment is checked when present.
    wal[8192 + 32..8192 + 36].copy_from_slice(&(2 * MIB).to_le_bytes());
    assert!(matches!(
        decode_record(&wal, Lsn(0x8F_E000), lsn, 1, MIB),
        Err(DecodeError::SegmentSize { found, expected: MIB, .. }) if found == 2 * MIB
    ));
}

#[test]
fn flipped_byte_is_a_crc_error_naming_file_and_offset() {
    let dir = pg_wal();
    let lsn = listed_lsn("checkpoint-shutdown");
    let segment = "000000010000000000000009";
    let at = lsn.0 % u64::from(MIB) + 40; // inside the CheckPoint
    patch(
        dir.path(),
        segment,
        at,
        &[read_byte(dir.path(), segment, at) ^ 0x01],
    );
    let (file, offset, error) = invalid(read(dir.path(), 1, lsn));
    assert_eq!((file.as_str(), offset), (segment, 0x1858));
    assert!(
        matches!(error, DecodeError::Crc { at, .. } if at == lsn),
        "{error}"
    );
    let message = WalError::Invalid {
        file: dir.path().join(segment),
        offset,
        source: error,
    }
    .to_string();
    assert!(
        message.contains("000000010000000000000009 offset 0x1858: xl_crc"),
        "{message}"
    );
}

#[test]
fn flipped_byte_in_a_continuation_is_a_crc_error() {
    let dir = pg_wal();
    let lsn = listed_lsn("message-segment");
    // The record's last bytes, on the next segment's first page.
    patch(dir.path(), "000000010000000000000009", 100, b"x");
    let (_, _, error) = invalid(read(dir.path(), 1, lsn));
    assert!(matches!(error, DecodeError::Crc { .. }), "{error}");
}

#[test]
fn split_record_header_is_checked_once_assembled() {
    let dir = pg_wal();
    let lsn = listed_lsn("message-header-split");
    assert_eq!(read(dir.path(), 1, lsn).unwrap().rmid, 21);
    // xl_rmid is byte 17 of the header: on the next page, after its 24-byte header.
    let rmid_at = 0x34000 + 24 + (17 - 16);
    patch(dir.path(), "000000010000000000000008", rmid_at, &[99]);
    let (_, _, error) = invalid(read(dir.path(), 1, lsn));
    assert_eq!(
        error,
        DecodeError::ResourceManager {
            at: lsn,
            found: 99,
            major: 15
        }
    );
}

#[test]
fn bad_start_positions() {
    let dir = pg_wal();
    let at = |lsn: u64| invalid(read(dir.path(), 1, Lsn(lsn))).2;
    assert_eq!(at(0x90_1859), DecodeError::Unaligned { at: Lsn(0x90_1859) });
    assert_eq!(
        at(0x90_0010),
        DecodeError::InPageHeader {
            at: Lsn(0x90_0010),
            header_len: 40
        }
    );
    assert_eq!(
        at(0x83_6000),
        DecodeError::InPageHeader {
            at: Lsn(0x83_6000),
            header_len: 24
        }
    );
    // The first bytes of segment 9 continue the record started in segment 8.
    assert!(matches!(at(0x90_0028), DecodeError::InContinuation { .. }));
    assert!(matches!(at(0x83_6018), DecodeError::InContinuation { .. }));
    assert!(matches!(
        read_record(dir.path(), 1, Lsn(0x90_1858), 12345),
        Err(WalError::SegmentSize(12345))
    ));
    // Told 16 MiB segments, the reader looks for another file name.
    assert!(matches!(
        read_record(dir.path(), 1, Lsn(0x90_1858), 16 * MIB),
        Err(WalError::Missing { .. })
    ));
}

#[test]
fn custom_resource_managers_from_15() {
    let mut record = vec![0; RECORD_HEADER];
    record[17] = 130;
    assert!(check_header(&record, Lsn(0x100), pg(15)).is_ok());
    assert!(check_header(&record, Lsn(0x100), pg(14)).is_err());
    record[17] = 22;
    assert!(check_header(&record, Lsn(0x100), pg(17)).is_err());
    record[17] = 0;
    record[8..16].copy_from_slice(&0x100u64.to_le_bytes());
    assert_eq!(
        check_header(&record, Lsn(0x100), pg(15)),
        Err(DecodeError::PrevLink {
            at: Lsn(0x100),
            found: Lsn(0x100)
        })
    );
}

/// Where a record of `total_len` bytes starting at `start` ends in a run of pages with
/// short (24-byte) headers: its last byte's offset plus one.
fn record_bytes_end(start: usize, total_len: u32) -> usize {
    let (mut at, mut left) = (start, total_len as usize);
    while left > 0 {
        if at % 8192 == 0 {
            at += 24;
        }
        let take = left.min(8192 - at % 8192);
        at += take;
        left -= take;
    }
    at
}

#[test]
fn padding_after_a_record_is_not_part_of_it() {
    assert_eq!(record_bytes_end(0x108, 10), 0x112);
    assert_eq!(record_bytes_end(8192 - 8, 10), 8192 + 24 + 2);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        wal in proptest::collection::vec(any::<u8>(), 0..20_000),
        start in any::<u64>(),
        lsn in any::<u64>(),
        timeline in any::<u32>(),
        segment_size in any::<u32>(),
    ) {
        let _ = decode_record(&wal, Lsn(start), Lsn(lsn), timeline, segment_size);
        let _ = decode_record(&wal, Lsn(0), Lsn(lsn % 20_000), timeline, MIB);
        let _ = decode_body(&wal, pg(15));
    }

    /// Real pages with one byte changed: never a panic, and a change inside the record
    /// (not in a page header) is always caught.
    #[test]
    fn damaged_real_record_never_panics(at in 0usize..3 * 8192, byte in any::<u8>()) {
        let pages = fixture_pages();
        let mut wal: Vec<u8> = [0x34000u64, 0x36000, 0x38000]
            .iter()
            .flat_map(|o| pages[&("000000010000000000000008".to_owned(), *o)].clone())
            .collect();
        let lsn = Lsn(0x83_4108);
        let good = decode_record(&wal, Lsn(0x83_4000), lsn, 1, MIB).unwrap();
        let changed = wal[at] != byte;
        wal[at] = byte;
        let result = decode_record(&wal, Lsn(0x83_4000), lsn, 1, MIB);
        // `end` is MAXALIGNed: the padding after the last byte is outside the CRC.
        let last_byte = record_bytes_end(0x108, good.total_len);
        let in_record = at >= 0x108 && at % 8192 >= 24 && at < last_byte;
        if changed && in_record {
            prop_assert!(result.is_err());
        }
    }
}
