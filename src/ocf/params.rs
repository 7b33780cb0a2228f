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
    Boolean,
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
pub const DEFAULT_REWIND_KEEP_FILES: &str =
    "postgresql.conf,postgresql.auto.conf,pg_hba.conf,pg_ident.conf";

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
    ParamDef {
        name: "rewind",
        kind: ParamType::Boolean,
        default: Some("true"),
        unique: false,
        reloadable: true,
        shortdesc: "Bring a diverged former primary back by itself",
        longdesc: "When a node that was a primary has diverged from the current primary (it \
                   wrote WAL the new primary never received), pgha rewinds it with PostgreSQL's \
                   own pg_rewind, or re-clones it (rewind_fallback), and starts it as a \
                   standby. The transactions it discards are kept (rewind_keep_dir). Off \
                   (false, no, off or 0): such a node is refused, as PAF does, and the operator \
                   decides. Needs wal_log_hints = on or data checksums.",
    },
    ParamDef {
        name: "rewind_user",
        kind: ParamType::String,
        default: None,
        unique: false,
        reloadable: true,
        shortdesc: "Database role pg_rewind connects to the primary as",
        longdesc: "The role pgha and pg_rewind use on the current primary: a superuser, or a \
                   login role granted EXECUTE on pg_ls_dir(text, boolean, boolean), \
                   pg_stat_file(text, boolean), pg_read_binary_file(text) and \
                   pg_read_binary_file(text, bigint, bigint, boolean). On PostgreSQL 15 and \
                   older, a role that may also run CHECKPOINT (superuser or pg_checkpoint) lets \
                   pgha checkpoint a just promoted primary instead of waiting for it. Defaults \
                   to system_user. Passwords come from the postgres user's ~/.pgpass.",
    },
    ParamDef {
        name: "rewind_conninfo",
        kind: ParamType::String,
        default: None,
        unique: false,
        reloadable: true,
        shortdesc: "TLS keywords for pgha's checks and pg_rewind on the primary",
        longdesc: "libpq keywords, in keyword=value form, that pgha's own checks and pg_rewind \
                   use on the current primary instead of the TLS keywords of \
                   primary_conninfo: sslmode, sslrootcert, sslcert, sslkey and sslcrl (e.g. \
                   sslmode=verify-full sslrootcert=/etc/pgha/root.crt). Host, port and role \
                   stay the primary's, pgport and rewind_user; a re-clone (pg_basebackup) uses \
                   primary_conninfo, as streaming does. With sslmode=verify-full, a host that \
                   cannot prove it is the primary is refused before anything it says is \
                   believed. Defaults to the TLS keywords of primary_conninfo.",
    },
    ParamDef {
        name: "rewind_timeout",
        kind: ParamType::Integer,
        default: Some("0"),
        unique: false,
        reloadable: true,
        shortdesc: "Time limit of pg_rewind, in seconds",
        longdesc: "pg_rewind is killed after this many seconds (0: the action's own timeout, \
                   less a margin). A killed pg_rewind leaves a data directory that pgha never \
                   starts until it is repaired; with rewind_fallback it is re-cloned at once. \
                   Shorter means a stuck source is given up sooner; longer lets a large rewind \
                   finish. The start or demote timeout must leave room for it.",
    },
    ParamDef {
        name: "rewind_fallback",
        kind: ParamType::Boolean,
        default: Some("true"),
        unique: false,
        reloadable: true,
        shortdesc: "Re-clone with pg_basebackup when a rewind cannot do",
        longdesc: "When pg_rewind is impossible (WAL recycled and no restore_command, neither \
                   wal_log_hints nor checksums), fails, or would copy more than a full copy \
                   (pg_rewind copies every WAL segment the primary keeps), re-clone the node \
                   with pg_basebackup into a new directory next to the data directory, swapped \
                   in once complete, keeping the node's own configuration and the discarded \
                   WAL. Needs room for a second copy, a replication connection \
                   (primary_conninfo), and no tablespaces. Off: the node is left to the \
                   operator.",
    },
    ParamDef {
        name: "rewind_keep_files",
        kind: ParamType::String,
        default: Some(DEFAULT_REWIND_KEEP_FILES),
        unique: false,
        reloadable: true,
        shortdesc: "Node-local files kept across a rewind",
        longdesc: "Comma-separated paths, relative to the data directory, of files (or \
                   directories) that belong to this node: pg_rewind and a re-clone bring the \
                   primary's copies, and pgha puts the node's own back (a file the node did \
                   not have is removed). pgha then writes standby.signal itself; the standby \
                   settings must be in these files or outside the data directory.",
    },
    ParamDef {
        name: "rewind_keep_dir",
        kind: ParamType::String,
        default: None,
        unique: false,
        reloadable: true,
        shortdesc: "Where the WAL a rewind discards is kept",
        longdesc: "Each rewind or re-clone saves, in a dated folder under this directory, the \
                   node's WAL from the fork point on (the transactions it discards; read them \
                   with pg_waldump), its pg_control and its own configuration files. Defaults \
                   to pgha-rewind next to the data directory. Never cleaned by pgha: mind the \
                   disk space.",
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
    /// pgha's own: automatic rewind of a diverged former primary (`rewind` module).
    pub rewind: bool,
    pub rewind_user: String,
    /// TLS keywords for the rewind source; `None`: those of `primary_conninfo`.
    pub rewind_conninfo: Option<String>,
    /// `None`: the action's deadline alone.
    pub rewind_timeout: Option<std::time::Duration>,
    pub rewind_fallback: bool,
    pub rewind_keep_files: Vec<PathBuf>,
    /// `None`: `pgha-rewind` next to the data directory.
    pub rewind_keep_dir: Option<PathBuf>,
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
        // pgha's own booleans: unlike PAF's parameters, "0" means off here.
        let boolean = |name: &'static str| -> Result<bool, ParamError> {
            match lookup(name).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(true),
                Some(v) if v.is_empty() => Ok(true),
                Some(v) if matches!(v.as_str(), "true" | "yes" | "y" | "on" | "1") => Ok(true),
                Some(v) if matches!(v.as_str(), "false" | "no" | "n" | "off" | "0") => Ok(false),
                Some(v) => Err(ParamError {
                    name,
                    value: v,
                    why: "must be true or false",
                }),
            }
        };
        let rewind = boolean("rewind")?;
        let rewind_fallback = boolean("rewind_fallback")?;
        let rewind_user = get("rewind_user").unwrap_or_else(|| system_user.clone());
        if rewind_user.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
            return Err(ParamError {
                name: "rewind_user",
                value: rewind_user,
                why: "must be a role name without spaces, quotes or backslashes",
            });
        }
        let rewind_timeout = match get("rewind_timeout") {
            None => None,
            Some(v) => Some(std::time::Duration::from_secs(v.parse().map_err(|_| {
                ParamError {
                    name: "rewind_timeout",
                    value: v,
                    why: "must be a number of seconds (a non-negative integer)",
                }
            })?)),
        };
        let rewind_keep_files = match get("rewind_keep_files") {
            None => DEFAULT_REWIND_KEEP_FILES
                .split(',')
                .map(PathBuf::from)
                .collect(),
            Some(v) => {
                let files: Vec<PathBuf> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(PathBuf::from)
                    .collect();
                let unsafe_path = files.iter().any(|f| {
                    f.is_absolute()
                        || f.components()
                            .any(|c| matches!(c, std::path::Component::ParentDir))
                });
                if unsafe_path {
                    return Err(ParamError {
                        name: "rewind_keep_files",
                        value: v,
                        why: "must be paths relative to the data directory, without ..",
                    });
                }
                files
            }
        };
        let rewind_conninfo = get("rewind_conninfo");
        let rewind_keep_dir = get("rewind_keep_dir")
            .map(|v| path("rewind_keep_dir", v))
            .transpose()?;
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
            rewind,
            rewind_user,
            rewind_conninfo,
            rewind_timeout,
            rewind_fallback,
            rewind_keep_files,
            rewind_keep_dir,
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
    rejects!(rewind_not_boolean, "rewind" = "maybe");
    rejects!(rewind_fallback_not_boolean, "rewind_fallback" = "2");
    rejects!(rewind_timeout_negative, "rewind_timeout" = "-1");
    rejects!(
        rewind_keep_files_absolute,
        "rewind_keep_files" = "/etc/passwd"
    );
    rejects!(
        rewind_keep_files_escaping,
        "rewind_keep_files" = "pg_hba.conf,../x"
    );
    rejects!(rewind_keep_dir_relative, "rewind_keep_dir" = "keep");
    rejects!(rewind_user_with_quote, "rewind_user" = "a'b");

    #[test]
    fn rewind_defaults_and_off() {
        let p = params(&[]).unwrap();
        assert!(p.rewind && p.rewind_fallback);
        assert_eq!(p.rewind_user, "postgres");
        assert_eq!(p.rewind_timeout, None);
        assert_eq!(p.rewind_keep_files.len(), 4);
        assert_eq!(p.rewind_keep_dir, None);
        let p = params(&[
            ("rewind", "0"),
            ("rewind_fallback", "off"),
            ("rewind_timeout", "90"),
            ("rewind_keep_files", "pg_hba.conf, conf.d"),
            ("system_user", "pg"),
        ])
        .unwrap();
        assert!(!p.rewind && !p.rewind_fallback);
        assert_eq!(p.rewind_user, "pg");
        assert_eq!(p.rewind_timeout, Some(std::time::Duration::from_secs(90)));
        assert_eq!(
            p.rewind_keep_files,
            [PathBuf::from("pg_hba.conf"), PathBuf::from("conf.d")]
        );
    }

    #[test]
    fn table_names_are_pafs_nine_then_pghas_own() {
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        assert_eq!(
            names.get(9..).unwrap(),
            [
                "rewind",
                "rewind_user",
                "rewind_conninfo",
                "rewind_timeout",
                "rewind_fallback",
                "rewind_keep_files",
                "rewind_keep_dir"
            ]
        );
        assert_eq!(
            names.get(..9).unwrap(),
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
