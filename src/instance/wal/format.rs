//! What the parts of the WAL reader share and every major pgha reads (13–19) has alike: the
//! sizes of pages and record headers, alignment, the `xlp_info` bits, the resource manager
//! ids and info bits pgha looks at, and bounds-checked little-endian reads of fixed fields.
//! What differs between majors is in `major`; what one part alone needs stays in that part.

/// `XLOG_BLCKSZ`: the WAL page size of default builds, the only one pgha reads.
pub const WAL_PAGE_SIZE: u32 = 8192;
pub(super) const PAGE: u64 = WAL_PAGE_SIZE as u64;

/// `SizeOfXLogRecord`; `xl_crc` is its last field.
pub(super) const RECORD_HEADER: usize = 24;
pub(super) const CRC_OFFSET: usize = 20;
/// Records start at multiples of `MAXIMUM_ALIGNOF` (8 on the builds pgha reads).
pub(super) const MAX_ALIGN: u64 = 8;
/// The longest record accepted. PostgreSQL 17 and later refuse to write records over
/// `XLogRecordMaxSize` (1020 MiB); older readers cannot allocate more than `MaxAllocSize`
/// (1 GiB - 1), so no record a server of 13–19 can read back is refused here (believed for
/// 13–16, from the allocation limit).
pub(super) const MAX_RECORD_LEN: u32 = 0x3FFF_FFFF;

/// The `xlp_info` bits every major has alike; the others (`XLP_ALL_FLAGS`, the overwrite
/// flag) are in `major`.
pub(super) mod xlp {
    pub(in crate::instance::wal) const FIRST_IS_CONTRECORD: u16 = 0x0001;
    pub(in crate::instance::wal) const LONG_HEADER: u16 = 0x0002;
}

/// `RM_XLOG_ID`, the resource manager of checkpoint records.
pub const RM_XLOG_ID: u8 = 0;
/// `XLOG_CHECKPOINT_SHUTDOWN` and `XLOG_CHECKPOINT_ONLINE`, in the high nibble of `xl_info`.
pub const XLOG_CHECKPOINT_SHUTDOWN: u8 = 0x00;
pub const XLOG_CHECKPOINT_ONLINE: u8 = 0x10;
/// `XLOG_SWITCH`: the rest of the segment is unused, the next record starts the next one.
pub(super) const XLOG_SWITCH: u8 = 0x40;
/// `XLR_RMGR_INFO_MASK`: the bits of `xl_info` that belong to the resource manager.
pub(super) const RMGR_INFO_MASK: u8 = 0xF0;

/// Rounds up to a multiple of 8 (`MAXALIGN`).
pub(super) fn align(value: u64) -> u64 {
    value.saturating_add(MAX_ALIGN - 1) & !(MAX_ALIGN - 1)
}

/// Bounds-checked little-endian reads at fixed offsets.
pub(super) struct Bytes<'a>(pub(super) &'a [u8]);

impl Bytes<'_> {
    pub(super) fn array<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.0.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    pub(super) fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }

    pub(super) fn u16(&self, at: usize) -> Option<u16> {
        self.array(at).map(u16::from_le_bytes)
    }

    pub(super) fn u32(&self, at: usize) -> Option<u32> {
        self.array(at).map(u32::from_le_bytes)
    }

    pub(super) fn u64(&self, at: usize) -> Option<u64> {
        self.array(at).map(u64::from_le_bytes)
    }
}
