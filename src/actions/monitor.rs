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
    let name = instance.params.datadir.display().to_string();
    if state == InstanceState::Standby {
        return Ok(standby_outcome(instance.wal_receiver(&ctx.deadline), &name));
    }
    Ok(outcome(state, &name))
}

/// A standby that does not stream from a primary is running, but not healthy: it falls
/// behind, and if it diverged it will never catch up (PAF #16, #123). It is reported as
/// degraded, which Pacemaker counts as running; the primary's scores keep it from promotion.
fn standby_outcome(receiver: Result<Option<String>>, name: &str) -> Outcome {
    match receiver {
        Ok(Some(status)) if status == "streaming" => Outcome::new(OcfStatus::Success),
        Ok(status) => {
            let status = status.unwrap_or_else(|| "no WAL receiver".into());
            Outcome::because(
                OcfStatus::Degraded,
                format!("standby \"{name}\" does not follow a primary ({status})"),
            )
        }
        Err(e) => Outcome::because(OcfStatus::Degraded, format!("standby \"{name}\": {e}")),
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
    fn streaming_standby_is_healthy() {
        assert_eq!(
            standby_outcome(Ok(Some("streaming".into())), "d").status,
            OcfStatus::Success
        );
    }

    #[test]
    fn standby_that_does_not_follow_is_degraded_paf_16() {
        for receiver in [
            Ok(None),
            Ok(Some("waiting".into())),
            Ok(Some("starting".into())),
        ] {
            let outcome = standby_outcome(receiver, "d");
            assert_eq!(outcome.status, OcfStatus::Degraded);
            assert!(outcome.reason.unwrap().contains("does not follow"));
        }
    }
}
