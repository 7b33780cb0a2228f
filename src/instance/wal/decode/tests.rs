//! Record bodies: every record of every major's fixtures (13–19) decoded as that major's
//! `pg_waldump` shows it, checkpoint records as its `pg_controldata` shows them, and
//! hand-made bodies and image headers for what the fixtures do not hold, per major.

#![allow(clippy::indexing_slicing)] // tests index their own buffers

use super::*;
use crate::instance::wal::fixtures::{
    between, controldata_of, fixture_pages_of, listed_lsn_of, listed_of, pg, pg_wal_of, read,
};
use crate::instance::wal::major::by_page_magic;

/// One test of each kind per major whose WAL is committed.
macro_rules! per_major {
    ($($major:literal: $waldump:ident, $restartpoint:ident, $magic:ident;)*) => {$(
        #[test]
        fn $waldump() {
            every_fixture_record_decodes_as_pg_waldump_shows_it($major);
        }
        #[test]
        fn $restartpoint() {
            standby_restartpoint_points_at_the_old_primarys_shutdown_checkpoint($major);
        }
        #[test]
        fn $magic() {
            every_page_carries_its_majors_magic($major);
        }
    )*};
}

per_major! {
    13: pg13_records_as_pg_waldump_shows_them, pg13_restartpoint_at_old_primary_shutdown, pg13_page_magic;
    14: pg14_records_as_pg_waldump_shows_them, pg14_restartpoint_at_old_primary_shutdown, pg14_page_magic;
    15: pg15_records_as_pg_waldump_shows_them, pg15_restartpoint_at_old_primary_shutdown, pg15_page_magic;
    16: pg16_records_as_pg_waldump_shows_them, pg16_restartpoint_at_old_primary_shutdown, pg16_page_magic;
    17: pg17_records_as_pg_waldump_shows_them, pg17_restartpoint_at_old_primary_shutdown, pg17_page_magic;
    18: pg18_records_as_pg_waldump_shows_them, pg18_restartpoint_at_old_primary_shutdown, pg18_page_magic;
    19: pg19_records_as_pg_waldump_shows_them, pg19_restartpoint_at_old_primary_shutdown, pg19_page_magic;
}

/// Every page a major wrote names that major's row, and no other.
fn every_page_carries_its_majors_magic(major: u32) {
    for ((segment, offset), page) in fixture_pages_of(major) {
        let magic = u16::from_le_bytes([page[0], page[1]]);
        assert_eq!(
            by_page_magic(magic).map(|row| row.version),
            Some(major),
            "{segment} at {offset:#x}: magic {magic:#06X}"
        );
    }
}

fn every_fixture_record_decodes_as_pg_waldump_shows_it(major: u32) {
    let dir = pg_wal_of(major);
    let mut decoded = Vec::new();
    for listed in listed_of(major) {
        let what = &format!("PostgreSQL {major}'s {}", listed.name);
        let record =
            read(dir.path(), listed.timeline, listed.lsn).unwrap_or_else(|e| panic!("{what}: {e}"));
        let line = &listed.waldump;
        // rmgr: XLOG        len (rec/tot):    114/   114, tx: 0, lsn: 0/00831910, prev 0/008318D8, desc: …
        let rmgr = between(line, "rmgr: ", " ").to_owned();
        let expected_rmid = match rmgr.as_str() {
            "XLOG" => 0,
            "Heap" => 10,
            "LogicalMessage" => 21,
            other => panic!("{what}: no rmid for {other}"),
        };
        assert_eq!(record.rmid, expected_rmid, "{what}");
        let lens = between(line, "len (rec/tot):", ",");
        let (rec, tot) = lens.split_once('/').unwrap();
        let (rec, tot): (u32, u32) = (rec.trim().parse().unwrap(), tot.trim().parse().unwrap());
        assert_eq!(record.total_len, tot, "{what}");
        let images: u32 = record
            .blocks
            .iter()
            .filter_map(|b| b.image_len)
            .map(u32::from)
            .sum();
        assert_eq!(
            record.total_len - images,
            rec,
            "{what}: rec excludes images"
        );
        assert_eq!(
            record.lsn,
            between(line, "lsn: ", ",").parse().unwrap(),
            "{what}"
        );
        assert_eq!(
            record.prev,
            between(line, "prev ", ",").parse().unwrap(),
            "{what}"
        );
        assert_eq!(record.end.0 % 8, 0, "{what}");
        assert!(
            record.end.0 >= record.lsn.0 + u64::from(record.total_len),
            "{what}"
        );

        let desc = between(line, "desc: ", "\n");
        if let Some(kind) = ["CHECKPOINT_SHUTDOWN", "CHECKPOINT_ONLINE"]
            .into_iter()
            .find(|k| desc.starts_with(k))
        {
            let checkpoint = record.checkpoint().unwrap_or_else(|| panic!("{what}"));
            assert_eq!(checkpoint.shutdown, kind == "CHECKPOINT_SHUTDOWN", "{what}");
            assert_eq!(
                checkpoint.redo,
                between(desc, "redo ", ";").parse().unwrap(),
                "{what}"
            );
            assert_eq!(
                checkpoint.timeline.to_string(),
                between(desc, "; tli ", ";"),
                "{what}"
            );
            assert_eq!(
                checkpoint.prev_timeline.to_string(),
                between(desc, "prev tli ", ";"),
                "{what}"
            );
        } else {
            assert_eq!(record.checkpoint(), None, "{what}");
        }
        if desc.starts_with("CHECKPOINT_REDO") {
            assert!(major >= 17, "{what}");
            assert_eq!(record.info & RMGR_INFO_MASK, 0xE0, "{what}");
        }
        if desc.starts_with("MESSAGE") {
            // xl_logical_message: dbId, transactional, prefix_size (at 8), message_size (at
            // 16), then the prefix and its NUL and the payload. 13's pg_waldump shows only
            // the payload's size ("message size 200 bytes"), later ones the prefix too.
            let prefix_size = u64::from_le_bytes(record.main_data[8..16].try_into().unwrap());
            let message_size = u64::from_le_bytes(record.main_data[16..24].try_into().unwrap());
            let payload: u64 = if major == 13 {
                between(desc, "message size ", " bytes").parse().unwrap()
            } else {
                let prefix = between(desc, "prefix \"", "\"");
                assert_eq!(prefix_size, prefix.len() as u64 + 1, "{what}");
                assert_eq!(&record.main_data[24..24 + prefix.len()], prefix.as_bytes());
                between(desc, "payload (", " bytes").parse().unwrap()
            };
            assert_eq!(message_size, payload, "{what}");
            assert_eq!(
                record.main_data.len() as u64,
                24 + prefix_size + payload,
                "{what}"
            );
            assert!(record.blocks.is_empty(), "{what}");
        }
        // blkref #0: rel 1663/5/16384 blk 5 FPW (16 and later: "rel 1663/5/16384, blk 5")
        let blkrefs: Vec<&str> = desc.split("blkref #").skip(1).collect();
        assert_eq!(record.blocks.len(), blkrefs.len(), "{what}");
        for (block, text) in record.blocks.iter().zip(&blkrefs) {
            let rel: Vec<u32> = between(text, "rel ", " ")
                .trim_end_matches(',')
                .split('/')
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(block.rel.to_vec(), rel, "{what}");
            assert_eq!(
                block.block.to_string(),
                between(text, " blk ", " ").trim_end_matches(',')
            );
            assert_eq!(block.image_len.is_some(), text.contains("FPW"), "{what}");
            assert_eq!(block.fork, 0, "{what}: pg_waldump names other forks");
        }
        decoded.push(record);
    }
    // A record's end is where the next one starts: wherever the fixtures hold both.
    let mut pairs = 0;
    for a in &decoded {
        for b in decoded.iter().filter(|b| b.prev == a.lsn) {
            assert_eq!(a.end, b.lsn, "end of the record at {}", a.lsn);
            pairs += 1;
        }
    }
    assert!(
        pairs >= 4,
        "PostgreSQL {major}: only {pairs} consecutive pairs"
    );
}

/// The switchover check as the lead composes it: on the standby, after a CHECKPOINT, the
/// record at pg_control's checkpoint location is the old primary's shutdown checkpoint.
fn standby_restartpoint_points_at_the_old_primarys_shutdown_checkpoint(major: u32) {
    let controldata =
        |name: &str, field: &str| -> Lsn { controldata_of(major, name, field).parse().unwrap() };
    let tli =
        |name: &str, field: &str| -> u32 { controldata_of(major, name, field).parse().unwrap() };
    let dir = pg_wal_of(major);
    let location = controldata("standby-restartpoint", "Latest checkpoint location");
    assert_eq!(
        location,
        controldata("primary-stopped", "Latest checkpoint location")
    );
    let record = read(dir.path(), 1, location).unwrap();
    let checkpoint = record.checkpoint().unwrap();
    assert!(checkpoint.shutdown);
    assert_eq!(
        checkpoint.redo,
        controldata("standby-restartpoint", "Latest checkpoint's REDO location")
    );
    assert_eq!(
        checkpoint.redo, record.lsn,
        "a shutdown checkpoint redoes from itself"
    );
    assert_eq!(
        checkpoint.timeline,
        tli("standby-restartpoint", "Latest checkpoint's TimeLineID")
    );
    assert_eq!(
        checkpoint.prev_timeline,
        tli("standby-restartpoint", "Latest checkpoint's PrevTimeLineID")
    );
    // Timeline 2 starts right after it, with the promotion's end-of-recovery record.
    assert_eq!(record.end, listed_lsn_of(major, "first-on-tl2"));
}

/// 17's online checkpoint first writes `XLOG_CHECKPOINT_REDO` at its redo point: that record
/// is where replay starts, and no checkpoint.
#[test]
fn checkpoint_redo_record_is_the_redo_point_and_no_checkpoint() {
    for major in 17..=19 {
        let dir = pg_wal_of(major);
        let redo = read(dir.path(), 1, listed_lsn_of(major, "checkpoint-redo")).unwrap();
        assert_eq!((redo.rmid, redo.info & RMGR_INFO_MASK), (RM_XLOG_ID, 0xE0));
        assert_eq!(redo.checkpoint(), None, "PostgreSQL {major}");
        let online = read(dir.path(), 1, listed_lsn_of(major, "checkpoint-online")).unwrap();
        let checkpoint = online.checkpoint().unwrap();
        assert!(!checkpoint.shutdown);
        assert_eq!(checkpoint.redo, redo.lsn, "PostgreSQL {major}");
    }
}

/// A checkpoint record is only one with its own major's `CheckPoint` size: 19's 96 bytes
/// read as 18's are no checkpoint, and the other way round.
#[test]
fn checkpoint_size_is_the_majors() {
    let dir = pg_wal_of(19);
    let mut record = read(dir.path(), 1, listed_lsn_of(19, "checkpoint-shutdown")).unwrap();
    assert_eq!(record.main_data.len(), 96);
    assert!(record.checkpoint().is_some());
    record.major = pg(18);
    assert_eq!(record.checkpoint(), None);
    let dir = pg_wal_of(18);
    let mut record = read(dir.path(), 1, listed_lsn_of(18, "checkpoint-shutdown")).unwrap();
    assert_eq!(record.main_data.len(), 88);
    record.major = pg(19);
    assert_eq!(record.checkpoint(), None);
}

/// A record body: the 24-byte header (not read by `decode_body`) and `body`.
fn body(body: &[u8]) -> Vec<u8> {
    let mut record = vec![0; RECORD_HEADER];
    record.extend_from_slice(body);
    record
}

#[test]
fn record_bodies() {
    let rel = [1663u32, 5, 16384]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .collect::<Vec<u8>>();
    // Block 0 with 2 bytes of data, block 1 SAME_REL without data, origin, main data 3.
    let mut good = vec![0, 0x20, 2, 0];
    good.extend(&rel);
    good.extend(7u32.to_le_bytes());
    good.extend([1, 0x80, 0, 0]);
    good.extend(8u32.to_le_bytes());
    good.extend([253, 1, 0, 255, 3]);
    good.extend([0xAA, 0xBB, 1, 2, 3]);
    let decoded = decode_body(&body(&good), pg(15)).unwrap();
    assert_eq!(decoded.blocks.len(), 2);
    assert_eq!(decoded.blocks[1].rel, [1663, 5, 16384]);
    assert_eq!((decoded.blocks[0].block, decoded.blocks[1].block), (7, 8));
    assert_eq!(&body(&good)[decoded.main_data], &[1, 2, 3]);

    let problem = |bytes: &[u8], major| decode_body(&body(bytes), pg(major)).err().map(|e| e.1);
    assert_eq!(
        problem(&[255, 4, 1, 2, 3], 15),
        Some(BodyProblem::Length {
            announced: 4,
            present: 3
        })
    );
    assert_eq!(
        problem(&[255, 2, 1, 2, 3], 15),
        Some(BodyProblem::Length {
            announced: 2,
            present: 3
        })
    );
    assert_eq!(
        problem(&[252, 1, 0, 0, 0], 13),
        Some(BodyProblem::InvalidBlockId(252))
    );
    assert_eq!(problem(&[252, 1, 0, 0, 0], 14), None);
    assert_eq!(
        problem(&[33, 0, 0, 0], 15),
        Some(BodyProblem::InvalidBlockId(33))
    );
    assert_eq!(
        problem(&[0, 0x80, 0, 0, 0, 0, 0, 0], 15),
        Some(BodyProblem::SameRelFirst)
    );
    assert_eq!(
        problem(&[0, 0x20, 0, 0], 15),
        Some(BodyProblem::DataFlag {
            has_data: true,
            len: 0
        })
    );
    assert_eq!(
        problem(&[0, 0x00, 1, 0], 15),
        Some(BodyProblem::DataFlag {
            has_data: false,
            len: 1
        })
    );
    assert_eq!(problem(&[0, 0x04, 0, 0], 15), Some(BodyProblem::Fork(4)));
    assert_eq!(problem(&[0, 0x00], 15), Some(BodyProblem::Short));
    let mut twice = vec![1, 0, 0, 0];
    twice.extend(&rel);
    twice.extend([0; 4]);
    twice.extend([1, 0x80, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        problem(&twice, 15),
        Some(BodyProblem::OutOfOrderBlockId { id: 1, previous: 1 })
    );
}

#[test]
fn image_headers_by_major() {
    let image = |len: u16, hole_offset: u16, info: u8, extra: &[u8]| -> Vec<u8> {
        let mut v = vec![0, 0x10, 0, 0];
        v.extend(len.to_le_bytes());
        v.extend(hole_offset.to_le_bytes());
        v.push(info);
        v.extend(extra);
        v.extend([0; 16]); // rel and block
        v.extend(vec![0xEE; usize::from(len)]);
        v
    };
    let ok = |bytes: Vec<u8>, major| {
        decode_body(&body(&bytes), pg(major)).map(|b| b.blocks[0].image_len)
    };
    // Uncompressed, no hole: the whole block.
    assert_eq!(ok(image(8192, 0, 0, &[]), 15), Ok(Some(8192)));
    // Uncompressed with a hole (HAS_HOLE 0x01, APPLY 0x02 in 15).
    assert_eq!(ok(image(4000, 100, 0x03, &[]), 15), Ok(Some(4000)));
    // A hole at offset 0 is no hole.
    assert!(ok(image(4000, 0, 0x01, &[]), 15).is_err());
    // Short image without hole or compression.
    assert!(ok(image(4000, 0, 0x00, &[]), 15).is_err());
    // 15: LZ4-compressed with a hole has a hole_length; in 12–14 0x08 means nothing and
    // the header is 2 bytes shorter, so the same bytes do not add up.
    let lz4 = image(3000, 100, 0x09, &200u16.to_le_bytes());
    assert_eq!(ok(lz4.clone(), 15), Ok(Some(3000)));
    assert!(ok(lz4, 14).is_err());
    // 12–14: IS_COMPRESSED is 0x02.
    assert_eq!(
        ok(image(3000, 100, 0x03, &200u16.to_le_bytes()), 14),
        Ok(Some(3000))
    );
}
