//! notify: the exchange behind the election (`paf.md` §4.4, §6). Pacemaker ignores the
//! result, so it always succeeds; failures are logged.
//!
//! pre-promote: every standby publishes where its WAL ends (`lsn_location-<rsc>`, PAF's
//! `TL#LSN`), and the node to promote records the candidates (`nodes-<rsc>`), or notes an
//! in-place recovery of the primary (`recover_primary-<rsc>`). post-promote clears them.

use super::{Ctx, Outcome};
use crate::election;
use crate::error::{Error, Result};
use crate::instance::state::InstanceState;
use crate::instance::wal;
use crate::instance::Instance;
use crate::ocf::notify::Notification;
use crate::ocf::status::OcfStatus;

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
        ("pre", "demote") => pre_demote(ctx, instance, &n),
        _ => Ok(()),
    };
    if let Err(e) = result {
        log::error!("{}-{} notification: {e}", n.kind, n.operation);
    }
    Ok(Outcome::new(OcfStatus::Success))
}

fn clear(ctx: &Ctx) {
    for name in [
        LSN_LOCATION,
        TIMELINES,
        NODES,
        RECOVER_PRIMARY,
        CANCEL_SWITCHOVER,
    ] {
        if let Err(e) = ctx
            .cluster
            .delete_private_attribute(&attribute(ctx, name), ctx.node())
        {
            log::warn!("could not clear {name}: {e}");
        }
    }
}

/// A crashed primary that Pacemaker recovers in place (demote, stop, start, promote on this
/// node) is started as a primary first, so its crash recovery runs and the demote that
/// follows finds a clean primary to stop (PAF's pre-demote). Only when the same node gets
/// promoted again: elsewhere, a crashed primary must not come back as one.
fn pre_demote(ctx: &Ctx, instance: &Instance, n: &Notification) -> Result<()> {
    let node = ctx.node();
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
/// old primary's shutdown checkpoint, its very last WAL record (`paf.md` §6.4). After a
/// `CHECKPOINT` (a restartpoint here), pg_control points at the last checkpoint record this
/// standby replayed; that record is read from pg_wal natively and must be a shutdown
/// checkpoint, received in full.
fn switchover_is_safe(ctx: &Ctx, instance: &Instance, old: &str) -> Result<()> {
    log::info!("switchover from {old} in progress: checking the last WAL record received");
    instance
        .connect(&ctx.deadline)?
        .execute("CHECKPOINT", &ctx.deadline)?;
    let control = instance.control()?;
    let pg_wal = instance.datadir().join("pg_wal");
    let record = wal::read_record(
        &pg_wal,
        control.checkpoint_timeline,
        control.checkpoint,
        control.wal_segment_size,
    )
    .map_err(|e| Error::State(format!("could not read the last checkpoint record: {e}")))?;
    let checkpoint = record
        .checkpoint()
        .ok_or_else(|| Error::State(format!("the record at {} is not a checkpoint", record.lsn)))?;
    if !checkpoint.shutdown {
        return Err(Error::State(format!(
            "did not receive the shutdown checkpoint from the old primary: the last checkpoint \
             replayed, at {}, is an online one",
            record.lsn
        )));
    }
    let received = instance.wal_position(&ctx.deadline)?;
    if received.lsn < record.end {
        return Err(Error::State(format!(
            "the shutdown checkpoint at {} ends at {}, but only {} was received",
            record.lsn, record.end, received.lsn
        )));
    }
    log::info!(
        "standby received the shutdown checkpoint at {} (TL {})",
        record.lsn,
        checkpoint.timeline
    );
    Ok(())
}

fn pre_promote(ctx: &Ctx, instance: &Instance, n: &Notification) -> Result<()> {
    let node = ctx.node();
    let Some(target) = n.promoting() else {
        return Ok(());
    };
    log::info!("promoting instance on node {target}");
    clear(ctx);
    if n.is_primary_recovery(target) {
        log::warn!("{target} recovers its primary in place: no election");
        if node == target {
            ctx.cluster
                .set_private_attribute(&attribute(ctx, RECOVER_PRIMARY), node, "1")?;
        }
        return Ok(());
    }
    if node == target && n.is_switchover_to(node) {
        let old = n.promoted.0.join(" ");
        if let Err(refusal) = switchover_is_safe(ctx, instance, &old) {
            log::error!("switchover to {node} refused: {refusal}");
            ctx.cluster
                .set_private_attribute(&attribute(ctx, CANCEL_SWITCHOVER), node, "1")?;
            return Ok(());
        }
    }
    if instance.observe(&ctx.deadline)? == InstanceState::Standby {
        let position = instance.wal_position(&ctx.deadline)?;
        log::info!(
            "current node TL#LSN: {}#{}",
            position.timeline,
            position.lsn
        );
        // Before the position: the designated node reads the ancestry once it sees that.
        let ancestors = instance.timeline_ancestors(position.timeline)?;
        if !ancestors.is_empty() {
            ctx.cluster.set_private_attribute(
                &attribute(ctx, TIMELINES),
                node,
                &election::ancestors_to_attribute(&ancestors),
            )?;
        }
        ctx.cluster.set_private_attribute(
            &attribute(ctx, LSN_LOCATION),
            node,
            &position.to_attribute(),
        )?;
    }
    if node == target {
        let candidates = n.candidates().join(" ");
        ctx.cluster
            .set_private_attribute(&attribute(ctx, NODES), node, &candidates)?;
    }
    Ok(())
}
