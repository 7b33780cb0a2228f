//! What Pacemaker passes in the environment (`ocf-pacemaker.md` §1.5–1.6), as plain data.
//!
//! Built from a lookup function so tests need no process environment. Nothing here does I/O.

use std::time::Duration;

use super::params::{ParamError, Params};

/// Pacemaker's default operation timeout when none is configured (`PCMK_DEFAULT_ACTION_TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The context of one agent run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcfEnv {
    /// `OCF_RESOURCE_INSTANCE`: the primitive id, without the clone suffix (`pgsqld`).
    pub instance: String,
    /// `OCF_RESKEY_CRM_meta_timeout`, or Pacemaker's default.
    pub timeout: Duration,
    /// `OCF_RESKEY_CRM_meta_interval`; zero for probes and one-shot actions.
    pub interval: Duration,
    /// `OCF_CHECK_LEVEL` (0 unless set; `OCF_RESKEY_OCF_CHECK_LEVEL` is the shell library's alias).
    pub check_level: u32,
    /// `OCF_RESKEY_CRM_meta_on_node`: absent under `crm_resource --force-*`.
    pub on_node: Option<String>,
    /// `OCF_RESKEY_CRM_meta_notify`, when Pacemaker passed the clone's meta attributes.
    pub meta_notify: Option<String>,
    /// `OCF_RESKEY_CRM_meta_promoted_max`, or the legacy `master_max`.
    pub meta_promoted_max: Option<String>,
    /// `OCF_EXIT_REASON_PREFIX`.
    pub exit_reason_prefix: String,
    /// `HA_SBIN_DIR`: where Pacemaker's tools are.
    pub sbin_dir: String,
    /// `HA_LOGFACILITY`, unless empty or `none`.
    pub log_facility: Option<String>,
    /// `HA_debug=1`.
    pub debug: bool,
    /// `HA_LOGFILE`, `HA_DEBUGLOG`: files the shell agents' `ha_log` appends to.
    pub log_file: Option<String>,
    pub debug_log: Option<String>,
}

/// `OCF_RESOURCE_INSTANCE` is missing: Pacemaker always sets it, so this is a hand run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OCF_RESOURCE_INSTANCE is not set: need to know the resource instance name")]
pub struct MissingInstance;

impl OcfEnv {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<OcfEnv, MissingInstance> {
        let nonempty = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let millis = |key: &str| {
            nonempty(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let instance = nonempty("OCF_RESOURCE_INSTANCE").ok_or(MissingInstance)?;
        let check_level = nonempty("OCF_CHECK_LEVEL")
            .or_else(|| nonempty("OCF_RESKEY_OCF_CHECK_LEVEL"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(OcfEnv {
            instance,
            timeout: millis("OCF_RESKEY_CRM_meta_timeout")
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_TIMEOUT),
            interval: millis("OCF_RESKEY_CRM_meta_interval").unwrap_or_default(),
            check_level,
            on_node: nonempty("OCF_RESKEY_CRM_meta_on_node"),
            meta_notify: nonempty("OCF_RESKEY_CRM_meta_notify"),
            meta_promoted_max: nonempty("OCF_RESKEY_CRM_meta_promoted_max")
                .or_else(|| nonempty("OCF_RESKEY_CRM_meta_master_max")),
            exit_reason_prefix: get("OCF_EXIT_REASON_PREFIX")
                .unwrap_or_else(|| "ocf-exit-reason:".to_owned()),
            sbin_dir: nonempty("HA_SBIN_DIR").unwrap_or_else(|| "/usr/sbin".to_owned()),
            log_facility: nonempty("HA_LOGFACILITY").filter(|f| f != "none"),
            debug: get("HA_debug").is_some_and(|v| v.trim() == "1"),
            log_file: nonempty("HA_LOGFILE"),
            debug_log: nonempty("HA_DEBUGLOG"),
        })
    }

    /// A recurring monitor has an interval; a probe is a monitor without one.
    pub fn is_probe(&self) -> bool {
        self.interval.is_zero()
    }
}

/// `ocf_is_true` of the shell library, plus PAF's `y`.
pub fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "yes" | "y" | "true" | "1" | "on" | "ja"
    )
}

/// Reads `OCF_RESKEY_<name>` for every parameter.
pub fn params_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Params, ParamError> {
    Params::from_lookup(|name| get(&format!("OCF_RESKEY_{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<OcfEnv, MissingInstance> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OcfEnv::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn instance_is_required() {
        assert_eq!(env(&[]), Err(MissingInstance));
        assert_eq!(env(&[("OCF_RESOURCE_INSTANCE", " ")]), Err(MissingInstance));
    }

    #[test]
    fn timeout_and_interval_are_milliseconds() {
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "pgsqld"),
            ("OCF_RESKEY_CRM_meta_timeout", "60000"),
            ("OCF_RESKEY_CRM_meta_interval", "15000"),
        ])
        .unwrap();
        assert_eq!(e.timeout, Duration::from_secs(60));
        assert_eq!(e.interval, Duration::from_secs(15));
        assert!(!e.is_probe());
    }

    #[test]
    fn defaults_when_pacemaker_passes_nothing() {
        let e = env(&[("OCF_RESOURCE_INSTANCE", "pgsqld")]).unwrap();
        assert_eq!(e.timeout, DEFAULT_TIMEOUT);
        assert!(e.is_probe());
        assert_eq!(e.check_level, 0);
        assert_eq!(e.exit_reason_prefix, "ocf-exit-reason:");
        assert_eq!(e.sbin_dir, "/usr/sbin");
        assert_eq!(e.log_facility, None);
        assert!(!e.debug);
        assert_eq!(e.on_node, None);
        assert_eq!(e.meta_notify, None);
        assert_eq!(e.meta_promoted_max, None);
    }

    #[test]
    fn bad_timeout_falls_back_to_default() {
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "r"),
            ("OCF_RESKEY_CRM_meta_timeout", "x"),
        ])
        .unwrap();
        assert_eq!(e.timeout, DEFAULT_TIMEOUT);
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "r"),
            ("OCF_RESKEY_CRM_meta_timeout", "0"),
        ])
        .unwrap();
        assert_eq!(e.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn check_level_and_its_alias() {
        let e = env(&[("OCF_RESOURCE_INSTANCE", "r"), ("OCF_CHECK_LEVEL", "10")]).unwrap();
        assert_eq!(e.check_level, 10);
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "r"),
            ("OCF_RESKEY_OCF_CHECK_LEVEL", "10"),
        ])
        .unwrap();
        assert_eq!(e.check_level, 10);
    }

    #[test]
    fn promoted_max_falls_back_to_legacy_name() {
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "r"),
            ("OCF_RESKEY_CRM_meta_master_max", "1"),
        ])
        .unwrap();
        assert_eq!(e.meta_promoted_max.as_deref(), Some("1"));
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "r"),
            ("OCF_RESKEY_CRM_meta_master_max", "2"),
            ("OCF_RESKEY_CRM_meta_promoted_max", "1"),
        ])
        .unwrap();
        assert_eq!(e.meta_promoted_max.as_deref(), Some("1"));
    }

    #[test]
    fn logging_settings() {
        let e = env(&[
            ("OCF_RESOURCE_INSTANCE", "r"),
            ("HA_LOGFACILITY", "none"),
            ("HA_debug", "1"),
            ("OCF_EXIT_REASON_PREFIX", "why:"),
            ("HA_SBIN_DIR", "/opt/sbin"),
        ])
        .unwrap();
        assert_eq!(e.log_facility, None);
        assert!(e.debug);
        assert_eq!(e.exit_reason_prefix, "why:");
        assert_eq!(e.sbin_dir, "/opt/sbin");
        let e = env(&[("OCF_RESOURCE_INSTANCE", "r"), ("HA_LOGFACILITY", "daemon")]).unwrap();
        assert_eq!(e.log_facility.as_deref(), Some("daemon"));
    }

    #[test]
    fn truth_values() {
        for v in ["true", "TRUE", "on", "yes", "y", "1", "ja", " True "] {
            assert!(is_true(v), "{v}");
        }
        for v in ["false", "0", "no", "", "off", "2"] {
            assert!(!is_true(v), "{v}");
        }
    }

    #[test]
    fn params_read_ocf_reskey() {
        let map: HashMap<&str, &str> =
            [("OCF_RESKEY_pgport", "5433"), ("OCF_RESKEY_pgdata", "/d")].into();
        let p = params_from_lookup(|k| map.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(p.pgport, 5433);
        assert_eq!(p.pgdata, std::path::PathBuf::from("/d"));
    }
}
