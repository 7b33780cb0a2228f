//! validate-all, with OCF 1.1 levels.
//!
//! Level 0 (what pcs runs at `pcs resource create`): parameters and meta attributes, the same
//! everywhere; already checked before dispatch. Level 10: this node's environment, the
//! checks made before every action, plus the settings the server will start with, which cost
//! a `postgres -C` each and so run only here and at start.

use super::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::instance::control::WalLevel;
use crate::instance::{conninfo, Instance};
use crate::ocf::status::OcfStatus;

pub fn validate_all(ctx: &Ctx) -> Result<Outcome> {
    if ctx.env.check_level < 10 {
        return Ok(Outcome::new(OcfStatus::Success));
    }
    let instance = Instance::resolve(&ctx.params).map_err(|(_, e)| e)?;
    server_settings(ctx, &instance)?;
    Ok(Outcome::new(OcfStatus::Success))
}

/// What the server needs to run under pgha (`paf.md` §2.3, checks 4a–4c and 9).
pub fn server_settings(ctx: &Ctx, instance: &Instance) -> Result<()> {
    let template = &instance.params.recovery_template;
    if template.exists() {
        return Err(Error::LocalSetup(format!(
            "recovery template file \"{}\" is forbidden for PostgreSQL 12 and above",
            template.display()
        )));
    }
    let timeline = instance.configured("recovery_target_timeline", &ctx.deadline)?;
    if timeline != "latest" {
        return Err(Error::LocalSetup(format!(
            "parameter \"recovery_target_timeline\" must be 'latest', it is '{timeline}'"
        )));
    }
    let primary_conninfo = instance.configured("primary_conninfo", &ctx.deadline)?;
    let node = ctx.node()?;
    if conninfo::get(&primary_conninfo, "application_name").as_deref() != Some(node) {
        // The reason goes to the CIB and syslog: never the password.
        return Err(Error::LocalSetup(format!(
            "parameter \"primary_conninfo\" must contain 'application_name={node}', \
             it is '{}'",
            conninfo::redact(&primary_conninfo)
        )));
    }
    let control = instance.control()?;
    if control.wal_level == WalLevel::Minimal {
        return Err(Error::LocalSetup(format!(
            "wal_level of \"{}\" is minimal: it must be replica or logical",
            instance.datadir().display()
        )));
    }
    if !control.can_rewind() {
        log::warn!(
            "neither wal_log_hints nor data checksums are on in \"{}\": a diverged former \
             primary on this node cannot be rewound, only re-cloned",
            instance.datadir().display()
        );
    }
    Ok(())
}
