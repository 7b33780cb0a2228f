//! What the target changed since the last common checkpoint, read from its own WAL: the
//! blocks of each relation it wrote past the fork, which a rewind must fetch back from the
//! source. The first part of a native rewind (issue 14); today `pgha rewind --check` reports
//! it next to the estimate, and the integration tests prove it equal to pg_rewind's own
//! block list.
//!
//! The rules are pg_rewind's (`extractPageInfo`, `rewind.md` §3.7): records that create,
//! drop or truncate whole files are left to the comparison of file sizes and existence;
//! every other record contributes the main-fork blocks it references (the other forks are
//! copied whole). A record no rule covers with certainty — one that says it changes a
//! relation in a way not listed, or a custom resource manager's — is [`Unclassified`]: the
//! caller hands over to pg_rewind, never guesses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use crate::deadline::Deadline;
use crate::instance::wal::{self, WalRecord, WalkError};
use crate::lsn::{Lsn, TimelineId};

/// Resource manager ids, the same in 13–19 (`rmgrlist.h`).
const RM_XACT_ID: u8 = 1;
const RM_SMGR_ID: u8 = 2;
const RM_DBASE_ID: u8 = 4;
/// `RM_MIN_CUSTOM_ID`: extensions' resource managers (15+).
const MIN_CUSTOM_RMID: u8 = 128;
/// `XLR_SPECIAL_REL_UPDATE`: the record changes relation files in a way its block
/// references do not show.
const SPECIAL_REL_UPDATE: u8 = 0x01;
const RMGR_INFO_MASK: u8 = 0xF0;
/// `XLOG_XACT_OPMASK` and the kinds that may carry dropped relations (commit, abort and
/// their prepared forms).
const XACT_OPMASK: u8 = 0x70;
const XACT_DROPS: [u8; 4] = [0x00, 0x20, 0x30, 0x40];
/// `XLOG_SMGR_CREATE`, `XLOG_SMGR_TRUNCATE`.
const SMGR_FILE_LEVEL: [u8; 2] = [0x10, 0x20];
const MAIN_FORK: u8 = 0;

/// Main-fork block numbers per relation.
pub type Blocks = BTreeMap<Relation, BTreeSet<u32>>;

/// A relation's main fork: tablespace, database and relation file number, as block
/// references name it (`RelFileLocator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Relation {
    pub tablespace: u32,
    pub database: u32,
    pub number: u32,
}

/// What one record means for a rewind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Its main-fork block references are blocks to fetch back.
    Blocks,
    /// It creates, drops or truncates whole files: the file comparison covers it.
    Files,
}

/// A record no rule covers with certainty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the record at {lsn} (resource manager {rmid}, info {info:#04X}) {why}")]
pub struct Unclassified {
    pub lsn: Lsn,
    pub rmid: u8,
    pub info: u8,
    pub why: &'static str,
}

/// What a record of `rmid` with `info`, written by `major`, means for a rewind; `Err` with
/// the reason when no rule covers it.
pub fn classify(major: u32, rmid: u8, info: u8) -> Result<Effect, &'static str> {
    let kind = info & RMGR_INFO_MASK;
    let file_level = match rmid {
        RM_DBASE_ID => dbase_file_level(major).contains(&kind),
        RM_SMGR_ID => SMGR_FILE_LEVEL.contains(&kind),
        // Commit and abort records list the relations they drop from 14 on, and say so.
        RM_XACT_ID => major >= 14 && XACT_DROPS.contains(&(info & XACT_OPMASK)),
        _ => false,
    };
    if file_level {
        Ok(Effect::Files)
    } else if rmid >= MIN_CUSTOM_RMID {
        Err("belongs to an extension's resource manager")
    } else if info & SPECIAL_REL_UPDATE != 0 {
        Err("changes a relation in a way pg_rewind's rules do not list")
    } else {
        Ok(Effect::Blocks)
    }
}

/// Whether a record of `rmid` that [`classify`] calls file-level only drops files: a
/// commit or an abort, which lists the relations it drops. The file comparison does all its
/// work (the files are gone from the source); a record that creates, truncates or copies
/// files leaves pages that no block reference names, which only its replay redoes.
pub fn only_drops_files(rmid: u8) -> bool {
    rmid == RM_XACT_ID
}

/// The database records that create or drop a whole database: `XLOG_DBASE_CREATE` (0x00)
/// and `XLOG_DBASE_DROP` (0x10) up to 14; from 15 `CREATE_FILE_COPY` (0x00),
/// `CREATE_WAL_LOG` (0x10) and `DROP` (0x20).
fn dbase_file_level(major: u32) -> &'static [u8] {
    if major >= 15 {
        &[0x00, 0x10, 0x20]
    } else {
        &[0x00, 0x10]
    }
}

/// The target's changes from the last common checkpoint to the end of its WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetChanges {
    /// The last common checkpoint, where the read starts.
    pub checkpoint: Lsn,
    /// Its redo point and timeline: where recovery after the rewind starts.
    pub checkpoint_redo: Lsn,
    pub checkpoint_timeline: TimelineId,
    /// Records read.
    pub records: u64,
    /// Records left to the file comparison.
    pub file_records: u64,
    /// The first of them.
    pub first_file_record: Option<Lsn>,
    /// Main-fork block numbers per relation (over all its 1 GB segment files).
    pub blocks: Blocks,
    /// The block added last: most records change the block the one before changed, and
    /// looking it up again in `blocks` was a fifth of the time spent reading. It is always
    /// in `blocks`, which only [`TargetChanges::add`] changes, and only adds to.
    pub(super) last_block: LastBlock,
}

/// [`TargetChanges::last_block`]: a memo, so two changes are equal whichever block each
/// added last.
#[derive(Debug, Clone, Copy, Default)]
pub struct LastBlock(Option<(Relation, u32)>);

impl PartialEq for LastBlock {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LastBlock {}

impl TargetChanges {
    /// Adds what `record` changed; `Err` when no rule covers it.
    pub fn add(&mut self, major: u32, record: &WalRecord) -> Result<(), Unclassified> {
        self.records += 1;
        let effect = classify(major, record.rmid, record.info).map_err(|why| Unclassified {
            lsn: record.lsn,
            rmid: record.rmid,
            info: record.info,
            why,
        })?;
        if effect == Effect::Files {
            self.file_records += 1;
            self.first_file_record.get_or_insert(record.lsn);
            return Ok(());
        }
        for block in record.blocks.iter().filter(|b| b.fork == MAIN_FORK) {
            let [tablespace, database, number] = block.rel;
            let relation = Relation {
                tablespace,
                database,
                number,
            };
            if self.last_block.0.replace((relation, block.block)) != Some((relation, block.block)) {
                self.blocks.entry(relation).or_default().insert(block.block);
            }
        }
        Ok(())
    }

    /// Changed blocks in all.
    pub fn block_count(&self) -> usize {
        self.blocks.values().map(BTreeSet::len).sum()
    }
}

impl fmt::Display for TargetChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} changed blocks in {} relations ({} MB) in {} records from the last common \
             checkpoint at {}",
            self.block_count(),
            self.blocks.len(),
            (self.block_count() as u64 * 8192) >> 20,
            self.records,
            self.checkpoint
        )
    }
}

/// Why the target's changes are not known: its WAL could not be read, or a record no rule
/// covers (either way a native rewind would hand over to pg_rewind).
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("the target's WAL: {0}")]
    Wal(#[from] WalkError),
    #[error(transparent)]
    Unclassified(#[from] Unclassified),
}

/// Reads the target's WAL in `pg_wal` (the files of `timeline`) from the last checkpoint
/// before `fork` to `end`, as pg_rewind does.
pub fn read(
    pg_wal: &Path,
    timeline: TimelineId,
    fork: Lsn,
    end: Lsn,
    segment_size: u32,
    major: u32,
    deadline: &Deadline,
) -> Result<TargetChanges, ChangesError> {
    let mut reading = Reading::start(pg_wal, timeline, fork, segment_size, major, deadline)?;
    let from = reading.changes.checkpoint;
    wal::records_between(pg_wal, timeline, from, end, segment_size, deadline, |r| {
        reading.visit(r)
    })?;
    reading.done()
}

/// [`read`] of a target that stopped uncleanly, in the same pass as the search for where
/// its crash recovery would stop ([`wal::end_of_wal_for_recovery`]): the changes from the
/// last checkpoint before `fork` to that end, and the end. `Ok(None)` when recovery would
/// not certainly stop there.
pub fn read_to_recovery_end(
    pg_wal: &Path,
    timeline: TimelineId,
    fork: Lsn,
    segment_size: u32,
    major: u32,
    deadline: &Deadline,
) -> Result<Option<(TargetChanges, Lsn)>, ChangesError> {
    let mut reading = Reading::start(pg_wal, timeline, fork, segment_size, major, deadline)?;
    let from = reading.changes.checkpoint;
    let end =
        wal::records_to_end_for_recovery(pg_wal, timeline, from, segment_size, deadline, |r| {
            reading.visit(r)
        });
    let changes = reading.done()?;
    Ok(end.map(|end| (changes, end)))
}

/// Changes being read from the last checkpoint before a fork; the first record no rule
/// covers is kept, and fails the reading at its end.
struct Reading {
    changes: TargetChanges,
    major: u32,
    unclassified: Option<Unclassified>,
}

impl Reading {
    fn start(
        pg_wal: &Path,
        timeline: TimelineId,
        fork: Lsn,
        segment_size: u32,
        major: u32,
        deadline: &Deadline,
    ) -> Result<Reading, ChangesError> {
        let (checkpoint, fields) =
            wal::checkpoint_before(pg_wal, timeline, fork, segment_size, deadline)?;
        let changes = TargetChanges {
            checkpoint: checkpoint.lsn,
            checkpoint_redo: fields.redo,
            checkpoint_timeline: fields.timeline,
            ..TargetChanges::default()
        };
        Ok(Reading {
            changes,
            major,
            unclassified: None,
        })
    }

    fn visit(&mut self, record: &WalRecord) {
        if self.unclassified.is_none() {
            self.unclassified = self.changes.add(self.major, record).err();
        }
    }

    fn done(self) -> Result<TargetChanges, ChangesError> {
        match self.unclassified {
            Some(e) => Err(e.into()),
            None => Ok(self.changes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_classified_by_pg_rewinds_rules_for_each_major() {
        use Effect::{Blocks, Files};
        let files_or_blocks: &[(u32, u8, u8, Result<Effect, ()>)] = &[
            // (major, rmid, info, effect)
            (13, RM_DBASE_ID, 0x00, Ok(Files)),  // create
            (13, RM_DBASE_ID, 0x10, Ok(Files)),  // drop, up to 14
            (14, RM_DBASE_ID, 0x20, Ok(Blocks)), // no such record before 15
            (15, RM_DBASE_ID, 0x10, Ok(Files)),  // create (WAL_LOG)
            (15, RM_DBASE_ID, 0x20, Ok(Files)),  // drop, from 15
            (19, RM_DBASE_ID, 0x30 | SPECIAL_REL_UPDATE, Err(())),
            (13, RM_SMGR_ID, 0x10 | SPECIAL_REL_UPDATE, Ok(Files)), // create
            (17, RM_SMGR_ID, 0x20 | SPECIAL_REL_UPDATE, Ok(Files)), // truncate
            (13, RM_XACT_ID, 0x00, Ok(Blocks)),                     // 13: commits say nothing
            (14, RM_XACT_ID, SPECIAL_REL_UPDATE, Ok(Files)),        // commit (0x00) dropping rels
            (16, RM_XACT_ID, 0x80 | 0x40 | SPECIAL_REL_UPDATE, Ok(Files)), // abort prepared, has-info bit
            (16, RM_XACT_ID, 0x10 | SPECIAL_REL_UPDATE, Err(())),          // prepare: never drops
            (15, 10, 0x00, Ok(Blocks)),                                    // heap insert
            (15, 10, SPECIAL_REL_UPDATE, Err(())), // heap insert (0x00), flagged
            (18, 0, 0xB0, Ok(Blocks)),             // full-page image
            (15, 128, 0x00, Err(())),              // custom resource manager
            (19, 255, 0x00, Err(())),
        ];
        for &(major, rmid, info, expected) in files_or_blocks {
            assert_eq!(
                classify(major, rmid, info).map_err(|_| ()),
                expected,
                "{major} {rmid} {info:#04X}"
            );
        }
    }

    #[test]
    fn unclassified_names_the_record() {
        let e = Unclassified {
            lsn: Lsn(0x1_0000_0028),
            rmid: 130,
            info: 0x10,
            why: "belongs to an extension's resource manager",
        };
        assert_eq!(
            e.to_string(),
            "the record at 1/28 (resource manager 130, info 0x10) belongs to an extension's \
             resource manager"
        );
    }
}
