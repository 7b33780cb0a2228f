//! Bringing a diverged former primary back as a standby, by itself and safely.
//!
//! PAF refuses to start a primary that diverged from the new one (PAF #212, "quite scary"):
//! the operator has to rewind or re-clone it by hand. pgha does it: it decides whether the
//! node diverged, prepares the source, runs PostgreSQL's own `pg_rewind` (of the data
//! directory's major version), keeps the node's own configuration, and leaves the data
//! directory stopped and configured as a standby. It never lets a half-rewound directory
//! start: a marker next to it says a rewind is under way, and the start action refuses a
//! marked directory ([`ensure_startable`]).
//!
//! Split by risk (STYLE.md): [`decision`] is pure (facts in, verdict out); [`target`] and
//! [`source`] only read; [`runner`] is the only code that runs what changes the data
//! directory (pg_rewind, pg_basebackup, single-user crash recovery); [`marker`] guards it;
//! [`forensics`] keeps the discarded WAL and [`config`] the node's configuration. This file
//! holds the API the actions and `pgha rewind` use: [`check`] (read-only) and [`rejoin`].
//!
//! Facts and traps come from pgha's pg_rewind notes (`rewind.md`), and the design decision
//! there (§12): call the binary; native code only for the read-only parts.

pub mod command;
pub mod config;
pub mod decision;
pub mod forensics;
pub mod kept;
pub mod marker;
pub mod runner;
pub mod source;
pub mod swap;
pub mod target;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use decision::{CostEstimate, Decision, Refusal};
use decision::{SourceFacts, TargetFacts};
pub use marker::is_marked;
use marker::Marker;
use runner::{RewindFailure, RewindOptions, RewindOutput, RewindSource};
use source::SourceSession;

use crate::deadline::Deadline;
use crate::failpoint;
use crate::instance::control::{ControlError, DbState};
use crate::instance::{wal, Instance};
use crate::ocf::params::Params;
use crate::process::ToolError;
use crate::safe_fs::Dir;

/// How to reach the current primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConninfo {
    /// For pgha's checks and pg_rewind: a normal connection, as a superuser or a role with
    /// pg_rewind's four grants (`rewind_user`).
    pub sql: String,
    /// For a re-clone (`pg_basebackup`) and for `primary_conninfo`: a role with REPLICATION.
    pub replication: String,
}

impl SourceConninfo {
    /// The current primary at `host` (an address, or the VIP), as the agent reaches it:
    /// pgha's checks and pg_rewind as `rewind_user` on `pgport`, a re-clone with the node's
    /// own `primary_conninfo` (a REPLICATION role, normally through the VIP). The checks and
    /// pg_rewind authenticate the primary with the TLS keywords of `rewind_conninfo`, else
    /// as streaming does, with those of `primary_conninfo` (`sslmode=verify-full`, its root,
    /// client certificate and CRL).
    pub fn for_primary(host: &str, params: &Params, primary_conninfo: &str) -> SourceConninfo {
        use crate::instance::conninfo::{get, quote};
        let mut sql = format!(
            "host={} port={} user={} dbname=postgres",
            quote(host),
            params.pgport,
            quote(&params.rewind_user)
        );
        let tls_from = params
            .rewind_conninfo
            .as_deref()
            .unwrap_or(primary_conninfo);
        for key in crate::instance::tls::KEYWORDS {
            if let Some(value) = get(tls_from, key) {
                sql.push_str(&format!(" {key}={}", quote(&value)));
            }
        }
        SourceConninfo {
            sql,
            replication: primary_conninfo.to_owned(),
        }
    }

    /// One connection string for both uses.
    pub fn new(conninfo: impl Into<String>) -> SourceConninfo {
        let conninfo = conninfo.into();
        SourceConninfo {
            sql: conninfo.clone(),
            replication: conninfo,
        }
    }
}

/// The source: a running primary, or (for `pgha rewind --source-pgdata`) a stopped data
/// directory, which pg_rewind reads directly and from which no re-clone is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Server(SourceConninfo),
    Pgdata(PathBuf),
}

/// What to do when pg_rewind cannot, did not, or would cost more than a re-clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// `pg_basebackup` into a new directory, swapped in once complete.
    Reclone,
    /// Fail, and leave the node to the operator.
    None,
}

/// How a rewind is done; [`RewindSettings::from_params`] for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewindSettings {
    /// Rewind (or re-clone) a diverged node without asking (`rewind`).
    pub automatic: bool,
    /// pg_rewind's own time limit, within the operation's deadline (`rewind_timeout`).
    pub time_limit: Option<Duration>,
    pub fallback: Fallback,
    /// Node-local files, relative to the data directory (`rewind_keep_files`).
    pub keep_files: Vec<PathBuf>,
    /// Where each rewind's folder goes (`rewind_keep_dir`); default: next to the data
    /// directory, `<parent>/pgha-rewind`.
    pub keep_dir: Option<PathBuf>,
    /// How many of the node's kept folders stay (`rewind_keep_count`), and for how long
    /// (`rewind_keep_days`); zero: no limit.
    pub keep_count: usize,
    pub keep_age: Duration,
    /// The `primary_conninfo` to write; `None` keeps the node's own setting.
    pub primary_conninfo: Option<String>,
    /// Write `standby.signal` (and `primary_conninfo`) afterwards: always for the agent,
    /// `-R` for `pgha rewind`.
    pub write_standby: bool,
    /// Run single-user crash recovery on an uncleanly stopped primary first.
    pub crash_recovery: bool,
    pub dry_run: bool,
    pub no_sync: bool,
    pub debug: bool,
    /// `--restore-target-wal`: `None` decides from the server's `restore_command`.
    pub restore_target_wal: Option<bool>,
    /// `--config-file`: `None` derives it (the configuration directory on Debian).
    pub config_file: Option<PathBuf>,
}

impl Default for RewindSettings {
    fn default() -> RewindSettings {
        RewindSettings {
            automatic: true,
            time_limit: None,
            fallback: Fallback::Reclone,
            keep_files: config::DEFAULT_KEEP.iter().map(PathBuf::from).collect(),
            keep_dir: None,
            keep_count: 0,
            keep_age: Duration::ZERO,
            primary_conninfo: None,
            write_standby: true,
            crash_recovery: true,
            dry_run: false,
            no_sync: false,
            debug: false,
            restore_target_wal: None,
            config_file: None,
        }
    }
}

impl RewindSettings {
    /// The agent's settings, from its parameters.
    pub fn from_params(params: &Params) -> RewindSettings {
        RewindSettings {
            automatic: params.rewind,
            time_limit: params.rewind_timeout,
            fallback: if params.rewind_fallback {
                Fallback::Reclone
            } else {
                Fallback::None
            },
            keep_files: params.rewind_keep_files.clone(),
            keep_dir: params.rewind_keep_dir.clone(),
            keep_count: params.rewind_keep_count,
            keep_age: Duration::from_secs(u64::from(params.rewind_keep_days) * 86_400),
            ..RewindSettings::default()
        }
    }
}

/// Everything that can stop a rewind.
#[derive(Debug, thiserror::Error)]
pub enum RewindError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    History(#[from] decision::HistoryError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("rewind source {source_conninfo}: {what}")]
    Source {
        source_conninfo: String,
        what: String,
    },
    #[error("query {query:?} on the rewind source failed: {message}")]
    SourceQuery {
        query: String,
        code: Option<String>,
        message: String,
    },
    #[error("gave up after {waited:.1?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("a postmaster runs for \"{0}\": a rewind needs it stopped")]
    Running(PathBuf),
    #[error("\"{datadir}\" stopped uncleanly (pg_control: \"{state}\") and crash recovery is off")]
    Unclean { datadir: PathBuf, state: DbState },
    #[error("cannot bring \"{datadir}\" back: {why}")]
    Refused { datadir: PathBuf, why: String },
    #[error(
        "\"{datadir}\" must not be started: a {operation} started at {started} did not finish \
         (marker {marker}); the next rejoin repairs it"
    )]
    Marked {
        datadir: PathBuf,
        marker: PathBuf,
        operation: String,
        started: String,
    },
    #[error(transparent)]
    RewindFailed(Box<RewindFailure>),
}

impl From<Box<RewindFailure>> for RewindError {
    fn from(f: Box<RewindFailure>) -> RewindError {
        RewindError::RewindFailed(f)
    }
}

impl RewindError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> RewindError {
        RewindError::Io {
            context: context.into(),
            source,
        }
    }

    /// The data directory may be half rewound: it must not be started until repaired.
    pub fn target_modified(&self) -> bool {
        matches!(self, RewindError::Marked { .. })
            || matches!(self, RewindError::RewindFailed(f) if f.touched)
    }
}

/// What will be done, from the decision, the marker and the settings (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to rewind: start as a standby.
    Stream,
    /// Stopped uncleanly as a primary: crash recovery, then decide again.
    CrashRecovery,
    Rewind,
    Reclone(String),
    Refuse(String),
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::Stream => f.write_str("start as a standby, nothing to rewind"),
            Plan::CrashRecovery => f.write_str("crash recovery, then decide again"),
            Plan::Rewind => f.write_str("pg_rewind"),
            Plan::Reclone(why) => write!(f, "re-clone with pg_basebackup: {why}"),
            Plan::Refuse(why) => write!(f, "refuse: {why}"),
        }
    }
}

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

/// What [`check`] found, without changing anything.
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
                "estimate: pg_rewind about {} MB (source WAL {} MB), re-clone about {} MB",
                e.rewind_bytes() >> 20,
                e.source_wal >> 20,
                e.reclone_bytes() >> 20
            )?;
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
    /// Removes or keeps the data directory a re-clone replaced, if any
    /// ([`swap::Replaced::settle`]): removed only once the new standby `streaming`.
    pub fn settle_replaced(&self, streaming: bool) {
        if let Some(replaced) = &self.replaced {
            replaced.settle(streaming);
        }
    }
}

/// Refuses a data directory a rewind or re-clone left unfinished. Start calls this first.
pub fn ensure_startable(datadir: &Path) -> Result<(), RewindError> {
    match marker::read(datadir) {
        None if !is_marked(datadir) => Ok(()),
        m => {
            let m = m.unwrap_or(Marker {
                operation: "rewind".into(),
                started: "an unknown time".into(),
                node: String::new(),
                saved_in: None,
            });
            Err(RewindError::Marked {
                datadir: datadir.to_owned(),
                marker: marker::path(datadir),
                operation: m.operation,
                started: m.started,
            })
        }
    }
}

/// What validate-all (level 10) should warn about for the rewind, checked on this node
/// without a server: the target-side precondition of pg_rewind (in pg_control), the binaries
/// of the data directory's major, and where the discarded WAL would go.
pub fn preflight(instance: &Instance, settings: &RewindSettings) -> Vec<String> {
    let mut warnings = Vec::new();
    if !settings.automatic {
        return warnings;
    }
    match instance.control() {
        Ok(c) if !c.can_rewind() => warnings.push(format!(
            "neither wal_log_hints nor data checksums are on in \"{}\": if it diverges, this \
             node can only be re-cloned, not rewound",
            instance.datadir().display()
        )),
        Ok(_) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    let mut tools = vec!["pg_rewind"];
    if settings.fallback == Fallback::Reclone {
        tools.push("pg_basebackup");
    }
    for tool in tools {
        if !instance.bin(tool).is_file() {
            warnings.push(format!(
                "{} is missing: a diverged node cannot be brought back",
                instance.bin(tool).display()
            ));
        }
    }
    let keep_dir = forensics::keep_dir(settings.keep_dir.as_deref(), instance.datadir());
    let existing = keep_dir.ancestors().find(|p| p.exists());
    if existing.is_none_or(|p| !p.is_dir()) {
        warnings.push(format!(
            "rewind_keep_dir {} cannot be created",
            keep_dir.display()
        ));
    }
    warnings
}

/// Facts of both sides.
fn gather(
    instance: &Instance,
    source: &Source,
    session: Option<&SourceSession>,
    settings: &RewindSettings,
    deadline: &Deadline,
) -> Result<(TargetFacts, SourceFacts), RewindError> {
    let source_facts = match (source, session) {
        (_, Some(s)) => s.facts(deadline)?,
        (Source::Pgdata(dir), None) => source::local_facts(dir)?,
        (Source::Server(_), None) => {
            return Err(RewindError::Source {
                source_conninfo: String::new(),
                what: "no connection".into(),
            })
        }
    };
    let restore = match settings.restore_target_wal {
        Some(v) => v,
        None => target::has_restore_command(instance, deadline),
    };
    let (_, target_facts) = target::facts(instance, restore)?;
    Ok((target_facts, source_facts))
}

fn connect(
    instance: &Instance,
    source: &Source,
    deadline: &Deadline,
) -> Result<Option<SourceSession>, RewindError> {
    match source {
        Source::Server(c) => Ok(Some(SourceSession::connect(
            &c.sql,
            Some(&instance.user.home),
            deadline,
        )?)),
        Source::Pgdata(_) => Ok(None),
    }
}

fn estimate_for(
    decision: &Decision,
    source: &SourceFacts,
    session: Option<&SourceSession>,
    deadline: &Deadline,
) -> Option<CostEstimate> {
    match (decision, session) {
        (
            Decision::Rewind {
                fork_point,
                target_end,
                ..
            },
            Some(s),
        ) => s.estimate(*fork_point, source, *target_end, deadline),
        _ => None,
    }
}

fn fallback_for(source: &Source, settings: &RewindSettings) -> Fallback {
    match source {
        Source::Server(_) => settings.fallback,
        Source::Pgdata(_) => Fallback::None,
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
/// [`ensure_startable`] refuses it).
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
    let datadir = instance.datadir().to_owned();
    if instance.postmaster().is_running() {
        return Err(RewindError::Running(datadir));
    }
    let fallback = fallback_for(source, settings);
    let session = connect(instance, source, deadline)?;
    let (mut target, source_facts) =
        gather(instance, source, session.as_ref(), settings, deadline)?;
    let mut decision = decision::decide(&target, &source_facts);
    let marker = marker::read(&datadir).or_else(|| {
        is_marked(&datadir).then(|| Marker {
            operation: "rewind".into(),
            started: "an unknown time".into(),
            node: node.into(),
            saved_in: None,
        })
    });
    let mut crash_recovery = false;
    if marker.is_none() {
        if let Decision::CrashRecoveryFirst(state) = decision {
            log::info!("{}: {decision}", datadir.display());
            if settings.dry_run {
                return Ok(RejoinReport {
                    outcome: Outcome::DryRun,
                    plan: Plan::CrashRecovery,
                    decision,
                    crash_recovery: false,
                    saved_in: None,
                    rewind: None,
                    rewind_failure: None,
                    estimate: None,
                    elapsed: started.elapsed(),
                    replaced: None,
                });
            }
            if !settings.crash_recovery {
                return Err(RewindError::Unclean { datadir, state });
            }
            if let Some((recovered, preview)) = reclone_preview(
                instance,
                &target,
                &source_facts,
                session.as_ref(),
                settings,
                fallback,
                deadline,
            ) {
                // The recovered directory would be thrown away: no need to recover it.
                log::info!(
                    "{}: crash recovery skipped, a re-clone is cheaper",
                    datadir.display()
                );
                target = recovered;
                decision = preview;
            } else {
                // Single-user mode refuses standby mode.
                let data = open_data(instance)?;
                for signal in ["standby.signal", "recovery.signal"] {
                    data.remove_file(signal).map_err(|e| {
                        RewindError::io(
                            format!("could not remove {}", data.join(signal).display()),
                            e,
                        )
                    })?;
                }
                runner::crash_recovery(instance, deadline)?;
                crash_recovery = true;
                target = target::facts(instance, target.restore_command)?.1;
                decision = decision::decide(&target, &source_facts);
            }
        }
    }
    let estimate = estimate_for(&decision, &source_facts, session.as_ref(), deadline);
    let plan = plan(
        &decision,
        marker.as_ref(),
        estimate.as_ref(),
        settings.automatic,
        fallback,
    );
    log::info!("{}: {decision}; plan: {plan}", datadir.display());
    let mut report = RejoinReport {
        outcome: Outcome::DryRun,
        decision: decision.clone(),
        plan: plan.clone(),
        crash_recovery,
        saved_in: marker.as_ref().and_then(|m| m.saved_in.clone()),
        rewind: None,
        rewind_failure: None,
        estimate,
        elapsed: Duration::ZERO,
        replaced: None,
    };
    let job = Job {
        instance,
        source,
        session: session.as_ref(),
        source_facts: &source_facts,
        target: &target,
        node,
        settings,
        deadline,
    };
    match &plan {
        Plan::Refuse(why) => {
            return Err(RewindError::Refused {
                datadir,
                why: why.clone(),
            })
        }
        Plan::CrashRecovery => {
            return Err(RewindError::Refused {
                datadir,
                why: "still not cleanly stopped after crash recovery".into(),
            })
        }
        _ if settings.dry_run => {
            if plan == Plan::Rewind {
                job.prepare_source()?;
                let (out, _) = runner::pg_rewind(
                    instance,
                    &job.rewind_source(),
                    &job.rewind_options(true),
                    deadline,
                )?;
                report.rewind = Some(out);
            }
        }
        Plan::Stream => {
            if settings.write_standby {
                config::write_standby(
                    &open_data(instance)?,
                    settings.primary_conninfo.as_deref(),
                    node,
                    instance.user.owner(),
                )?;
            }
            report.outcome = Outcome::Streamable;
        }
        Plan::Rewind => {
            let (run, result) = job.rewind(&decision)?;
            report.saved_in = Some(run.path().to_owned());
            match result {
                Ok(out) => {
                    report.rewind = Some(out);
                    report.outcome = Outcome::Rewound;
                }
                Err(failed) => {
                    let (failure, saved) = *failed;
                    let touched = failure.touched;
                    report.rewind_failure = Some(failure.to_string());
                    report.rewind = Some(failure.output.clone());
                    if fallback != Fallback::Reclone {
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
                }
            }
        }
        Plan::Reclone(why) => {
            log::info!("re-cloning \"{}\": {why}", datadir.display());
            // The directory may be half rewound: its configuration files may be the
            // source's. Take the ones the first attempt saved, in the folder its marker names
            // (only a kept folder of rewind_keep_dir is believed).
            let earlier = marker
                .as_ref()
                .and_then(|m| m.saved_in.as_deref())
                .and_then(|dir| {
                    kept::open_run(&job.keep_dir(), dir)
                        .and_then(|run| {
                            let saved = config::saved_before(&run, &settings.keep_files)?;
                            Ok((run, saved))
                        })
                        .map_err(|e| log::warn!("the configuration saved before is not used: {e}"))
                        .ok()
                });
            let (run, saved) = match earlier {
                Some((run, saved)) => (run, Some(saved)),
                None => (
                    job.keep_forensics(fork_of(&decision, &target, &source_facts))?,
                    None,
                ),
            };
            report.saved_in = Some(run.path().to_owned());
            // The WAL kept holds all the replaced directory had past the fork only when the
            // fork is known and its WAL was there: a plain rewind decision, first attempt.
            let wal_complete = marker.is_none() && matches!(decision, Decision::Rewind { .. });
            report.replaced = Some(job.reclone(run, saved, wal_complete)?);
            report.outcome = Outcome::Recloned;
        }
    }
    if matches!(report.outcome, Outcome::Rewound | Outcome::Recloned) {
        job.apply_retention(report.saved_in.as_deref());
    }
    report.elapsed = started.elapsed();
    log::info!(
        "{}: {:?} in {:.1?}",
        datadir.display(),
        report.outcome,
        report.elapsed
    );
    Ok(report)
}

/// Before the crash recovery of a target that stopped uncleanly as a primary: when its WAL,
/// read natively from the fork point on, shows that it went past the fork and a re-clone
/// will cost less than a rewind, the facts and decision crash recovery would lead to.
/// `None` whenever that is not certain: the recovery then runs and the decision is made
/// again on what it leaves.
fn reclone_preview(
    instance: &Instance,
    target: &TargetFacts,
    source: &SourceFacts,
    session: Option<&SourceSession>,
    settings: &RewindSettings,
    fallback: Fallback,
    deadline: &Deadline,
) -> Option<(TargetFacts, Decision)> {
    if fallback != Fallback::Reclone || !settings.automatic {
        return None;
    }
    let fork = decision::common_ancestor(&target.history, &source.history)?.at?;
    let segment_size = u32::try_from(target.wal_segments.segment_size).ok()?;
    let pg_wal = instance.datadir().join("pg_wal");
    let session = session?;
    let reclone_preferred = |target_end| {
        session
            .estimate(fork, source, target_end, deadline)
            .is_some_and(|e| e.prefers_reclone())
    };
    let end = if reclone_preferred(fork) {
        // Cheaper even if the target wrote nothing past the fork: one record there proves
        // it did, and every file it has bounds where its WAL ends (what is kept).
        wal::read_record(
            &pg_wal,
            target.timeline(),
            wal::past_page_header(fork, segment_size),
            segment_size,
        )
        .ok()?;
        target.wal_segments.end_of_files(target.timeline())?
    } else if reclone_preferred(target.wal_segments.end_of_files(target.timeline())?) {
        // It depends on how far the target's WAL goes: read it (about 0.2 s per 100 MB).
        let budget = deadline.at_most(deadline.remaining() / 4);
        wal::end_of_valid_wal(&pg_wal, target.timeline(), fork, segment_size, &budget)?
    } else {
        // A rewind is cheaper even if the target's WAL filled every file it has.
        return None;
    };
    let recovered = target.as_if_recovered(end);
    let preview = decision::decide(&recovered, source);
    let estimate = estimate_for(&preview, source, Some(session), deadline)?;
    (matches!(preview, Decision::Rewind { .. }) && estimate.prefers_reclone())
        .then_some((recovered, preview))
}

/// The fork point, when the histories say one (whatever the decision was).
fn fork_of(
    decision: &Decision,
    target: &TargetFacts,
    source: &SourceFacts,
) -> Option<crate::lsn::Lsn> {
    match decision {
        Decision::Rewind { fork_point, .. } => Some(*fork_point),
        _ => decision::common_ancestor(&target.history, &source.history).and_then(|f| f.at),
    }
}

/// One rejoin's context.
struct Job<'a> {
    instance: &'a Instance,
    source: &'a Source,
    session: Option<&'a SourceSession>,
    source_facts: &'a SourceFacts,
    target: &'a TargetFacts,
    node: &'a str,
    settings: &'a RewindSettings,
    deadline: &'a Deadline,
}

type RewindAttempt = Result<RewindOutput, Box<(RewindFailure, config::SavedConfig)>>;

impl Job<'_> {
    fn datadir(&self) -> &Path {
        self.instance.datadir()
    }

    fn keep_dir(&self) -> PathBuf {
        forensics::keep_dir(self.settings.keep_dir.as_deref(), self.datadir())
    }

    fn rewind_source(&self) -> RewindSource {
        match self.source {
            Source::Server(c) => RewindSource::Server(c.sql.clone()),
            Source::Pgdata(dir) => RewindSource::Pgdata(dir.clone()),
        }
    }

    fn rewind_options(&self, dry_run: bool) -> RewindOptions {
        RewindOptions {
            dry_run,
            no_sync: self.settings.no_sync,
            debug: self.settings.debug,
            // In a dry run, -c would still restore WAL into the target's pg_wal.
            restore_target_wal: self.target.restore_command && !dry_run,
            config_file: self
                .settings
                .config_file
                .clone()
                .or_else(|| config_file(self.instance)),
            ensure_shutdown: !self.settings.crash_recovery,
            time_limit: self.settings.time_limit,
        }
    }

    /// PG ≤ 15: the source's pg_control must show its new timeline, or pg_rewind sees no
    /// fork and says "no rewind required".
    fn prepare_source(&self) -> Result<(), RewindError> {
        if let Some(s) = self.session {
            if self.source_facts.needs_checkpoint(self.instance.major) {
                let how = s.ensure_checkpointed(self.source_facts, self.deadline)?;
                log::info!(
                    "the source had not checkpointed since its promotion to timeline {}: {how}",
                    self.source_facts.timeline
                );
            }
        }
        Ok(())
    }

    /// This run's folder in `rewind_keep_dir`, with the discarded WAL, the old pg_control
    /// and a README.
    fn keep_forensics(&self, fork: Option<crate::lsn::Lsn>) -> Result<Dir, RewindError> {
        let (started, stamp) = marker::utc_now();
        let owner = self.instance.user.owner();
        let keep = forensics::open_keep_dir(&self.keep_dir())?;
        let run = forensics::create_run_dir(&keep, self.node, &stamp, owner)?;
        let readme = format!(
            "pgha rewind of {} on node {} at {started}\n\
             Fork point: {}\n\
             Target: {}, timeline {}, checkpoint {}\n\
             pg_wal/ holds the target's WAL from the fork point's segment on: what the rewind \
             discards. Read it with: pg_waldump -p {}/pg_wal <first segment>\n",
            self.datadir().display(),
            self.node,
            fork.map_or("unknown".into(), |l| l.to_string()),
            self.target.state,
            self.target.timeline(),
            self.target.checkpoint,
            run.path().display(),
        );
        let segment_size = self.target.wal_segments.segment_size;
        let source_wal = self.session.and_then(|s| s.wal_file_names(self.deadline));
        forensics::keep_discarded_wal(
            &open_data(self.instance)?,
            &run,
            fork,
            self.target.end_of_wal(),
            segment_size,
            source_wal.as_ref(),
            owner,
            self.deadline,
        )?;
        run.write_file("README", readme.as_bytes(), 0o600, owner)
            .map_err(|e| {
                RewindError::io(
                    format!("could not write {}", run.join("README").display()),
                    e,
                )
            })?;
        Ok(run)
    }

    /// Removes this node's kept folders past `rewind_keep_count` and `rewind_keep_days`,
    /// never the one of this run; a failure is only logged.
    fn apply_retention(&self, current: Option<&Path>) {
        let current = current.and_then(|p| p.file_name()).and_then(|n| n.to_str());
        let result = forensics::open_keep_dir(&self.keep_dir()).and_then(|keep| {
            kept::apply_retention(
                &keep,
                self.node,
                self.settings.keep_count,
                self.settings.keep_age,
                current,
                self.instance.user.owner(),
            )
        });
        if let Err(e) = result {
            log::warn!("could not apply the retention of kept folders: {e}");
        }
    }

    fn write_marker(
        &self,
        data: &Dir,
        operation: &str,
        saved_in: &Path,
    ) -> Result<(), RewindError> {
        marker::write(
            data,
            &Marker {
                operation: operation.into(),
                started: marker::utc_now().0,
                node: self.node.into(),
                saved_in: Some(saved_in.to_owned()),
            },
        )
    }

    /// Prepares, keeps, marks, runs pg_rewind, restores. The outer error is a failure
    /// before pg_rewind ran; the inner one is pg_rewind's.
    fn rewind(&self, decision: &Decision) -> Result<(Dir, RewindAttempt), RewindError> {
        let Decision::Rewind { fork_point, .. } = decision else {
            return Err(RewindError::Refused {
                datadir: self.datadir().to_owned(),
                why: format!("internal error (a bug in pgha): rewind planned for {decision}"),
            });
        };
        self.prepare_source()?;
        let run = self.keep_forensics(Some(*fork_point))?;
        let data = open_data(self.instance)?;
        let saved = config::save(
            &data,
            &self.settings.keep_files,
            &run,
            self.instance.user.owner(),
        )?;
        self.write_marker(&data, "pg_rewind", run.path())?;
        failpoint::hit("rewind-marked");
        let attempt = runner::pg_rewind(
            self.instance,
            &self.rewind_source(),
            &self.rewind_options(false),
            self.deadline,
        );
        let failure = match attempt {
            Ok((out, elapsed)) if out.done && !out.no_rewind_required => {
                log::info!("pg_rewind done in {elapsed:.1?}");
                saved.restore(&data, self.instance.user.owner())?;
                failpoint::hit("rewind-restored");
                self.write_standby(&data)?;
                failpoint::hit("rewind-configured");
                marker::remove(&data)?;
                return Ok((run, Ok(out)));
            }
            Ok((out, _)) => Box::new(RewindFailure {
                // "no rewind required" exits before any change.
                touched: !out.no_rewind_required,
                error: ToolError::Exit {
                    command: "pg_rewind".into(),
                    code: 0,
                    output: format!(
                        "pg_rewind disagrees: it found no rewind to do, pgha found a fork at \
                         {fork_point}"
                    ),
                },
                output: out,
            }),
            Err(f) => f,
        };
        if !failure.touched {
            marker::remove(&data)?;
        }
        Ok((run, Err(Box::new((*failure, saved)))))
    }

    fn write_standby(&self, data: &Dir) -> Result<(), RewindError> {
        if !self.settings.write_standby {
            return Ok(());
        }
        config::write_standby(
            data,
            self.settings.primary_conninfo.as_deref(),
            self.node,
            self.instance.user.owner(),
        )
    }

    /// `pg_basebackup` into `<datadir>.pgha-clone`, the node's configuration and standby
    /// settings put in, synced, then swapped in for the data directory under the marker
    /// (`swap.rs`). Returns the replaced directory, set aside and still whole.
    fn reclone(
        &self,
        run: Dir,
        saved: Option<config::SavedConfig>,
        wal_complete: bool,
    ) -> Result<swap::Replaced, RewindError> {
        let datadir = self.datadir().to_owned();
        let refused = |why: String| RewindError::Refused {
            datadir: datadir.clone(),
            why,
        };
        let (Source::Server(conninfo), Some(session)) = (self.source, self.session) else {
            return Err(refused("a re-clone needs a source server".into()));
        };
        if session.tablespaces(self.deadline)? > 0 {
            return Err(refused(
                "the source has tablespaces: a re-clone into a new directory would collide \
                 with their paths; re-clone by hand"
                    .into(),
            ));
        }
        let parent_path = datadir.parent().unwrap_or(Path::new("/"));
        if same_device(parent_path, &datadir) != Some(true) {
            return Err(refused(format!(
                "{} is a mount point: a re-clone is built next to it and swapped in by rename",
                datadir.display()
            )));
        }
        let io = |what: &str, path: &Path, e| {
            RewindError::io(format!("could not {what} {}", path.display()), e)
        };
        let owner = self.instance.user.owner();
        let data = open_data(self.instance)?;
        let saved = match saved {
            Some(s) => s,
            None => config::save(&data, &self.settings.keep_files, &run, owner)?,
        };
        let (parent, name) = Dir::parent_of(&datadir).map_err(|e| io("open", parent_path, e))?;
        let parent_owner = parent.owner().map_err(|e| io("look at", parent_path, e))?;
        if !parent_owner.uid.is_root() && Some(parent_owner.uid) != owner.map(|o| o.uid) {
            return Err(refused(format!(
                "{} belongs to uid {}, neither root nor the system user: no re-clone is built \
                 there",
                parent_path.display(),
                parent_owner.uid
            )));
        }
        let names = swap::Names::of(&name);
        swap::clear_leftovers(&parent, &names, owner)?;
        let clone = parent
            .create_dir(&names.clone, 0o700, owner)
            .map_err(|e| io("create", &parent.join(&names.clone), e))?;
        match runner::pg_basebackup(
            self.instance,
            &conninfo.replication,
            clone.path(),
            self.deadline,
        ) {
            Ok(elapsed) => {
                log::info!("pg_basebackup done in {elapsed:.1?}");
                failpoint::hit("reclone-copied");
            }
            Err(e) => {
                let _ = parent.remove_tree(&names.clone, owner);
                return Err(e);
            }
        }
        saved.restore(&clone, owner)?;
        // The clone is the source's, a primary's: it must start as a standby whatever -R
        // said.
        config::write_standby(
            &clone,
            self.settings.primary_conninfo.as_deref(),
            self.node,
            owner,
        )?;
        clone.sync().map_err(|e| io("sync", clone.path(), e))?;
        failpoint::hit("reclone-configured");
        self.write_marker(&data, "re-clone", run.path())?;
        failpoint::hit("reclone-marked");
        let old = swap::swap_in(&parent, &names, &data, &marker::utc_now().1)?;
        failpoint::hit("reclone-set-aside");
        marker::remove(&open_data(self.instance)?)?;
        log::info!("re-cloned \"{}\" from the source", datadir.display());
        Ok(swap::Replaced {
            parent,
            name: old,
            run,
            wal_complete,
            owner,
        })
    }
}

/// The data directory, opened for changes: it must belong to the system user.
fn open_data(instance: &Instance) -> Result<Dir, RewindError> {
    Dir::open_owned(instance.datadir(), instance.user.owner()).map_err(|e| {
        RewindError::io(
            format!("could not open {}", instance.datadir().display()),
            e,
        )
    })
}

fn same_device(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    Some(std::fs::metadata(a).ok()?.dev() == std::fs::metadata(b).ok()?.dev())
}

/// The server's configuration file when it is not the data directory's own: the Debian
/// layout (`pgdata` is the configuration directory), or `config_file` in `start_opts`.
fn config_file(instance: &Instance) -> Option<PathBuf> {
    let from_opts = instance
        .params
        .start_opts
        .words()
        .iter()
        .find_map(|w| w.strip_prefix("config_file="))
        .map(PathBuf::from);
    from_opts.or_else(|| {
        (instance.params.pgdata != instance.params.datadir)
            .then(|| instance.params.pgdata.join("postgresql.conf"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsn::Lsn;

    fn rewind() -> Decision {
        Decision::Rewind {
            fork_point: Lsn(0x300_0000),
            fork_timeline: 1,
            target_end: Lsn(0x310_0000),
        }
    }

    fn marker() -> Marker {
        Marker {
            operation: "pg_rewind".into(),
            started: "2026-01-01T00:00:00Z".into(),
            node: "pg1".into(),
            saved_in: None,
        }
    }

    /// pgha's checks and pg_rewind connect with `primary_conninfo`'s TLS keywords; before,
    /// they got host, port and user only, and a host that answered for the primary was
    /// believed in clear text.
    #[test]
    fn finding_4_the_source_conninfo_keeps_the_tls_keywords() {
        let params = Params::from_lookup(|_| None).unwrap();
        let primary = "host=vip user=rep application_name=pg1 password=x sslmode=verify-full \
                       sslrootcert='/etc/pg ca/root.crt' sslcert=/c.crt sslkey=/c.key \
                       sslcrl=/r.crl";
        let c = SourceConninfo::for_primary("pg2", &params, primary);
        let get = |key| crate::instance::conninfo::get(&c.sql, key);
        assert_eq!(get("host").as_deref(), Some("pg2"));
        assert_eq!(get("user").as_deref(), Some("postgres"));
        assert_eq!(get("sslmode").as_deref(), Some("verify-full"));
        assert_eq!(get("sslrootcert").as_deref(), Some("/etc/pg ca/root.crt"));
        assert_eq!(get("sslcert").as_deref(), Some("/c.crt"));
        assert_eq!(get("sslkey").as_deref(), Some("/c.key"));
        assert_eq!(get("sslcrl").as_deref(), Some("/r.crl"));
        // Only TLS is taken over: the replication role's password stays out of it.
        assert_eq!(get("password"), None);
        assert_eq!(c.replication, primary);
        let plain = SourceConninfo::for_primary("pg2", &params, "host=vip user=rep");
        assert!(!plain.sql.contains("ssl"), "{}", plain.sql);
        // rewind_conninfo replaces primary_conninfo's TLS keywords for the checks and
        // pg_rewind; the re-clone keeps primary_conninfo, as streaming.
        let params = Params::from_lookup(|name| {
            (name == "rewind_conninfo").then(|| "sslmode=verify-ca sslrootcert=/r2".to_owned())
        })
        .unwrap();
        let c = SourceConninfo::for_primary("pg2", &params, primary);
        let get = |key| crate::instance::conninfo::get(&c.sql, key);
        assert_eq!(get("sslmode").as_deref(), Some("verify-ca"));
        assert_eq!(get("sslrootcert").as_deref(), Some("/r2"));
        assert_eq!(get("sslcert"), None);
        assert_eq!(c.replication, primary);
    }

    #[test]
    fn plans() {
        let cheap = CostEstimate {
            source_wal: 1 << 20,
            source_databases: 1 << 30,
            source_since_fork: 0,
            target_since_fork: 0,
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

    #[test]
    fn a_marked_directory_is_not_startable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        ensure_startable(&data).unwrap();
        marker::write(&Dir::open(&data).unwrap(), &marker()).unwrap();
        let err = ensure_startable(&data).unwrap_err();
        assert!(err.target_modified(), "{err}");
        assert!(err.to_string().contains("must not be started"), "{err}");
    }

    /// Finding 6: the marker lives outside PGDATA, where pg_ctl does not look; the guard on
    /// the data directory itself still stops pgha when the marker is gone.
    #[test]
    fn finding_6_the_guard_alone_keeps_a_directory_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        marker::write(&Dir::open(&data).unwrap(), &marker()).unwrap();
        std::fs::remove_file(marker::path(&data)).unwrap();
        assert!(marker::is_guarded(&data));
        assert!(ensure_startable(&data).is_err());
    }
}
