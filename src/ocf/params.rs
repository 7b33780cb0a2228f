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
/// The longest time limit pgha accepts, in seconds (a week): anything longer is a typing
/// error, not a plan, and budgets must stay far from `Instant`'s overflow.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Every parameter, in PAF's order.
pub const PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "system_user",
        kind: ParamType::String,
        default: Some(DEFAULT_SYSTEM_USER),
        unique: false,
        reloadable: false,
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
        reloadable: false,
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
        reloadable: false,
        shortdesc: "Instance IP or unix socket folder",
        longdesc: "Host the agent connects to: a Unix socket directory (a path) or an IP \
                   address. Debian's PostgreSQL uses /var/run/postgresql.",
    },
    ParamDef {
        name: "pgport",
        kind: ParamType::Integer,
        default: Some("5432"),
        unique: false,
        reloadable: false,
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
        reloadable: false,
        shortdesc: "Additional arguments given to the postgres process on startup.",
        longdesc: "Additional arguments given to the postgres process on startup (pg_ctl -o), \
                   e.g. \"-c config_file=/etc/postgresql/15/main/postgresql.conf\". Words are \
                   separated by spaces; single quotes keep spaces in a word (-c 'search_path=a, \
                   b'). Characters a shell would interpret (` $ \\ \" ; & | < > ( ) { } * ? [ ] \
                   ~ ! # and control characters) are refused, as they are in pgdata, datadir \
                   and bindir: pg_ctl runs the server through /bin/sh.",
    },
    ParamDef {
        name: "rewind",
        kind: ParamType::Boolean,
        default: Some("true"),
        unique: false,
        reloadable: true,
        shortdesc: "Bring a diverged former primary back by itself",
        longdesc: "When a node that was a primary has diverged from the current primary (it \
                   wrote WAL the new primary never received), pgha rewinds it (rewind_engine: \
                   its own engine or PostgreSQL's pg_rewind), or re-clones it \
                   (rewind_fallback), and starts it as a standby. The transactions it discards \
                   are kept (rewind_keep_dir). Off (false, no, off or 0): such a node is \
                   refused, as PAF does, and the operator decides. Needs wal_log_hints = on \
                   or data checksums.",
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
                   finish. The start or demote timeout must leave room for it. At most 604800 \
                   (a week).",
    },
    ParamDef {
        name: "rewind_sync_method",
        kind: ParamType::String,
        default: None,
        unique: false,
        reloadable: true,
        shortdesc: "How pg_rewind syncs the data directory (PostgreSQL 17 and later)",
        longdesc: "pg_rewind's --sync-method: fsync (each file, pg_rewind's default) or syncfs \
                   (one syncfs per file system: much faster on a large data directory, but it \
                   also syncs, and waits for, everything else written on that file system). \
                   Unset: pg_rewind's default. PostgreSQL 17 and later only: on an older major \
                   validate-all refuses it, and so does a rewind, before changing anything.",
    },
    ParamDef {
        name: "rewind_engine",
        kind: ParamType::String,
        default: Some(DEFAULT_REWIND_ENGINE.as_str()),
        unique: false,
        reloadable: true,
        shortdesc: "What rewinds: native, pg_rewind or auto",
        longdesc: "native: pgha's own engine, which fetches only the blocks changed since the \
                   last common checkpoint and the files pg_rewind copies whole, and hands over \
                   to pg_rewind where it does not run (tablespaces, links, a standby source, a \
                   WAL record it cannot classify). pg_rewind: PostgreSQL's own. auto, the \
                   default: the native engine on the majors where its differential suite \
                   proves it equal to pg_rewind (13 to 19), where it runs, and when it moves \
                   fewer bytes than a re-clone (or no re-clone is allowed); pg_rewind \
                   otherwise.",
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
                   (up to PostgreSQL 18, pg_rewind copies every WAL segment the primary keeps; \
                   19, only those from the fork on), re-clone the node with pg_basebackup into \
                   a new directory next to the data directory, swapped in once complete, \
                   keeping the node's own configuration and the discarded WAL. Needs room for \
                   a second copy, a replication connection (primary_conninfo), and no \
                   tablespaces. Off: the node is left to the operator.",
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
                   to pgha-rewind next to the data directory. Folders are owned by \
                   system_user, mode 0700; old ones are removed after each successful rewind \
                   (rewind_keep_count, rewind_keep_days), and `pgha kept` lists and removes \
                   them by hand.",
    },
    ParamDef {
        name: "rewind_keep_count",
        kind: ParamType::Integer,
        default: Some("3"),
        unique: false,
        reloadable: true,
        shortdesc: "How many kept folders of this node stay",
        longdesc: "After a successful rewind or re-clone, this node's folders in \
                   rewind_keep_dir beyond the newest rewind_keep_count are removed, with the \
                   replaced data directory one may hold. Set a large number to keep them all.",
    },
    ParamDef {
        name: "rewind_keep_days",
        kind: ParamType::Integer,
        default: Some("30"),
        unique: false,
        reloadable: true,
        shortdesc: "How long kept folders stay, in days",
        longdesc: "After a successful rewind or re-clone, this node's folders in \
                   rewind_keep_dir last changed more than this many days ago are removed. \
                   Set a large number to keep them all.",
    },
];

const DEFAULT_REWIND_KEEP_COUNT: usize = 3;
const DEFAULT_REWIND_KEEP_DAYS: u32 = 30;
/// A hundred years: beyond, a number of days is a mistake (and overflows a duration's
/// arithmetic soon enough).
const MAX_REWIND_KEEP_DAYS: u32 = 36_500;

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
    pub start_opts: StartOpts,
    /// pgha's own: automatic rewind of a diverged former primary (`rewind` module).
    pub rewind: bool,
    pub rewind_user: String,
    /// TLS keywords for the rewind source; `None`: those of `primary_conninfo`.
    pub rewind_conninfo: Option<String>,
    /// `None`: the action's deadline alone.
    pub rewind_timeout: Option<std::time::Duration>,
    pub rewind_fallback: bool,
    pub rewind_engine: Engine,
    /// `None`: pg_rewind's default (fsync).
    pub rewind_sync_method: Option<SyncMethod>,
    pub rewind_keep_files: Vec<PathBuf>,
    /// `None`: `pgha-rewind` next to the data directory.
    pub rewind_keep_dir: Option<PathBuf>,
    pub rewind_keep_count: usize,
    pub rewind_keep_days: u32,
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
        // pg_ctl pastes these into a /bin/sh command line (between double quotes).
        let shell_path = |name: &'static str, value: String| {
            if shell_safe(&value) {
                path(name, value)
            } else {
                Err(ParamError {
                    name,
                    value,
                    why: SHELL_SAFE,
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
        let bindir = get("bindir").map(|v| shell_path("bindir", v)).transpose()?;
        let pgdata = shell_path(
            "pgdata",
            get("pgdata").unwrap_or_else(|| DEFAULT_PGDATA.to_owned()),
        )?;
        let datadir = match get("datadir") {
            Some(v) => shell_path("datadir", v)?,
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
        let start_opts = match get("start_opts") {
            None => StartOpts::default(),
            Some(v) => StartOpts::parse(&v).map_err(|why| ParamError {
                name: "start_opts",
                value: v,
                why,
            })?,
        };
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
            Some(v) => match v.parse::<u64>() {
                Ok(secs) if secs <= MAX_TIMEOUT_SECS => Some(std::time::Duration::from_secs(secs)),
                _ => {
                    return Err(ParamError {
                        name: "rewind_timeout",
                        value: v,
                        why: "must be a number of seconds from 0 to 604800 (a week)",
                    })
                }
            },
        };
        let rewind_sync_method = get("rewind_sync_method")
            .map(|v| {
                v.parse().map_err(|_| ParamError {
                    name: "rewind_sync_method",
                    value: v,
                    why: "must be fsync or syncfs",
                })
            })
            .transpose()?;
        let rewind_engine = get("rewind_engine")
            .map(|v| {
                v.parse().map_err(|_| ParamError {
                    name: "rewind_engine",
                    value: v,
                    why: "must be native, pg_rewind or auto",
                })
            })
            .transpose()?
            .unwrap_or(DEFAULT_REWIND_ENGINE);
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
        let rewind_keep_count = match get("rewind_keep_count") {
            None => DEFAULT_REWIND_KEEP_COUNT,
            Some(v) => v.parse().map_err(|_| ParamError {
                name: "rewind_keep_count",
                value: v,
                why: "must be a number of folders (a positive integer)",
            })?,
        };
        let rewind_keep_days = match get("rewind_keep_days") {
            None => DEFAULT_REWIND_KEEP_DAYS,
            Some(v) => v
                .parse()
                .ok()
                .filter(|d| *d <= MAX_REWIND_KEEP_DAYS)
                .ok_or(ParamError {
                    name: "rewind_keep_days",
                    value: v,
                    why: "must be a number of days from 1 to 36500",
                })?,
        };
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
            rewind_engine,
            rewind_sync_method,
            rewind_keep_files,
            rewind_keep_dir,
            rewind_keep_count,
            rewind_keep_days,
        })
    }
}

/// pg_rewind's `--sync-method` (PostgreSQL 17 and later): how the rewound data directory
/// is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMethod {
    /// `fsync` of every file, pg_rewind's default.
    Fsync,
    /// `syncfs` of each file system the data directory spans.
    Syncfs,
}

impl SyncMethod {
    /// The option's value, as pg_rewind spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMethod::Fsync => "fsync",
            SyncMethod::Syncfs => "syncfs",
        }
    }
}

impl std::fmt::Display for SyncMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SyncMethod {
    type Err = String;

    fn from_str(text: &str) -> Result<SyncMethod, String> {
        match text {
            "fsync" => Ok(SyncMethod::Fsync),
            "syncfs" => Ok(SyncMethod::Syncfs),
            other => Err(format!("{other:?} is neither fsync nor syncfs")),
        }
    }
}

/// What rewinds a diverged node (`rewind_engine`, `pgha rewind --engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL's pg_rewind.
    PgRewind,
    /// pgha's native engine (`rewind::native`), which hands over to pg_rewind wherever it
    /// does not run.
    Native,
    /// The native engine where it is proven and cheaper (`rewind::engine`), else pg_rewind.
    Auto,
}

/// The engine when `rewind_engine` is unset: the native engine where it is proven and
/// cheaper. It is the fastest path on this project's benchmark
/// (`tests/bench/results-rewind-pg*.md`) and has run through the soak's faults
/// (`tests/soak/results.md`).
pub const DEFAULT_REWIND_ENGINE: Engine = Engine::Auto;

impl Engine {
    pub const fn as_str(self) -> &'static str {
        match self {
            Engine::PgRewind => "pg_rewind",
            Engine::Native => "native",
            Engine::Auto => "auto",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> Result<Engine, String> {
        [Engine::PgRewind, Engine::Native, Engine::Auto]
            .into_iter()
            .find(|e| e.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not an engine: native, pg_rewind or auto"))
    }
}

/// Why a value was refused for holding what a shell would interpret.
const SHELL_SAFE: &str = "must not hold characters a shell interprets (` $ \\ \" ; & | < > ( ) \
                          { } * ? [ ] ~ ! # newline) nor control characters; quote words with \
                          single quotes only";

/// Whether `text` holds nothing `/bin/sh` would interpret inside double quotes or in a bare
/// word, except spaces and single quotes (which [`StartOpts::parse`] handles).
fn shell_safe(text: &str) -> bool {
    const SPECIAL: &str = "`$\\\";&|<>(){}*?[]~!#\n";
    !text.chars().any(|c| SPECIAL.contains(c) || c.is_control())
}

/// `start_opts`, split into the server's arguments once, with one rule for every program
/// that gets them (`pg_ctl -o`, `postgres -C`, single-user `postgres`, the `config_file`
/// lookup). Words are separated by spaces; single quotes group spaces into a word (no
/// escapes inside, as in sh). Whatever else a shell would interpret is refused, since
/// pg_ctl hands `-o` to `/bin/sh`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOpts(Vec<String>);

impl StartOpts {
    pub fn parse(text: &str) -> Result<StartOpts, &'static str> {
        if !shell_safe(text) {
            return Err(SHELL_SAFE);
        }
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quoted = false;
        for c in text.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    word.get_or_insert_with(String::new);
                }
                ' ' if !quoted => words.extend(word.take()),
                c => word.get_or_insert_with(String::new).push(c),
            }
        }
        if quoted {
            return Err("has a single quote that is not closed");
        }
        words.extend(word);
        Ok(StartOpts(words))
    }

    /// The server's arguments.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The words for `pg_ctl -o`, which pastes its value into a `/bin/sh` command line: each
    /// word in single quotes, so the shell hands the server exactly these words (`parse`
    /// refused quotes inside a word).
    pub fn for_shell(&self) -> String {
        self.0
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: a reloadable parameter takes effect at the agent's next run (it reads its
    /// parameters every time); one the running server depends on (its user, binaries, socket,
    /// port, start options) only after a restart, so Pacemaker must restart it, not reload.
    #[test]
    fn only_parameters_the_agent_alone_reads_are_reloadable() {
        let server_side = [
            "system_user",
            "bindir",
            "pgdata",
            "datadir",
            "pghost",
            "pgport",
            "start_opts",
            "recovery_template",
        ];
        for p in PARAMS {
            assert_eq!(
                p.reloadable,
                !server_side.contains(&p.name),
                "{} reloadable={}",
                p.name,
                p.reloadable
            );
        }
    }
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
        assert!(p.start_opts.is_empty());
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
    rejects!(rewind_engine_unknown, "rewind_engine" = "fast");
    rejects!(rewind_engine_upper_case, "rewind_engine" = "Native");
    rejects!(
        rewind_sync_method_unknown,
        "rewind_sync_method" = "fdatasync"
    );
    rejects!(
        rewind_sync_method_upper_case,
        "rewind_sync_method" = "SYNCFS"
    );
    rejects!(
        rewind_keep_files_absolute,
        "rewind_keep_files" = "/etc/passwd"
    );
    rejects!(
        rewind_keep_files_escaping,
        "rewind_keep_files" = "pg_hba.conf,../x"
    );
    rejects!(rewind_keep_dir_relative, "rewind_keep_dir" = "keep");
    rejects!(rewind_keep_count_negative, "rewind_keep_count" = "-1");
    rejects!(
        rewind_keep_days_past_a_century,
        "rewind_keep_days" = "36501"
    );
    rejects!(rewind_user_with_quote, "rewind_user" = "a'b");
    rejects!(
        finding_9_huge_rewind_timeout_is_refused,
        "rewind_timeout" = "18446744073709551615"
    );
    rejects!(
        finding_9_rewind_timeout_past_a_week,
        "rewind_timeout" = "604801"
    );
    rejects!(
        finding_9_start_opts_command_separator,
        "start_opts" = "-c work_mem=4MB; touch /tmp/x"
    );
    rejects!(
        finding_9_start_opts_command_substitution,
        "start_opts" = "-c work_mem=$(id)"
    );
    rejects!(
        finding_9_start_opts_backquote_in_quotes,
        "start_opts" = "-c 'a=`id`'"
    );
    rejects!(
        finding_9_start_opts_newline,
        "start_opts" = "-c a=1\ntouch /x"
    );
    rejects!(
        finding_9_start_opts_double_quote,
        "start_opts" = "-c \"a b\""
    );
    rejects!(finding_9_start_opts_open_quote, "start_opts" = "-c 'a=b");
    rejects!(
        finding_9_pgdata_command_substitution,
        "pgdata" = "/srv/$(id)"
    );
    rejects!(finding_9_datadir_backquote, "datadir" = "/srv/`id`");
    rejects!(finding_9_bindir_control_char, "bindir" = "/usr/\u{1b}bin");

    /// pg_ctl runs `"postgres" … <-o value> …` through /bin/sh: the shell must hand the
    /// server exactly the parsed words, blanks and all.
    #[test]
    fn finding_9_pg_ctl_shell_sees_exactly_the_words() {
        let opts = StartOpts::parse("-c 'search_path=a,  b' -c work_mem=4MB ''").unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf '<%s>' {}", opts.for_shell()))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "<-c><search_path=a,  b><-c><work_mem=4MB><>"
        );
    }

    #[test]
    fn finding_9_rewind_timeout_up_to_a_week_is_taken() {
        let p = params(&[("rewind_timeout", "604800")]).unwrap();
        assert_eq!(
            p.rewind_timeout,
            Some(std::time::Duration::from_secs(604_800))
        );
    }

    /// The one rule: words split on spaces, single quotes group; what pg_ctl's shell gets
    /// back splits into the same words.
    #[test]
    fn finding_9_start_opts_are_parsed_once_into_words() {
        let words = |text: &str| StartOpts::parse(text).unwrap().words().to_vec();
        assert_eq!(
            words("-c config_file=/etc/pg.conf  -c 'work_mem=4MB' -c 'a b'"),
            [
                "-c",
                "config_file=/etc/pg.conf",
                "-c",
                "work_mem=4MB",
                "-c",
                "a b"
            ]
        );
        assert!(words("  ").is_empty());
        assert_eq!(words("''"), [""]);
        assert_eq!(words("a'b c'd"), ["ab cd"]);
        let p = params(&[("start_opts", "-c 'search_path=a, b' -p 5433")]).unwrap();
        assert_eq!(
            p.start_opts.words(),
            ["-c", "search_path=a, b", "-p", "5433"]
        );
        assert_eq!(
            p.start_opts.for_shell(),
            "'-c' 'search_path=a, b' '-p' '5433'"
        );
        assert_eq!(
            StartOpts::parse(&p.start_opts.for_shell()).unwrap(),
            p.start_opts
        );
    }

    #[test]
    fn rewind_defaults_and_off() {
        let p = params(&[]).unwrap();
        assert!(p.rewind && p.rewind_fallback);
        assert_eq!(p.rewind_user, "postgres");
        assert_eq!(p.rewind_timeout, None);
        assert_eq!(p.rewind_keep_files.len(), 4);
        assert_eq!(p.rewind_keep_dir, None);
        assert_eq!(p.rewind_sync_method, None);
        assert_eq!(p.rewind_engine, DEFAULT_REWIND_ENGINE);
        for engine in [Engine::Native, Engine::PgRewind, Engine::Auto] {
            let p = params(&[("rewind_engine", engine.as_str())]).unwrap();
            assert_eq!(p.rewind_engine, engine);
        }
        let p = params(&[("rewind_sync_method", "syncfs")]).unwrap();
        assert_eq!(p.rewind_sync_method, Some(SyncMethod::Syncfs));
        let p = params(&[("rewind_sync_method", "fsync")]).unwrap();
        assert_eq!(p.rewind_sync_method, Some(SyncMethod::Fsync));
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
                "rewind_sync_method",
                "rewind_engine",
                "rewind_fallback",
                "rewind_keep_files",
                "rewind_keep_dir",
                "rewind_keep_count",
                "rewind_keep_days"
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
