//! `global/pg_control` (the postgres account writes it): `instance::control::decode`.
//! Each input is decoded as it is, then again with its CRC-32C made right, so that the
//! fuzzer reaches the checks after the CRC (layout markers, every enum and size).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::instance::control::{decode, ControlFile};

/// Where `ControlFileData` keeps the CRC-32C of the bytes before it, in 12–17 on LP64
/// (`offsetof(ControlFileData, crc)` in `pg_control.h`).
const CRC_AT: usize = 288;

fn check(bytes: &[u8]) -> Option<ControlFile> {
    match decode(bytes) {
        Ok(control) => {
            // What the decoder promises of a file it accepts.
            assert!(bytes.len() >= CRC_AT + 4);
            assert!(control.block_size.is_power_of_two());
            assert!(control.wal_block_size.is_power_of_two());
            assert!(control.wal_segment_size.is_power_of_two());
            assert!(control.data_checksum_version <= 1);
            let _ = format!("{control:?} {} {}", control.state, control.wal_level);
            let _ = (control.major_versions(), control.can_rewind(), control.data_checksums());
            Some(control)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let first = check(data);
    if data.len() >= CRC_AT + 4 {
        let mut fixed = data.to_vec();
        let crc = crc32c::crc32c(&fixed[..CRC_AT]);
        fixed[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        let second = check(&fixed);
        // A file accepted as it was has a right CRC already: the same file again.
        if first.is_some() {
            assert_eq!(first, second);
        }
    }
});
