//! The only code that runs programs which change the data directory: `pg_rewind`,
//! `pg_basebackup`, and single-user crash recovery.
//!
//! Each is the binary of the data directory's major version (`Instance::bin`), run as the
//! system user through `process::Cmd` (`LANG=C`/`LC_ALL=C`, stdin null, bounded by the
//! deadline, then killed). pg_rewind always gets `-P`, so its output tells how far it went:
//! a failure before `need to copy` left the target untouched (pgha's pg_rewind notes §1.2:
//! steps 1–14 only read; step 15 is the point of no return), one after it may have changed
//! anything.
//!
//! Connection strings reach pg_rewind and pg_basebackup without their password
//! ([`conninfo_arg`]): the password goes through the child's environment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::major;
use crate::deadline::Deadline;
use crate::instance::conninfo;
use crate::instance::Instance;
use crate::lsn::{Lsn, TimelineId};
use crate::ocf::params::SyncMethod;
use crate::process::{self, Cmd, ToolError};

/// Settings added to the source's connection string unless it has its own: pg_rewind sets
/// `statement_timeout=0` and has no timeout of its own (Patroni #3720), so a dead source
/// must be noticed by the connection itself.
const CONNECTION_DEFAULTS: &[(&str, &str)] = &[
    ("dbname", "postgres"),
    ("connect_timeout", "10"),
    ("keepalives", "1"),
    ("keepalives_idle", "10"),
    ("keepalives_interval", "5"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "30000"),
];

/// `conninfo` with `defaults` added where it does not set them.
pub fn with_defaults(conninfo: &str, defaults: &[(&str, &str)]) -> String {
    let text = conninfo.trim();
    let is_uri = text.starts_with("postgresql://") || text.starts_with("postgres://");
    let mut out = text.to_owned();
    for (key, value) in defaults {
        if conninfo::get(text, key).is_some() || (is_uri && *key == "dbname") {
            continue;
        }
        if is_uri {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{key}={value}"));
        } else {
            out.push_str(&format!(" {key}={}", conninfo::quote(value)));
        }
    }
    out
}

/// Hands `conninfo` to a child as the argument `<flag><conninfo>`, its password removed and
/// given as `PGPASSWORD`, which libpq reads when the string has none.
///
/// The environment rather than a passfile: `/proc/<pid>/environ` is readable only by the
/// child's own user (the system user, who owns `postgresql.auto.conf` and `.pgpass` and so
/// has the password already) and root, as a mode 0600 passfile would be; but a passfile is
/// one more file root creates, chowns and removes in a place some user can write (finding
/// 1's whole class of faults), would be left behind by a SIGKILL at Pacemaker's timeout,
/// and needs its `host:port:db:user` line to match what libpq resolves. `PGPASSWORD`
/// applies to every host of a multi-host string, as `password=` did.
///
/// A secret the environment cannot carry (`sslpassword`, a password inside a `dbname` that
/// is itself a connection string) is refused rather than put in the arguments: what the
/// child gets must read the same once redacted.
fn conninfo_arg(cmd: Cmd, flag: &str, conninfo: &str) -> Result<Cmd, ToolError> {
    let (conninfo, password) = conninfo::split_password(conninfo);
    if conninfo::redact(&conninfo) != conninfo.trim() {
        return Err(ToolError::Spawn {
            program: cmd.program_name(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the connection string holds a secret that would show in the command line \
                 (sslpassword, or a password inside dbname): use a key file without a \
                 passphrase, and password= or .pgpass",
            ),
        });
    }
    let cmd = cmd.arg(format!("{flag}{conninfo}"));
    Ok(match password {
        Some(password) => cmd.env_secret("PGPASSWORD", password),
        None => cmd,
    })
}

/// Where pg_rewind reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewindSource {
    Server(String),
    Pgdata(PathBuf),
}

/// One pg_rewind run.
#[derive(Debug, Clone, Default)]
pub struct RewindOptions {
    pub dry_run: bool,
    pub no_sync: bool,
    pub debug: bool,
    /// `--restore-target-wal` (PG ≥ 13).
    pub restore_target_wal: bool,
    /// `--config-file` (PG ≥ 15): the server's postgresql.conf when it is not in the data
    /// directory, for the `postgres` runs pg_rewind makes.
    pub config_file: Option<PathBuf>,
    /// Let pg_rewind run single-user crash recovery itself (PG ≥ 13); pgha normally does it
    /// first and passes `--no-ensure-shutdown`.
    pub ensure_shutdown: bool,
    /// `--sync-method` (PG ≥ 17).
    pub sync_method: Option<SyncMethod>,
    /// Wall-clock limit, within the operation's deadline.
    pub time_limit: Option<Duration>,
}

/// What pg_rewind printed, read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewindOutput {
    /// "servers diverged at WAL location X on timeline N".
    pub diverged: Option<(Lsn, TimelineId)>,
    /// "rewinding from last common checkpoint at X on timeline N".
    pub common_checkpoint: Option<(Lsn, TimelineId)>,
    /// "need to copy N MB (total source directory size is M MB)": the point of no return.
    pub need_to_copy_mb: Option<(u64, u64)>,
    /// The last "N/M kB (P%) copied" line.
    pub copied_kb: Option<u64>,
    pub no_rewind_required: bool,
    pub done: bool,
    /// Part of the output was dropped ([`process::KEEP`]): what pg_rewind did there is
    /// unknown.
    pub cut: bool,
    /// The `error:`/`fatal:` lines.
    pub errors: Vec<String>,
    /// Every line, as printed.
    pub lines: Vec<String>,
}

impl RewindOutput {
    pub fn parse(text: &str) -> RewindOutput {
        let mut out = RewindOutput::default();
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() {
                out.lines.push(line.to_owned());
            }
            let msg = line.strip_prefix("pg_rewind: ").unwrap_or(line);
            if let Some(rest) = msg.strip_prefix("servers diverged at WAL location ") {
                out.diverged = lsn_on_timeline(rest);
            } else if let Some(rest) = msg.strip_prefix("rewinding from last common checkpoint at ")
            {
                out.common_checkpoint = lsn_on_timeline(rest);
            } else if let Some(rest) = msg.strip_prefix("need to copy ") {
                let mut numbers = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| s.parse::<u64>().ok());
                let copy = numbers.next().unwrap_or(0);
                let total = numbers.next().unwrap_or(0);
                out.need_to_copy_mb = Some((copy, total));
            } else if msg.ends_with("copied") && msg.contains(" kB (") {
                out.copied_kb = msg.split('/').next().and_then(|n| n.trim().parse().ok());
            } else if msg == "no rewind required" {
                out.no_rewind_required = true;
            } else if msg == "Done!" {
                out.done = true;
            } else if process::is_cut_mark(line) {
                out.cut = true;
            } else if let Some(err) = msg
                .strip_prefix("error: ")
                .or_else(|| msg.strip_prefix("fatal: "))
            {
                out.errors.push(err.to_owned());
            }
        }
        out
    }

    /// pg_rewind reached the point where it changes the target (or finished), or may have:
    /// output that was cut may have held the `need to copy` line.
    pub fn passed_point_of_no_return(&self) -> bool {
        self.need_to_copy_mb.is_some() || self.copied_kb.is_some() || self.done || self.cut
    }
}

/// "0/30000A0 on timeline 1" → the position and the timeline.
fn lsn_on_timeline(text: &str) -> Option<(Lsn, TimelineId)> {
    let (lsn, tli) = text.split_once(" on timeline ")?;
    Some((lsn.trim().parse().ok()?, tli.trim().parse().ok()?))
}

/// How a pg_rewind run went wrong.
#[derive(Debug, thiserror::Error)]
#[error("pg_rewind failed ({}): {error}", if *.touched { "the target may have been modified" } else { "the target is untouched" })]
pub struct RewindFailure {
    /// pg_rewind may have changed the target: it must not be started.
    pub touched: bool,
    pub output: RewindOutput,
    pub error: ToolError,
}

/// Runs the data directory's own pg_rewind. On success, returns its output read back; its
/// lines also go to the log.
pub fn pg_rewind(
    instance: &Instance,
    source: &RewindSource,
    options: &RewindOptions,
    deadline: &Deadline,
) -> Result<(RewindOutput, Duration), Box<RewindFailure>> {
    let mut cmd = Cmd::new(instance.bin("pg_rewind"))
        .run_as(&instance.user)
        .env("PG_COLOR", "never")
        .arg("--target-pgdata")
        .arg(instance.datadir())
        .arg("--progress");
    cmd = match source {
        RewindSource::Server(conninfo) => {
            let conninfo = with_defaults(conninfo, CONNECTION_DEFAULTS);
            let conninfo = with_defaults(
                &conninfo,
                &[
                    ("target_session_attrs", "read-write"),
                    ("application_name", "pgha-rewind"),
                ],
            );
            conninfo_arg(cmd, "--source-server=", &conninfo).map_err(|error| {
                Box::new(RewindFailure {
                    touched: false,
                    output: RewindOutput::default(),
                    error,
                })
            })?
        }
        RewindSource::Pgdata(dir) => cmd.arg("--source-pgdata").arg(dir),
    };
    if options.dry_run {
        cmd = cmd.arg("--dry-run");
    }
    if options.no_sync {
        cmd = cmd.arg("--no-sync");
    }
    if options.debug {
        cmd = cmd.arg("--debug");
    }
    if options.restore_target_wal {
        cmd = cmd.arg("--restore-target-wal");
    }
    if !options.ensure_shutdown {
        cmd = cmd.arg("--no-ensure-shutdown");
    }
    let version = major::pg_rewind(instance.major);
    if let Some(file) = options.config_file.as_ref().filter(|_| version.config_file) {
        cmd = cmd.arg(format!("--config-file={}", file.display()));
    }
    if let Some(method) = options.sync_method.filter(|_| version.sync_method) {
        cmd = cmd.arg(format!("--sync-method={method}"));
    }
    let shown = cmd.display();
    let limited = match options.time_limit {
        Some(limit) => deadline.at_most(limit),
        None => *deadline,
    };
    log::info!("running {shown}");
    let started = Instant::now();
    let result = cmd.run(&limited);
    let elapsed = started.elapsed();
    let text = match &result {
        Ok(out) => out.text.clone(),
        Err(e) => e.output().to_owned(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        log::info!("{}", line.trim());
    }
    let output = RewindOutput::parse(&text);
    match result {
        Ok(_) => Ok((output, elapsed)),
        Err(error) => Err(Box::new(RewindFailure {
            // Killed or timed out: only what it printed tells how far it went; a spawn
            // failure never started it.
            touched: !matches!(error, ToolError::Spawn { .. })
                && output.passed_point_of_no_return(),
            output,
            error,
        })),
    }
}

/// Single-user crash recovery of a target that stopped uncleanly, as pg_rewind ≥ 13 would do
/// it, but run by pgha first so that the divergence is decided on a cleanly stopped
/// directory (and on PG 12, which cannot). Archiving stays on with a command that always
/// fails, so the WAL segments not yet archived are kept (`.ready`), as Patroni does; and no
/// segment is removed or recycled at its end (`wal_keep_size` at its most, after the node's
/// own options): the rewind reads the target's WAL from the last common checkpoint, which
/// the end-of-recovery checkpoint would otherwise remove once archived.
/// `standby.signal` must be gone: single-user mode refuses standby mode.
pub fn crash_recovery(instance: &Instance, deadline: &Deadline) -> Result<(), ToolError> {
    /// The largest `wal_keep_size` (in MB, `INT_MAX`) of every major since 13.
    const KEEP_ALL_WAL: &str = "wal_keep_size=2147483647";
    let cmd = Cmd::new(instance.bin("postgres"))
        .run_as(&instance.user)
        .arg("--single")
        .arg("-F")
        .arg("-D")
        .arg(&instance.params.pgdata)
        .args(["-c", "archive_mode=on", "-c", "archive_command=false"])
        .args(instance.params.start_opts.words())
        .args(["-c", KEEP_ALL_WAL])
        .arg("template1");
    log::info!("crash recovery: {}", cmd.display());
    cmd.run(deadline)?;
    Ok(())
}

/// `pg_basebackup` of the source into `into` (an empty directory), with the WAL streamed
/// alongside, a fast checkpoint, and no recovery configuration (pgha writes its own).
pub fn pg_basebackup(
    instance: &Instance,
    replication_conninfo: &str,
    into: &Path,
    deadline: &Deadline,
) -> Result<Duration, ToolError> {
    let conninfo = with_defaults(replication_conninfo, CONNECTION_DEFAULTS);
    let cmd = Cmd::new(instance.bin("pg_basebackup"))
        .run_as(&instance.user)
        .env("PG_COLOR", "never")
        .arg("--pgdata")
        .arg(into)
        .args(["--wal-method=stream", "--checkpoint=fast", "--progress"]);
    let cmd = conninfo_arg(cmd, "--dbname=", &conninfo)?;
    log::info!("running {}", cmd.display());
    let started = Instant::now();
    let out = cmd.run(deadline)?;
    for line in out.text.lines().filter(|l| !l.trim().is_empty()) {
        log::info!("pg_basebackup: {}", line.trim());
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lab 1.7.4 of the replication course (PG 14), as pg_rewind printed it.
    const LAB: &str = "pg_rewind: connected to server
pg_rewind: servers diverged at WAL location 0/390000A0 on timeline 3
pg_rewind: rewinding from last common checkpoint at 0/39000028 on timeline 3
pg_rewind: reading source file list
pg_rewind: reading target file list
pg_rewind: reading WAL in target
pg_rewind: need to copy 101 MB (total source directory size is 370 MB)
103735/103735 kB (100%) copied
pg_rewind: creating backup label and updating control file
pg_rewind: syncing target data directory
pg_rewind: Done!
";

    #[test]
    fn reads_a_successful_run() {
        let out = RewindOutput::parse(LAB);
        assert_eq!(out.diverged, Some(("0/390000A0".parse().unwrap(), 3)));
        assert_eq!(
            out.common_checkpoint,
            Some(("0/39000028".parse().unwrap(), 3))
        );
        assert_eq!(out.need_to_copy_mb, Some((101, 370)));
        assert_eq!(out.copied_kb, Some(103735));
        assert!(out.done && !out.no_rewind_required);
        assert!(out.passed_point_of_no_return());
    }

    #[test]
    fn the_promotion_trap_reads_as_no_rewind_required() {
        // PG 15.18, right after pg_ctl promote (pgha's pg_rewind notes §8.3).
        let out = RewindOutput::parse(
            "pg_rewind: source and target cluster are on the same timeline\n\
             pg_rewind: no rewind required\n",
        );
        assert!(out.no_rewind_required);
        assert_eq!(out.diverged, None);
        assert!(!out.passed_point_of_no_return());
    }

    #[test]
    fn failures_before_the_copy_leave_the_target_untouched() {
        for text in [
            "pg_rewind: error: could not connect to server: connection refused\n",
            "pg_rewind: connected to server\n\
             pg_rewind: servers diverged at WAL location 0/3000060 on timeline 1\n\
             pg_rewind: error: could not find previous WAL record at 0/3000028: invalid record length\n",
            "pg_rewind: fatal: target server must be shut down cleanly\n",
            "pg_rewind: error: source and target clusters are from different systems\n",
        ] {
            let out = RewindOutput::parse(text);
            assert!(!out.passed_point_of_no_return(), "{text}");
            assert_eq!(out.errors.len(), 1, "{text}");
        }
    }

    #[test]
    fn a_failure_after_need_to_copy_may_have_touched_the_target() {
        let out = RewindOutput::parse(
            "pg_rewind: need to copy 53 MB (total source directory size is 81 MB)\n\
             pg_rewind: error: could not receive data from server: server closed the connection\n",
        );
        assert!(out.passed_point_of_no_return());
    }

    #[test]
    fn finding_9_cut_output_counts_as_past_the_point_of_no_return() {
        let text = "pg_rewind: connected to server\n[pgha: output cut here: 99 bytes dropped]\n\
                    pg_rewind: error: could not receive data from server\n";
        let out = RewindOutput::parse(text);
        assert!(out.cut && out.passed_point_of_no_return(), "{out:?}");
    }

    #[test]
    fn finding_3_password_goes_to_the_environment_not_the_argument() {
        let cmd = conninfo_arg(
            Cmd::new("/bin/sh").args(["-c", "echo \"$PGPASSWORD\"; echo \"$1\"", "-"]),
            "--dbname=",
            "host=h user=r password='Sup3r S3cret'",
        )
        .unwrap();
        assert!(!cmd.display().contains("S3cret"), "{}", cmd.display());
        let out = cmd.run(&Deadline::after(Duration::from_secs(10))).unwrap();
        assert_eq!(out.text, "Sup3r S3cret\n--dbname=host=h user=r \n");
    }

    /// The security review's follow-up: `sslpassword`, and a password inside a `dbname`
    /// that is a connection string, have no environment variable; they reached `ps`.
    #[test]
    fn finding_3_secrets_the_environment_cannot_carry_are_refused() {
        for conninfo in [
            "host=h user=r sslpassword=Sup3rS3cret",
            "host=h dbname='host=x password=Sup3rS3cret'",
        ] {
            let err = conninfo_arg(Cmd::new("/bin/true"), "--dbname=", conninfo).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("sslpassword"), "{text}");
            assert!(!text.contains("Sup3rS3cret"), "{text}");
        }
    }

    #[test]
    fn connection_defaults_are_added_only_where_missing() {
        let ci = with_defaults(
            "host=10.0.0.1 user=rewinder connect_timeout=3",
            CONNECTION_DEFAULTS,
        );
        assert_eq!(conninfo::get(&ci, "connect_timeout").as_deref(), Some("3"));
        assert_eq!(conninfo::get(&ci, "keepalives").as_deref(), Some("1"));
        assert_eq!(conninfo::get(&ci, "dbname").as_deref(), Some("postgres"));
        let uri = with_defaults("postgresql://r@h/db", &[("connect_timeout", "10")]);
        assert_eq!(uri, "postgresql://r@h/db?connect_timeout=10");
        let uri = with_defaults("postgresql://r@h/db?sslmode=off", &[("keepalives", "1")]);
        assert_eq!(uri, "postgresql://r@h/db?sslmode=off&keepalives=1");
    }
}
