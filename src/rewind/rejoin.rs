//! The two entry points, [`check`] and [`rejoin`], as sequences of named steps: gather the
//! facts (`facts.rs`), let [`decision`] judge them, recover a crashed
//! target first when it needs it, plan (`plan.rs`), and carry the plan out ([`Job`]'s
//! steps, `job.rs` and `reclone.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::decision::{self, CostEstimate, Decision, TargetFacts};
use super::engine::{self, EngineChoice};
use super::error::RewindError;
use super::facts::{as_recovered, estimate_for, gather, native_view, source_wal, ReadAhead};
use super::job::Job;
use super::major::pg_rewind;
use super::marker::{self, Marker};
use super::plan::{fallback_for, fork_of, plan, Check, Plan};
use super::preflight::{ensure_supported, unfinished};
use super::runner::RewindOutput;
use super::settings::{Engine, Fallback, RewindSettings, Source};
use super::swap;
use super::view::NativeView;
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
    /// Why the rewind's attempt did not count, when it fell back to a re-clone.
    pub rewind_failure: Option<String>,
    pub estimate: Option<CostEstimate>,
    /// The engine of a rewind, and why (`engine::choose`).
    pub engine: Option<EngineChoice>,
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
            engine: None,
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
/// `CHECKPOINT` on the source): what the actions log and act on.
pub fn check(
    instance: &Instance,
    source: &Source,
    settings: &RewindSettings,
    deadline: &Deadline,
) -> Result<Check, RewindError> {
    check_with(instance, source, settings, deadline, false)
}

/// [`check`], plus what a native rewind would do ([`Check::native`]: the target's WAL read
/// from the last common checkpoint and both data directories listed, which the actions'
/// bounded checks have no time for): `pgha rewind --check`.
pub fn check_in_full(
    instance: &Instance,
    source: &Source,
    settings: &RewindSettings,
    deadline: &Deadline,
) -> Result<Check, RewindError> {
    check_with(instance, source, settings, deadline, true)
}

fn check_with(
    instance: &Instance,
    source: &Source,
    settings: &RewindSettings,
    deadline: &Deadline,
    native: bool,
) -> Result<Check, RewindError> {
    let (session, target, source_facts) = gather(instance, source, settings, deadline)?;
    let decision = decision::decide(&target, &source_facts);
    let estimate = estimate_for(
        instance,
        &decision,
        &target,
        &source_facts,
        session.as_ref(),
        deadline,
    );
    let marker = marker::read(instance.datadir());
    let job = Job {
        instance,
        source,
        session: session.as_ref(),
        source_facts: &source_facts,
        node: "",
        settings,
        fallback: fallback_for(source, settings),
        deadline,
    };
    let chosen = native
        .then(|| choose_engine(&job, &target, &decision, estimate, true, None))
        .flatten();
    let (engine, native, estimate) = match chosen {
        Some(c) => (Some(c.choice), c.view, c.estimate),
        None => (None, None, estimate),
    };
    let plan = plan(
        &decision,
        marker.as_ref(),
        estimate.as_ref(),
        settings.automatic,
        job.fallback,
    );
    Ok(Check {
        source_needs_checkpoint: source_facts.needs_checkpoint(pg_rewind(instance.major)),
        decision,
        plan,
        target,
        source: source_facts,
        marker,
        estimate,
        native,
        engine,
    })
}

/// The engine of a rewind `decision` ([`engine::choose`]), with what it was chosen from.
struct Chosen {
    choice: EngineChoice,
    /// The native engine's view, when it was gathered.
    view: Option<Result<NativeView, String>>,
    /// The estimate, counting the chosen engine's bytes.
    estimate: Option<CostEstimate>,
}

impl Chosen {
    /// The native engine's view, when it is the one that runs.
    fn native(&self) -> Option<&NativeView> {
        (self.choice.engine == Engine::Native)
            .then(|| self.view.as_ref().and_then(|v| v.as_ref().ok()))
            .flatten()
    }
}

/// The engine of a rewind `decision`, gathering the native engine's view only where it may
/// be used (or `always`, for `--check`), from the changes read `ahead` where they were;
/// `None` for any other decision.
fn choose_engine(
    job: &Job,
    target: &TargetFacts,
    decision: &Decision,
    estimate: Option<CostEstimate>,
    always: bool,
    ahead: Option<ReadAhead>,
) -> Option<Chosen> {
    if !matches!(decision, Decision::Rewind { .. }) {
        return None;
    }
    let (requested, major) = (job.settings.engine, job.instance.major);
    let view = (always || engine::considers_native(requested, major))
        .then(|| {
            native_view(
                job.instance,
                decision,
                target,
                job.source,
                job.session,
                job.source_facts,
                ahead,
                job.deadline,
            )
        })
        .flatten();
    let cost = engine::native_cost(view.as_ref(), job.source_facts.in_recovery);
    let reclone_allowed = job.settings.automatic && job.fallback == Fallback::Reclone;
    let reclone = estimate.as_ref().filter(|_| reclone_allowed);
    let choice = engine::choose(
        requested,
        major,
        engine::considers_native(requested, major)
            .then_some(cost.clone())
            .flatten(),
        reclone,
    );
    let native_fetch = cost
        .and_then(Result::ok)
        .filter(|_| choice.engine == Engine::Native);
    let estimate = estimate.map(|e| CostEstimate { native_fetch, ..e });
    Some(Chosen {
        choice,
        view,
        estimate,
    })
}

/// A target that stopped uncleanly as a primary, rewound by the native engine as it is: the
/// engine reads its WAL to the end of what is valid and fetches every block changed there
/// from the last common checkpoint on, so crash recovery (whose replay and checkpoint the
/// rewind then overwrites) is skipped. pg_rewind reads the WAL only up to pg_control's last
/// checkpoint, hence its clean shutdown. Only when the native engine is the one chosen on
/// the target as it stands; otherwise `None` and crash recovery runs first.
fn native_without_recovery(
    job: &Job,
    target: &TargetFacts,
) -> Option<(TargetFacts, Decision, Chosen)> {
    let settings = job.settings;
    if !settings.crash_recovery
        || !settings.automatic
        || !engine::considers_native(settings.engine, job.instance.major)
    {
        return None;
    }
    let (recovered, decision, ahead) = as_recovered(
        job.instance,
        target,
        job.source_facts,
        source_wal(job.source, job.session).as_ref(),
        job.deadline,
    )?;
    let estimate = estimate_for(
        job.instance,
        &decision,
        &recovered,
        job.source_facts,
        job.session,
        job.deadline,
    );
    let chosen = choose_engine(job, &recovered, &decision, estimate, false, Some(ahead))?;
    chosen.native()?;
    log::info!(
        "{}: crash recovery skipped: the native engine reads its WAL to the end ({})",
        job.instance.datadir().display(),
        decision
    );
    Some((recovered, decision, chosen))
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
    ensure_supported(instance, settings)?;
    let datadir = instance.datadir();
    if instance.postmaster().is_running() {
        return Err(RewindError::Running(datadir.to_owned()));
    }
    let (session, target, source_facts) = gather(instance, source, settings, deadline)?;
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
    let (target, decision, crash_recovery, native_unrecovered) = match decision {
        Decision::CrashRecoveryFirst(state) if marker.is_none() => {
            log::info!("{}: {decision}", datadir.display());
            if settings.dry_run {
                let report =
                    RejoinReport::planned(decision, Plan::CrashRecovery, false, None, None);
                return Ok(report.took(started));
            }
            match native_without_recovery(&job, &target) {
                Some((target, decision, chosen)) => (target, decision, false, Some(chosen)),
                None => {
                    let (target, decision, recovered) = job.recover(&target, state)?;
                    (target, decision, recovered, None)
                }
            }
        }
        decision => (target, decision, false, None),
    };
    // The native engine chosen on a crashed target has its estimate already.
    let estimate = match &native_unrecovered {
        Some(chosen) => chosen.estimate,
        None => estimate_for(
            instance,
            &decision,
            &target,
            &source_facts,
            session.as_ref(),
            deadline,
        ),
    };
    // An unfinished attempt is re-cloned or refused, and a manual rejoin refused: no engine.
    let chosen = native_unrecovered.or_else(|| {
        (marker.is_none() && settings.automatic)
            .then(|| choose_engine(&job, &target, &decision, estimate, false, None))
            .flatten()
    });
    let estimate = chosen.as_ref().map_or(estimate, |c| c.estimate);
    let plan = plan(
        &decision,
        marker.as_ref(),
        estimate.as_ref(),
        settings.automatic,
        job.fallback,
    );
    let engine = chosen.as_ref().map(|c| c.choice.clone());
    // A re-clone planned for a rewind decision is the cheaper one: the engine says why.
    log::info!(
        "{}: {decision}; plan: {plan}{}",
        datadir.display(),
        engine
            .as_ref()
            .filter(|_| matches!(plan, Plan::Rewind | Plan::Reclone(_)))
            .map_or(String::new(), |e| format!("; engine: {e}"))
    );
    let saved_in = marker.as_ref().and_then(|m| m.saved_in.clone());
    let mut report = RejoinReport::planned(
        decision.clone(),
        plan.clone(),
        crash_recovery,
        saved_in,
        estimate,
    );
    report.engine = engine.filter(|_| plan == Plan::Rewind);
    let native = chosen.as_ref().and_then(Chosen::native);
    execute(&job, &target, &plan, marker.as_ref(), native, &mut report)?;
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
    native: Option<&NativeView>,
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
        Plan::Rewind => rewind_else_reclone(job, target, native, report),
        Plan::Reclone(why) => reclone_as_planned(job, target, why, marker, report),
    }
}

/// The rewind (the native engine with its view `native`, else pg_rewind); when it fails and
/// the fallback allows it, a re-clone, with the configuration saved before the rewind ran.
fn rewind_else_reclone(
    job: &Job,
    target: &TargetFacts,
    native: Option<&NativeView>,
    report: &mut RejoinReport,
) -> Result<(), RewindError> {
    let (run, result) = job.rewind(target, &report.decision, native)?;
    report.saved_in = Some(run.path().to_owned());
    let (failure, saved) = match result {
        Ok(out) => {
            report.rewind = Some(out);
            report.outcome = Outcome::Rewound;
            return Ok(());
        }
        Err(failed) => *failed,
    };
    let touched = failure.target_modified();
    report.rewind_failure = Some(failure.to_string());
    if let RewindError::RewindFailed(f) = &failure {
        report.rewind = Some(f.output.clone());
    }
    if job.fallback != Fallback::Reclone {
        return Err(failure);
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
