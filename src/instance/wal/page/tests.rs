//! Page headers and segment names against the PostgreSQL 15 fixtures: every header field
//! damaged in turn is refused, naming the field, its file and offset.

#![allow(clippy::indexing_slicing)] // tests index their own buffers

use super::*;
use crate::instance::wal::fixtures::{
    controldata, invalid, listed_lsn, listed_lsn_of, patch, pg_wal, pg_wal_of, read, FIXTURES, MIB,
};

/// Timeline 2's first segment is a copy of timeline 1's up to the switch, and the page
/// holding the switch point keeps its timeline 1 header while holding timeline 2's first
/// record: a page may be of an earlier timeline than the file.
#[test]
fn timeline_switch_page_keeps_the_parent_timeline() {
    let dir = pg_wal();
    let first_page =
        std::fs::read(format!("{FIXTURES}/000000020000000000000009-00000000.page")).unwrap();
    assert_eq!(
        first_page[4..8],
        1u32.to_le_bytes(),
        "xlp_tli 1 in timeline 2's file"
    );
    let old = read(dir.path(), 2, listed_lsn("shutdown-read-on-tl2")).unwrap();
    assert_eq!(old.checkpoint().unwrap().timeline, 1);
    let end_of_recovery = read(dir.path(), 2, listed_lsn("first-on-tl2")).unwrap();
    assert_eq!(
        (end_of_recovery.rmid, end_of_recovery.info & 0xF0),
        (0, 0x90)
    );
    let location: Lsn = controldata("promoted-stopped", "Latest checkpoint location")
        .parse()
        .unwrap();
    let checkpoint = read(dir.path(), 2, location).unwrap().checkpoint().unwrap();
    assert!(checkpoint.shutdown);
    assert_eq!((checkpoint.timeline, checkpoint.prev_timeline), (2, 2));
    // Timeline 1's file of that segment says the same about the old record...
    assert_eq!(read(dir.path(), 1, old.lsn).unwrap(), old);
    // ...and a timeline 2 page is refused in a timeline 1 read.
    patch(
        dir.path(),
        "000000010000000000000009",
        4,
        &2u32.to_le_bytes(),
    );
    let (file, offset, error) = invalid(read(dir.path(), 1, old.lsn));
    assert_eq!((file.as_str(), offset), ("000000010000000000000009", 4));
    assert_eq!(
        error,
        DecodeError::Timeline {
            at: Lsn(0x90_0004),
            found: 2,
            timeline: 1
        }
    );
}

#[test]
fn page_header_damage() {
    let lsn = listed_lsn("message-pages");
    let segment = "000000010000000000000008";
    let cases: Vec<(&str, u64, Vec<u8>, DecodeError)> = vec![
        (
            "wrong magic (PostgreSQL 11's)",
            0x34000,
            0xD098u16.to_le_bytes().to_vec(),
            DecodeError::Magic {
                at: Lsn(0x83_4000),
                found: 0xD098,
            },
        ),
        (
            "PostgreSQL 16's magic on a later page",
            0x36000,
            0xD113u16.to_le_bytes().to_vec(),
            DecodeError::MagicChanged {
                at: Lsn(0x83_6000),
                found: 0xD113,
                expected: 0xD110,
            },
        ),
        (
            "unknown info bit",
            0x34002,
            0x0015u16.to_le_bytes().to_vec(),
            DecodeError::InfoBits {
                at: Lsn(0x83_4002),
                found: 0x0015,
                known: 0x000F,
                major: 15,
            },
        ),
        (
            "long header in mid-segment",
            0x34002,
            0x0007u16.to_le_bytes().to_vec(),
            DecodeError::LongHeader {
                at: Lsn(0x83_4002),
                found: 0x0007,
            },
        ),
        (
            "wrong pageaddr",
            0x36008,
            0x84_6000u64.to_le_bytes().to_vec(),
            DecodeError::PageAddress {
                at: Lsn(0x83_6008),
                found: Lsn(0x84_6000),
                expected: Lsn(0x83_6000),
            },
        ),
        (
            "continuation without XLP_FIRST_IS_CONTRECORD",
            0x36002,
            0x0004u16.to_le_bytes().to_vec(),
            DecodeError::NoContrecord {
                at: Lsn(0x83_6002),
                found: 0x0004,
                record: lsn,
            },
        ),
        (
            "overwritten contrecord",
            0x36002,
            0x000Cu16.to_le_bytes().to_vec(),
            DecodeError::Overwritten {
                at: Lsn(0x83_6002),
                record: lsn,
            },
        ),
        (
            "wrong xlp_rem_len",
            0x38010,
            100u32.to_le_bytes().to_vec(),
            DecodeError::ContrecordLength {
                at: Lsn(0x83_8010),
                found: 100,
                expected: 3963,
                record: lsn,
            },
        ),
        (
            "timeline 0",
            0x36004,
            0u32.to_le_bytes().to_vec(),
            DecodeError::Timeline {
                at: Lsn(0x83_6004),
                found: 0,
                timeline: 1,
            },
        ),
        (
            "the segment's long header: 16 kB pages",
            36,
            16384u32.to_le_bytes().to_vec(),
            DecodeError::PageSize {
                at: Lsn(0x80_0024),
                found: 16384,
            },
        ),
        (
            "the segment's first page without its long header",
            2,
            0x0005u16.to_le_bytes().to_vec(),
            DecodeError::LongHeader {
                at: Lsn(0x80_0002),
                found: 0x0005,
            },
        ),
    ];
    for (what, offset, bytes, expected) in cases {
        let dir = pg_wal();
        patch(dir.path(), segment, offset, &bytes);
        let (file, file_offset, error) = invalid(read(dir.path(), 1, lsn));
        assert_eq!(file, segment, "{what}");
        assert_eq!(file_offset, error.at().0 % u64::from(MIB), "{what}");
        assert_eq!(error, expected, "{what}");
        assert!(!error.is_unwritten(), "{what}");
    }
}

/// 19 dropped `XLP_BKP_REMOVABLE` (0x0004) and moved `XLP_FIRST_IS_OVERWRITE_CONTRECORD`
/// from 0x0008 to 0x0004: on the second page of a record, 0x0005 says "overwritten" in 19
/// and "continued" (with a flag nobody reads) in 18, and 0x0009 is an unknown bit in 19.
#[test]
fn pg19_moved_the_overwrite_flag() {
    let on_second_page = |major: u32, info: u16| {
        let lsn = listed_lsn_of(major, "message-pages");
        let second = (lsn.0 / 8192 + 1) * 8192;
        let dir = pg_wal_of(major);
        let segment = segment_file_name(1, Lsn(second), MIB);
        patch(
            dir.path(),
            &segment,
            second % u64::from(MIB) + 2,
            &info.to_le_bytes(),
        );
        (Lsn(second + 2), lsn, read(dir.path(), 1, lsn))
    };
    let (at, record, result) = on_second_page(19, 0x0005);
    assert_eq!(invalid(result).2, DecodeError::Overwritten { at, record });
    let (at, _, result) = on_second_page(19, 0x0009);
    assert_eq!(
        invalid(result).2,
        DecodeError::InfoBits {
            at,
            found: 0x0009,
            known: 0x0007,
            major: 19
        }
    );
    let (_, record, result) = on_second_page(18, 0x0005);
    assert_eq!(
        result.unwrap().lsn,
        record,
        "0x0004 is XLP_BKP_REMOVABLE in 18"
    );
    let (at, record, result) = on_second_page(18, 0x0009);
    assert_eq!(invalid(result).2, DecodeError::Overwritten { at, record });
}

#[test]
fn system_identifier_must_agree_between_segments() {
    let dir = pg_wal();
    patch(
        dir.path(),
        "000000010000000000000009",
        24,
        &7u64.to_le_bytes(),
    );
    let (file, offset, error) = invalid(read(dir.path(), 1, listed_lsn("message-segment")));
    assert_eq!((file.as_str(), offset), ("000000010000000000000009", 24));
    assert!(
        matches!(error, DecodeError::SystemIdentifier { found: 7, .. }),
        "{error}"
    );
}

#[test]
fn segment_file_names() {
    let name = |tli, lsn: &str, size| segment_file_name(tli, lsn.parse().unwrap(), size);
    assert_eq!(name(1, "0/3000060", 16 * MIB), "000000010000000000000003");
    assert_eq!(name(1, "0/0", 16 * MIB), "000000010000000000000000");
    assert_eq!(name(2, "0/FFFFFFFF", 16 * MIB), "0000000200000000000000FF");
    assert_eq!(name(2, "1/0", 16 * MIB), "000000020000000100000000");
    assert_eq!(
        name(0x1A, "16/B374D848", 16 * MIB),
        "0000001A00000016000000B3"
    );
    assert_eq!(name(1, "0/901858", MIB), "000000010000000000000009");
    assert_eq!(name(1, "0/FFF00000", MIB), "000000010000000000000FFF");
    assert_eq!(name(1, "3/12345678", MIB), "000000010000000300000123");
    assert_eq!(name(1, "3/C0000000", 1 << 30), "000000010000000300000003");
    assert_eq!(
        name(1, "1/0", 0),
        "000000010000000100000000",
        "no division by zero"
    );
}
