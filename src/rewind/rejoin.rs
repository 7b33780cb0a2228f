//! The two entry points, [`check`] and [`rejoin`], as sequences of named steps: gather the
//! facts (`facts.rs`), let [`decision`] judge them, recover a crashed
//! target first when it needs it, plan (`plan.rs`), and carry the plan out ([`Job`]'s
//! steps, `job.rs` and `reclone.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::decision::{self, CostEstimate, Decision, TargetFacts};
use super::error::RewindError;
use super::facts::{connect, estimate_for, gather};
use super::job::Job;
use super::marker::{self, Marker};
use super::plan::{fallback_for, fork_of, plan, Check, Plan};
use super::preflight::unfinished;
use super::runner::RewindOutput;
use super::settings::{Fallback, RewindSettings, Source};
use super::swap;
use crate::deadline::Deadline;
use crate::instance::Instance;

/// How [`rejoin`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to rewind; the standby configuration is written.
    Streamable,
    Rewound,
    Recloned,
    /// `dry_run`: nothing changed.
    DryRun,
}

/// What [`rejoin`] decided, planned and did.
#[derive(Debug)]
pub struct RejoinReport {
    pub outcome: Outcome,
    /// The decision that counted (after crash recovery, if any ran).
    pub decision: Decision,
    pub plan: Plan,
    pub crash_recovery: bool,
    /// This run's folder: discarded WAL, the old pg_control, the node's configuration.
    pub saved_in: Option<PathBuf>,
    pub rewind: Option<RewindOutput>,
    /// Why pg_rewind's attempt did not count, when it fell back to a re-clone.
    pub rewind_failure: Option<String>,
    pub estimate: Option<CostEstimate>,
    pub elapsed: Duration,
    /// The data directory a re-clone replaced, set aside: callers start the server, see
    /// whether it streams, and then call [`RejoinReport::settle_replaced`].
    pub replaced: Option<swap::Replaced>,
}

impl RejoinReport {
    /// This report, with the time since the rejoin `started`.
    fn took(self, started: Instant) -> RejoinReport {
        RejoinReport {
            elapsed: started.elapsed(),
            ..self
        }
    }

    /// The report of a rejoin that has planned and done nothing yet.
    fn planned(
        decision: Decision,
        plan: Plan,
        crash_recovery: bool,
        saved_in: Option<PathBuf>,
        estimate: Option<CostEstimate>,
    ) -> RejoinReport {
        RejoinReport {
            outcome: Outcome::DryRun,
            decision,
            plan,
            crash_recovery,
            saved_in,
            rewind: None,
            rewind_failure: None,
            estimate,
            elapsed: Duration::ZERO,
            replaced: None,
        }
    }

    /// Removes or keeps the data directory a re-clone replaced, if any
    /// ([`swap::Replaced::settle`]): removed only once the new standby `streaming`.
    pub fn settle_replaced(&self, streaming: bool) {
        if let Some(replaced) = &self.replaced {
            replaced.settle(streaming);
        }
    }
}

/// The divergence decision and what [`rejoin`] would do, changing nothing (not even a
/// `CHECKPOINT` on the source): `pgha rewind --check`, and what the actions log.
pub fn check(
    instance: &Instance,
    source: &Source,
    settings: &RewindSettings,
    deadline: &Deadline,
) -> Result<Check, RewindError> {
    let session = connect(instance, source, deadline)?;
    let (target, source_facts) = gather(instance, source, session.as_ref(), settings, deadline)?;
    let decision = decision::decide(&target, &source_facts);
    let estimate = estimate_for(&decision, &source_facts, session.as_ref(), deadline);
    let marker = marker::read(instance.datadir());
    let plan = plan(
        &decision,
        marker.as_ref(),
        estimate.as_ref(),
        settings.automatic,
        fallback_for(source, settings),
    );
    Ok(Check {
        source_needs_checkpoint: source_facts.needs_checkpoint(instance.major),
        decision,
        plan,
        target,
        source: source_facts,
        marker,
        estimate,
    })
}

/// Brings the stopped local instance back as a standby of `source`.
///
/// Before: the instance is stopped (a running postmaster is refused). After `Ok`, the data
/// directory is whole, holds the node's own configuration files, `standby.signal` and (when
/// [`RewindSettings::primary_conninfo`] is set) `primary_conninfo` with `application_name` =
/// `node`: the caller starts it as a standby. After `Err`, [`RewindError::target_modified`]
/// tells whether the directory may be half rewound (it then carries the marker and
/// [`ensure_startable`](super::ensure_startable) refuses it).
///
/// Steps: crash recovery when it stopped uncleanly as a primary; the decision; the plan
/// (stream, rewind, re-clone or refuse); for a rewind: a checkpoint on a freshly promoted
/// source (PG ≤ 15), the discarded WAL and the configuration kept, the marker, pg_rewind,
/// the configuration back, standby settings, the marker removed; a re-clone when the rewind
/// is impossible, fails or costs more.
pub fn rejoin(
    instance: &Instance,
    source: &Source,
    node: &str,
    settings: &RewindSettings,
    deadline: &Deadline,
) -> Result<RejoinReport, RewindError> {
    let started = Instant::now();
    let datadir = instance.datadir();
    if instance.postmaster().is_running() {
        return Err(RewindError::Running(datadir.to_owned()));
    }
    let session = connect(instance, source, deadline)?;
    let (target, source_facts) = gather(instance, source, session.as_ref(), settings, deadline)?;
    let job = Job {
        instance,
        source,
        session: session.as_ref(),
        source_facts: &source_facts,
        node,
        settings,
        fallback: fallback_for(source, settings),
        deadline,
    };
    let decision = decision::decide(&target, &source_facts);
    let marker = unfinished(datadir, node);
    let (target, decision, crash_recovery) = match decision {
        Decision::CrashRecoveryFirst(state) if marker.is_none() => {
            log::info!("{}: {decision}", datadir.display());
            if settings.dry_run {
                let report =
                    RejoinReport::planned(decision, Plan::CrashRecovery, false, None, None);
                return Ok(report.took(started));
            }
            job.recover(&target, state)?
        }
        decision => (target, decision, false),
    };
    let estimate = estimate_for(&decision, &source_facts, session.as_ref(), deadline);
    let plan = plan(
        &decision,
        marker.as_ref(),
        estimate.as_ref(),
        settings.automatic,
        job.fallback,
    );
    log::info!("{}: {decision}; plan: {plan}", datadir.display());
    let saved_in = marker.as_ref().and_then(|m| m.saved_in.clone());
    let mut report = RejoinReport::planned(
        decision.clone(),
        plan.clone(),
        crash_recovery,
        saved_in,
        estimate,
    );
    execute(&job, &target, &plan, marker.as_ref(), &mut report)?;
    if matches!(report.outcome, Outcome::Rewound | Outcome::Recloned) {
        job.apply_retention(report.saved_in.as_deref());
    }
    let report = report.took(started);
    log::info!(
        "{}: {:?} in {:.1?}",
        datadir.display(),
        report.outcome,
        report.elapsed
    );
    Ok(report)
}

/// Carries `plan` out, recording in `report` what was done.
fn execute(
    job: &Job,
    target: &TargetFacts,
    plan: &Plan,
    marker: Option<&Marker>,
    report: &mut RejoinReport,
) -> Result<(), RewindError> {
    match plan {
        Plan::Refuse(why) => Err(job.refused(why.clone())),
        Plan::CrashRecovery => {
            Err(job.refused("still not cleanly stopped after crash recovery".into()))
        }
        _ if job.settings.dry_run => {
            if *plan == Plan::Rewind {
                report.rewind = Some(job.dry_run(target)?);
            }
            Ok(())
        }
        Plan::Stream => {
            job.stream()?;
            report.outcome = Outcome::Streamable;
            Ok(())
        }
        Plan::Rewind => rewind_else_reclone(job, target, report),
        Plan::Reclone(why) => reclone_as_planned(job, target, why, marker, report),
    }
}

/// pg_rewind; when it fails and the fallback allows it, a re-clone, with the configuration
/// saved before pg_rewind ran.
fn rewind_else_reclone(
    job: &Job,
    target: &TargetFacts,
    report: &mut RejoinReport,
) -> Result<(), RewindError> {
    let (run, result) = job.rewind(target, &report.decision)?;
    report.saved_in = Some(run.path().to_owned());
    let (failure, saved) = match result {
        Ok(out) => {
            report.rewind = Some(out);
            report.outcome = Outcome::Rewound;
            return Ok(());
        }
        Err(failed) => *failed,
    };
    let touched = failure.touched;
    report.rewind_failure = Some(failure.to_string());
    report.rewind = Some(failure.output.clone());
    if job.fallback != Fallback::Reclone {
        return Err(Box::new(failure).into());
    }
    log::warn!(
        "{failure}; falling back to a re-clone{}",
        if touched {
            " (the data directory keeps its marker)"
        } else {
            ""
        }
    );
    report.replaced = Some(job.reclone(run, Some(saved), true)?);
    report.outcome = Outcome::Recloned;
    Ok(())
}

/// A re-clone the plan chose: with the configuration an unfinished attempt saved when there
/// is one ([`Job::saved_before`]), else with a new run folder of its own.
fn reclone_as_planned(
    job: &Job,
    target: &TargetFacts,
    why: &str,
    marker: Option<&Marker>,
    report: &mut RejoinReport,
) -> Result<(), RewindError> {
    log::info!("re-cloning \"{}\": {why}", job.instance.datadir().display());
    let (run, saved) = match job.saved_before(marker) {
        Some((run, saved)) => (run, Some(saved)),
        None => {
            let fork = fork_of(&report.decision, target, job.source_facts);
            (job.keep_forensics(target, fork)?, None)
        }
    };
    report.saved_in = Some(run.path().to_owned());
    // The WAL kept holds all the replaced directory had past the fork only when the
    // fork is known and its WAL was there: a plain rewind decision, first attempt.
    let wal_complete = marker.is_none() && matches!(report.decision, Decision::Rewind { .. });
    report.replaced = Some(job.reclone(run, saved, wal_complete)?);
    report.outcome = Outcome::Recloned;
    Ok(())
}
