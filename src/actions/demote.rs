//! demote: a clean fast stop, then a start as a standby (`paf.md` §2.8).

use super::error::{Error, Result};
use super::{start, stop, Ctx, Outcome};
use crate::instance::state::InstanceState;
use crate::instance::Instance;
use crate::ocf::status::OcfStatus;

pub fn demote(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let name = instance.datadir().display().to_string();
    match instance.settled_state(&ctx.deadline)? {
        InstanceState::Standby => {
            log::info!("instance \"{name}\" is already a standby");
            return Ok(Outcome::new(OcfStatus::Success));
        }
        InstanceState::Primary => {
            stop::stop(ctx, instance)?;
        }
        // PAF's rule: demoting a stopped instance succeeds by starting it as a standby;
        // failing would loop demote→stop→start→promote. A crashed primary goes the same
        // way: start brings it in line with the current primary (the rewind module), or
        // refuses it when no primary is known.
        InstanceState::Stopped { .. } | InstanceState::CrashedPrimary(_) => {}
        other => {
            return Err(Error::State(format!(
                "instance \"{name}\" cannot be demoted: {other:?}"
            )))
        }
    }
    start::start(ctx, instance)
}
