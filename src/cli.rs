//! The command line. Pacemaker calls `pgsqlms <action>`; people call `pgha --help`,
//! `pgha --version` and the tools below. The first argument decides which: an argument that
//! is not an option or a tool's name is an OCF action, even an unknown one (which must end
//! with OCF_ERR_UNIMPLEMENTED, not a usage error).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}

/// Tool names that are not OCF actions.
const TOOLS: &[&str] = &["controldata", "help"];

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
        assert!(matches!(classify(os(&["pgha"])), Invocation::Tool(_)));
    }
}
