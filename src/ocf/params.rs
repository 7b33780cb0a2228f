//! The agent's parameters: one table that drives the meta-data, and their validation.
//!
//! Names, meanings and defaults are PAF 2.3's (`paf.md` §3), so that a PAF resource switches
//! to pgha by changing its agent only. Reading follows PAF too: an unset, empty or `"0"` value
//! means the default. Validation here is level 0 of `validate-all`: what would be wrong on
//! every node (types, values). It touches nothing on the system; `instance::Instance` resolves
//! what needs the local node.

use std::path::PathBuf;

/// How a parameter is typed in the meta-data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
}

/// One parameter as Pacemaker sees it.
#[derive(Debug)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamType,
    /// The default shown in the meta-data; `None` where it is computed on the node.
    pub default: Option<&'static str>,
    /// Parameters that identify the instance: two resources must not share them.
    pub unique: bool,
    /// A change needs no restart: the agent reads parameters at every run.
    pub reloadable: bool,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

pub const DEFAULT_PGDATA: &str = "/var/lib/pgsql/data";
pub const DEFAULT_PGHOST: &str = "/tmp";
pub const DEFAULT_PGPORT: u16 = 5432;
pub const DEFAULT_SYSTEM_USER: &str = "postgres";

/// Every parameter, in PAF's order.
pub const PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "system_user",
        kind: ParamType::String,
        default: Some(DEFAULT_SYSTEM_USER),
        unique: false,
        reloadable: true,
        shortdesc: "PostgreSQL system User",
        longdesc: "System user account used to run the PostgreSQL server. pgha runs pg_ctl and \
                   pg_rewind as this user and connects to the instance as the database role of \
                   the same name (peer or trust authentication on the local socket).",
    },
    ParamDef {
        name: "bindir",
        kind: ParamType::String,
        default: None,
        unique: false,
        reloadable: true,
        shortdesc: "Path to the PostgreSQL binaries",
        longdesc: "Directory holding the PostgreSQL binaries (pg_ctl, postgres, pg_rewind). \
                   When unset, pgha uses the binaries of the data directory's major version \
                   (PG_VERSION) from the Debian (/usr/lib/postgresql/N/bin) or PGDG \
                   (/usr/pgsql-N/bin) layout, and falls back to /usr/bin.",
    },
    ParamDef {
        name: "pgdata",
        kind: ParamType::String,
        default: Some(DEFAULT_PGDATA),
        unique: true,
        reloadable: false,
        shortdesc: "Path to the data directory",
        longdesc: "Path to the data directory, given to pg_ctl --pgdata. On Debian it may be the \
                   configuration directory, e.g. /etc/postgresql/15/main, with datadir set to \
                   the real data directory.",
    },
    ParamDef {
        name: "datadir",
        kind: ParamType::String,
        default: None,
        unique: true,
        reloadable: false,
        shortdesc: "Path to the directory set in data_directory from your postgresql.conf file",
        longdesc: "The real data directory (data_directory), where PG_VERSION, global/pg_control \
                   and standby.signal live. Defaults to the value of pgdata.",
    },
    ParamDef {
        name: "pghost",
        kind: ParamType::String,
        default: Some(DEFAULT_PGHOST),
        unique: false,
        reloadable: true,
        shortdesc: "Instance IP or unix socket folder",
        longdesc: "Host the agent connects to: a Unix socket directory (a path) or an IP \
                   address. Debian's PostgreSQL uses /var/run/postgresql.",
    },
    ParamDef {
        name: "pgport",
        kind: ParamType::Integer,
        default: Some("5432"),
        unique: false,
        reloadable: true,
        shortdesc: "Instance port",
        longdesc: "Port the PostgreSQL instance listens on.",
    },
    ParamDef {
        name: "maxlag",
        kind: ParamType::Integer,
        default: Some("0"),
        unique: false,
        reloadable: true,
        shortdesc: "Maximum write lag before we mark a standby as inappropriate to promote",
        longdesc: "Maximum lag in bytes between the primary's current WAL position and a \
                   standby's written position before the standby gets a negative promotion \
                   score. 0 disables the check.",
    },
    ParamDef {
        name: "recovery_template",
        kind: ParamType::String,
        default: None,
        unique: true,
        reloadable: false,
        shortdesc: "Path to the recovery.conf template for PostgreSQL 11 and older.",
        longdesc: "Kept for PAF compatibility. pgha supports PostgreSQL 12 and newer, where \
                   recovery.conf is gone: the file (default PGDATA/recovery.conf.pcmk) must not \
                   exist, and standby settings live in the normal configuration.",
    },
    ParamDef {
        name: "start_opts",
        kind: ParamType::String,
        default: Some(""),
        unique: false,
        reloadable: true,
        shortdesc: "Additional arguments given to the postgres process on startup.",
        longdesc: "Additional arguments given to the postgres process on startup (pg_ctl -o), \
                   e.g. \"-c config_file=/etc/postgresql/15/main/postgresql.conf\".",
    },
];

/// Parameters as typed and checked values; built with no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub system_user: String,
    pub bindir: Option<PathBuf>,
    pub pgdata: PathBuf,
    pub datadir: PathBuf,
    pub pghost: String,
    pub pgport: u16,
    pub maxlag: u64,
    pub recovery_template: PathBuf,
    pub start_opts: String,
}

/// A parameter value that is wrong on every node (`OCF_ERR_CONFIGURED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {name}={value:?} is invalid: {why}")]
pub struct ParamError {
    pub name: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl Params {
    /// Builds the parameters from a lookup of `OCF_RESKEY_<name>` values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Params, ParamError> {
        // PAF's rule: empty or "0" means "use the default".
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty() && v != "0");
        let path = |name: &'static str, value: String| {
            if value.starts_with('/') {
                Ok(PathBuf::from(value))
            } else {
                Err(ParamError {
                    name,
                    value,
                    why: "must be an absolute path",
                })
            }
        };

        let system_user = get("system_user").unwrap_or_else(|| DEFAULT_SYSTEM_USER.to_owned());
        if system_user.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
            return Err(ParamError {
                name: "system_user",
                value: system_user,
                why: "must be a user name",
            });
        }
        let bindir = get("bindir").map(|v| path("bindir", v)).transpose()?;
        let pgdata = path(
            "pgdata",
            get("pgdata").unwrap_or_else(|| DEFAULT_PGDATA.to_owned()),
        )?;
        let datadir = match get("datadir") {
            Some(v) => path("datadir", v)?,
            None => pgdata.clone(),
        };
        let pghost = get("pghost").unwrap_or_else(|| DEFAULT_PGHOST.to_owned());
        if pghost.contains(char::is_whitespace) {
            return Err(ParamError {
                name: "pghost",
                value: pghost,
                why: "must be a socket directory or a host address",
            });
        }
        let pgport = match get("pgport") {
            None => DEFAULT_PGPORT,
            Some(v) => v.parse().map_err(|_| ParamError {
                name: "pgport",
                value: v,
                why: "must be a port number from 1 to 65535",
            })?,
        };
        let maxlag = match get("maxlag") {
            None => 0,
            Some(v) => v.parse().map_err(|_| ParamError {
                name: "maxlag",
                value: v,
                why: "must be a number of bytes (a non-negative integer)",
            })?,
        };
        let recovery_template = match get("recovery_template") {
            Some(v) => path("recovery_template", v)?,
            None => pgdata.join("recovery.conf.pcmk"),
        };
        let start_opts = get("start_opts").unwrap_or_default();
        Ok(Params {
            system_user,
            bindir,
            pgdata,
            datadir,
            pghost,
            pgport,
            maxlag,
            recovery_template,
            start_opts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn params(pairs: &[(&str, &str)]) -> Result<Params, ParamError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Params::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_pafs() {
        let p = params(&[]).unwrap();
        assert_eq!(p.system_user, "postgres");
        assert_eq!(p.bindir, None);
        assert_eq!(p.pgdata, PathBuf::from("/var/lib/pgsql/data"));
        assert_eq!(p.datadir, p.pgdata);
        assert_eq!(p.pghost, "/tmp");
        assert_eq!(p.pgport, 5432);
        assert_eq!(p.maxlag, 0);
        assert_eq!(
            p.recovery_template,
            PathBuf::from("/var/lib/pgsql/data/recovery.conf.pcmk")
        );
        assert_eq!(p.start_opts, "");
    }

    #[test]
    fn empty_and_zero_mean_default_as_in_paf() {
        let p = params(&[("pgport", "0"), ("pghost", ""), ("system_user", "0")]).unwrap();
        assert_eq!(p.pgport, 5432);
        assert_eq!(p.pghost, "/tmp");
        assert_eq!(p.system_user, "postgres");
    }

    #[test]
    fn datadir_defaults_to_pgdata_and_template_lives_in_pgdata() {
        let p = params(&[("pgdata", "/etc/postgresql/15/main")]).unwrap();
        assert_eq!(p.datadir, PathBuf::from("/etc/postgresql/15/main"));
        assert_eq!(
            p.recovery_template,
            PathBuf::from("/etc/postgresql/15/main/recovery.conf.pcmk")
        );
        let p = params(&[("pgdata", "/a"), ("datadir", "/b")]).unwrap();
        assert_eq!(p.datadir, PathBuf::from("/b"));
    }

    macro_rules! rejects {
        ($name:ident, $param:literal = $value:literal) => {
            #[test]
            fn $name() {
                let err = params(&[($param, $value)]).unwrap_err();
                assert_eq!(err.name, $param);
                assert_eq!(err.value, $value);
            }
        };
    }
    rejects!(port_not_a_number, "pgport" = "fivefour");
    rejects!(port_too_large, "pgport" = "70000");
    rejects!(port_negative, "pgport" = "-1");
    rejects!(maxlag_negative, "maxlag" = "-5");
    rejects!(maxlag_not_integer, "maxlag" = "1.5");
    rejects!(pgdata_relative, "pgdata" = "data");
    rejects!(datadir_relative, "datadir" = "var/lib");
    rejects!(bindir_relative, "bindir" = "bin");
    rejects!(template_relative, "recovery_template" = "recovery.conf");
    rejects!(user_with_space, "system_user" = "post gres");
    rejects!(pghost_with_space, "pghost" = "a b");

    #[test]
    fn table_names_are_pafs_nine() {
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "system_user",
                "bindir",
                "pgdata",
                "datadir",
                "pghost",
                "pgport",
                "maxlag",
                "recovery_template",
                "start_opts"
            ]
        );
    }
}
