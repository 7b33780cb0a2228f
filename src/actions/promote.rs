//! promote: `pg_ctl promote` on a standby, waiting until it accepts writes.

use std::time::Duration;

use super::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::instance::state::InstanceState;
use crate::instance::Instance;
use crate::ocf::status::OcfStatus;

pub fn promote(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let name = instance.datadir().display().to_string();
    match instance.settled_state(&ctx.deadline)? {
        InstanceState::Primary => {
            log::info!("instance \"{name}\" is already a primary");
            return Ok(Outcome::new(OcfStatus::Success));
        }
        InstanceState::Standby => {}
        other => {
            return Err(Error::State(format!(
                "instance \"{name}\" is not a running standby, cannot promote it: {other:?}"
            )))
        }
    }
    log::info!("promoting instance \"{name}\"");
    instance.pg_ctl_promote(&ctx.deadline)?;
    ctx.deadline.poll(
        "the promoted instance to accept writes",
        Duration::from_millis(100),
        || Ok(matches!(instance.observe(&ctx.deadline)?, InstanceState::Primary).then_some(())),
    )?;
    log::info!("instance \"{name}\" promoted");
    Ok(Outcome::new(OcfStatus::Success))
}
