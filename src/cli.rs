//! The command line. Pacemaker calls `pgsqlms <action>`; people call `pgha --help`,
//! `pgha --version` and the tools below. The first argument decides which: an argument that
//! is not an option or a tool's name is an OCF action, even an unknown one (which must end
//! with OCF_ERR_UNIMPLEMENTED, not a usage error).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::ocf::params::{SyncMethod, DEFAULT_REWIND_ENGINE, MAX_TIMEOUT_SECS};
use crate::pacemaker::check_node_name;
use crate::rewind::Engine;

#[derive(Debug, Parser)]
#[command(
    name = "pgha",
    version,
    about = "PostgreSQL high availability for Pacemaker (OCF agent ocf:pgha:pgsqlms)",
    long_about = "PostgreSQL high availability for Pacemaker.\n\n\
        Installed as the OCF resource agent ocf:pgha:pgsqlms, Pacemaker runs it with one of \
        the actions: start, stop, monitor, promote, demote, notify, reload, reload-agent, \
        meta-data, methods, validate-all. Parameters come from OCF_RESKEY_* variables."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what global/pg_control of a data directory says (no server needed).
    Controldata {
        /// The data directory.
        datadir: PathBuf,
    },
    /// Bring a diverged former primary back as a standby: pg_rewind with pgha's checks
    /// (divergence decision, checkpoint of a just promoted source, discarded WAL and node
    /// configuration kept, a marker against starting a half-rewound directory, re-clone
    /// fallback). The target must be stopped.
    Rewind(Box<RewindArgs>),
    /// List the folders rewinds kept (discarded WAL, the old pg_control, the node's
    /// configuration, a replaced data directory), or remove some.
    Kept(KeptArgs),
    /// The cluster at a glance: one line a node (Pacemaker state and role, PostgreSQL role,
    /// timeline, WAL positions, lag, sync state, promotion score, flags), then the VIP and
    /// the last failover, switchover and rewind. As root or as a member of haclient.
    Status(StatusArgs),
}

/// `pgha status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the JSON document of docs/status.md (schema_version 1).
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Print Prometheus' text exposition (for node_exporter's textfile collector).
    #[arg(long)]
    pub prometheus: bool,
    /// Print again every N seconds, until interrupted.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub watch: Option<u64>,
    /// The resource (a primitive of ocf:pgha:pgsqlms; default: the only one).
    #[arg(long, value_name = "RSC")]
    pub resource: Option<String>,
    /// The VIP's address (default: the only ocf:heartbeat:IPaddr2 resource).
    #[arg(long, value_name = "ADDR")]
    pub vip: Option<String>,
    /// How long each source (crm_mon, the CIB, the local instance) has to answer, in seconds.
    #[arg(long, value_name = "S", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
}

/// The form of `pgha status`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
    Prometheus,
}

impl StatusArgs {
    pub fn format(&self) -> StatusFormat {
        match (self.json, self.prometheus) {
            (true, _) => StatusFormat::Json,
            (_, true) => StatusFormat::Prometheus,
            _ => StatusFormat::Text,
        }
    }
}

/// `pgha kept`.
#[derive(Debug, clap::Args)]
pub struct KeptArgs {
    /// The data directory whose kept folders are wanted (they are in `pgha-rewind` next to
    /// it unless --keep-dir says otherwise).
    #[arg(short = 'D', long = "target-pgdata", value_name = "DIRECTORY")]
    pub target_pgdata: Option<PathBuf>,
    /// The folder rewinds keep their folders in (the resource's `rewind_keep_dir`).
    #[arg(
        long,
        value_name = "DIRECTORY",
        required_unless_present = "target_pgdata"
    )]
    pub keep_dir: Option<PathBuf>,
    /// Remove these kept folders (names as listed).
    #[arg(long, value_name = "NAME")]
    pub remove: Vec<String>,
}

/// `pgha rewind`: pg_rewind's options, plus pgha's.
#[derive(Debug, clap::Args)]
pub struct RewindArgs {
    /// Target data directory (modified).
    #[arg(short = 'D', long = "target-pgdata", value_name = "DIRECTORY")]
    pub target_pgdata: PathBuf,
    /// Source data directory (a cleanly stopped primary).
    #[arg(long, value_name = "DIRECTORY", conflicts_with = "source_server")]
    pub source_pgdata: Option<PathBuf>,
    /// Source server (libpq connection string): the current primary.
    #[arg(
        long,
        value_name = "CONNSTR",
        required_unless_present = "source_pgdata"
    )]
    pub source_server: Option<String>,
    /// Write pgha's standby configuration afterwards: standby.signal, and primary_conninfo
    /// when --primary-conninfo is given (never pg_rewind's own -R).
    #[arg(short = 'R', long)]
    pub write_recovery_conf: bool,
    /// Decide and run pg_rewind --dry-run; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Do not wait for changes to be written safely to disk (pg_rewind --no-sync).
    #[arg(short = 'N', long)]
    pub no_sync: bool,
    /// How pg_rewind makes the rewound directory durable: fsync (its default) or syncfs
    /// (pg_rewind --sync-method; PostgreSQL 17 and later, refused before anything changes on
    /// an older major).
    #[arg(long, value_name = "METHOD")]
    pub sync_method: Option<SyncMethod>,
    /// Print pg_rewind's progress.
    #[arg(short = 'P', long)]
    pub progress: bool,
    /// What rewinds: native, pgha's own engine, which fetches only the changed blocks and
    /// hands over to pg_rewind where it does not run (tablespaces, a standby source, a WAL
    /// record it cannot classify); pg_rewind; or auto, the native engine on the majors it
    /// is proven on when it costs less than a re-clone (the agent's rewind_engine).
    #[arg(long, value_name = "ENGINE", default_value_t = DEFAULT_REWIND_ENGINE)]
    pub engine: Engine,
    /// Fetch missing WAL with the target's restore_command (by default: when it is set).
    #[arg(short = 'c', long)]
    pub restore_target_wal: bool,
    /// The target server's configuration file, for the postgres runs (crash recovery,
    /// restore_command).
    #[arg(long, value_name = "FILENAME")]
    pub config_file: Option<PathBuf>,
    /// Do not run crash recovery on an uncleanly stopped target: fail instead.
    #[arg(long)]
    pub no_ensure_shutdown: bool,
    /// pg_rewind's debug output, and pgha's.
    #[arg(long)]
    pub debug: bool,
    /// Print the divergence decision and the plan; change nothing (not even a CHECKPOINT on
    /// the source).
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// This node's name: application_name in primary_conninfo, and the folder name of the
    /// kept WAL (a host name: letters, digits, '.', '_', '-').
    #[arg(long, default_value = "local", value_parser = node_name)]
    pub node: String,
    /// primary_conninfo to write with -R (application_name is set to --node).
    #[arg(long, value_name = "CONNSTR")]
    pub primary_conninfo: Option<String>,
    /// Connection string for a re-clone (pg_basebackup; a REPLICATION role). Default: the
    /// source server's.
    #[arg(long, value_name = "CONNSTR")]
    pub replication_conninfo: Option<String>,
    /// Never re-clone: fail when pg_rewind cannot bring the target back.
    #[arg(long)]
    pub no_fallback: bool,
    /// Where the discarded WAL and the node's configuration are kept (default:
    /// pgha-rewind next to the data directory).
    #[arg(long, value_name = "DIRECTORY")]
    pub keep_dir: Option<PathBuf>,
    /// The whole command's time limit, pg_rewind's included, in seconds (at most a week).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    pub timeout: u64,
    /// The PostgreSQL binaries (default: those of the data directory's major version).
    #[arg(long, value_name = "DIRECTORY")]
    pub bindir: Option<PathBuf>,
    /// The system user that owns the data directory (pg_rewind runs as it).
    #[arg(long, value_name = "USER")]
    pub system_user: Option<String>,
}

/// `--node`, refused here when it could not name a folder.
fn node_name(text: &str) -> Result<String, String> {
    check_node_name(text).map(|()| text.to_owned())
}

/// Tool names that are not OCF actions.
const TOOLS: &[&str] = &["controldata", "rewind", "kept", "status", "help"];

/// What the first argument asks for.
pub enum Invocation {
    /// An OCF action name (known or not); further arguments are ignored, as OCF requires.
    Agent(String),
    /// Options or a tool: parsed by clap.
    Tool(Vec<OsString>),
}

pub fn classify(args: Vec<OsString>) -> Invocation {
    match args.get(1).map(|a| a.to_string_lossy().into_owned()) {
        Some(first) if !first.starts_with('-') && !TOOLS.contains(&first.as_str()) => {
            Invocation::Agent(first)
        }
        _ => Invocation::Tool(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn actions_go_to_the_agent_whatever_argv0_is() {
        assert!(
            matches!(classify(os(&["pgsqlms", "monitor"])), Invocation::Agent(a) if a == "monitor")
        );
        assert!(
            matches!(classify(os(&["/usr/sbin/pgha", "start", "extra"])), Invocation::Agent(a) if a == "start")
        );
        assert!(
            matches!(classify(os(&["pgha", "frobnicate"])), Invocation::Agent(a) if a == "frobnicate")
        );
    }

    #[test]
    fn options_and_tools_go_to_clap() {
        assert!(matches!(
            classify(os(&["pgha", "--help"])),
            Invocation::Tool(_)
        ));
        assert!(matches!(
            classify(os(&["pgha", "--version"])),
            Invocation::Tool(_)
        ));
        assert!(matches!(
            classify(os(&["pgha", "controldata", "/x"])),
            Invocation::Tool(_)
        ));
        assert!(matches!(
            classify(os(&["pgha", "rewind", "-D", "/x"])),
            Invocation::Tool(_)
        ));
        assert!(matches!(classify(os(&["pgha"])), Invocation::Tool(_)));
    }

    #[test]
    fn kept_went_to_the_agent_every_subcommand_is_a_tool() {
        // `pgha kept` went to the agent as an unknown action: TOOLS lacked it.
        use clap::CommandFactory;
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            assert!(
                matches!(classify(os(&["pgha", name])), Invocation::Tool(_)),
                "{name}"
            );
        }
    }

    #[test]
    fn status_options() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["pgha", "status"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Status(a) => (a.format(), a.watch, a.timeout),
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(parse(&[]).unwrap(), (StatusFormat::Text, None, 5));
        assert_eq!(
            parse(&["--json", "--watch", "2"]).unwrap().0,
            StatusFormat::Json
        );
        assert_eq!(
            parse(&["--prometheus", "--timeout", "1"]).unwrap(),
            (StatusFormat::Prometheus, None, 1)
        );
        assert!(parse(&["--json", "--prometheus"]).is_err());
        assert!(parse(&["--timeout", "0"]).is_err());
        assert!(parse(&["--watch", "0"]).is_err());
    }

    fn rewind(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut args = vec!["pgha", "rewind", "-D", "/x", "--source-pgdata", "/y"];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    }

    #[test]
    fn finding_9_overflowing_timeout_is_a_usage_error() {
        let err = rewind(&["--timeout", "18446744073709551615"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("1..=604800"), "{err}");
        assert!(rewind(&["--timeout", "0"]).is_err());
        assert!(rewind(&["--timeout", "604800"]).is_ok());
    }

    #[test]
    fn sync_method_takes_pg_rewinds_two_values() {
        let cli = rewind(&["--sync-method", "syncfs"]).unwrap();
        let Command::Rewind(args) = cli.command else {
            panic!("{cli:?}");
        };
        assert_eq!(args.sync_method, Some(SyncMethod::Syncfs));
        assert!(rewind(&["--sync-method", "fsync"]).is_ok());
        let err = rewind(&["--sync-method", "fdatasync"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn finding_9_node_that_could_escape_a_folder_is_a_usage_error() {
        for node in ["../../etc", "a/b", "", ".."] {
            let err = rewind(&["--node", node]).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{node}"
            );
        }
        assert!(rewind(&["--node", "pg-1.example"]).is_ok());
    }
}
