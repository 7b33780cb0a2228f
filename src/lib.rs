//! pgha: PostgreSQL high availability for Pacemaker, as the OCF agent `ocf:pgha:pgsqlms`.
//!
//! `run` is the whole program: it tells an OCF action from a tool invocation, sets up
//! logging, runs the action and turns its outcome into the exit code and the
//! `ocf-exit-reason:` line. That mapping happens here and nowhere else.

pub mod actions;
pub mod cli;
pub mod clock;
pub mod deadline;
pub mod election;
pub mod failpoint;
pub mod instance;
pub mod lsn;
pub mod ocf;
pub mod pacemaker;
pub mod process;
pub mod rewind;
pub mod safe_fs;
pub mod status;

use std::ffi::OsString;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use actions::{Action, Outcome};
use clap::Parser;
use deadline::Deadline;
use ocf::env::{params_from_lookup, OcfEnv};
use ocf::log::{LogSettings, EXIT_REASON};
use ocf::status::OcfStatus;

/// The agent's name, as Pacemaker and the logs know it.
pub const AGENT: &str = "pgsqlms";

pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match cli::classify(args.into_iter().collect()) {
        cli::Invocation::Agent(action) => run_agent(&action).into(),
        cli::Invocation::Tool(args) => run_tool(args),
    }
}

fn lookup(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

fn run_agent(name: &str) -> OcfStatus {
    let prefix = lookup("OCF_EXIT_REASON_PREFIX").unwrap_or_else(|| "ocf-exit-reason:".into());
    let Some(action) = Action::from_name(name) else {
        let reason = format!("action {name:?} is not implemented by {AGENT}");
        eprintln!("{prefix}{reason}");
        return OcfStatus::ErrUnimplemented;
    };
    match action {
        Action::MetaData => return print(ocf::metadata::render()),
        Action::Methods => return print(Ok(ocf::metadata::action_names().join("\n") + "\n")),
        _ => {}
    }
    let env = match OcfEnv::from_lookup(lookup) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("{prefix}{e}");
            return OcfStatus::ErrArgs;
        }
    };
    ocf::log::init(&LogSettings {
        agent: AGENT.into(),
        instance: Some(env.instance.clone()),
        action: name.into(),
        facility: env.log_facility.clone(),
        debug: env.debug,
        log_file: env.log_file.clone(),
        debug_log: env.debug_log.clone(),
    });
    let outcome = match params_from_lookup(lookup) {
        Err(e) => actions::Error::from(e).into(),
        Ok(params) => {
            let deadline = Deadline::for_operation(env.timeout);
            let cluster = pacemaker::Tools::new(&env.sbin_dir, &env.instance, &deadline);
            catch_unwind(AssertUnwindSafe(|| {
                actions::run(action, &env, params, deadline, &cluster)
            }))
            .unwrap_or_else(|_| {
                Outcome::because(
                    OcfStatus::ErrGeneric,
                    "internal error (a bug in pgha): panic",
                )
            })
        }
    };
    report(&env, &outcome);
    outcome.status
}

/// Prints the exit reason where Pacemaker reads it, and logs it.
fn report(env: &OcfEnv, outcome: &Outcome) {
    match &outcome.reason {
        Some(reason) => {
            // A degraded result is a warning; everything else with a reason is an error.
            let level = match outcome.status {
                OcfStatus::Degraded | OcfStatus::DegradedPromoted => log::Level::Warn,
                _ => log::Level::Error,
            };
            log::log!(target: EXIT_REASON, level, "{reason}");
            let _ = writeln!(std::io::stderr(), "{}{reason}", env.exit_reason_prefix);
        }
        None => log::debug!("result: {}", outcome.status),
    }
}

fn print(text: std::io::Result<String>) -> OcfStatus {
    match text.and_then(|t| std::io::stdout().write_all(t.as_bytes())) {
        Ok(()) => OcfStatus::Success,
        Err(e) => {
            eprintln!("ocf-exit-reason:could not write: {e}");
            OcfStatus::ErrGeneric
        }
    }
}

fn run_tool(args: Vec<OsString>) -> ExitCode {
    if args.len() < 2 {
        eprintln!("{AGENT}: no action given; see pgha --help");
        return OcfStatus::ErrUnimplemented.into();
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        cli::Command::Rewind(args) => rewind::command::run(&args),
        cli::Command::Kept(args) => rewind::command::kept(&args),
        cli::Command::Status(args) => status::run(&args),
        cli::Command::Controldata { datadir } => match instance::control::read(&datadir) {
            Ok(control) => {
                println!("{control:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pgha: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
