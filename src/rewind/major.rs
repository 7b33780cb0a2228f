//! What differs between the majors' `pg_rewind`: one row per major in [`PG_REWINDS`]. The
//! rewind asks the row of the pg_rewind it runs (the data directory's major, `Instance::bin`)
//! and never compares version numbers itself. A new major is a new row.
//!
//! Where the facts come from: each major's `pg_rewind --help` (the bindirs of
//! `tests/pgbin/fetch.sh`), pgha's pg_rewind notes (`rewind.md` §1.1, §1.2 step 8, §2.3) and
//! runs of each major's pg_rewind (`make bench-rewind PG=N`, the README's benchmark).

/// Which WAL segments of the source's `pg_wal` pg_rewind copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalCopied {
    /// Every segment the source keeps, whatever its age: up to 18, WAL files are not
    /// relation files, and every file present on both sides is copied whole.
    All,
    /// Only the segments from the one holding the fork point on (19: upstream commit
    /// 5173bfd0443, "Skip copy of WAL segments generated before point of divergence": an
    /// older segment of the same size on both sides is left alone).
    FromForkSegment,
}

/// One major's pg_rewind, where it differs from another's.
#[derive(Debug, PartialEq, Eq)]
pub struct PgRewind {
    /// The major version, as `PG_VERSION` says it.
    pub version: u32,
    /// Takes the source's timeline from its last checkpoint only (≤ 15): a just promoted
    /// source must checkpoint first, or pg_rewind sees no fork and says "no rewind
    /// required". 16 also reads `minRecoveryPointTLI`.
    pub needs_promotion_checkpoint: bool,
    /// `--config-file` (15 on).
    pub config_file: bool,
    /// `--sync-method=fsync|syncfs` (17 on).
    pub sync_method: bool,
    pub wal_copied: WalCopied,
    /// The native engine's differential suite (`tests/integration/rewind/native.rs`: every
    /// relation fork, `pg_xact` and `pg_multixact` equal to pg_rewind's, block for block)
    /// passes on this major: `rewind_engine=auto` may use it. (13's finding, a pg_depend one
    /// block apart, was the test's order: 13's pg_rewind writes a temporary table on its
    /// source, and the suite ran it first.)
    pub native_proven: bool,
    /// Copies a database directory's `PG_VERSION` when the target lacks it (14 on). 13's
    /// skips every `PG_VERSION`: a database the old primary dropped after the fork comes back
    /// without one and refuses connections, and replay does not make it again (it was created
    /// before the redo point). pgha writes it back (`forensics::put_back_database_versions`).
    pub copies_database_pg_version: bool,
}

/// Every major pgha manages, oldest first.
pub static PG_REWINDS: [PgRewind; 7] = [
    row(13, true, false, false, WalCopied::All, true, false),
    row(14, true, false, false, WalCopied::All, true, true),
    row(15, true, true, false, WalCopied::All, true, true),
    row(16, false, true, false, WalCopied::All, true, true),
    row(17, false, true, true, WalCopied::All, true, true),
    row(18, false, true, true, WalCopied::All, true, true),
    row(
        19,
        false,
        true,
        true,
        WalCopied::FromForkSegment,
        true,
        true,
    ),
];

const fn row(
    version: u32,
    needs_promotion_checkpoint: bool,
    config_file: bool,
    sync_method: bool,
    wal_copied: WalCopied,
    native_proven: bool,
    copies_database_pg_version: bool,
) -> PgRewind {
    PgRewind {
        version,
        needs_promotion_checkpoint,
        config_file,
        sync_method,
        wal_copied,
        native_proven,
        copies_database_pg_version,
    }
}

/// The pg_rewind of `major`: its row, or for a major newer than the last row, the last row
/// (pg_rewind's options have only ever been added). Majors before the first row are refused
/// before a rewind is considered (`instance::MIN_MAJOR`); they get the first row.
pub fn pg_rewind(major: u32) -> &'static PgRewind {
    PG_REWINDS
        .iter()
        .rev()
        .find(|row| row.version <= major)
        .unwrap_or(&PG_REWINDS[0])
}

/// Whether the native engine is proven on `major`: its own row says so. A major newer
/// than the last row is not (its WAL and files are not proven, whatever its pg_rewind
/// takes).
pub fn native_proven(major: u32) -> bool {
    PG_REWINDS
        .iter()
        .any(|row| row.version == major && row.native_proven)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_order_and_start_at_the_oldest_managed_major() {
        assert_eq!(PG_REWINDS[0].version, crate::instance::MIN_MAJOR);
        for pair in PG_REWINDS.windows(2) {
            let [older, newer] = pair else { continue };
            assert_eq!(newer.version, older.version + 1, "{newer:?}");
        }
    }

    #[test]
    fn each_major_finds_its_row_and_a_newer_one_the_last() {
        assert_eq!(pg_rewind(15).version, 15);
        assert_eq!(pg_rewind(19).version, 19);
        assert_eq!(pg_rewind(20).version, 19);
        assert!(!pg_rewind(16).sync_method && pg_rewind(17).sync_method);
        assert!(pg_rewind(15).needs_promotion_checkpoint);
        assert!(!pg_rewind(16).needs_promotion_checkpoint);
        assert_eq!(pg_rewind(18).wal_copied, WalCopied::All);
        assert_eq!(pg_rewind(19).wal_copied, WalCopied::FromForkSegment);
    }

    #[test]
    fn the_native_engine_is_proven_on_13_to_19_only() {
        let proven: Vec<u32> = (10..=25).filter(|m| native_proven(*m)).collect();
        assert_eq!(proven, (13..=19).collect::<Vec<u32>>());
    }
}
