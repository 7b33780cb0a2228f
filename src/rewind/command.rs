//! `pgha rewind`: the rewind module by hand, with pg_rewind's options.
//!
//! The same path as the agent's ([`super::rejoin`](fn@super::rejoin), [`super::check`]),
//! with settings from the command line instead of the resource's parameters. Exit code 0 on
//! success, 1 on failure (the reason on stderr), 2 for a usage error (clap).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{check_in_full, ensure_supported, rejoin, Fallback, RewindError, RewindSettings};
use super::{forensics, kept};
use super::{Source, SourceConninfo};
use crate::cli::{KeptArgs, RewindArgs};
use crate::deadline::Deadline;
use crate::instance::{self, Instance};
use crate::ocf::log::LogSettings;
use crate::ocf::params::{ParamError, Params};

/// Why `pgha rewind` failed: printed after `pgha rewind: `, exit code 1 whatever it is (the
/// command, not the agent, so no OCF code).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("give --source-server or --source-pgdata")]
    NoSource,
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error(transparent)]
    Instance(#[from] instance::Error),
    #[error(transparent)]
    Rewind(#[from] RewindError),
}

pub fn run(args: &RewindArgs) -> ExitCode {
    crate::ocf::log::init(&LogSettings {
        agent: "pgha".into(),
        instance: None,
        action: "rewind".into(),
        facility: None,
        debug: args.debug,
        log_file: None,
        debug_log: None,
    });
    match execute(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgha rewind: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `pgha kept`: lists the kept folders (oldest first), or removes the ones named.
pub fn kept(args: &KeptArgs) -> ExitCode {
    let datadir = args.target_pgdata.as_deref().map(absolute);
    let keep_dir = match (&args.keep_dir, &datadir) {
        (Some(dir), _) => absolute(dir),
        (None, Some(data)) => forensics::keep_dir(None, data),
        (None, None) => return ExitCode::from(2),
    };
    let result = kept::open_existing_keep_dir(&keep_dir).and_then(|keep| {
        if args.remove.is_empty() {
            return Ok(kept::list(&keep)?
                .iter()
                .map(|run| kept::describe(&keep, run))
                .collect::<String>());
        }
        for name in &args.remove {
            kept::remove_run(&keep, name, None)?;
        }
        Ok(format!("removed {} kept folder(s)\n", args.remove.len()))
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgha kept: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: &RewindArgs) -> Result<String, Failure> {
    let instance = instance(args)?;
    let source = match (&args.source_server, &args.source_pgdata) {
        (Some(server), _) => Source::Server(SourceConninfo {
            sql: server.clone(),
            replication: args
                .replication_conninfo
                .clone()
                .unwrap_or_else(|| server.clone()),
        }),
        (None, Some(dir)) => Source::Pgdata(dir.clone()),
        (None, None) => return Err(Failure::NoSource),
    };
    let settings = RewindSettings {
        automatic: true,
        time_limit: Some(Duration::from_secs(args.timeout)),
        fallback: if args.no_fallback {
            Fallback::None
        } else {
            Fallback::Reclone
        },
        keep_dir: args.keep_dir.clone(),
        primary_conninfo: args.primary_conninfo.clone(),
        write_standby: args.write_recovery_conf,
        crash_recovery: !args.no_ensure_shutdown,
        dry_run: args.dry_run,
        no_sync: args.no_sync,
        sync_method: args.sync_method,
        debug: args.debug,
        restore_target_wal: args.restore_target_wal.then_some(true),
        config_file: args.config_file.clone(),
        engine: args.engine,
        ..RewindSettings::default()
    };
    // pg_rewind's own time limit is the whole command's (clap keeps it from 1 s to a week).
    let deadline = Deadline::after(Duration::from_secs(args.timeout));
    ensure_supported(&instance, &settings)?;
    if args.check {
        return Ok(check_in_full(&instance, &source, &settings, &deadline)?.to_string());
    }
    let report = rejoin(&instance, &source, &args.node, &settings, &deadline)?;
    // Nothing started here: the replaced directory is kept (`pgha kept` removes it).
    report.settle_replaced(false);
    let mut text = String::new();
    if args.progress || args.dry_run {
        for line in report.rewind.iter().flat_map(|r| r.lines.iter()) {
            text.push_str(line);
            text.push('\n');
        }
    }
    if report.crash_recovery {
        text.push_str("crash recovery: ran first (the target stopped uncleanly as a primary)\n");
    }
    text.push_str(&format!(
        "decision: {}\nplan: {}\n",
        report.decision, report.plan
    ));
    if let Some(engine) = &report.engine {
        text.push_str(&format!("engine: {engine}\n"));
    }
    if let Some(failure) = &report.rewind_failure {
        text.push_str(&format!("the rewind failed first: {failure}\n"));
    }
    if let Some(dir) = &report.saved_in {
        text.push_str(&format!(
            "discarded WAL and configuration kept in {}\n",
            dir.display()
        ));
    }
    let outcome = match report.outcome {
        super::Outcome::Streamable => "nothing to rewind: the target can stream as is",
        super::Outcome::Rewound => "rewound",
        super::Outcome::Recloned => "re-cloned",
        super::Outcome::DryRun => "dry run: nothing changed",
    };
    text.push_str(&format!("{outcome} in {:.1?}\n", report.elapsed));
    Ok(text)
}

fn instance(args: &RewindArgs) -> Result<Instance, Failure> {
    let user = args.system_user.clone().unwrap_or_else(|| {
        if nix::unistd::geteuid().is_root() {
            crate::ocf::params::DEFAULT_SYSTEM_USER.to_owned()
        } else {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map_or_else(
                    || crate::ocf::params::DEFAULT_SYSTEM_USER.to_owned(),
                    |u| u.name,
                )
        }
    });
    let pgdata = absolute(&args.target_pgdata);
    let mut values = vec![
        ("pgdata", pgdata.display().to_string()),
        ("system_user", user),
    ];
    if let Some(dir) = &args.bindir {
        values.push(("bindir", absolute(dir).display().to_string()));
    }
    if let Some(file) = &args.config_file {
        // One word, as start_opts quotes it; a path a shell would interpret is refused there.
        values.push(("start_opts", format!("-c 'config_file={}'", file.display())));
    }
    let params = Params::from_lookup(|name| {
        values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })?;
    Instance::resolve(&params).map_err(|(_, e)| e.into())
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
