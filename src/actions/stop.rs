//! stop: `pg_ctl stop -m fast`, idempotent.
//!
//! Unlike PAF, a crashed instance (no postmaster) is simply "stopped": nothing of it runs, and
//! failing the stop would get the node fenced on every rejoin (PAF #162, #204). What the
//! crash left behind is start's business, which refuses a crashed primary.

use super::error::{Error, Result};
use super::{Ctx, Outcome};
use crate::instance::postmaster::Postmaster;
use crate::instance::Instance;
use crate::ocf::status::OcfStatus;

pub fn stop(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let name = instance.datadir().display().to_string();
    let Postmaster::Running(pid) = instance.postmaster() else {
        log::info!("instance \"{name}\" already stopped");
        return Ok(Outcome::new(OcfStatus::Success));
    };
    log::info!("stopping instance \"{name}\" (postmaster {pid})");
    instance.pg_ctl_stop(&ctx.deadline)?;
    match instance.control()?.state {
        crate::instance::control::DbState::ShutDown
        | crate::instance::control::DbState::ShutDownInRecovery => {
            log::info!("instance \"{name}\" stopped");
            Ok(Outcome::new(OcfStatus::Success))
        }
        other => Err(Error::State(format!(
            "instance \"{name}\" stopped but pg_control says \"{other}\""
        ))),
    }
}
