//! Bringing this node in line with the current primary before it starts as a standby: the
//! agent's side of the rewind module (`crate::rewind`).
//!
//! The current primary comes from the notification lists Pacemaker copies onto the start
//! and demote actions of a promotable clone (`promoted` minus `demote`); when monitor has no
//! such lists, from the host of the node's own `primary_conninfo` (the VIP).

use std::time::Duration;

use super::error::{Error, Result};
use super::Ctx;
use crate::deadline::Deadline;
use crate::instance::conninfo;
use crate::instance::state::InstanceState;
use crate::instance::Instance;
use crate::ocf::notify::Notification;
use crate::rewind::{self, Plan, RewindSettings, Source, SourceConninfo};

/// The node that is and stays the primary in this transition, if it is not this one.
pub fn current_primary(ctx: &Ctx) -> Result<Option<String>> {
    let n = Notification::from_env();
    let node = ctx.node()?;
    Ok(n.promoted
        .0
        .into_iter()
        .find(|p| p != node && !n.demote.contains(p)))
}

/// Pacemaker's lists for this start say no node is promoted now nor about to be. Without
/// the lists (a debug run, or a clone without notify), nothing is known: false.
pub fn no_primary_anywhere() -> bool {
    let n = Notification::from_env();
    let listed = !n.active.0.is_empty() || !n.start.0.is_empty();
    listed && n.promoted.0.is_empty() && n.promote.0.is_empty()
}

fn source(ctx: &Ctx, instance: &Instance, host: &str) -> Result<Source> {
    let primary_conninfo = instance.configured("primary_conninfo", &ctx.deadline)?;
    Ok(Source::Server(SourceConninfo::for_primary(
        host,
        &instance.params,
        &primary_conninfo,
    )))
}

/// Called by start on a stopped instance. A former primary (crashed, or shut down) that
/// diverged from the current primary is rewound or re-cloned; a standby is only touched when
/// it definitely diverged; a directory a rewind left unfinished is repaired. Without a known
/// primary, anything starts as it is: that is a new cluster's first start, or a whole
/// cluster's after a power cut, when Pacemaker's lists say no node is promoted nor about to
/// be. A crashed primary then starts as a standby too: it replays its own WAL, takes part in
/// the election with its true position, and is promoted if it is the most advanced; if not,
/// it diverged from the winner and is brought in line once that one is the primary (its
/// standby's monitor sees the divergence, and start rewinds it). Only without any lists (a
/// debug run, a clone without notify) is a crashed primary refused: nothing says whether a
/// primary runs elsewhere. Returns the report of a rewind or re-clone, whose leftovers go
/// once the server runs.
pub fn before_start(
    ctx: &Ctx,
    instance: &Instance,
    state: &InstanceState,
) -> Result<Option<rewind::RejoinReport>> {
    let unfinished = rewind::ensure_startable(instance.datadir()).err();
    let formerly_primary = matches!(
        state,
        InstanceState::CrashedPrimary(_) | InstanceState::Stopped { was_primary: true }
    );
    let Some(primary) = current_primary(ctx)? else {
        if let Some(e) = unfinished {
            return Err(e.into());
        }
        if let InstanceState::CrashedPrimary(pg_state) = state {
            if no_primary_anywhere() {
                log::warn!(
                    "instance \"{}\" crashed as a primary (pg_control: \"{pg_state}\") and no \
                     node is promoted: it starts as a standby and takes part in the election",
                    instance.datadir().display()
                );
                return Ok(None);
            }
            let state = pg_state;
            return Err(Error::State(format!(
                "instance \"{}\" crashed as a primary (pg_control: \"{state}\") and no other \
                 primary is known to compare it with: refusing to start it as a standby",
                instance.datadir().display()
            )));
        }
        return Ok(None);
    };
    let settings = RewindSettings::from_params(&instance.params);
    let source = source(ctx, instance, &primary)?;
    if !formerly_primary && unfinished.is_none() {
        match rewind::check(instance, &source, &settings, &ctx.deadline) {
            Ok(check) if check.plan == Plan::Stream => return Ok(None),
            Ok(check) => log::warn!("this standby diverged from {primary}: {}", check.plan),
            Err(e) => {
                log::warn!(
                    "could not compare this standby with {primary} ({e}); starting it as it is"
                );
                return Ok(None);
            }
        }
    }
    log::info!(
        "bringing \"{}\" in line with the primary {primary}",
        instance.datadir().display()
    );
    let report = rewind::rejoin(instance, &source, ctx.node()?, &settings, &ctx.deadline)?;
    log::info!(
        "\"{}\": {:?} in {:.1?} ({}){}",
        instance.datadir().display(),
        report.outcome,
        report.elapsed,
        report.plan,
        report
            .saved_in
            .as_ref()
            .map(|d| format!(
                "; discarded WAL and old configuration kept in {}",
                d.display()
            ))
            .unwrap_or_default()
    );
    Ok(Some(report))
}

/// How long monitor spends looking for a divergence (measured: a 5 s connect to the dead
/// primary's VIP delayed every failover by 5 s).
const DIVERGENCE_CHECK_BUDGET: Duration = Duration::from_millis(500);

/// Called by monitor on a standby that does not stream: `Some(reason)` when it diverged from
/// the primary its `primary_conninfo` points at, so that Pacemaker restarts it and start
/// brings it back in line. A standby that cascades from another standby is not judged: the
/// session to its upstream asks for a read-write server and is refused.
pub fn divergence(ctx: &Ctx, instance: &Instance) -> Option<String> {
    let primary_conninfo = instance
        .configured("primary_conninfo", &ctx.deadline)
        .ok()?;
    let host = conninfo::get(&primary_conninfo, "host")?;
    let source = source(ctx, instance, &host).ok()?;
    let settings = RewindSettings::from_params(&instance.params);
    // A standby also stops streaming when its primary just died: then this check must not
    // hold the monitor (and the failover's notifications queued behind it) on a connect to
    // a dead address. A live primary answers in milliseconds.
    let deadline = ctx.deadline.at_most(DIVERGENCE_CHECK_BUDGET);
    match rewind::check(instance, &source, &settings, &deadline) {
        Ok(check) if check.plan != Plan::Stream => Some(format!(
            "diverged from the primary at {host}: {} ({})",
            check.decision, check.plan
        )),
        // The primary answered: what is left is local, but may take restartpoints that
        // write out dirty buffers, hence more than the remote check's budget.
        Ok(check) => replayed_past_fork(
            instance,
            &check.source.history,
            &ctx.deadline.at_most(ctx.deadline.remaining() / 2),
        )
        .map(|why| format!("diverged from the primary at {host}: {why}")),
        Err(e) => {
            log::debug!("could not compare this standby with {host}: {e}");
            None
        }
    }
}

/// The divergence pg_control cannot show on a running standby (it lags replay): WAL
/// replayed past the point where the primary's history leaves its timeline. WAL only
/// received is judged once replayed, by a later monitor.
fn replayed_past_fork(
    instance: &Instance,
    source_history: &rewind::decision::History,
    deadline: &Deadline,
) -> Option<String> {
    let position = instance
        .replayed_position(deadline)
        .map_err(|e| log::debug!("could not read how far this standby replayed: {e}"))
        .ok()?;
    let fork =
        rewind::decision::replayed_past_fork(position.timeline, position.lsn, source_history)?;
    Some(format!(
        "it holds WAL of timeline {} up to {}, past the fork at {fork} (needs a rewind)",
        position.timeline, position.lsn
    ))
}
