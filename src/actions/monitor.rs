//! monitor (and probes): PAF's decision table (`paf.md` §2.4), bounded by the deadline.

use super::{Ctx, Outcome};
use crate::error::Result;
use crate::instance::state::InstanceState;
use crate::instance::Instance;
use crate::ocf::status::OcfStatus;

pub fn monitor(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let state = instance.settled_state(&ctx.deadline)?;
    if state == InstanceState::Primary {
        // A healthy primary whose scores could not be kept stays a healthy primary: failing
        // its monitor would have Pacemaker restart it.
        if let Err(e) = super::scores::maintain(ctx, instance) {
            log::error!("could not update promotion scores: {e}");
        }
    }
    Ok(outcome(
        state,
        &instance.params.datadir.display().to_string(),
    ))
}

/// The OCF answer for a settled state.
pub fn outcome(state: InstanceState, name: &str) -> Outcome {
    match state {
        InstanceState::Primary => Outcome::new(OcfStatus::RunningPromoted),
        InstanceState::Standby => Outcome::new(OcfStatus::Success),
        InstanceState::Stopped { .. } => Outcome::new(OcfStatus::NotRunning),
        InstanceState::CrashedPrimary(state) => Outcome::because(
            OcfStatus::FailedPromoted,
            format!(
                "instance \"{name}\" is not running but pg_control says \"{state}\": \
                 the primary has probably crashed"
            ),
        ),
        InstanceState::CrashedStandby => Outcome::because(
            OcfStatus::ErrGeneric,
            format!(
                "instance \"{name}\" is not running but pg_control says \"in archive recovery\": \
                 the standby has probably crashed"
            ),
        ),
        InstanceState::Transitional(why) | InstanceState::Broken(why) => {
            Outcome::because(OcfStatus::ErrGeneric, format!("instance \"{name}\": {why}"))
        }
    }
}
