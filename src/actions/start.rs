//! start: always as a standby (`paf.md` §2.5).

use super::{rejoin, validate, Ctx, Outcome};
use crate::error::{Error, Result};
use crate::instance::state::InstanceState;
use crate::instance::Instance;
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
    rejoin::before_start(ctx, instance, &state)?;
    let was_primary = state == InstanceState::Stopped { was_primary: true };
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
    // The instance runs as asked; a score we could not set is worth a warning, not a
    // failed start that Pacemaker would answer with a restart.
    if was_primary || rejoin::no_primary_anywhere() {
        if let Err(e) = first_start_score(ctx) {
            log::warn!("could not check or set the first-start promotion score: {e}");
        }
    }
    Ok(Outcome::new(OcfStatus::Success))
}

/// PAF's first-start rule: a cleanly shut down primary, in a cluster where no node has a
/// promotion score, gets score 1 so that Pacemaker promotes it. This is how a new cluster
/// finds its primary. pgha extends it to a standby started while the cluster has no primary
/// at all (after a full stop, every node was demoted first and shut down as a standby, and
/// reboot-lifetime scores are gone): one node gets 1, Pacemaker promotes it, and the
/// election in promote hands the promotion to the most advanced node.
fn first_start_score(ctx: &Ctx) -> Result<()> {
    for node in ctx.cluster.partition_nodes()? {
        if ctx
            .cluster
            .promotion_score(&node)?
            .is_some_and(|score| score >= 0)
        {
            return Ok(());
        }
    }
    log::info!("no promotion score in the partition: setting mine to 1");
    ctx.cluster.set_promotion_score(ctx.node(), 1)?;
    Ok(())
}
