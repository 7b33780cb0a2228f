//! Where recovery after a native rewind starts replaying. pg_rewind starts it at the last
//! common checkpoint's redo point, so the rewound node replays everything the source wrote
//! since the fork (all the WAL the source keeps, in the benchmark, 0.4–0.5 s of a 1.2 s
//! failback). The native engine starts it at the source's latest checkpoint instead when
//! it can name every block the source changed before that checkpoint: it reads the
//! source's WAL from the fork to that checkpoint's redo point (over SQL, or in a stopped
//! source's `pg_wal`) and fetches the main-fork blocks those records name, with those the
//! target changed from the last common checkpoint's redo point on (not from its record:
//! replay no longer passes between the two). A checkpoint writes out every page changed
//! before its redo point, so each block fetched after it holds those changes; replay from
//! it does the rest, as after a base backup.
//!
//! Only where that is certain; otherwise replay starts at the last common checkpoint, as
//! pg_rewind's does ([`Replay::from_last_common`]):
//! - the source is a primary whose latest checkpoint is on the timeline that begins at the
//!   fork (one switch since the fork: one timeline's files hold that WAL), past the fork;
//! - every source record there changes blocks only: one that creates, drops or truncates
//!   files (a database copied file by file has no block references at all), or one no rule
//!   covers, is work that only replay from the fork would redo;
//! - every WAL file is there and reads, record after record.

mod ahead;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::changes::{only_drops_files, Blocks, TargetChanges};
use super::decision::{History, SourceFacts};
use super::source::SourceSession;
use crate::deadline::Deadline;
use crate::instance::control;
use crate::instance::wal::{self, Segments};
use crate::lsn::{Lsn, TimelineId};

/// The checkpoint recovery starts from after a rewind: its record, its redo point and the
/// timeline whose files hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayStart {
    pub checkpoint: Lsn,
    pub redo: Lsn,
    pub timeline: TimelineId,
}

/// Where replay starts, and what that adds to the blocks to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub start: ReplayStart,
    /// From the source's latest checkpoint, what reading up to it found; `None`: from the
    /// last common checkpoint.
    pub from_source: Option<FromSource>,
    /// The target's blocks changed before where its change set starts (the last common
    /// checkpoint's record) that replay from this start does not rewrite.
    pub target_before: Blocks,
    /// The first record among those that creates, truncates or drops files.
    pub target_before_file_record: Option<Lsn>,
}

/// What replay from the source's checkpoint adds to a native rewind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromSource {
    /// Records of the source's WAL read, from the fork to the checkpoint's redo point, and
    /// their bytes (read over SQL from a running source: a cost of the engine's too).
    pub records: u64,
    pub wal_read: u64,
    /// The blocks the source changed since the fork.
    pub blocks: Blocks,
    /// A running source's insert position, read after its pg_control (its checkpoint is
    /// behind it); a stopped source's last checkpoint.
    pub source_end: Lsn,
}

impl Replay {
    /// pg_rewind's: from the last common checkpoint, which `changes` were read from.
    pub fn from_last_common(changes: &TargetChanges) -> Replay {
        Replay {
            start: ReplayStart {
                checkpoint: changes.checkpoint,
                redo: changes.checkpoint_redo,
                timeline: changes.checkpoint_timeline,
            },
            from_source: None,
            target_before: Blocks::new(),
            target_before_file_record: None,
        }
    }

    /// The blocks to fetch: the target's `changes`, and the ones this start adds.
    pub fn blocks(&self, changes: &TargetChanges) -> Blocks {
        let mut blocks = changes.blocks.clone();
        let source = self.from_source.iter().flat_map(|f| &f.blocks);
        for (relation, more) in source.chain(&self.target_before) {
            blocks.entry(*relation).or_default().extend(more);
        }
        blocks
    }
}

impl fmt::Display for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from_source {
            None if self.target_before.is_empty() => {
                write!(f, "the last common checkpoint at {}", self.start.checkpoint)
            }
            None => write!(
                f,
                "the last common checkpoint at {} (and {} blocks the target changed before it)",
                self.start.checkpoint,
                count(&self.target_before)
            ),
            Some(from) => write!(
                f,
                "the source's checkpoint at {} (its {} records since the fork read, {} MB: \
                 {} blocks more)",
                self.start.checkpoint,
                from.records,
                from.wal_read >> 20,
                count(&from.blocks) + count(&self.target_before)
            ),
        }
    }
}

fn count(blocks: &Blocks) -> usize {
    blocks.values().map(BTreeSet::len).sum()
}

/// Where the source's WAL is read.
pub(super) enum SourceWal<'a> {
    Server(&'a SourceSession),
    /// A stopped source's data directory.
    Pgdata(&'a Path),
}

/// What [`choose`] reads the target's WAL with.
pub(super) struct TargetWal<'a> {
    pub pg_wal: &'a Path,
    pub timeline: TimelineId,
    pub segment_size: u32,
    pub major: u32,
    /// The redo point of the target's own latest checkpoint (its pg_control's): its disk
    /// holds every change before it, and of later ones only what its WAL names.
    pub own_redo: Lsn,
}

/// The source's WAL read from the fork to its latest checkpoint ([`read_source`]): where
/// replay may start and the blocks that adds, or why replay cannot start there.
pub(super) struct SourceRead(Result<(ReplayStart, FromSource), String>);

/// Reads the source's WAL of a target forked at `fork` up to the source's latest checkpoint,
/// in a quarter of the time left at most. It needs nothing of the target's but its WAL's
/// geometry, so it runs while the target's own WAL is read.
pub(super) fn read_source(
    segment_size: u32,
    major: u32,
    fork: Lsn,
    source: Option<&SourceWal>,
    facts: &SourceFacts,
    deadline: &Deadline,
) -> SourceRead {
    let budget = deadline.at_most(deadline.remaining() / 4);
    let read = match source {
        Some(source) => from_source_checkpoint(segment_size, major, fork, source, facts, &budget),
        None => Err("no connection to the source".into()),
    };
    SourceRead(read)
}

/// Where replay starts after a native rewind of a target whose `changes` are known, from
/// what reading the `source`'s WAL found, and the blocks of the target's that it adds; why
/// not from the source's checkpoint is logged. `Err` when the target's own WAL does not say
/// which blocks a start at the last common checkpoint would leave stale (the engine then
/// hands over).
pub(super) fn choose(
    target: &TargetWal,
    changes: &TargetChanges,
    source: SourceRead,
    deadline: &Deadline,
) -> Result<Replay, String> {
    let from_source = source.0.and_then(|(start, from)| {
        // Replay no longer passes the last common checkpoint's redo point: the target's
        // blocks from there (or from its own older checkpoint) to that record.
        let from_redo = changes.checkpoint_redo.min(target.own_redo);
        let before = target_changes(target, from_redo, changes.checkpoint, deadline)?;
        Ok(Replay {
            start,
            from_source: Some(from),
            target_before: before.blocks,
            target_before_file_record: before.first_file_record,
        })
    });
    match from_source {
        Ok(replay) => Ok(replay),
        Err(why) => {
            log::info!(
                "replay after a native rewind would start at the last common checkpoint: {why}"
            );
            // A target that stopped uncleanly before its first checkpoint past the last
            // common one holds, before that one's redo point, only what its own wrote.
            let before = if target.own_redo < changes.checkpoint_redo {
                target_changes(target, target.own_redo, changes.checkpoint_redo, deadline)?
            } else {
                TargetChanges::default()
            };
            Ok(Replay {
                target_before: before.blocks,
                target_before_file_record: before.first_file_record,
                ..Replay::from_last_common(changes)
            })
        }
    }
}

/// The main-fork blocks the target's records from `from` to `before` name, and how many of
/// them create, drop or truncate files (before the fork: the source did the same).
fn target_changes(
    target: &TargetWal,
    from: Lsn,
    before: Lsn,
    deadline: &Deadline,
) -> Result<TargetChanges, String> {
    let (mut read, mut unclassified) = (TargetChanges::default(), None);
    wal::records_before(
        Segments::Dir(target.pg_wal),
        target.timeline,
        from,
        before,
        target.segment_size,
        deadline,
        |record| {
            let added = read.add(target.major, record);
            added.map_err(|e| unclassified = Some(e)).is_ok()
        },
    )
    .map_err(|e| format!("the target's WAL from {from} to {before}: {e}"))?;
    match unclassified {
        Some(e) => Err(format!("the target's WAL from {from} to {before}: {e}")),
        None => Ok(read),
    }
}

/// The source's latest checkpoint, where it may be where replay starts, and what its WAL
/// from the fork to that checkpoint's redo point changed; `Err` says why not.
fn from_source_checkpoint(
    segment_size: u32,
    major: u32,
    fork: Lsn,
    source: &SourceWal,
    facts: &SourceFacts,
    deadline: &Deadline,
) -> Result<(ReplayStart, FromSource), String> {
    if facts.in_recovery {
        return Err("the source is a standby".into());
    }
    let (control, end) = match source {
        SourceWal::Server(session) => {
            let control = session.control(deadline).map_err(|e| e.to_string())?;
            // Asked after pg_control: its checkpoint is behind this, as a real one is.
            let end = session.insert_lsn(deadline).map_err(|e| e.to_string())?;
            (control, end)
        }
        SourceWal::Pgdata(dir) => {
            let control = control::read(dir).map_err(|e| e.to_string())?;
            let end = control.checkpoint;
            (control, end)
        }
    };
    let start = ReplayStart {
        checkpoint: control.checkpoint,
        redo: control.checkpoint_redo,
        timeline: control.checkpoint_timeline,
    };
    usable(fork, &facts.history, &start)?;
    if start.checkpoint > end {
        return Err(format!(
            "the source's pg_control names a checkpoint at {}, past its end of WAL at {end}",
            start.checkpoint
        ));
    }
    // A page read while the source writes it is made whole by replay only from the full
    // page image its first change after the checkpoint writes.
    if !control.checkpoint_full_page_writes {
        return Err("the source's checkpoint was made with full_page_writes off".into());
    }
    let (mut read, mut refused) = (TargetChanges::default(), None);
    let mut visit = |record: &wal::WalRecord| {
        refused = match read.add(major, record) {
            Err(e) => Some(e.to_string()),
            Ok(()) if read.file_records > 0 && !only_drops_files(record.rmid) => Some(format!(
                "the record at {} (resource manager {}, info {:#04X}) creates, truncates or \
                 copies files",
                record.lsn, record.rmid, record.info
            )),
            Ok(()) => None,
        };
        read.file_records = 0;
        refused.is_none()
    };
    let records = match source {
        SourceWal::Server(session) => ahead::read_ahead(
            session,
            start.timeline,
            (fork, start.redo),
            segment_size,
            deadline,
            |segments| source_records(segments, &start, fork, segment_size, deadline, &mut visit),
        ),
        SourceWal::Pgdata(dir) => {
            let pg_wal = dir.join("pg_wal");
            let segments = Segments::Dir(&pg_wal);
            source_records(segments, &start, fork, segment_size, deadline, &mut visit)
        }
    }
    .map_err(|e| format!("the source's WAL from the fork: {e}"))?;
    if let Some(why) = refused {
        return Err(format!("the source's WAL from the fork: {why}"));
    }
    let from = FromSource {
        records,
        wal_read: start.redo.0 - fork.0,
        blocks: read.blocks,
        source_end: end,
    };
    Ok((start, from))
}

fn source_records(
    segments: Segments<'_, '_>,
    start: &ReplayStart,
    fork: Lsn,
    segment_size: u32,
    deadline: &Deadline,
    visit: &mut dyn FnMut(&wal::WalRecord) -> bool,
) -> Result<u64, wal::WalkError> {
    wal::records_before(
        segments,
        start.timeline,
        fork,
        start.redo,
        segment_size,
        deadline,
        visit,
    )
}

/// Whether the source's latest checkpoint `start` may be where replay starts after a fork
/// at `fork`, with the source's `history`: `Err` says why not.
fn usable(fork: Lsn, history: &History, start: &ReplayStart) -> Result<(), String> {
    let Some(current) = history.entries().last() else {
        return Err("the source's history is empty".into());
    };
    if current.begin != fork {
        return Err(format!(
            "the source's timeline {} began at {}, not at the fork at {fork}",
            current.tli, current.begin
        ));
    }
    if start.timeline != current.tli {
        return Err(format!(
            "the source's latest checkpoint is on timeline {}, not on its timeline {}",
            start.timeline, current.tli
        ));
    }
    if start.redo <= fork || start.checkpoint < start.redo {
        return Err(format!(
            "the source's latest checkpoint (redo point {}) is not past the fork at {fork}",
            start.redo
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_starts_at_the_sources_checkpoint_only_past_the_fork_on_its_timeline() {
        let history = History::parse(2, "1\t0/6E000000\tno recovery target specified\n").unwrap();
        let three = History::parse(
            3,
            "1\t0/6E000000\tno recovery target specified\n2\t0/70000000\tbefore 3\n",
        )
        .unwrap();
        let fork = Lsn(0x6E00_0000);
        let start = |redo: u64, checkpoint: u64, timeline| ReplayStart {
            checkpoint: Lsn(checkpoint),
            redo: Lsn(redo),
            timeline,
        };
        // (history, checkpoint, usable, why not)
        let table = [
            (&history, start(0x7100_0028, 0x7100_1000, 2), true, ""),
            // A shutdown checkpoint: its record is its redo point.
            (&history, start(0x7100_0028, 0x7100_0028, 2), true, ""),
            (
                &history,
                start(0x6D00_0060, 0x6D00_0100, 1),
                false,
                "on timeline 1",
            ),
            (&history, start(0x6E00_0028, 0x6E00_0100, 2), true, ""),
            (
                &history,
                start(0x6E00_0000, 0x6E00_0100, 2),
                false,
                "not past the fork",
            ),
            (
                &three,
                start(0x7100_0028, 0x7100_1000, 3),
                false,
                "began at 0/70000000",
            ),
            (
                &History::first(),
                start(0x7100_0028, 0x7100_1000, 1),
                false,
                "began at 0/0",
            ),
        ];
        for (history, start, ok, why) in table {
            let found = usable(fork, history, &start);
            assert_eq!(found.is_ok(), ok, "{start:?}: {found:?}");
            if let Err(e) = found {
                assert!(e.contains(why), "{start:?}: {e}");
            }
        }
    }

    #[test]
    fn the_blocks_to_fetch_are_the_targets_and_those_the_start_of_replay_adds() {
        use crate::rewind::changes::Relation;
        use std::collections::BTreeMap;
        let rel = |number| Relation {
            tablespace: 1663,
            database: 5,
            number,
        };
        let mut changes = TargetChanges::default();
        changes.blocks.insert(rel(1), BTreeSet::from([1, 2]));
        let last_common = Replay::from_last_common(&changes);
        assert_eq!(last_common.blocks(&changes), changes.blocks);
        assert!(last_common.to_string().ends_with("checkpoint at 0/0"));
        let from_source = Replay {
            start: ReplayStart::default(),
            from_source: Some(FromSource {
                records: 9,
                wal_read: 3 << 20,
                blocks: BTreeMap::from([(rel(1), BTreeSet::from([2, 3]))]),
                source_end: Lsn(0),
            }),
            target_before: BTreeMap::from([(rel(2), BTreeSet::from([0]))]),
            target_before_file_record: None,
        };
        assert_eq!(
            from_source.blocks(&changes),
            BTreeMap::from([
                (rel(1), BTreeSet::from([1, 2, 3])),
                (rel(2), BTreeSet::from([0]))
            ])
        );
        assert!(from_source
            .to_string()
            .contains("9 records since the fork read, 3 MB: 3 blocks more"));
        // A target stopped before its first checkpoint past the last common one.
        let older = Replay {
            target_before: BTreeMap::from([(rel(3), BTreeSet::from([7, 8]))]),
            ..Replay::from_last_common(&changes)
        };
        assert_eq!(
            older.blocks(&changes).get(&rel(3)),
            Some(&BTreeSet::from([7, 8]))
        );
        assert!(older
            .to_string()
            .contains("and 2 blocks the target changed before it"));
    }
}
