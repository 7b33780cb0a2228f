//! Executing: the steps of a rejoin that change something, in the order that keeps the
//! data directory safe. [`Job`] holds one rejoin's context; `rejoin.rs` chooses which of
//! its steps run. Every change to the data directory happens under the marker, and each
//! `failpoint::hit` names a point the tests kill the agent at.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::config::{self, SavedConfig};
use super::decision::{self, Decision, SourceFacts, TargetFacts};
use super::error::RewindError;
use super::facts::reclone_preview;
use super::forensics::{self, io, PG_CONTROL_LIMIT};
use super::kept;
use super::listing::Tree;
use super::major::pg_rewind;
use super::marker::{self, Marker};
use super::native;
use super::runner::{self, RewindFailure, RewindOptions, RewindOutput, RewindSource};
use super::settings::{Fallback, RewindSettings, Source};
use super::source::SourceSession;
use super::target;
use super::view::NativeView;
use crate::deadline::Deadline;
use crate::failpoint;
use crate::instance::control::{self, ControlFile, DbState};
use crate::instance::Instance;
use crate::lsn::Lsn;
use crate::process::ToolError;
use crate::safe_fs::{Dir, Owner};

/// One rejoin's context: what stays the same from its first step to its last. The target's
/// facts do not (crash recovery changes them): each step that needs them is given them.
pub(super) struct Job<'a> {
    pub instance: &'a Instance,
    pub source: &'a Source,
    pub session: Option<&'a SourceSession>,
    pub source_facts: &'a SourceFacts,
    pub node: &'a str,
    pub settings: &'a RewindSettings,
    /// What the settings allow with this source ([`fallback_for`](super::plan::fallback_for)).
    pub fallback: Fallback,
    pub deadline: &'a Deadline,
}

/// The engine's attempt: its output, or its failure (pg_rewind's
/// [`RewindError::RewindFailed`], the native engine's [`RewindError::NativeFailed`]) with the
/// configuration saved before it.
pub(super) type RewindAttempt = Result<RewindOutput, Box<(RewindError, SavedConfig)>>;

impl Job<'_> {
    pub(super) fn datadir(&self) -> &Path {
        self.instance.datadir()
    }

    pub(super) fn owner(&self) -> Option<Owner> {
        self.instance.user.owner()
    }

    pub(super) fn keep_dir(&self) -> PathBuf {
        forensics::keep_dir(self.settings.keep_dir.as_deref(), self.datadir())
    }

    /// This data directory cannot be brought back, and why.
    pub(super) fn refused(&self, why: String) -> RewindError {
        RewindError::Refused {
            datadir: self.datadir().to_owned(),
            why,
        }
    }

    /// Crash recovery of a target that stopped uncleanly (`state`) as a primary, unless a
    /// re-clone will replace it anyway ([`reclone_preview`]: the recovered directory would be
    /// thrown away). Returns the target's facts and decision from here on, and whether
    /// recovery ran.
    pub(super) fn recover(
        &self,
        target: &TargetFacts,
        state: DbState,
    ) -> Result<(TargetFacts, Decision, bool), RewindError> {
        if !self.settings.crash_recovery {
            let datadir = self.datadir().to_owned();
            return Err(RewindError::Unclean { datadir, state });
        }
        let preview = reclone_preview(
            self.instance,
            target,
            self.source_facts,
            self.session,
            self.settings,
            self.fallback,
            self.deadline,
        );
        if let Some((recovered, preview)) = preview {
            log::info!(
                "{}: crash recovery skipped, a re-clone is cheaper",
                self.datadir().display()
            );
            return Ok((recovered, preview, false));
        }
        // Single-user mode refuses standby mode.
        let data = open_data(self.instance)?;
        for signal in ["standby.signal", "recovery.signal"] {
            data.remove_file(signal)
                .map_err(|e| io("remove", &data.join(signal), e))?;
        }
        runner::crash_recovery(self.instance, self.deadline)?;
        let target = target::facts(self.instance, target.restore_command)?.1;
        let decision = decision::decide(&target, self.source_facts);
        Ok((target, decision, true))
    }

    fn rewind_source(&self) -> RewindSource {
        match self.source {
            Source::Server(c) => RewindSource::Server(c.sql.clone()),
            Source::Pgdata(dir) => RewindSource::Pgdata(dir.clone()),
        }
    }

    fn rewind_options(&self, target: &TargetFacts, dry_run: bool) -> RewindOptions {
        RewindOptions {
            dry_run,
            no_sync: self.settings.no_sync,
            debug: self.settings.debug,
            // In a dry run, -c would still restore WAL into the target's pg_wal.
            restore_target_wal: target.restore_command && !dry_run,
            config_file: self
                .settings
                .config_file
                .clone()
                .or_else(|| config_file(self.instance)),
            ensure_shutdown: !self.settings.crash_recovery,
            sync_method: self.settings.sync_method,
            time_limit: self.settings.time_limit,
        }
    }

    /// PG ≤ 15: the source's pg_control must show its new timeline, or pg_rewind sees no
    /// fork and says "no rewind required".
    fn prepare_source(&self) -> Result<(), RewindError> {
        if let Some(s) = self.session {
            if self
                .source_facts
                .needs_checkpoint(pg_rewind(self.instance.major))
            {
                let how = s.ensure_checkpointed(self.source_facts, self.deadline)?;
                log::info!(
                    "the source had not checkpointed since its promotion to timeline {}: {how}",
                    self.source_facts.timeline
                );
            }
        }
        Ok(())
    }

    /// Nothing to rewind: only the standby settings, when asked for.
    pub(super) fn stream(&self) -> Result<(), RewindError> {
        if self.settings.write_standby {
            self.write_standby(&open_data(self.instance)?)?;
        }
        Ok(())
    }

    /// pg_rewind `--dry-run`, after the source is prepared as for the real one: changes
    /// nothing on the target.
    pub(super) fn dry_run(&self, target: &TargetFacts) -> Result<RewindOutput, RewindError> {
        self.prepare_source()?;
        let (out, _) = runner::pg_rewind(
            self.instance,
            &self.rewind_source(),
            &self.rewind_options(target, true),
            self.deadline,
        )?;
        Ok(out)
    }

    /// This run's folder in `rewind_keep_dir`, with the discarded WAL, the old pg_control
    /// and a README.
    pub(super) fn keep_forensics(
        &self,
        target: &TargetFacts,
        fork: Option<Lsn>,
    ) -> Result<Dir, RewindError> {
        let (started, stamp) = marker::utc_now();
        let owner = self.owner();
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
            target.state,
            target.timeline(),
            target.checkpoint,
            run.path().display(),
        );
        let segment_size = target.wal_segments.segment_size;
        let source_wal = self.session.and_then(|s| s.wal_file_names(self.deadline));
        forensics::keep_discarded_wal(
            &open_data(self.instance)?,
            &run,
            fork,
            target.end_of_wal(),
            segment_size,
            source_wal.as_ref(),
            owner,
            self.deadline,
        )?;
        run.write_file("README", readme.as_bytes(), 0o600, owner)
            .map_err(|e| io("write", &run.join("README"), e))?;
        Ok(run)
    }

    /// Removes this node's kept folders past `rewind_keep_count` and `rewind_keep_days`,
    /// never the one of this run; a failure is only logged.
    pub(super) fn apply_retention(&self, current: Option<&Path>) {
        let current = current.and_then(|p| p.file_name()).and_then(|n| n.to_str());
        let result = forensics::open_keep_dir(&self.keep_dir()).and_then(|keep| {
            kept::apply_retention(
                &keep,
                self.node,
                self.settings.keep_count,
                self.settings.keep_age,
                current,
                self.owner(),
            )
        });
        if let Err(e) = result {
            log::warn!("could not apply the retention of kept folders: {e}");
        }
    }

    /// The run folder and the configuration an unfinished attempt saved, in the folder its
    /// marker names (only a kept folder of `rewind_keep_dir` is believed): the directory
    /// may be half rewound, its configuration files the source's. `None` when there is no
    /// such folder or it cannot be used (logged).
    pub(super) fn saved_before(&self, marker: Option<&Marker>) -> Option<(Dir, SavedConfig)> {
        let dir = marker?.saved_in.as_deref()?;
        kept::open_run(&self.keep_dir(), dir)
            .and_then(|run| {
                let saved = config::saved_before(&run, &self.settings.keep_files)?;
                Ok((run, saved))
            })
            .map_err(|e| log::warn!("the configuration saved before is not used: {e}"))
            .ok()
    }

    /// The marker, before `operation` changes the data directory: it names this run's
    /// folder, where the next attempt finds the configuration saved before.
    pub(super) fn write_marker(
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

    /// Prepares, keeps, marks, runs the engine (the native one with its `native` view, else
    /// pg_rewind), restores. The outer error is a failure before the engine ran; the inner
    /// one is the engine's.
    pub(super) fn rewind(
        &self,
        target: &TargetFacts,
        decision: &Decision,
        native: Option<&NativeView>,
    ) -> Result<(Dir, RewindAttempt), RewindError> {
        let Decision::Rewind { fork_point, .. } = decision else {
            return Err(self.refused(format!(
                "internal error (a bug in pgha): rewind planned for {decision}"
            )));
        };
        self.prepare_source()?;
        let run = self.keep_forensics(target, Some(*fork_point))?;
        let data = open_data(self.instance)?;
        let segment_size = target.wal_segments.segment_size;
        forensics::hold_wal_to_fork(&data, &run, *fork_point, segment_size, self.owner())?;
        let saved = config::save(&data, &self.settings.keep_files, &run, self.owner())?;
        let operation = if native.is_some() {
            "native rewind"
        } else {
            "pg_rewind"
        };
        self.write_marker(&data, operation, run.path())?;
        failpoint::hit("rewind-marked");
        let attempt = match native {
            Some(view) => self.native_rewind(target, view, &data),
            None => runner::pg_rewind(
                self.instance,
                &self.rewind_source(),
                &self.rewind_options(target, false),
                self.deadline,
            )
            .map_err(RewindError::from),
        };
        let failure = match attempt {
            Ok((out, elapsed)) if out.done && !out.no_rewind_required => {
                log::info!("{operation} done in {elapsed:.1?}");
                let put_back = forensics::put_back_held_wal(&data, &run, self.owner())?;
                if !put_back.is_empty() {
                    log::info!(
                        "{operation} removed WAL that recovery replays; put back: {}",
                        put_back.join(", ")
                    );
                }
                if native.is_none() && !pg_rewind(self.instance.major).copies_database_pg_version {
                    let mended = forensics::put_back_database_versions(&data, self.owner())?;
                    if !mended.is_empty() {
                        log::info!(
                            "pg_rewind left out PG_VERSION; written back in: {}",
                            mended.join(", ")
                        );
                    }
                }
                saved.restore(&data, self.owner())?;
                failpoint::hit("rewind-restored");
                self.write_standby(&data)?;
                failpoint::hit("rewind-configured");
                marker::remove(&data)?;
                return Ok((run, Ok(out)));
            }
            Ok((out, _)) => RewindError::from(Box::new(RewindFailure {
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
            })),
            Err(e) => e,
        };
        if !failure.target_modified() {
            marker::remove(&data)?;
        }
        Ok((run, Err(Box::new((failure, saved)))))
    }

    /// The native engine's run, reported as pg_rewind's would be; its failure is its own
    /// error, the data directory left marked.
    fn native_rewind(
        &self,
        target: &TargetFacts,
        view: &NativeView,
        data: &Dir,
    ) -> Result<(RewindOutput, Duration), RewindError> {
        let started = Instant::now();
        let ran = self.native_steps(target, view, data);
        let elapsed = started.elapsed();
        match ran {
            Ok(applied) => {
                let line = format!(
                    "native rewind: {} MB fetched for {} entries, replay from {}, in \
                     {elapsed:.1?} ({applied})",
                    applied.fetched >> 20,
                    applied.entries,
                    view.replay
                );
                log::info!("{line}");
                let out = RewindOutput {
                    common_checkpoint: Some((
                        view.changes.checkpoint,
                        view.changes.checkpoint_timeline,
                    )),
                    need_to_copy_mb: Some((view.map.bytes_to_fetch() >> 20, 0)),
                    done: true,
                    lines: vec![line],
                    ..RewindOutput::default()
                };
                Ok((out, elapsed))
            }
            Err(e) => Err(RewindError::NativeFailed(Box::new(e))),
        }
    }

    fn native_steps(
        &self,
        target: &TargetFacts,
        view: &NativeView,
        data: &Dir,
    ) -> Result<native::Applied, RewindError> {
        let owner = self.owner();
        let segment_size = u32::try_from(target.wal_segments.segment_size).unwrap_or(0);
        match (self.source, self.session) {
            (_, Some(session)) => {
                let files = native::SourceFiles::Server(session);
                let applied = native::apply(
                    data,
                    owner,
                    view,
                    &files,
                    self.settings.sync_method,
                    self.deadline,
                )?;
                // pg_control last, then where the source's WAL ends: replay must reach it.
                let control = session.control_bytes(self.deadline)?;
                self.same_source(&control)?;
                let end = (
                    session.insert_lsn(self.deadline)?,
                    self.source_facts.timeline,
                );
                native::finish(data, owner, view, &control, end, segment_size)?;
                Ok(applied)
            }
            (Source::Pgdata(dir), None) => {
                let root = Dir::open_owned(dir, owner).map_err(|e| io("open", dir, e))?;
                let read_control = || {
                    root.open_dir("global")
                        .and_then(|g| g.read("pg_control", PG_CONTROL_LIMIT))
                        .map_err(|e| io("read", &dir.join("global/pg_control"), e))
                };
                let control = read_control()?;
                let decoded = self.same_source(&control)?;
                // Still the stopped source the file map was made from.
                if decoded.state != DbState::ShutDown
                    || decoded.checkpoint != self.source_facts.insert_lsn
                {
                    return Err(self.refused(SOURCE_RAN.into()));
                }
                let tree = root
                    .try_clone()
                    .and_then(|root| Tree::open(root, owner))
                    .map_err(|e| io("open", dir, e))?;
                let files = native::SourceFiles::Pgdata(tree);
                let applied = native::apply(
                    data,
                    owner,
                    view,
                    &files,
                    self.settings.sync_method,
                    self.deadline,
                )?;
                still_stopped(&control, &read_control()?).map_err(|why| self.refused(why))?;
                let end = (decoded.checkpoint, decoded.checkpoint_timeline);
                native::finish(data, owner, view, &control, end, segment_size)?;
                Ok(applied)
            }
            (Source::Server(_), None) => Err(self.refused("no connection to the source".into())),
        }
    }

    /// The source's pg_control, read for the end of a native rewind: still the system (and
    /// catalog) the rewind was decided on, or nothing more is written.
    fn same_source(&self, control: &[u8]) -> Result<ControlFile, RewindError> {
        let decoded = control::decode(control)
            .map_err(|e| self.refused(format!("the source's pg_control: {e}")))?;
        match self
            .source_facts
            .changed_since(decoded.system_identifier, decoded.catalog_version)
        {
            Some(why) => Err(self.refused(why)),
            None => Ok(decoded),
        }
    }

    pub(super) fn write_standby(&self, data: &Dir) -> Result<(), RewindError> {
        if !self.settings.write_standby {
            return Ok(());
        }
        config::write_standby(
            data,
            self.settings.primary_conninfo.as_deref(),
            self.node,
            self.owner(),
        )
    }
}

/// The data directory, opened for changes: it must belong to the system user.
pub(super) fn open_data(instance: &Instance) -> Result<Dir, RewindError> {
    Dir::open_owned(instance.datadir(), instance.user.owner())
        .map_err(|e| io("open", instance.datadir(), e))
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

/// A stopped source's pg_control, read again after the native engine copied from it: the
/// same bytes, or the source ran meanwhile, what was copied may be newer than the end replay
/// is held to (its last checkpoint), and nothing more is written (pg_rewind stops there too).
fn still_stopped(before: &[u8], after: &[u8]) -> Result<(), String> {
    (before == after)
        .then_some(())
        .ok_or_else(|| SOURCE_RAN.into())
}

/// Why a stopped source is not copied from: its pg_control changed after the rewind was
/// decided on it.
const SOURCE_RAN: &str = "the source's data directory changed during the rewind (its \
                          pg_control is not the one the rewind was decided on): was its server \
                          started?";

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in review: a stopped source's pg_control was read once, before the copy, so a
    /// source started during a native rewind went unseen (pg_rewind compares it after).
    #[test]
    fn a_stopped_source_must_keep_the_same_pg_control_through_the_copy() {
        let before = vec![7u8; 8192];
        assert_eq!(still_stopped(&before, &before.clone()), Ok(()));
        let mut started = before.clone();
        started[16] ^= 1;
        let why = still_stopped(&before, &started).unwrap_err();
        assert!(why.contains("changed during the rewind"), "{why}");
        assert!(still_stopped(&before, &before[..512]).is_err());
    }
}
