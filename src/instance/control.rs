//! `global/pg_control`: bytes in, [`ControlFile`] out.
//!
//! This module owns reading and decoding PostgreSQL's control file, `ControlFileData` in
//! `src/include/catalog/pg_control.h`, for PostgreSQL 12 to 17 built for 64-bit little-endian
//! machines (LP64: x86_64, aarch64, ppc64le). It does not interpret what it reads: what a
//! cluster state means for the agent is `instance::state`'s business, whether a rewind is
//! needed is `rewind::decision`'s.
//!
//! Where the facts come from: the layout table in pgha's pg_rewind notes (§4, "pg_control
//! layout, 12–17"), read from `pg_control.h` of each major, and checked here against files
//! written by a real PostgreSQL 15 (`tests/fixtures/pg_control/`, compared field by field with
//! `pg_controldata`). Every field decoded here sits at the same offset in 12–17; the majors
//! differ only in bytes pgha does not read (PG12's extra `float4ByVal` at 248, PG17's copy of
//! `wal_level` inside `checkPointCopy`), so one layout and a table of three version numbers
//! cover them. 12 and 17 are believed from the headers, not measured: only PostgreSQL 15 is
//! installed where the fixtures were made.
//!
//! [`decode`] is pure and strict, in the order the server's own `ReadControlFile` checks:
//! length, `pg_control_version`, CRC-32C, then the layout markers (`maxAlign`, `floatFormat`),
//! then every value the decoder turns into a type. [`read`] adds the file system and the path.

// Every read goes through `Raw`, which bounds-checks: a wrong offset is an error, not a panic.
#![deny(clippy::indexing_slicing)]

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::lsn::{Lsn, TimelineId};

/// `sizeof(ControlFileData)` on LP64 in 12–17.
const STRUCT_SIZE: usize = 296;
/// `PG_CONTROL_FILE_SIZE`: PostgreSQL writes the struct followed by zeros up to this size.
/// Only the struct is decoded, as the server reads only the struct; [`read`] reads no more
/// than this.
const FILE_SIZE: usize = 8192;
/// The file's location inside a data directory.
const PATH_IN_DATADIR: &str = "global/pg_control";

/// The `pg_control_version` values pgha decodes, and the majors that write each one.
const KNOWN_VERSIONS: [(u32, &str); 3] = [(1201, "12"), (1300, "13–16"), (1700, "17")];

/// `maxAlign` on LP64 (`MAXIMUM_ALIGNOF`).
const MAX_ALIGN: u32 = 8;
/// `floatFormat` (`FLOATFORMAT_VALUE`): a double the server writes so that a reader with
/// another float representation or byte order can tell.
const FLOAT_FORMAT: f64 = 1234567.0;

/// Byte offsets in `ControlFileData` (LP64, 12–17), with the C field names.
mod offset {
    pub(super) const SYSTEM_IDENTIFIER: usize = 0;
    pub(super) const PG_CONTROL_VERSION: usize = 8;
    pub(super) const CATALOG_VERSION_NO: usize = 12;
    pub(super) const STATE: usize = 16;
    pub(super) const TIME: usize = 24;
    pub(super) const CHECKPOINT: usize = 32;
    /// `checkPointCopy`, a `CheckPoint` (88 bytes); the next four are inside it.
    const CHECKPOINT_COPY: usize = 40;
    pub(super) const REDO: usize = CHECKPOINT_COPY;
    pub(super) const THIS_TIMELINE_ID: usize = CHECKPOINT_COPY + 8;
    pub(super) const PREV_TIMELINE_ID: usize = CHECKPOINT_COPY + 12;
    pub(super) const FULL_PAGE_WRITES: usize = CHECKPOINT_COPY + 16;
    pub(super) const MIN_RECOVERY_POINT: usize = 136;
    pub(super) const MIN_RECOVERY_POINT_TLI: usize = 144;
    pub(super) const BACKUP_START_POINT: usize = 152;
    pub(super) const BACKUP_END_POINT: usize = 160;
    pub(super) const BACKUP_END_REQUIRED: usize = 168;
    pub(super) const WAL_LEVEL: usize = 172;
    pub(super) const WAL_LOG_HINTS: usize = 176;
    pub(super) const MAX_ALIGN: usize = 204;
    pub(super) const FLOAT_FORMAT: usize = 208;
    pub(super) const BLCKSZ: usize = 216;
    pub(super) const XLOG_BLCKSZ: usize = 224;
    pub(super) const XLOG_SEG_SIZE: usize = 228;
    pub(super) const DATA_CHECKSUM_VERSION: usize = 252;
    /// The CRC-32C of bytes `[0, CRC)`, stored here.
    pub(super) const CRC: usize = 288;
}

/// What pgha reads from `pg_control`. Names follow PostgreSQL's, in snake case; the
/// `checkpoint_*` fields come from `checkPointCopy`, the copy of the latest checkpoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    pub system_identifier: u64,
    /// One of 1201 (PostgreSQL 12), 1300 (13–16), 1700 (17).
    pub pg_control_version: u32,
    /// `catalog_version_no`: tells the majors that share a `pg_control_version` apart.
    pub catalog_version: u32,
    pub state: DbState,
    /// When the file was last written, in seconds since the Unix epoch.
    pub time: i64,
    /// Where the latest checkpoint record starts.
    pub checkpoint: Lsn,
    pub checkpoint_redo: Lsn,
    pub checkpoint_timeline: TimelineId,
    pub checkpoint_prev_timeline: TimelineId,
    pub checkpoint_full_page_writes: bool,
    /// Replay must reach this point before the cluster is consistent (0/0 on a primary).
    pub min_recovery_point: Lsn,
    pub min_recovery_point_timeline: TimelineId,
    pub backup_start_point: Lsn,
    pub backup_end_point: Lsn,
    pub backup_end_required: bool,
    pub wal_level: WalLevel,
    pub wal_log_hints: bool,
    /// 0: no data checksums; 1: checksums (the only version in 12–17).
    pub data_checksum_version: u32,
    pub block_size: u32,
    pub wal_block_size: u32,
    pub wal_segment_size: u32,
}

impl ControlFile {
    /// The majors that write this file's `pg_control_version`, for messages: "12", "13–16"
    /// or "17" ("unknown" only for a value [`decode`] would have refused).
    pub fn major_versions(&self) -> &'static str {
        majors(self.pg_control_version).unwrap_or("unknown")
    }

    pub fn data_checksums(&self) -> bool {
        self.data_checksum_version != 0
    }

    /// The target-side precondition of `pg_rewind`: it refuses a target that has neither data
    /// checksums nor `wal_log_hints = on`, since hint-bit changes would then go unlogged and
    /// the blocks they touch would not be copied back.
    pub fn can_rewind(&self) -> bool {
        self.wal_log_hints || self.data_checksums()
    }
}

/// `DBState`, the cluster state as of the last write of `pg_control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbState {
    Startup,
    ShutDown,
    ShutDownInRecovery,
    ShuttingDown,
    InCrashRecovery,
    InArchiveRecovery,
    InProduction,
}

impl DbState {
    fn from_raw(value: u32) -> Option<DbState> {
        Some(match value {
            0 => DbState::Startup,
            1 => DbState::ShutDown,
            2 => DbState::ShutDownInRecovery,
            3 => DbState::ShuttingDown,
            4 => DbState::InCrashRecovery,
            5 => DbState::InArchiveRecovery,
            6 => DbState::InProduction,
            _ => return None,
        })
    }
}

/// `pg_controldata`'s wording, so logs read like its output.
impl fmt::Display for DbState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbState::Startup => "starting up",
            DbState::ShutDown => "shut down",
            DbState::ShutDownInRecovery => "shut down in recovery",
            DbState::ShuttingDown => "shutting down",
            DbState::InCrashRecovery => "in crash recovery",
            DbState::InArchiveRecovery => "in archive recovery",
            DbState::InProduction => "in production",
        })
    }
}

/// The `wal_level` the server last ran with (as `pg_controldata` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WalLevel {
    Minimal,
    Replica,
    Logical,
}

impl WalLevel {
    fn from_raw(value: u32) -> Option<WalLevel> {
        Some(match value {
            0 => WalLevel::Minimal,
            1 => WalLevel::Replica,
            2 => WalLevel::Logical,
            _ => return None,
        })
    }
}

impl fmt::Display for WalLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WalLevel::Minimal => "minimal",
            WalLevel::Replica => "replica",
            WalLevel::Logical => "logical",
        })
    }
}

/// Why bytes are not a `pg_control` pgha can use. Field names are the C ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "pg_control is {len} bytes, too short for the {needed} bytes pgha reads \
         (PostgreSQL writes {FILE_SIZE})"
    )]
    TooShort { len: usize, needed: usize },
    /// A `pg_control_version` of the form PostgreSQL uses, but not 12–17's: most likely a
    /// cluster of another major.
    #[error(
        "pg_control_version {0} is not one pgha knows (pgha knows PostgreSQL 12–17, \
         which write 1201, 1300 and 1700)"
    )]
    UnknownVersion(u32),
    /// No PostgreSQL writes such a `pg_control_version`: the file is something else, or
    /// overwritten (an all-zero file reads 0).
    #[error(
        "not a pg_control file: its pg_control_version field holds {0} ({0:#010x}), \
         where PostgreSQL writes a number like 1300"
    )]
    NotPgControl(u32),
    /// Bytes `[0, 288)` do not match the CRC-32C stored at 288. A file from a 32-bit build
    /// would most likely end here too (believed, not tried): its CRC sits at another offset.
    #[error(
        "pg_control CRC mismatch: stored {stored:#010x}, computed {computed:#010x} over \
         bytes 0..288: the file is corrupt"
    )]
    Crc { stored: u32, computed: u32 },
    /// An intact file written by a build with another data layout (32-bit, big-endian).
    #[error(
        "pg_control {field} is {found}, expected {expected}: the cluster was made by a build \
         with another data layout, and pgha reads only 64-bit little-endian ones"
    )]
    Layout {
        field: &'static str,
        found: String,
        expected: &'static str,
    },
    /// A field holds a value no PostgreSQL 12–17 writes, in a file whose CRC is right.
    #[error("pg_control {field} holds {value}, expected {expected}")]
    BadValue {
        field: &'static str,
        value: u32,
        expected: &'static str,
    },
}

/// Why [`read`] has no [`ControlFile`] to give; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The file (or the directory above it) does not exist: no initialised data directory.
    #[error("{} does not exist: no PostgreSQL data directory here", path.display())]
    Missing { path: PathBuf },
    #[error("could not read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: DecodeError },
}

impl ControlError {
    /// "No data directory here", as opposed to one that exists but cannot be read or used.
    pub fn is_missing(&self) -> bool {
        matches!(self, ControlError::Missing { .. })
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ControlError::Missing { path }
            | ControlError::Io { path, .. }
            | ControlError::Invalid { path, .. } => path,
        }
    }
}

/// Reads and decodes `<datadir>/global/pg_control`.
pub fn read(datadir: &Path) -> Result<ControlFile, ControlError> {
    read_file(&datadir.join(PATH_IN_DATADIR))
}

/// Reads and decodes a control file at any path (a copy, say): a regular file, of which it
/// reads at most 8192 bytes.
pub fn read_file(path: &Path) -> Result<ControlFile, ControlError> {
    let mut bytes = Vec::with_capacity(FILE_SIZE);
    // A link, a FIFO or a device is refused. FILE_SIZE is 8192: the cast cannot truncate.
    let result = crate::safe_fs::open_path(path)
        .and_then(|(file, _)| file.take(FILE_SIZE as u64).read_to_end(&mut bytes));
    match result {
        Ok(_) => decode(&bytes).map_err(|source| ControlError::Invalid {
            path: path.into(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ControlError::Missing { path: path.into() })
        }
        Err(source) => Err(ControlError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Decodes the bytes of a `pg_control` file (normally 8192; the first 296 are read).
///
/// The checks come in the order that gives the most useful error, the server's own order:
/// - length first, so every later read is in bounds;
/// - `pg_control_version` before the CRC, because where the CRC sits depends on the version:
///   a cluster of PostgreSQL 11 or 18 must be reported as such, not as corrupt. The version
///   also tells a file that is not a `pg_control` at all ([`DecodeError::NotPgControl`]) and
///   one written big-endian ([`DecodeError::Layout`]);
/// - the CRC before any other field, so a corrupt file is called corrupt rather than blamed
///   on whichever field the damage hit;
/// - `maxAlign` and `floatFormat`, which confirm the 64-bit little-endian layout;
/// - every value turned into a type: `state`, `wal_level`, the bools,
///   `data_checksum_version`, and the block and segment sizes, which later code divides by.
///
/// The zero padding after the struct is not checked: the server never reads it, and pgha
/// should not refuse a file the server accepts.
pub fn decode(bytes: &[u8]) -> Result<ControlFile, DecodeError> {
    if bytes.len() < STRUCT_SIZE {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            needed: STRUCT_SIZE,
        });
    }
    let raw = Raw(bytes);

    let pg_control_version = raw.u32(offset::PG_CONTROL_VERSION)?;
    check_version(pg_control_version)?;

    let stored = raw.u32(offset::CRC)?;
    let computed = crc32c::crc32c(raw.bytes(0, offset::CRC)?);
    if stored != computed {
        return Err(DecodeError::Crc { stored, computed });
    }

    let max_align = raw.u32(offset::MAX_ALIGN)?;
    if max_align != MAX_ALIGN {
        return Err(DecodeError::Layout {
            field: "maxAlign",
            found: max_align.to_string(),
            expected: "8",
        });
    }
    // Compared as bits: the value must be exactly the one the server writes.
    let float_format = raw.u64(offset::FLOAT_FORMAT)?;
    if float_format != FLOAT_FORMAT.to_bits() {
        return Err(DecodeError::Layout {
            field: "floatFormat",
            found: format!(
                "{} (bits {float_format:#018x})",
                f64::from_bits(float_format)
            ),
            expected: "1234567.0",
        });
    }

    let state = raw.u32(offset::STATE)?;
    let state = DbState::from_raw(state).ok_or(DecodeError::BadValue {
        field: "state",
        value: state,
        expected: "a DBState, 0 to 6",
    })?;
    let wal_level = raw.u32(offset::WAL_LEVEL)?;
    let wal_level = WalLevel::from_raw(wal_level).ok_or(DecodeError::BadValue {
        field: "wal_level",
        value: wal_level,
        expected: "0 (minimal), 1 (replica) or 2 (logical)",
    })?;
    let data_checksum_version = raw.u32(offset::DATA_CHECKSUM_VERSION)?;
    if data_checksum_version > 1 {
        return Err(DecodeError::BadValue {
            field: "data_checksum_version",
            value: data_checksum_version,
            expected: "0 (off) or 1",
        });
    }

    Ok(ControlFile {
        system_identifier: raw.u64(offset::SYSTEM_IDENTIFIER)?,
        pg_control_version,
        catalog_version: raw.u32(offset::CATALOG_VERSION_NO)?,
        state,
        time: raw.i64(offset::TIME)?,
        checkpoint: raw.lsn(offset::CHECKPOINT)?,
        checkpoint_redo: raw.lsn(offset::REDO)?,
        checkpoint_timeline: raw.u32(offset::THIS_TIMELINE_ID)?,
        checkpoint_prev_timeline: raw.u32(offset::PREV_TIMELINE_ID)?,
        checkpoint_full_page_writes: raw.bool(offset::FULL_PAGE_WRITES, "fullPageWrites")?,
        min_recovery_point: raw.lsn(offset::MIN_RECOVERY_POINT)?,
        min_recovery_point_timeline: raw.u32(offset::MIN_RECOVERY_POINT_TLI)?,
        backup_start_point: raw.lsn(offset::BACKUP_START_POINT)?,
        backup_end_point: raw.lsn(offset::BACKUP_END_POINT)?,
        backup_end_required: raw.bool(offset::BACKUP_END_REQUIRED, "backupEndRequired")?,
        wal_level,
        wal_log_hints: raw.bool(offset::WAL_LOG_HINTS, "wal_log_hints")?,
        data_checksum_version,
        block_size: raw.size(offset::BLCKSZ, "blcksz", BLOCK_SIZES)?,
        wal_block_size: raw.size(offset::XLOG_BLCKSZ, "xlog_blcksz", WAL_BLOCK_SIZES)?,
        wal_segment_size: raw.size(offset::XLOG_SEG_SIZE, "xlog_seg_size", WAL_SEGMENT_SIZES)?,
    })
}

fn majors(pg_control_version: u32) -> Option<&'static str> {
    KNOWN_VERSIONS
        .iter()
        .find(|(version, _)| *version == pg_control_version)
        .map(|(_, majors)| *majors)
}

fn check_version(version: u32) -> Result<(), DecodeError> {
    if majors(version).is_some() {
        return Ok(());
    }
    let swapped = version.swap_bytes();
    if majors(swapped).is_some() {
        return Err(DecodeError::Layout {
            field: "pg_control_version",
            found: format!("{version:#010x} ({swapped} byte-swapped)"),
            expected: "little-endian byte order",
        });
    }
    // Believed, not a rule of PostgreSQL's: PG_CONTROL_VERSION has always been a decimal
    // number of at most four digits (1201 for 12, 1800 for 18). Arbitrary bytes at offset 8
    // almost never are.
    if (1..10_000).contains(&version) {
        Err(DecodeError::UnknownVersion(version))
    } else {
        Err(DecodeError::NotPgControl(version))
    }
}

/// Bounds-checked little-endian reads from the file's bytes.
struct Raw<'a>(&'a [u8]);

impl<'a> Raw<'a> {
    fn bytes(&self, at: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = at.saturating_add(len);
        self.0.get(at..end).ok_or(DecodeError::TooShort {
            len: self.0.len(),
            needed: end,
        })
    }

    fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], DecodeError> {
        let end = at.saturating_add(N);
        self.bytes(at, N)?
            .try_into()
            .map_err(|_| DecodeError::TooShort {
                len: self.0.len(),
                needed: end,
            })
    }

    fn u32(&self, at: usize) -> Result<u32, DecodeError> {
        self.array(at).map(u32::from_le_bytes)
    }

    fn u64(&self, at: usize) -> Result<u64, DecodeError> {
        self.array(at).map(u64::from_le_bytes)
    }

    fn i64(&self, at: usize) -> Result<i64, DecodeError> {
        self.array(at).map(i64::from_le_bytes)
    }

    fn lsn(&self, at: usize) -> Result<Lsn, DecodeError> {
        self.u64(at).map(Lsn)
    }

    /// A C `bool`: PostgreSQL writes only 0 and 1, so anything else means misread bytes.
    fn bool(&self, at: usize, field: &'static str) -> Result<bool, DecodeError> {
        match self.array(at)? {
            [0] => Ok(false),
            [1] => Ok(true),
            [value] => Err(DecodeError::BadValue {
                field,
                value: value.into(),
                expected: "0 or 1",
            }),
        }
    }

    /// A size that must be a power of two within `range`.
    fn size(&self, at: usize, field: &'static str, range: SizeRange) -> Result<u32, DecodeError> {
        let value = self.u32(at)?;
        if value.is_power_of_two() && (range.min..=range.max).contains(&value) {
            Ok(value)
        } else {
            Err(DecodeError::BadValue {
                field,
                value,
                expected: range.text,
            })
        }
    }
}

/// The sizes PostgreSQL allows for a field: powers of two in `[min, max]`.
struct SizeRange {
    min: u32,
    max: u32,
    text: &'static str,
}

// The limits of PostgreSQL's build options (BLCKSZ up to 32 kB, XLOG_BLCKSZ up to 64 kB) and
// of initdb --wal-segsize (1 MB to 1 GB).
const BLOCK_SIZES: SizeRange = SizeRange {
    min: 1 << 10,
    max: 1 << 15,
    text: "a power of two from 1 kB to 32 kB",
};
const WAL_BLOCK_SIZES: SizeRange = SizeRange {
    min: 1 << 10,
    max: 1 << 16,
    text: "a power of two from 1 kB to 64 kB",
};
const WAL_SEGMENT_SIZES: SizeRange = SizeRange {
    min: 1 << 20,
    max: 1 << 30,
    text: "a power of two from 1 MB to 1 GB",
};

#[cfg(test)]
pub(crate) mod tests;
