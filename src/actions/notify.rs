//! notify: the exchange behind the election (`paf.md` §4.4, §6). Pacemaker ignores the
//! result, so it always succeeds; failures are logged.
//!
//! pre-promote: every standby publishes where its WAL ends (`lsn_location-<rsc>`, PAF's
//! `TL#LSN`), and the node to promote records the candidates (`nodes-<rsc>`), or notes an
//! in-place recovery of the primary (`recover_primary-<rsc>`) or a refused switchover
//! (`cancel_switchover-<rsc>`). pre-demote and pre-stop clear the designated node's flags
//! ahead of time; post-promote clears everything.

use super::error::{Error, Result};
use super::{Ctx, Outcome};
use crate::election;
use crate::instance::state::InstanceState;
use crate::instance::wal;
use crate::instance::Instance;
use crate::lsn::{Lsn, TimelineId};
use crate::ocf::notify::Notification;
use crate::ocf::status::OcfStatus;
use crate::rewind::target::read_history;

pub const LSN_LOCATION: &str = "lsn_location";
pub const NODES: &str = "nodes";
pub const RECOVER_PRIMARY: &str = "recover_primary";
pub const CANCEL_SWITCHOVER: &str = "cancel_switchover";
/// pgha's addition to PAF's attributes: the timelines a candidate descends from.
pub const TIMELINES: &str = "timelines";

/// The attribute's name for this resource, as PAF names it.
pub fn attribute(ctx: &Ctx, name: &str) -> String {
    format!("{name}-{}", ctx.env.instance)
}

pub fn notify(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let n = Notification::from_env();
    let result = match (n.kind.as_str(), n.operation.as_str()) {
        ("pre", "promote") => pre_promote(ctx, instance, &n),
        ("post", "promote") => {
            clear(ctx);
            Ok(())
        }
        ("pre", "demote") => {
            clear_flags_early(ctx, &n);
            pre_demote(ctx, instance, &n)
        }
        ("pre", "stop") => {
            clear_flags_early(ctx, &n);
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        log::error!("{}-{} notification: {e}", n.kind, n.operation);
    }
    Ok(Outcome::new(OcfStatus::Success))
}

/// Every attribute of the election: post-promote clears them all.
const ELECTION: [&str; 5] = [
    LSN_LOCATION,
    TIMELINES,
    NODES,
    RECOVER_PRIMARY,
    CANCEL_SWITCHOVER,
];

fn clear(ctx: &Ctx) {
    if let Err(e) = publish(ctx, &[], &ELECTION, None) {
        log::warn!("could not clear the election's attributes: {e}");
    }
}

/// The flags the designated node's promote obeys: never left over from an earlier,
/// interrupted election.
const FLAGS: [&str; 2] = [RECOVER_PRIMARY, CANCEL_SWITCHOVER];

/// Sets `values` and deletes `deletes` among this node's election attributes, all at once
/// (each change is an `attrd_updater` run, and the election waits on them). Returns once
/// the value of `confirm` can be read back: what this node's own promote reads first (the
/// candidates, or a flag). The promote waits for the others' positions by itself.
fn publish(
    ctx: &Ctx,
    values: &[(&str, String)],
    deletes: &[&str],
    confirm: Option<&str>,
) -> Result<()> {
    let named: Vec<(String, Option<&str>)> = values
        .iter()
        .map(|(name, value)| (attribute(ctx, name), Some(value.as_str())))
        .chain(deletes.iter().map(|name| (attribute(ctx, name), None)))
        .collect();
    let changes: Vec<(&str, Option<&str>)> =
        named.iter().map(|(name, v)| (name.as_str(), *v)).collect();
    let confirm = confirm.map(|name| attribute(ctx, name));
    ctx.cluster
        .update_private_attributes(ctx.node()?, &changes, confirm.as_deref())?;
    Ok(())
}

/// The pre-demote and pre-stop notifications of a transition that also promotes come before
/// its pre-promote: the node to promote clears its flags there, off the election's path.
fn clear_flags_early(ctx: &Ctx, n: &Notification) {
    if ctx.node().is_ok_and(|node| n.promoting() == Some(node)) {
        if let Err(e) = publish(ctx, &[], &FLAGS, None) {
            log::warn!("could not clear the election's flags: {e}");
        }
    }
}

/// Whether this transition's pre-demote or pre-stop notifications came before (and cleared
/// the flags).
fn flags_cleared_early(n: &Notification) -> bool {
    !n.demote.0.is_empty() || !n.stop.0.is_empty()
}

/// A crashed primary that Pacemaker recovers in place (demote, stop, start, promote on this
/// node) is started as a primary first, so its crash recovery runs and the demote that
/// follows finds a clean primary to stop (PAF's pre-demote). Only when the same node gets
/// promoted again: elsewhere, a crashed primary must not come back as one.
fn pre_demote(ctx: &Ctx, instance: &Instance, n: &Notification) -> Result<()> {
    let node = ctx.node()?;
    if !n.demote.contains(node) || !n.is_primary_recovery(node) {
        return Ok(());
    }
    if let InstanceState::CrashedPrimary(state) = instance.settled_state(&ctx.deadline)? {
        log::info!("trying to recover the crashed primary in place (pg_control: \"{state}\")");
        instance.pg_ctl_start(&ctx.deadline)?;
        log::info!(
            "state after the recovery attempt: {:?}",
            instance.settled_state(&ctx.deadline)?
        );
    }
    Ok(())
}

/// A switchover must not lose a transaction: the designated standby must have received the
/// old primary's shutdown checkpoint, its very last WAL record (`paf.md` §6.4). The record
/// that ends where the received WAL ends is read from pg_wal natively: it must be a shutdown
/// checkpoint. Replay may lag behind (its retry after the old primary left can take
/// seconds), so what was replayed, and pg_control, prove nothing here.
fn switchover_is_safe(ctx: &Ctx, instance: &Instance, old: &str) -> Result<()> {
    /// A checkpoint record is about 120 bytes; a page header may sit in between.
    const WINDOW: u64 = 512;
    log::info!("switchover from {old} in progress: checking the last WAL record received");
    let received = instance.wal_position(&ctx.deadline)?;
    let segment_size = instance.control()?.wal_segment_size;
    let pg_wal = instance.datadir().join("pg_wal");
    let record = wal::record_ending_at(
        &pg_wal,
        received.timeline,
        received.lsn,
        segment_size,
        WINDOW,
    )
    .ok_or_else(|| {
        Error::State(format!(
            "no checkpoint record ends where the received WAL ends ({} on timeline {})",
            received.lsn, received.timeline
        ))
    })?;
    match record.checkpoint() {
        Some(checkpoint) if checkpoint.shutdown => {
            log::info!(
                "standby received the shutdown checkpoint at {} (TL {})",
                record.lsn,
                checkpoint.timeline
            );
            Ok(())
        }
        _ => Err(Error::State(format!(
            "did not receive the shutdown checkpoint from the old primary: the last record \
             received, at {}, is not one",
            record.lsn
        ))),
    }
}

fn pre_promote(ctx: &Ctx, instance: &Instance, n: &Notification) -> Result<()> {
    let node = ctx.node()?;
    let Some(target) = n.promoting() else {
        return Ok(());
    };
    log::info!("promoting instance on node {target}");
    // Only the designated node's flags matter; where no earlier notification cleared them,
    // it clears them now.
    let stale_flags: &[&str] = if node == target && !flags_cleared_early(n) {
        &FLAGS
    } else {
        &[]
    };
    let except =
        |set: &str| -> Vec<&str> { stale_flags.iter().copied().filter(|f| *f != set).collect() };
    if n.is_primary_recovery(target) {
        log::warn!("{target} recovers its primary in place: no election");
        if node != target {
            return Ok(());
        }
        let flag = [(RECOVER_PRIMARY, "1".to_owned())];
        return publish(ctx, &flag, &except(RECOVER_PRIMARY), Some(RECOVER_PRIMARY));
    }
    if node == target && n.is_switchover_to(node) {
        let old = n.promoted.0.join(" ");
        if let Err(refusal) = switchover_is_safe(ctx, instance, &old) {
            log::error!("switchover to {node} refused: {refusal}");
            let flag = [(CANCEL_SWITCHOVER, "1".to_owned())];
            return publish(
                ctx,
                &flag,
                &except(CANCEL_SWITCHOVER),
                Some(CANCEL_SWITCHOVER),
            );
        }
    }
    match election_values(ctx, instance, n, target) {
        Ok(values) => publish(ctx, &values, stale_flags, (node == target).then_some(NODES)),
        Err(e) => {
            clear(ctx);
            Err(e)
        }
    }
}

/// What this node publishes for the election: its position (and ancestry) if it is a
/// standby, the candidates if it is the one to promote.
fn election_values(
    ctx: &Ctx,
    instance: &Instance,
    n: &Notification,
    target: &str,
) -> Result<Vec<(&'static str, String)>> {
    let mut updates = Vec::new();
    if instance.observe(&ctx.deadline)? == InstanceState::Standby {
        let position = instance.wal_position(&ctx.deadline)?;
        log::info!(
            "current node TL#LSN: {}#{}",
            position.timeline,
            position.lsn
        );
        let ancestors = timeline_ancestors(instance, position.timeline)?;
        if !ancestors.is_empty() {
            updates.push((TIMELINES, election::ancestors_to_attribute(&ancestors)));
        }
        updates.push((LSN_LOCATION, position.to_attribute()));
    }
    if ctx.node()? == target {
        updates.push((NODES, n.candidates().join(" ")));
    }
    Ok(updates)
}

/// The timelines `timeline` descends from and where it left each, from its history file
/// in pg_wal (a standby receives it when it follows a promotion). Timeline 1 has none.
fn timeline_ancestors(instance: &Instance, timeline: TimelineId) -> Result<Vec<(TimelineId, Lsn)>> {
    let history = read_history(instance.datadir(), timeline)?;
    Ok(history
        .entries()
        .iter()
        .filter_map(|e| Some((e.tli, e.end?)))
        .collect())
}
