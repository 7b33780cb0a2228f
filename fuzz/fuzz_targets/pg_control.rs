//! `global/pg_control` (the postgres account writes it): `instance::control::decode`.
//! Each input is decoded as it is, then again with its CRC-32C made right where each layout
//! keeps it, so that the fuzzer reaches the checks after the CRC (layout markers, every
//! enum and size).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::instance::control::decode;

/// Where `ControlFileData` keeps the CRC-32C of the bytes before it on LP64
/// (`offsetof(ControlFileData, crc)` in `pg_control.h`): 12–17, 18 (after
/// `default_char_signedness`), 19 (a larger `checkPointCopy`). Each is tried: at the wrong
/// place for the input's version, the CRC check refuses it.
const CRC_AT: [usize; 3] = [288, 292, 308];

fn check(bytes: &[u8]) {
    match decode(bytes) {
        Ok(control) => {
            // What the decoder promises of a file it accepts.
            assert!(bytes.len() >= CRC_AT[0] + 4);
            assert!(control.block_size.is_power_of_two());
            assert!(control.wal_block_size.is_power_of_two());
            assert!(control.wal_segment_size.is_power_of_two());
            assert!(control.data_checksum_version <= 1);
            let _ = format!("{control:?} {} {}", control.state, control.wal_level);
            let _ = (control.can_rewind(), control.data_checksums());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    for at in CRC_AT.into_iter().filter(|at| data.len() >= at + 4) {
        let mut fixed = data.to_vec();
        let crc = crc32c::crc32c(&fixed[..at]);
        fixed[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
