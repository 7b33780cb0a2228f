//! start: always as a standby (`paf.md` §2.5).

use std::time::Duration;

use super::error::{Error, Result};
use super::{rejoin, validate, Ctx, Outcome};
use crate::instance::state::InstanceState;
use crate::instance::{self, Instance};
use crate::ocf::status::OcfStatus;

pub fn start(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let name = instance.datadir().display().to_string();
    let state = instance.settled_state(&ctx.deadline)?;
    match &state {
        InstanceState::Standby => {
            log::info!("instance \"{name}\" already started as a standby");
            return Ok(Outcome::new(OcfStatus::Success));
        }
        InstanceState::Primary => {
            return Err(Error::State(format!(
                "instance \"{name}\" is running as a primary: start expects it stopped"
            )))
        }
        InstanceState::Transitional(why) | InstanceState::Broken(why) => {
            return Err(Error::State(format!(
                "instance \"{name}\" cannot be started: {why}"
            )))
        }
        InstanceState::CrashedStandby => {
            log::warn!("instance \"{name}\" crashed as a standby: it recovers as a standby");
        }
        InstanceState::Stopped { .. } | InstanceState::CrashedPrimary(_) => {}
    }
    let rejoined = rejoin::before_start(ctx, instance, &state)?;
    // A primary shut down cleanly, or one that crashed and now starts as a standby because
    // no node is promoted (a whole-cluster power cut): either may be the most advanced.
    let was_primary = matches!(
        state,
        InstanceState::Stopped { was_primary: true } | InstanceState::CrashedPrimary(_)
    );
    validate::server_settings(ctx, instance)?;

    instance.write_standby_signal()?;
    log::info!("starting instance \"{name}\" as a standby");
    instance.pg_ctl_start(&ctx.deadline)?;
    match instance.settled_state(&ctx.deadline)? {
        InstanceState::Standby => log::info!("instance \"{name}\" started"),
        other => {
            return Err(Error::State(format!(
                "instance \"{name}\" is not running as a standby after start: {other:?}"
            )))
        }
    }
    // A re-clone's replaced directory goes only once the new standby streams.
    if let Some(report) = rejoined.filter(|r| r.replaced.is_some()) {
        report.settle_replaced(streams_soon(ctx, instance));
    }
    // The instance runs as asked; a score we could not set is worth a warning, not a
    // failed start that Pacemaker would answer with a restart.
    // (score, unless a node already has at least this much)
    let first_start = if was_primary {
        Some((FORMER_PRIMARY_SCORE, FORMER_PRIMARY_SCORE))
    } else if rejoin::no_primary_anywhere() {
        Some((NO_PRIMARY_SCORE, 0))
    } else {
        None
    };
    if let Some((score, unless_at_least)) = first_start {
        if let Err(e) = first_start_score(ctx, score, unless_at_least) {
            log::warn!("could not check or set the first-start promotion score: {e}");
        }
    }
    Ok(Outcome::new(OcfStatus::Success))
}

/// Whether the standby just started streams within a few seconds (and the action's time).
fn streams_soon(ctx: &Ctx, instance: &Instance) -> bool {
    let wait = ctx
        .deadline
        .at_most(ctx.deadline.remaining().min(STREAMING_WAIT) / 2);
    wait.poll::<_, instance::Error>(
        "the WAL receiver to stream",
        Duration::from_millis(20),
        || {
            let status = instance.wal_receiver(&wait)?;
            Ok((status.as_deref() == Some("streaming")).then_some(()))
        },
    )
    .is_ok()
}

/// How long start looks for a re-cloned standby's streaming before it keeps the replaced
/// data directory instead of removing it.
const STREAMING_WAIT: Duration = Duration::from_secs(10);

/// First-start score of a cleanly shut down primary (PAF's rule, which writes 1).
const FORMER_PRIMARY_SCORE: i64 = 2;
/// First-start score of a standby started while no node is promoted.
const NO_PRIMARY_SCORE: i64 = 1;

/// PAF's first-start rule: a cleanly shut down primary, in a cluster where no node has a
/// promotion score, gets a score so that Pacemaker promotes it. This is how a new cluster
/// finds its primary. pgha extends it to a standby started while the cluster has no primary
/// at all (after a full stop, every node was demoted first and shut down as a standby, and
/// reboot-lifetime scores are gone): one node gets 1, Pacemaker promotes it, and the
/// election in promote hands the promotion to the most advanced node. Nodes start in
/// parallel, so the former primary's score (2) outranks and ignores a standby's 1: the
/// former primary of a new cluster is promoted whichever start finished first.
fn first_start_score(ctx: &Ctx, score: i64, unless_at_least: i64) -> Result<()> {
    for node in ctx.cluster.partition_nodes()? {
        if ctx
            .cluster
            .promotion_score(&node)?
            .is_some_and(|existing| existing >= unless_at_least)
        {
            return Ok(());
        }
    }
    log::info!("no promotion score in the partition: setting mine to {score}");
    ctx.cluster.set_promotion_score(ctx.node()?, score)?;
    Ok(())
}
