//! validate-all, with OCF 1.1 levels.
//!
//! Level 0 (what pcs runs at `pcs resource create`): parameters and meta attributes, the same
//! everywhere; already checked before dispatch. Level 10: this node's environment, the
//! checks made before every action, plus the settings the server will start with, which cost
//! a `postgres -C` each and so run only here and at start.

use super::error::{Error, Result};
use super::{Ctx, Outcome};
use crate::instance::control::WalLevel;
use crate::instance::tls::{self, TlsSettings};
use crate::instance::{conninfo, Instance};
use crate::ocf::status::OcfStatus;
use crate::rewind::{self, RewindSettings, SourceConninfo};

pub fn validate_all(ctx: &Ctx) -> Result<Outcome> {
    rewind_conninfo_keywords(ctx.params.rewind_conninfo.as_deref())?;
    if ctx.env.check_level < 10 {
        return Ok(Outcome::new(OcfStatus::Success));
    }
    let instance = Instance::resolve(&ctx.params).map_err(|(_, e)| e)?;
    rewind::ensure_supported(&instance, &RewindSettings::from_params(&ctx.params))
        .map_err(|e| Error::Misconfigured(format!("parameter rewind_sync_method: {e}")))?;
    server_settings(ctx, &instance)?;
    Ok(Outcome::new(OcfStatus::Success))
}

/// `rewind_conninfo` holds TLS keywords only (the rest of that connection is pgport and
/// rewind_user), with an `sslmode` libpq knows: anything else would be silently ignored.
fn rewind_conninfo_keywords(value: Option<&str>) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    let misconfigured =
        |why: String| Error::Misconfigured(format!("parameter rewind_conninfo: {why}"));
    let keys = conninfo::keywords(value);
    if keys.is_empty() {
        return Err(misconfigured(format!(
            "expected keyword=value pairs ({}), got {value:?}",
            tls::KEYWORDS.join(", ")
        )));
    }
    if let Some(other) = keys.iter().find(|k| !tls::KEYWORDS.contains(&k.as_str())) {
        return Err(misconfigured(format!(
            "{other:?} is not one of {}",
            tls::KEYWORDS.join(", ")
        )));
    }
    if let Some(mode) = conninfo::get(value, "sslmode") {
        mode.parse::<tls::SslMode>()
            .map_err(|e| misconfigured(e.to_string()))?;
    }
    Ok(())
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
    // The TLS settings the rewind source will be checked with: a verify mode without its
    // root file would only fail when a failover needs the rewind.
    let source = SourceConninfo::for_primary(node, &instance.params, &primary_conninfo);
    TlsSettings::from_conninfo(&source.sql, Some(&instance.user.home))
        .map_err(|e| Error::LocalSetup(format!("TLS to the rewind source: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_4_rewind_conninfo_takes_tls_keywords_only() {
        for ok in [
            None,
            Some("sslmode=verify-full sslrootcert=/etc/pgha/root.crt"),
            Some("sslcert=/c sslkey='/k k' sslcrl=/r"),
        ] {
            assert!(rewind_conninfo_keywords(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "host=evil sslmode=verify-full",
            "sslmode=verify-full password=x",
            "sslmode=verify_full",
            "postgresql://h/db?sslmode=require",
            "verify-full",
        ] {
            let e = rewind_conninfo_keywords(Some(bad)).unwrap_err();
            assert!(matches!(e, Error::Misconfigured(_)), "{bad}: {e}");
        }
    }
}
