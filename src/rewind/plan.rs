//! Planning: what a rejoin will do, from the decision, the marker and the settings, and
//! what [`check`](super::check) reports of it. Pure: facts in, [`Plan`] out; the facts are
//! gathered in `facts.rs` and the plan carried out in `rejoin.rs` and `job.rs`.

use std::fmt;

use super::decision::{self, CostEstimate, Decision, SourceFacts, TargetFacts};
use super::engine::EngineChoice;
use super::marker::Marker;
use super::settings::{Fallback, RewindSettings, Source};
use super::view::NativeView;
use crate::lsn::Lsn;

/// What will be done, from the decision, the marker and the settings (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to rewind: start as a standby.
    Stream,
    /// Stopped uncleanly as a primary: crash recovery, then decide again.
    CrashRecovery,
    /// Rewind, by the engine chosen with it (`engine:`): native or pg_rewind.
    Rewind,
    Reclone(String),
    Refuse(String),
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Stream => f.write_str("start as a standby, nothing to rewind"),
            Plan::CrashRecovery => f.write_str("crash recovery, then decide again"),
            Plan::Rewind => f.write_str("rewind"),
            Plan::Reclone(why) => write!(f, "re-clone with pg_basebackup: {why}"),
            Plan::Refuse(why) => write!(f, "refuse: {why}"),
        }
    }
}

/// The plan for `decision`. A marker wins over any decision: a directory an attempt left
/// unfinished is re-cloned or refused, never trusted. A re-clone is chosen only when the
/// fallback allows it and the rejoin is automatic: because the rewind cannot be done, or
/// because it would copy more than a re-clone (`estimate`).
pub fn plan(
    decision: &Decision,
    marker: Option<&Marker>,
    estimate: Option<&CostEstimate>,
    automatic: bool,
    fallback: Fallback,
) -> Plan {
    let reclone = fallback == Fallback::Reclone && automatic;
    if let Some(m) = marker {
        let what = format!("a {} started at {} did not finish", m.operation, m.started);
        return if reclone {
            Plan::Reclone(what)
        } else {
            Plan::Refuse(format!("{what}, and the re-clone fallback is off"))
        };
    }
    match decision {
        Decision::Stream => Plan::Stream,
        Decision::CrashRecoveryFirst(_) => Plan::CrashRecovery,
        Decision::Refuse(why) if reclone && why.reclone_allowed() => {
            Plan::Reclone(format!("cannot rewind: {why}"))
        }
        Decision::Refuse(why) => Plan::Refuse(why.to_string()),
        Decision::Rewind { .. } if !automatic => Plan::Refuse(format!(
            "{decision}, and automatic rewind is off (parameter rewind)"
        )),
        Decision::Rewind { .. } => match estimate {
            Some(e) if reclone && e.prefers_reclone() => Plan::Reclone(format!(
                "cheaper than pg_rewind: about {} MB to copy instead of {} MB, which pg_rewind \
                 copies 1.5 times slower",
                e.reclone_bytes() >> 20,
                e.rewind_bytes() >> 20
            )),
            _ => Plan::Rewind,
        },
    }
}

/// The fallback this source allows: a stopped data directory cannot be re-cloned from.
pub(super) fn fallback_for(source: &Source, settings: &RewindSettings) -> Fallback {
    match source {
        Source::Server(_) => settings.fallback,
        Source::Pgdata(_) => Fallback::None,
    }
}

/// The fork point, when the histories say one (whatever the decision was).
pub(super) fn fork_of(
    decision: &Decision,
    target: &TargetFacts,
    source: &SourceFacts,
) -> Option<Lsn> {
    match decision {
        Decision::Rewind { fork_point, .. } => Some(*fork_point),
        _ => decision::common_ancestor(&target.history, &source.history).and_then(|f| f.at),
    }
}

/// What [`check`](super::check) found, without changing anything.
#[derive(Debug, Clone)]
pub struct Check {
    pub decision: Decision,
    pub plan: Plan,
    pub target: TargetFacts,
    pub source: SourceFacts,
    /// PG ≤ 15 and the source has not checkpointed since its promotion: pgha will run
    /// `CHECKPOINT` (or wait) before pg_rewind.
    pub source_needs_checkpoint: bool,
    pub marker: Option<Marker>,
    pub estimate: Option<CostEstimate>,
    /// When a rewind is decided: what a native rewind would do, or why that is not known.
    pub native: Option<Result<NativeView, String>>,
    /// When a rewind is decided: the engine that would run, and why.
    pub engine: Option<EngineChoice>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        let s = &self.source;
        writeln!(f, "decision: {}", self.decision)?;
        writeln!(f, "plan: {}", self.plan)?;
        writeln!(
            f,
            "target: {}, timeline {}, checkpoint {} (ends {}), minRecoveryPoint {} on \
             timeline {}, wal_log_hints or checksums: {}",
            t.state,
            t.timeline(),
            t.checkpoint,
            t.checkpoint_end
                .map_or("unknown: WAL missing".into(), |l| l.to_string()),
            t.min_recovery_point,
            t.min_recovery_point_timeline,
            if t.can_rewind { "yes" } else { "no" }
        )?;
        writeln!(
            f,
            "source: {}, timeline {} (pg_control: {}), WAL at {}",
            if s.in_recovery { "standby" } else { "primary" },
            s.timeline,
            s.checkpoint_timeline,
            s.insert_lsn
        )?;
        if self.source_needs_checkpoint {
            writeln!(
                f,
                "source not checkpointed since its promotion: CHECKPOINT (or wait) first"
            )?;
        }
        if let Some(e) = &self.estimate {
            writeln!(
                f,
                "estimate: pg_rewind about {} MB (source WAL {} MB, {} MB of it copied), \
                 re-clone about {} MB",
                e.rewind_bytes() >> 20,
                e.source_wal >> 20,
                e.wal_bytes() >> 20,
                e.reclone_bytes() >> 20
            )?;
        }
        if let Some(engine) = &self.engine {
            writeln!(f, "engine: {engine}")?;
        }
        match &self.native {
            Some(Ok(native)) => {
                writeln!(f, "target changes: {}", native.changes)?;
                writeln!(f, "native file map: {}", native.map)?;
                writeln!(f, "replay after a native rewind: from {}", native.replay)?;
            }
            Some(Err(why)) => writeln!(f, "target changes: not known: {why}")?,
            None => {}
        }
        if let Some(m) = &self.marker {
            writeln!(
                f,
                "marker: a {} started at {} did not finish",
                m.operation, m.started
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rewind::decision::Refusal;
    use crate::rewind::major::WalCopied;

    fn rewind() -> Decision {
        Decision::Rewind {
            fork_point: Lsn(0x300_0000),
            fork_timeline: 1,
            target_end: Lsn(0x310_0000),
        }
    }

    pub(in crate::rewind) fn marker() -> Marker {
        Marker {
            operation: "pg_rewind".into(),
            started: "2026-01-01T00:00:00Z".into(),
            node: "pg1".into(),
            saved_in: None,
        }
    }

    #[test]
    fn plans() {
        let cheap = CostEstimate {
            source_wal: 1 << 20,
            source_wal_from_fork: 1 << 20,
            wal_copied: WalCopied::All,
            source_databases: 1 << 30,
            source_since_fork: 0,
            target_since_fork: 0,
            native_fetch: None,
        };
        let dear = CostEstimate {
            source_wal: 2 << 30,
            ..cheap
        };
        let r = Fallback::Reclone;
        let n = Fallback::None;
        assert_eq!(plan(&Decision::Stream, None, None, true, r), Plan::Stream);
        assert_eq!(plan(&rewind(), None, Some(&cheap), true, r), Plan::Rewind);
        assert!(matches!(
            plan(&rewind(), None, Some(&dear), true, r),
            Plan::Reclone(_)
        ));
        assert_eq!(plan(&rewind(), None, Some(&dear), true, n), Plan::Rewind);
        assert_eq!(plan(&rewind(), None, None, true, r), Plan::Rewind);
        assert!(matches!(
            plan(&rewind(), None, None, false, r),
            Plan::Refuse(_)
        ));
        let missing = Decision::Refuse(Refusal::MissingWal {
            at: Lsn(1),
            what: "x",
        });
        assert!(matches!(
            plan(&missing, None, None, true, r),
            Plan::Reclone(_)
        ));
        assert!(matches!(
            plan(&missing, None, None, true, n),
            Plan::Refuse(_)
        ));
        let other = Decision::Refuse(Refusal::DifferentSystem {
            target: 1,
            source: 2,
        });
        assert!(matches!(plan(&other, None, None, true, r), Plan::Refuse(_)));
        // An unfinished rewind is never trusted, whatever the decision now says.
        for d in [Decision::Stream, rewind()] {
            assert!(matches!(
                plan(&d, Some(&marker()), None, true, r),
                Plan::Reclone(_)
            ));
            assert!(matches!(
                plan(&d, Some(&marker()), None, true, n),
                Plan::Refuse(_)
            ));
        }
    }
}
