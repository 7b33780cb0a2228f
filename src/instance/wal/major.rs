//! What differs between the PostgreSQL majors whose WAL pgha reads: one row per major in
//! [`MAJORS`]. The magic on a page tells which major wrote it ([`by_page_magic`]); the
//! record and body checks then ask that row, never compare version numbers. Reading a new
//! major's WAL is adding its row here, and a field where its format changed in a way no
//! field describes yet.
//!
//! Where the facts come from: the notes (§3.1 for the page magics, §3.4 for `bimg_info`),
//! from the 13, 15 and 17 source trees (`xlog_internal.h`, `xlogrecord.h`, `rmgrlist.h`)
//! and pgBackRest's copies of the 12, 14 and 16 headers. Only the PostgreSQL 15 row has met
//! WAL a server wrote (`tests/fixtures/wal/pg15`, every page with magic 0xD110).

/// The WAL format of one major, where it differs from another's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Major {
    /// The major version, as `PG_VERSION` says it.
    pub(super) version: u32,
    /// `XLOG_PAGE_MAGIC`, the first field of every page header.
    pub(super) page_magic: u16,
    /// `RM_MAX_BUILTIN_ID`: the highest id of a built-in resource manager.
    pub(super) max_builtin_rmid: u8,
    /// Custom resource managers (ids 128 to 255) may write WAL.
    pub(super) custom_rmids: bool,
    /// A record body may carry the `XLR_BLOCK_ID_TOPLEVEL_XID` header.
    pub(super) toplevel_xid: bool,
    /// The `bimg_info` bits that say a full-page image is compressed (`HAS_HOLE`, 0x01, is
    /// the same in every major).
    pub(super) compressed_image: u8,
}

/// `BKPIMAGE_IS_COMPRESSED` of 12–14: pglz, the only method.
const IS_COMPRESSED: u8 = 0x02;
/// `BKPIMAGE_COMPRESS_PGLZ`, `_LZ4` and `_ZSTD` of 15 on, which moved `BKPIMAGE_APPLY` to
/// 0x02.
const COMPRESS_PGLZ_LZ4_ZSTD: u8 = 0x04 | 0x08 | 0x10;
/// `RM_MAX_BUILTIN_ID` of 12–17: 21, `LogicalMessage`.
const LOGICAL_MESSAGE: u8 = 21;

/// Every major pgha reads, oldest first.
pub(super) static MAJORS: [Major; 6] = [
    Major {
        version: 12,
        page_magic: 0xD101,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: false,
        toplevel_xid: false,
        compressed_image: IS_COMPRESSED,
    },
    Major {
        version: 13,
        page_magic: 0xD106,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: false,
        toplevel_xid: false,
        compressed_image: IS_COMPRESSED,
    },
    Major {
        version: 14,
        page_magic: 0xD10D,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: false,
        toplevel_xid: true,
        compressed_image: IS_COMPRESSED,
    },
    Major {
        version: 15,
        page_magic: 0xD110,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
    },
    Major {
        version: 16,
        page_magic: 0xD113,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
    },
    Major {
        version: 17,
        page_magic: 0xD116,
        max_builtin_rmid: LOGICAL_MESSAGE,
        custom_rmids: true,
        toplevel_xid: true,
        compressed_image: COMPRESS_PGLZ_LZ4_ZSTD,
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
    /// format, and every major 12–17 did.
    #[test]
    fn rows_are_in_order_and_magics_rise() {
        for pair in MAJORS.windows(2) {
            let [older, newer] = pair else { continue };
            assert_eq!(newer.version, older.version + 1, "{newer:?}");
            assert!(newer.page_magic > older.page_magic, "{newer:?}");
        }
        assert_eq!(by_page_magic(0xD110).map(|m| m.version), Some(15));
        assert_eq!(by_page_magic(0xD098), None, "PostgreSQL 11's magic");
    }
}
