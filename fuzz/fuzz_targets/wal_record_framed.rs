//! The WAL record body decoder (block references, full-page images, main data, a
//! checkpoint's `CheckPoint`) of every major: a fuzzed record framed in real pages with
//! its CRC right (`pgha_fuzz::FramedRecord`), so that it gets past the page and CRC checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::instance::wal::{decode_record, DecodeError};
use pgha::lsn::Lsn;
use pgha_fuzz::{FramedRecord, RUN_START};

fuzz_target!(|data: &[u8]| {
    let Some(record) = FramedRecord::read(data) else {
        return;
    };
    let (lsn, total, pages) = record.frame();
    match decode_record(&pages, Lsn(RUN_START), Lsn(lsn), 1, 16 << 20) {
        Ok(decoded) => {
            assert_eq!(decoded.lsn, Lsn(lsn));
            assert_eq!(decoded.total_len, total);
            assert_eq!((decoded.rmid, decoded.info), (record.rmid, record.info));
            assert_eq!(decoded.prev, Lsn(record.prev));
            assert!(decoded.end.0 >= lsn + u64::from(total), "{decoded:?}");
            let mut last = None;
            for block in &decoded.blocks {
                assert!(
                    block.id <= 32 && last.is_none_or(|l| block.id > l),
                    "{decoded:?}"
                );
                assert!(block.fork <= 3);
                last = Some(block.id);
            }
            if let Some(checkpoint) = decoded.checkpoint() {
                assert_eq!(decoded.rmid, 0);
                assert_eq!(decoded.main_data.len(), 88);
                let _ = checkpoint;
            }
        }
        // The frame is right: what is refused is the record's header or body, or a major
        // pgha does not read, never its pages, its length or its CRC.
        Err(
            e @ (DecodeError::Body { .. }
            | DecodeError::ResourceManager { .. }
            | DecodeError::PrevLink { .. }
            | DecodeError::Magic { .. }),
        ) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("a well-framed record refused: {e}"),
    }
});
