//! Is a rewind needed? Facts in, [`Decision`] out; no I/O.
//!
//! This module owns the divergence decision and the arithmetic around it: timeline history
//! parsing (`pg_wal/NNNNNNNN.history`), the search for the last common timeline and the fork
//! point, where the target's WAL ends, and the choice between `pg_rewind` and a re-clone.
//! Gathering the facts is `target.rs`'s (local data directory) and `source.rs`'s (SQL on the
//! new primary) business.
//!
//! Where the facts come from: pgha's pg_rewind notes, §5 (history format, the common-ancestor
//! walk of pg_rewind's `findCommonAncestorTimeline`), §1.2 steps 8–10 (what pg_rewind compares)
//!. Two cases pg_rewind itself gets wrong are caught here:
//! a target *ahead* of the source on the same timeline (pg_rewind says "no rewind required"
//! without comparing positions), and a freshly promoted source whose pg_control still shows
//! the old timeline (PG ≤ 15; handled by the caller through [`SourceFacts::needs_checkpoint`]).

use std::fmt;

use super::major::{PgRewind, WalCopied};
use crate::instance::control::DbState;
use crate::lsn::{Lsn, TimelineId};

/// One line of a timeline history, as pg_rewind's `rewind_parseTimeLineHistory` returns it:
/// timeline `tli` holds WAL from `begin` up to `end` (`None`: still growing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    pub tli: TimelineId,
    pub begin: Lsn,
    pub end: Option<Lsn>,
}

/// The ancestry of one timeline, oldest first; the last entry is the timeline itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History(Vec<HistoryEntry>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("syntax error in history file of timeline {tli}, line {line:?}: {why}")]
    Syntax {
        tli: TimelineId,
        line: String,
        why: &'static str,
    },
    #[error("invalid history file of timeline {tli}, line {line:?}: {why}")]
    Invalid {
        tli: TimelineId,
        line: String,
        why: &'static str,
    },
}

impl History {
    /// Timeline 1 has no history file: it is its own whole ancestry.
    pub fn first() -> History {
        History::root(1)
    }

    /// A timeline with no parent (only timeline 1 in practice).
    pub fn root(tli: TimelineId) -> History {
        History(vec![HistoryEntry {
            tli,
            begin: Lsn::ZERO,
            end: None,
        }])
    }

    /// Parses the history file of timeline `tli` (`<parent>\t<switchpoint>\t<reason>` lines).
    /// Blank lines and `#` comments are skipped and text after the second field is ignored,
    /// as the server and pg_rewind do; timelines must strictly increase and stay below
    /// `tli`, and switchpoints must not go back. Two equal switchpoints are accepted: a
    /// standby that followed a new timeline and was promoted before replaying anything on it
    /// writes one (the server and pg_rewind check neither order). Whether the history fits
    /// the server that serves it and this node's own past is [`decide`]'s question.
    pub fn parse(tli: TimelineId, text: &str) -> Result<History, HistoryError> {
        let mut entries: Vec<HistoryEntry> = Vec::new();
        let mut begin = Lsn::ZERO;
        for raw in text.lines() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |why| HistoryError::Syntax {
                tli,
                line: raw.to_owned(),
                why,
            };
            let invalid = |why| HistoryError::Invalid {
                tli,
                line: raw.to_owned(),
                why,
            };
            let mut fields = line.split_whitespace();
            let parent: TimelineId = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| syntax("expected a numeric timeline ID"))?;
            let switchpoint: Lsn = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| syntax("expected a write-ahead log switchpoint location"))?;
            if entries.last().is_some_and(|e| parent <= e.tli) {
                return Err(invalid("timeline IDs must be in increasing sequence"));
            }
            if parent >= tli {
                return Err(invalid(
                    "timeline IDs must be less than child timeline's ID",
                ));
            }
            if switchpoint < begin {
                return Err(invalid("switchpoints must not go backwards"));
            }
            entries.push(HistoryEntry {
                tli: parent,
                begin,
                end: Some(switchpoint),
            });
            begin = switchpoint;
        }
        entries.push(HistoryEntry {
            tli,
            begin,
            end: None,
        });
        Ok(History(entries))
    }

    pub fn entries(&self) -> &[HistoryEntry] {
        &self.0
    }

    /// The timeline this history describes.
    pub fn timeline(&self) -> TimelineId {
        self.0.last().map_or(1, |e| e.tli)
    }

    /// Where this history leaves timeline `tli` (`None`: it never does, or `tli` is not in it).
    pub fn switchpoint_of(&self, tli: TimelineId) -> Option<Lsn> {
        self.0.iter().find(|e| e.tli == tli).and_then(|e| e.end)
    }
}

/// Where two histories part (`findCommonAncestorTimeline`): the last entry they share (same
/// timeline *and* same beginning, which catches two clusters that reused a timeline number
/// at different points) and the lowest of its two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fork {
    /// The last common timeline.
    pub tli: TimelineId,
    /// Where the two histories part on it; `None` when neither has left it (same timeline).
    pub at: Option<Lsn>,
    /// The common timeline is the target's own, latest one.
    pub target_on_common: bool,
}

pub fn common_ancestor(target: &History, source: &History) -> Option<Fork> {
    let mut last = None;
    for (i, (a, b)) in target.0.iter().zip(&source.0).enumerate() {
        if a.tli != b.tli || a.begin != b.begin {
            break;
        }
        last = Some((i, a, b));
    }
    let (i, a, b) = last?;
    let at = match (a.end, b.end) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    };
    Some(Fork {
        tli: a.tli,
        at,
        target_on_common: i + 1 == target.0.len(),
    })
}

/// Where a running standby that replayed (or received) WAL of `timeline` up to `lsn` went
/// past the point where the source's history leaves that timeline: the WAL it holds there
/// is not the source's, and it can never stream again (the server logs "new timeline …
/// forked off current database system timeline … before current recovery point"). A
/// healed network can deliver a demoted primary's last WAL to a standby after another one
/// was promoted (scenario 31). pg_control lags replay on a running standby, so [`decide`]
/// cannot see this. Returns the fork point.
pub fn replayed_past_fork(timeline: TimelineId, lsn: Lsn, source: &History) -> Option<Lsn> {
    source.switchpoint_of(timeline).filter(|&fork| lsn > fork)
}

/// What the local data directory says, gathered by `target.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFacts {
    pub system_identifier: u64,
    pub catalog_version: u32,
    pub state: DbState,
    /// Where the latest checkpoint record starts, and on which timeline.
    pub checkpoint: Lsn,
    pub checkpoint_timeline: TimelineId,
    /// Where that record ends (MAXALIGNed, as the server's `EndRecPtr`), when its WAL could
    /// be read.
    pub checkpoint_end: Option<Lsn>,
    pub min_recovery_point: Lsn,
    pub min_recovery_point_timeline: TimelineId,
    /// `wal_log_hints` or data checksums, as pg_control last recorded them.
    pub can_rewind: bool,
    /// The history of [`TargetFacts::timeline`], from the target's `pg_wal`.
    pub history: History,
    /// Whether the target's `pg_wal` holds the segment that contains a WAL position: asked
    /// for the fork point once it is known.
    pub wal_segments: WalSegments,
    /// `restore_command` is set: pg_rewind can fetch missing WAL (`--restore-target-wal`).
    pub restore_command: bool,
    /// The directory was restored or rewound and has not replayed to a consistent point
    /// since: a `backup_label` is there, or pg_control names where its backup's recovery
    /// began (the server renames the label early in a first start that may be killed).
    pub never_replayed: bool,
}

/// The WAL segments present in the target's `pg_wal`: `(timeline, segment number)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalSegments {
    pub segment_size: u64,
    pub present: Vec<(TimelineId, u64)>,
}

impl WalSegments {
    /// Whether the segment holding `lsn` is there, under any timeline (the directory holds
    /// the target's own; a switch copies the partial segment to the new timeline's name).
    pub fn holds(&self, lsn: Lsn) -> bool {
        if self.segment_size == 0 {
            return false;
        }
        let segno = lsn.0 / self.segment_size;
        self.present.iter().any(|&(_, s)| s == segno)
    }

    /// Where the last segment file of `timeline` ends: no WAL of that timeline can go
    /// further (pre-allocated files count, so it is an upper bound).
    pub fn end_of_files(&self, timeline: TimelineId) -> Option<Lsn> {
        let last = self
            .present
            .iter()
            .filter(|(tli, _)| *tli == timeline)
            .map(|(_, segno)| *segno)
            .max()?;
        Some(Lsn(last.checked_add(1)?.checked_mul(self.segment_size)?))
    }
}

impl TargetFacts {
    /// The newest timeline the target knows (PG16's rule, right for every version: a standby
    /// may have replayed past a switch before its next restartpoint).
    pub fn timeline(&self) -> TimelineId {
        self.checkpoint_timeline
            .max(self.min_recovery_point_timeline)
    }

    /// Cleanly stopped: the only states pg_rewind accepts, and the only ones where the end of
    /// the WAL is known without replaying it.
    pub fn is_clean(&self) -> bool {
        matches!(self.state, DbState::ShutDown | DbState::ShutDownInRecovery)
    }

    /// Whether the target ran as a primary (its WAL may go past what any standby received).
    fn ran_as_primary(&self) -> bool {
        match self.state {
            DbState::ShutDown
            | DbState::Startup
            | DbState::ShuttingDown
            | DbState::InCrashRecovery
            | DbState::InProduction => true,
            DbState::ShutDownInRecovery | DbState::InArchiveRecovery => false,
        }
    }

    /// The facts crash recovery would leave, for the divergence, when the valid WAL is
    /// known to end at `end_of_wal` (read without running the server): stopped cleanly,
    /// with the WAL ending there. Lets a re-clone that is cheaper anyway skip the recovery.
    pub fn as_if_recovered(&self, end_of_wal: Lsn) -> TargetFacts {
        TargetFacts {
            state: DbState::ShutDown,
            checkpoint_end: Some(end_of_wal),
            ..self.clone()
        }
    }

    /// Where the target's WAL ends, as pg_rewind reckons it: the end of the latest checkpoint
    /// record, or minRecoveryPoint if that is further (a standby). `None` when the checkpoint
    /// record could not be read.
    pub fn end_of_wal(&self) -> Option<Lsn> {
        self.checkpoint_end
            .map(|end| end.max(self.min_recovery_point))
    }
}

/// What the source server says, gathered by `source.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFacts {
    pub system_identifier: u64,
    pub catalog_version: u32,
    pub in_recovery: bool,
    /// The timeline the source writes on now.
    pub timeline: TimelineId,
    /// The timeline of the source's latest checkpoint (its pg_control): behind
    /// [`SourceFacts::timeline`] until the first checkpoint after a promotion.
    pub checkpoint_timeline: TimelineId,
    pub history: History,
    /// `pg_current_wal_insert_lsn()`.
    pub insert_lsn: Lsn,
    pub full_page_writes: bool,
}

impl SourceFacts {
    /// Why a pg_control read from the source later (`system_identifier`, `catalog_version`)
    /// is not this source's: the server behind the connection string changed meanwhile.
    pub fn changed_since(&self, system_identifier: u64, catalog_version: u32) -> Option<String> {
        ((system_identifier, catalog_version) != (self.system_identifier, self.catalog_version))
            .then(|| {
                format!(
                    "the source changed during the rewind: its pg_control now says system \
                     {system_identifier} (catalog {catalog_version}), not {} ({})",
                    self.system_identifier, self.catalog_version
                )
            })
    }

    /// pg_rewind ≤ 15 takes the source's timeline from its pg_control checkpoint: until the
    /// promotion's checkpoint is done, it sees no fork and says "no rewind required" with
    /// exit code 0 (reproduced on PG 15). pg_rewind 16 also reads minRecoveryPointTLI.
    pub fn needs_checkpoint(&self, pg_rewind: &PgRewind) -> bool {
        pg_rewind.needs_promotion_checkpoint && self.checkpoint_timeline < self.timeline
    }
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The target's WAL is a prefix of the source's history: it can start and stream as is.
    Stream,
    /// The target stopped uncleanly as a primary: where its WAL ends is unknown until crash
    /// recovery has run.
    CrashRecoveryFirst(DbState),
    /// The target wrote WAL past the point where the source's history left it.
    Rewind {
        /// The first position whose WAL differs: what the target wrote from here is lost.
        fork_point: Lsn,
        /// The last common timeline.
        fork_timeline: TimelineId,
        /// Where the target's WAL ends.
        target_end: Lsn,
    },
    /// It cannot be brought back by pg_rewind; why.
    Refuse(Refusal),
}

/// Why a rewind cannot bring the target back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not the same cluster at all: neither a rewind nor a re-clone may overwrite it.
    DifferentSystem { target: u64, source: u64 },
    /// pg_rewind refuses clusters of another major (catalog version).
    DifferentVersion { target: u32, source: u32 },
    /// The source is a standby: it is not the primary to follow.
    SourceNotPrimary,
    /// Pages changed by hint bits went unlogged on the target.
    NoHintsNorChecksums,
    /// The source runs with `full_page_writes = off`; pg_rewind refuses it.
    SourceNoFullPageWrites,
    /// The target's WAL needed to find what it changed is gone and there is no archive.
    MissingWal { at: Lsn, what: &'static str },
    /// The two histories share no timeline.
    NoCommonTimeline {
        target: TimelineId,
        source: TimelineId,
    },
    /// Same timeline, and the target's WAL goes past the source's: two primaries wrote on one
    /// timeline. pg_rewind cannot see this ("no rewind required").
    TargetAheadOnSameTimeline { target_end: Lsn, source_lsn: Lsn },
    /// The target was restored or rewound and never replayed to a consistent point since
    /// ([`TargetFacts::never_replayed`]), and the source is not on its timeline: its disk is
    /// a mix of pages its WAL and pg_control do not describe (pg_control is the one the
    /// backup or rewind copied), so a rewind cannot know what to fetch.
    NeverReplayed,
    /// The target sits on a timeline the source's history does not contain, without WAL past
    /// the fork: pg_rewind would change nothing and the server would refuse to follow.
    TimelineNotInSourceHistory { target: TimelineId },
    /// The source's history says it left a timeline past its own current WAL position: no
    /// server writes such a history; it is forged or corrupt.
    ImplausibleSourceHistory {
        tli: TimelineId,
        switchpoint: Lsn,
        source_lsn: Lsn,
    },
    /// The source's history says the timeline this node last wrote on as the primary went on
    /// past the end of this node's WAL on it: the source cannot hold WAL of that timeline
    /// that this node never wrote, unless the history is forged or another primary wrote on
    /// the same timeline.
    SourceHistoryContradicts {
        tli: TimelineId,
        switchpoint: Lsn,
        local_end: Lsn,
    },
}

impl Refusal {
    /// Whether a re-clone from the source may replace the target: not for another system
    /// (that would destroy an unrelated database), nor when the source is not a primary, nor
    /// when its history cannot be true (a source that lies is not copied from).
    pub fn reclone_allowed(&self) -> bool {
        match self {
            Refusal::DifferentSystem { .. }
            | Refusal::DifferentVersion { .. }
            | Refusal::SourceNotPrimary
            | Refusal::ImplausibleSourceHistory { .. }
            | Refusal::SourceHistoryContradicts { .. } => false,
            Refusal::NoHintsNorChecksums
            | Refusal::SourceNoFullPageWrites
            | Refusal::MissingWal { .. }
            | Refusal::NoCommonTimeline { .. }
            | Refusal::TargetAheadOnSameTimeline { .. }
            | Refusal::NeverReplayed
            | Refusal::TimelineNotInSourceHistory { .. } => true,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::DifferentSystem { target, source } => write!(
                f,
                "different systems: target system identifier {target}, source {source}"
            ),
            Refusal::DifferentVersion { target, source } => write!(
                f,
                "different major versions: target catalog version {target}, source {source}"
            ),
            Refusal::SourceNotPrimary => f.write_str("the source is in recovery, not a primary"),
            Refusal::NoHintsNorChecksums => {
                f.write_str("the target has neither wal_log_hints nor data checksums (pg_control)")
            }
            Refusal::SourceNoFullPageWrites => {
                f.write_str("the source runs with full_page_writes = off")
            }
            Refusal::MissingWal { at, what } => write!(
                f,
                "the target's WAL at {at} ({what}) is gone from pg_wal and no restore_command \
                 is set"
            ),
            Refusal::NoCommonTimeline { target, source } => write!(
                f,
                "no common timeline: target on timeline {target}, source on {source}"
            ),
            Refusal::TargetAheadOnSameTimeline {
                target_end,
                source_lsn,
            } => write!(
                f,
                "the target's WAL ends at {target_end}, past the source's {source_lsn}, on the \
                 same timeline"
            ),
            Refusal::NeverReplayed => f.write_str(
                "the target was restored or rewound and has not replayed to a consistent point \
                 since (a backup_label, or pg_control's backup start point), and the source is \
                 not on its timeline: its WAL does not say what to fetch",
            ),
            Refusal::TimelineNotInSourceHistory { target } => write!(
                f,
                "the target's timeline {target} is not in the source's history"
            ),
            Refusal::ImplausibleSourceHistory {
                tli,
                switchpoint,
                source_lsn,
            } => write!(
                f,
                "the source's history says timeline {tli} ended at {switchpoint}, past the \
                 source's own WAL position {source_lsn}: the history is forged or corrupt"
            ),
            Refusal::SourceHistoryContradicts {
                tli,
                switchpoint,
                local_end,
            } => write!(
                f,
                "the source's history says timeline {tli} ended at {switchpoint}, but this \
                 node was the primary on it and its WAL there ends at {local_end}: the source \
                 cannot have WAL of it that this node never wrote (a forged history, or \
                 another primary on the same timeline)"
            ),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Stream => f.write_str("can stream as is: no divergence"),
            Decision::CrashRecoveryFirst(state) => write!(
                f,
                "stopped uncleanly as a primary (pg_control: \"{state}\"): crash recovery first"
            ),
            Decision::Rewind {
                fork_point,
                fork_timeline,
                target_end,
            } => write!(
                f,
                "needs a rewind: diverged at {fork_point} on timeline {fork_timeline}, the \
                 target's WAL ends at {target_end}"
            ),
            Decision::Refuse(why) => write!(f, "cannot rewind: {why}"),
        }
    }
}

/// The divergence decision.
pub fn decide(target: &TargetFacts, source: &SourceFacts) -> Decision {
    if target.system_identifier != source.system_identifier {
        return Decision::Refuse(Refusal::DifferentSystem {
            target: target.system_identifier,
            source: source.system_identifier,
        });
    }
    if target.catalog_version != source.catalog_version {
        return Decision::Refuse(Refusal::DifferentVersion {
            target: target.catalog_version,
            source: source.catalog_version,
        });
    }
    if source.in_recovery {
        return Decision::Refuse(Refusal::SourceNotPrimary);
    }
    if let Some(why) = implausible_source_history(source) {
        return Decision::Refuse(why);
    }
    if target.never_replayed {
        // Its pages wait for replay to a point its WAL and pg_control do not describe (a
        // base backup's pg_control even says "in production"): started, it replays; on the
        // source's own timeline only, where that WAL is the source's.
        let same_timeline = common_ancestor(&target.history, &source.history)
            .is_some_and(|fork| fork.at.is_none() && fork.target_on_common);
        return if same_timeline && target.checkpoint <= source.insert_lsn {
            Decision::Stream
        } else {
            Decision::Refuse(Refusal::NeverReplayed)
        };
    }
    if !target.is_clean() && target.ran_as_primary() {
        return Decision::CrashRecoveryFirst(target.state);
    }
    if let Some(why) = contradicted_by_target(target, source) {
        return Decision::Refuse(why);
    }
    let Some(fork) = common_ancestor(&target.history, &source.history) else {
        return Decision::Refuse(Refusal::NoCommonTimeline {
            target: target.timeline(),
            source: source.timeline,
        });
    };
    // Where the target's WAL ends. Unknown when the latest checkpoint record is gone: then
    // only a lower bound is known (the record's start, or minRecoveryPoint).
    let (target_end, exact) = match target.end_of_wal() {
        Some(end) => (end, true),
        None => (target.checkpoint.max(target.min_recovery_point), false),
    };
    let Some(fork_point) = fork.at else {
        // Same timeline on both sides: no fork, unless the target went further.
        if !exact && !target.restore_command {
            return Decision::Refuse(Refusal::MissingWal {
                at: target.checkpoint,
                what: "the latest checkpoint record",
            });
        }
        return if target_end > source.insert_lsn {
            Decision::Refuse(Refusal::TargetAheadOnSameTimeline {
                target_end,
                source_lsn: source.insert_lsn,
            })
        } else {
            Decision::Stream
        };
    };
    if target_end <= fork_point && exact {
        return if fork.target_on_common {
            Decision::Stream
        } else {
            Decision::Refuse(Refusal::TimelineNotInSourceHistory {
                target: target.timeline(),
            })
        };
    }
    // The target went past the fork (or may have: an unknown end is never a reason to
    // stream). Check what pg_rewind will need.
    if !target.can_rewind {
        return Decision::Refuse(Refusal::NoHintsNorChecksums);
    }
    if !source.full_page_writes {
        return Decision::Refuse(Refusal::SourceNoFullPageWrites);
    }
    if !target.restore_command {
        if !exact {
            return Decision::Refuse(Refusal::MissingWal {
                at: target.checkpoint,
                what: "the latest checkpoint record",
            });
        }
        // pg_rewind reads backwards from the fork to the last checkpoint before it, starting
        // with the record that ends at the fork: often the end of a segment (after the
        // XLOG_SWITCH of a base backup or of archive_timeout), whose segment a clean
        // shutdown's checkpoint has already recycled. Older segments it may need back to
        // that checkpoint are not checked here: if they are gone, pg_rewind fails before
        // touching anything, and the fallback applies.
        let before_fork = Lsn(fork_point.0.saturating_sub(1));
        for (at, what) in [
            (fork_point, "the fork point"),
            (before_fork, "the last record before the fork"),
        ] {
            if !target.wal_segments.holds(at) {
                return Decision::Refuse(Refusal::MissingWal { at, what });
            }
        }
    }
    Decision::Rewind {
        fork_point,
        fork_timeline: fork.tli,
        target_end,
    }
}

/// The source's history must fit the source itself: it left every earlier timeline before
/// the position it writes at now. (`History::parse` already checked the order of timelines
/// and switchpoints, and that they stay below the file's own timeline.)
fn implausible_source_history(source: &SourceFacts) -> Option<Refusal> {
    source
        .history
        .entries()
        .iter()
        .find_map(|e| {
            e.end
                .filter(|&end| end > source.insert_lsn)
                .map(|end| (e.tli, end))
        })
        .map(|(tli, switchpoint)| Refusal::ImplausibleSourceHistory {
            tli,
            switchpoint,
            source_lsn: source.insert_lsn,
        })
}

/// What this node knows of the shared past, against the source's history: when the target
/// ran as the primary on its latest timeline, every byte of that timeline's WAL any other
/// node has came from the target, so the source cannot have left it later than the target's
/// WAL ends. Where that end is not known exactly, the end of the target's last WAL file on
/// that timeline bounds it. A standby target proves nothing: it may simply be behind.
fn contradicted_by_target(target: &TargetFacts, source: &SourceFacts) -> Option<Refusal> {
    if !target.ran_as_primary() {
        return None;
    }
    let tli = target.timeline();
    let switchpoint = source.history.switchpoint_of(tli)?;
    let local_end = target
        .end_of_wal()
        .or_else(|| target.wal_segments.end_of_files(tli))?;
    (switchpoint > local_end).then_some(Refusal::SourceHistoryContradicts {
        tli,
        switchpoint,
        local_end,
    })
}

/// What the two ways back cost, in bytes to copy, estimated before either starts.
///
/// pg_rewind copies WAL segments of the source (which ones: [`WalCopied`], a fact of the
/// major of the pg_rewind that runs), every non-relation file, whole new relation files and
/// the blocks the target changed; pg_basebackup copies the whole cluster. Measured on PG 15
/// (905 MB database, 10 s of pgbench on the old primary, `wal_keep_size=4GB`): pg_rewind
/// copied 1.7 GB in 5.7 s, pg_basebackup took 3.0 s, both roughly in proportion to their
/// bytes, which is what this compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostEstimate {
    /// Bytes in the source's `pg_wal`.
    pub source_wal: u64,
    /// Bytes of the source's WAL segments from the one holding the fork point on.
    pub source_wal_from_fork: u64,
    /// Which of them the pg_rewind that will run copies.
    pub wal_copied: WalCopied,
    /// Sum of `pg_database_size` on the source.
    pub source_databases: u64,
    /// WAL the source wrote since the fork (new and changed data pg_rewind copies).
    pub source_since_fork: u64,
    /// WAL the target wrote past the fork (blocks pg_rewind copies back).
    pub target_since_fork: u64,
    /// When the native engine rewinds: the bytes its file map fetches (changed blocks,
    /// missing tails, the files and WAL segments copied whole), counted instead of
    /// pg_rewind's.
    pub native_fetch: Option<u64>,
}

impl CostEstimate {
    /// Bytes the rewind is expected to copy: what the native engine's file map fetches when
    /// it rewinds; for pg_rewind, the WAL it copies, and never more changed data than the
    /// databases hold.
    pub fn rewind_bytes(&self) -> u64 {
        if let Some(fetched) = self.native_fetch {
            return fetched;
        }
        let changed = self
            .source_since_fork
            .saturating_add(self.target_since_fork)
            .min(self.source_databases);
        self.wal_bytes().saturating_add(changed)
    }

    /// Bytes of the source's WAL pg_rewind is expected to copy.
    pub fn wal_bytes(&self) -> u64 {
        match self.wal_copied {
            WalCopied::All => self.source_wal,
            WalCopied::FromForkSegment => self.source_wal_from_fork.min(self.source_wal),
        }
    }

    /// Bytes pg_basebackup is expected to copy: the databases, plus the WAL written meanwhile
    /// (small, ignored).
    pub fn reclone_bytes(&self) -> u64 {
        self.source_databases
    }

    /// pg_rewind moves each byte more slowly than pg_basebackup: it fetches files through
    /// SQL, chunk by chunk, where pg_basebackup streams them (measured with PG 15 on the
    /// rewind benchmark: 270 against 480 MB/s). Its bytes count half again as much; so do
    /// the native engine's, fetched the same way.
    pub fn prefers_reclone(&self) -> bool {
        self.rewind_bytes().saturating_mul(3) / 2 > self.reclone_bytes()
    }
}

#[cfg(test)]
mod tests;
