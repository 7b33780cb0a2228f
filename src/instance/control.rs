//! `global/pg_control`: bytes in, [`ControlFile`] out.
//!
//! This module owns reading and decoding PostgreSQL's control file, `ControlFileData` in
//! `src/include/catalog/pg_control.h`, for PostgreSQL 13 to 19 built for 64-bit little-endian
//! machines (LP64: x86_64, aarch64, ppc64le). It does not interpret what it reads: what a
//! cluster state means for the agent is `instance::state`'s business, whether a rewind is
//! needed is `rewind::decision`'s.
//!
//! Where the facts come from: `offsetof` and `sizeof` compiled against each major's own
//! `pg_control.h` (13.16, 14.23, 15, 16.15, 17.11, 18.6, 19~rc1; `tests/pgbin/README.md` says
//! where each came from), one [`Layout`] row per `pg_control_version`; and files each of those
//! majors wrote (`tests/fixtures/pg_control/pgN-*.bin`), decoded field by field against that
//! major's `pg_controldata`. The majors differ here in: the CRC's place (18 put
//! `default_char_signedness` before it), 19's larger `checkPointCopy` (which moves every field
//! after it by 8) and its `slru_pages_per_segment` and `data_checksum_version_init` (which
//! move more); and the catalog version, which tells apart the majors sharing 1300 (13–16).
//! 12 (1201) is no longer read: out of upstream support since November 2024.
//!
//! [`decode`] is pure and strict, in the order the server's own `ReadControlFile` checks:
//! length, `pg_control_version`, CRC-32C, then the layout markers (`maxAlign`, `floatFormat`),
//! then the catalog version, then every value the decoder turns into a type. A version or
//! catalog version of no known major is refused, never guessed. [`read`] adds the file system
//! and the path.

// Every read goes through `Raw`, which bounds-checks: a wrong offset is an error, not a panic.
#![deny(clippy::indexing_slicing)]

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::lsn::{Lsn, TimelineId};

/// The smallest `sizeof(ControlFileData)` of the layouts (296 in 13–18, 312 in 19): shorter
/// bytes are refused before their version is read.
const MIN_STRUCT_SIZE: usize = 296;
/// `PG_CONTROL_FILE_SIZE`: PostgreSQL writes the struct followed by zeros up to this size.
/// Only the struct is decoded, as the server reads only the struct; [`read`] reads no more
/// than this.
const FILE_SIZE: usize = 8192;
/// The file's location inside a data directory.
const PATH_IN_DATADIR: &str = "global/pg_control";

/// The majors whose files pgha reads, for messages.
const KNOWN_MAJORS: &str = "PostgreSQL 13–19, which write 1300, 1700, 1800 and 1905";

/// `maxAlign` on LP64 (`MAXIMUM_ALIGNOF`).
const MAX_ALIGN: u32 = 8;
/// `floatFormat` (`FLOATFORMAT_VALUE`): a double the server writes so that a reader with
/// another float representation or byte order can tell.
const FLOAT_FORMAT: f64 = 1234567.0;

/// Byte offsets in `ControlFileData` that are the same in every layout (LP64, 13–19), with
/// the C field names; the others are in [`Layout`].
mod offset {
    pub(super) const SYSTEM_IDENTIFIER: usize = 0;
    pub(super) const PG_CONTROL_VERSION: usize = 8;
    pub(super) const CATALOG_VERSION_NO: usize = 12;
    pub(super) const STATE: usize = 16;
    pub(super) const TIME: usize = 24;
    pub(super) const CHECKPOINT: usize = 32;
    /// `checkPointCopy`, a `CheckPoint` (88 bytes, 96 in 19); the next four are inside it,
    /// at the same place in every major.
    const CHECKPOINT_COPY: usize = 40;
    pub(super) const REDO: usize = CHECKPOINT_COPY;
    pub(super) const THIS_TIMELINE_ID: usize = CHECKPOINT_COPY + 8;
    pub(super) const PREV_TIMELINE_ID: usize = CHECKPOINT_COPY + 12;
    pub(super) const FULL_PAGE_WRITES: usize = CHECKPOINT_COPY + 16;
}

/// One `pg_control_version`'s layout: the offsets that differ between versions, and the
/// majors that write it, each with its catalog versions.
struct Layout {
    version: u32,
    majors: &'static [CatalogRange],
    /// `sizeof(ControlFileData)`.
    size: usize,
    min_recovery_point: usize,
    min_recovery_point_tli: usize,
    backup_start_point: usize,
    backup_end_point: usize,
    backup_end_required: usize,
    wal_level: usize,
    wal_log_hints: usize,
    max_align: usize,
    float_format: usize,
    blcksz: usize,
    relseg_size: usize,
    xlog_blcksz: usize,
    xlog_seg_size: usize,
    data_checksum_version: usize,
    /// The CRC-32C of bytes `[0, crc)`, stored here.
    crc: usize,
}

/// The `catalog_version_no` values of one major: after the previous major's release value,
/// up to its own release value (betas and release candidates fall in between). 19's upper
/// bound is 19~rc1's: a later 19 with another value is refused until its files are checked.
struct CatalogRange {
    major: u32,
    first: u32,
    last: u32,
}

/// Offsets of 13–17 (1300, 1700): 17's `wal_level` in `checkPointCopy` went into padding.
const LAYOUT_TO_17: Layout = Layout {
    version: 0,
    majors: &[],
    size: 296,
    min_recovery_point: 136,
    min_recovery_point_tli: 144,
    backup_start_point: 152,
    backup_end_point: 160,
    backup_end_required: 168,
    wal_level: 172,
    wal_log_hints: 176,
    max_align: 204,
    float_format: 208,
    blcksz: 216,
    relseg_size: 220,
    xlog_blcksz: 224,
    xlog_seg_size: 228,
    data_checksum_version: 252,
    crc: 288,
};

/// Every layout pgha reads, from each major's `pg_control.h` (`offsetof`, `sizeof`, LP64).
static LAYOUTS: [Layout; 4] = [
    Layout {
        version: 1300,
        majors: &[
            CatalogRange {
                major: 13,
                first: 201_909_213,
                last: 202_007_201,
            },
            CatalogRange {
                major: 14,
                first: 202_007_202,
                last: 202_107_181,
            },
            CatalogRange {
                major: 15,
                first: 202_107_182,
                last: 202_209_061,
            },
            CatalogRange {
                major: 16,
                first: 202_209_062,
                last: 202_307_071,
            },
        ],
        ..LAYOUT_TO_17
    },
    Layout {
        version: 1700,
        majors: &[CatalogRange {
            major: 17,
            first: 202_307_072,
            last: 202_406_281,
        }],
        ..LAYOUT_TO_17
    },
    // 18: `default_char_signedness` (a bool at 256) pushes the nonce, and the CRC, by 4.
    Layout {
        version: 1800,
        majors: &[CatalogRange {
            major: 18,
            first: 202_406_282,
            last: 202_506_291,
        }],
        crc: 292,
        ..LAYOUT_TO_17
    },
    // 19~rc1: `CheckPoint` grew to 96 bytes (`logicalDecodingEnabled`), so everything after
    // `checkPointCopy` moves by 8; `slru_pages_per_segment` after `relseg_size` moves the
    // WAL sizes by 4 more, and `data_checksum_version_init` comes before the current state.
    Layout {
        version: 1905,
        majors: &[CatalogRange {
            major: 19,
            first: 202_506_292,
            last: 202_610_061,
        }],
        size: 312,
        min_recovery_point: 144,
        min_recovery_point_tli: 152,
        backup_start_point: 160,
        backup_end_point: 168,
        backup_end_required: 176,
        wal_level: 180,
        wal_log_hints: 184,
        max_align: 212,
        float_format: 216,
        blcksz: 224,
        relseg_size: 228,
        xlog_blcksz: 236,
        xlog_seg_size: 240,
        data_checksum_version: 268,
        crc: 308,
    },
];

/// What pgha reads from `pg_control`. Names follow PostgreSQL's, in snake case; the
/// `checkpoint_*` fields come from `checkPointCopy`, the copy of the latest checkpoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    pub system_identifier: u64,
    /// One of 1300 (PostgreSQL 13–16), 1700 (17), 1800 (18), 1905 (19).
    pub pg_control_version: u32,
    /// `catalog_version_no`: tells the majors that share a `pg_control_version` apart.
    pub catalog_version: u32,
    /// The major that wrote the file, from its version and catalog version.
    pub major: u32,
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
    /// 0: no data checksums; 1: checksums (the only version in 13–19).
    pub data_checksum_version: u32,
    pub block_size: u32,
    /// Blocks per segment file of a relation (`RELSEG_SIZE`: 131072, 1 GB of 8 kB blocks,
    /// unless built otherwise).
    pub relseg_size: u32,
    pub wal_block_size: u32,
    pub wal_segment_size: u32,
}

impl ControlFile {
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
    const ALL: [DbState; 7] = [
        DbState::Startup,
        DbState::ShutDown,
        DbState::ShutDownInRecovery,
        DbState::ShuttingDown,
        DbState::InCrashRecovery,
        DbState::InArchiveRecovery,
        DbState::InProduction,
    ];

    fn from_raw(value: u32) -> Option<DbState> {
        DbState::ALL.into_iter().find(|state| state.raw() == value)
    }

    /// The value of `DBState` in the file (the same on every major).
    fn raw(self) -> u32 {
        match self {
            DbState::Startup => 0,
            DbState::ShutDown => 1,
            DbState::ShutDownInRecovery => 2,
            DbState::ShuttingDown => 3,
            DbState::InCrashRecovery => 4,
            DbState::InArchiveRecovery => 5,
            DbState::InProduction => 6,
        }
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
    /// A `pg_control_version` of the form PostgreSQL uses, but not 13–19's: most likely a
    /// cluster of another major.
    #[error("pg_control_version {0} is not one pgha knows (pgha knows {KNOWN_MAJORS})")]
    UnknownVersion(u32),
    /// A known `pg_control_version` with a catalog version none of its majors wrote: a
    /// development build, or a later release of the newest major pgha has not checked.
    #[error(
        "pg_control catalog_version_no {catalog} is no PostgreSQL {majors} release's \
         (pg_control_version {version}): pgha does not guess its layout"
    )]
    UnknownCatalog {
        version: u32,
        catalog: u32,
        majors: String,
    },
    /// No PostgreSQL writes such a `pg_control_version`: the file is something else, or
    /// overwritten (an all-zero file reads 0).
    #[error(
        "not a pg_control file: its pg_control_version field holds {0} ({0:#010x}), \
         where PostgreSQL writes a number like 1300"
    )]
    NotPgControl(u32),
    /// Bytes `[0, at)` do not match the CRC-32C stored at `at` (288 in 13–17, 292 in 18,
    /// 308 in 19). A file from a 32-bit build would most likely end here too (believed, not
    /// tried): its CRC sits at another offset.
    #[error(
        "pg_control CRC mismatch: stored {stored:#010x}, computed {computed:#010x} over \
         bytes 0..{at}: the file is corrupt"
    )]
    Crc {
        stored: u32,
        computed: u32,
        at: usize,
    },
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
    /// A field holds a value no PostgreSQL 13–19 writes, in a file whose CRC is right.
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

    /// A valid pg_control of a PostgreSQL major (or release) pgha does not know: this node
    /// runs software pgha cannot manage, as opposed to a damaged file.
    pub fn is_unknown_version(&self) -> bool {
        matches!(
            self,
            ControlError::Invalid {
                source: DecodeError::UnknownVersion(_) | DecodeError::UnknownCatalog { .. },
                ..
            }
        )
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

/// Decodes the bytes of a `pg_control` file (normally 8192; the struct, 296 or 312 bytes
/// depending on the version, is read).
///
/// The checks come in the order that gives the most useful error, the server's own order:
/// - length first, so every later read is in bounds;
/// - `pg_control_version` before the CRC, because where the CRC sits depends on the version:
///   a cluster of PostgreSQL 12 or 20 must be reported as such, not as corrupt. The version
///   also tells a file that is not a `pg_control` at all ([`DecodeError::NotPgControl`]) and
///   one written big-endian ([`DecodeError::Layout`]);
/// - the CRC before any other field, so a corrupt file is called corrupt rather than blamed
///   on whichever field the damage hit;
/// - `maxAlign` and `floatFormat`, which confirm the 64-bit little-endian layout;
/// - the catalog version, which must be one of the version's majors' (it names the major);
/// - every value turned into a type: `state`, `wal_level`, the bools,
///   `data_checksum_version`, and the block and segment sizes, which later code divides by.
///
/// The zero padding after the struct is not checked: the server never reads it, and pgha
/// should not refuse a file the server accepts.
pub fn decode(bytes: &[u8]) -> Result<ControlFile, DecodeError> {
    if bytes.len() < MIN_STRUCT_SIZE {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            needed: MIN_STRUCT_SIZE,
        });
    }
    let raw = Raw(bytes);

    let pg_control_version = raw.u32(offset::PG_CONTROL_VERSION)?;
    let layout = layout_of(pg_control_version)?;
    if bytes.len() < layout.size {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            needed: layout.size,
        });
    }

    let stored = raw.u32(layout.crc)?;
    let computed = crc32c::crc32c(raw.bytes(0, layout.crc)?);
    if stored != computed {
        return Err(DecodeError::Crc {
            stored,
            computed,
            at: layout.crc,
        });
    }

    let max_align = raw.u32(layout.max_align)?;
    if max_align != MAX_ALIGN {
        return Err(DecodeError::Layout {
            field: "maxAlign",
            found: max_align.to_string(),
            expected: "8",
        });
    }
    // Compared as bits: the value must be exactly the one the server writes.
    let float_format = raw.u64(layout.float_format)?;
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

    let catalog_version = raw.u32(offset::CATALOG_VERSION_NO)?;
    let major = major_of(layout, catalog_version)?;

    let state = raw.u32(offset::STATE)?;
    let state = DbState::from_raw(state).ok_or(DecodeError::BadValue {
        field: "state",
        value: state,
        expected: "a DBState, 0 to 6",
    })?;
    let wal_level = raw.u32(layout.wal_level)?;
    let wal_level = WalLevel::from_raw(wal_level).ok_or(DecodeError::BadValue {
        field: "wal_level",
        value: wal_level,
        expected: "0 (minimal), 1 (replica) or 2 (logical)",
    })?;
    let data_checksum_version = raw.u32(layout.data_checksum_version)?;
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
        catalog_version,
        major,
        state,
        time: raw.i64(offset::TIME)?,
        checkpoint: raw.lsn(offset::CHECKPOINT)?,
        checkpoint_redo: raw.lsn(offset::REDO)?,
        checkpoint_timeline: raw.u32(offset::THIS_TIMELINE_ID)?,
        checkpoint_prev_timeline: raw.u32(offset::PREV_TIMELINE_ID)?,
        checkpoint_full_page_writes: raw.bool(offset::FULL_PAGE_WRITES, "fullPageWrites")?,
        min_recovery_point: raw.lsn(layout.min_recovery_point)?,
        min_recovery_point_timeline: raw.u32(layout.min_recovery_point_tli)?,
        backup_start_point: raw.lsn(layout.backup_start_point)?,
        backup_end_point: raw.lsn(layout.backup_end_point)?,
        backup_end_required: raw.bool(layout.backup_end_required, "backupEndRequired")?,
        wal_level,
        wal_log_hints: raw.bool(layout.wal_log_hints, "wal_log_hints")?,
        data_checksum_version,
        block_size: raw.size(layout.blcksz, "blcksz", BLOCK_SIZES)?,
        relseg_size: raw.positive(layout.relseg_size, "relseg_size")?,
        wal_block_size: raw.size(layout.xlog_blcksz, "xlog_blcksz", WAL_BLOCK_SIZES)?,
        wal_segment_size: raw.size(layout.xlog_seg_size, "xlog_seg_size", WAL_SEGMENT_SIZES)?,
    })
}

fn known_layout(version: u32) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|layout| layout.version == version)
}

/// The `pg_control` a natively rewound directory starts from: the source's file, checked as
/// [`decode`] checks it, with `state`, replay required up to `min_recovery_point` on
/// `timeline`, `time` now, the CRC made again, and zeros up to the file's 8192 bytes.
/// pg_rewind writes "in archive recovery", which makes the server fsync the whole data
/// directory when it starts (0.1 s of a 1 s failback at 1 GB), in case the stopped server
/// left writes unsynced; "shut down in recovery" spares that where the rewind synced all
/// such files itself. Every major since 9.2 accepts either with a backup label taken from a
/// standby, which is what the rewound directory carries.
pub fn for_rewound_target(
    source: &[u8],
    state: DbState,
    min_recovery_point: Lsn,
    timeline: TimelineId,
    now: i64,
) -> Result<Vec<u8>, DecodeError> {
    decode(source)?;
    let layout = layout_of(Raw(source).u32(offset::PG_CONTROL_VERSION)?)?;
    let mut bytes = vec![0u8; FILE_SIZE];
    let (head, _) = bytes.split_at_mut(layout.size);
    head.copy_from_slice(source.get(..layout.size).unwrap_or_default());
    let mut put = |at: usize, value: &[u8]| {
        if let Some(field) = bytes.get_mut(at..at + value.len()) {
            field.copy_from_slice(value);
        }
    };
    put(offset::STATE, &state.raw().to_le_bytes());
    put(offset::TIME, &now.to_le_bytes());
    put(
        layout.min_recovery_point,
        &min_recovery_point.0.to_le_bytes(),
    );
    put(layout.min_recovery_point_tli, &timeline.to_le_bytes());
    let crc = crc32c::crc32c(bytes.get(..layout.crc).unwrap_or_default());
    if let Some(field) = bytes.get_mut(layout.crc..layout.crc + 4) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(bytes)
}

fn layout_of(version: u32) -> Result<&'static Layout, DecodeError> {
    if let Some(layout) = known_layout(version) {
        return Ok(layout);
    }
    let swapped = version.swap_bytes();
    if known_layout(swapped).is_some() {
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

/// The major of `layout` whose catalog versions hold `catalog`.
fn major_of(layout: &Layout, catalog: u32) -> Result<u32, DecodeError> {
    layout
        .majors
        .iter()
        .find(|range| (range.first..=range.last).contains(&catalog))
        .map(|range| range.major)
        .ok_or_else(|| DecodeError::UnknownCatalog {
            version: layout.version,
            catalog,
            majors: match layout.majors {
                [only] => only.major.to_string(),
                [first, .., last] => format!("{}–{}", first.major, last.major),
                [] => "(none)".to_owned(),
            },
        })
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
    fn positive(&self, at: usize, field: &'static str) -> Result<u32, DecodeError> {
        match self.u32(at)? {
            0 => Err(DecodeError::BadValue {
                field,
                value: 0,
                expected: "more than 0",
            }),
            value => Ok(value),
        }
    }

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
