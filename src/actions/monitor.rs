//! monitor (and probes): PAF's decision table (`paf.md` §2.4), bounded by the deadline.

use super::error::Result;
use super::{Ctx, Outcome};
use crate::instance::state::InstanceState;
use crate::instance::{self, Instance};
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
    let name = instance.params.datadir.display().to_string();
    if state == InstanceState::Standby {
        if let Some(problem) = not_streaming(&instance.wal_receiver(&ctx.deadline)) {
            // Still "running": a degraded result would be listed among failed actions by
            // Pacemaker 2.1.5, and every start has such a moment before its WAL receiver
            // connects. The primary's scores keep it from promotion. But a standby that
            // diverged never catches up (PAF #16, #123): failing its monitor has Pacemaker
            // restart it, and start brings it back in line (the rewind module).
            log::warn!("standby \"{name}\" does not stream from a primary ({problem})");
            if let Some(why) = super::rejoin::divergence(ctx, instance) {
                return Ok(Outcome::because(
                    OcfStatus::ErrGeneric,
                    format!("standby \"{name}\" {why}"),
                ));
            }
        }
    }
    Ok(outcome(state, &name))
}

/// What is wrong with a standby's WAL receiver, if it does not stream.
fn not_streaming(receiver: &instance::Result<Option<String>>) -> Option<String> {
    match receiver {
        Ok(Some(status)) if status == "streaming" => None,
        Ok(Some(status)) => Some(format!("WAL receiver {status}")),
        Ok(None) => Some("no WAL receiver".into()),
        Err(e) => Some(format!("could not read its WAL receiver: {e}")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_streaming_receiver_is_following_paf_16() {
        assert_eq!(not_streaming(&Ok(Some("streaming".into()))), None);
        assert_eq!(not_streaming(&Ok(None)).as_deref(), Some("no WAL receiver"));
        assert_eq!(
            not_streaming(&Ok(Some("waiting".into()))).as_deref(),
            Some("WAL receiver waiting")
        );
    }
}
