//! Is a postmaster running for this data directory? Answered from `postmaster.pid` and a
//! signal-0 probe, with no child process.

use std::path::Path;

use crate::safe_fs::read_path_string;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Postmaster {
    /// A live process named postgres owns the pid file.
    Running(i32),
    /// No pid file, or a stale one (dead pid, or a pid reused by another program).
    NotRunning,
}

impl Postmaster {
    pub fn probe(datadir: &Path) -> Postmaster {
        let Ok(content) = read_path_string(&datadir.join("postmaster.pid"), super::SMALL_FILE)
        else {
            return Postmaster::NotRunning;
        };
        let Some(pid) = parse_pid_file(&content) else {
            return Postmaster::NotRunning;
        };
        let alive = match kill(Pid::from_raw(pid), None) {
            Ok(()) | Err(Errno::EPERM) => true,
            Err(_) => false,
        };
        if alive && is_postgres(pid) {
            Postmaster::Running(pid)
        } else {
            Postmaster::NotRunning
        }
    }

    pub fn is_running(self) -> bool {
        matches!(self, Postmaster::Running(_))
    }

    /// What `pg_ctl start -w` waits for: a live postmaster, started at `since` or later,
    /// whose `postmaster.pid` says it is up (`ready`, or `standby` for a standby without
    /// hot_standby).
    pub fn is_up(datadir: &Path, since: std::time::SystemTime) -> bool {
        let Ok(content) = read_path_string(&datadir.join("postmaster.pid"), super::SMALL_FILE)
        else {
            return false;
        };
        let fresh = pid_file_start(&content).is_some_and(|started| {
            // The file holds whole seconds.
            started.saturating_add(1)
                >= since
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
        });
        fresh
            && matches!(pid_file_status(&content), Some("ready" | "standby"))
            && Postmaster::probe(datadir).is_running()
    }
}

/// Line 3 of `postmaster.pid`: when the postmaster started (seconds since the epoch).
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn pid_file_start(content: &str) -> Option<u64> {
    content.lines().nth(2)?.trim().parse().ok()
}

/// Line 8 of `postmaster.pid`: `starting`, `stopping`, `ready` or `standby`.
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn pid_file_status(content: &str) -> Option<&str> {
    Some(content.lines().nth(7)?.trim())
}

/// The first line of `postmaster.pid` is the postmaster's pid.
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_pid_file(content: &str) -> Option<i32> {
    content
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|pid: &i32| *pid > 0)
}

/// Guards against pid reuse after a crash, and against a killed postmaster its parent has not
/// reaped yet: the process must be a live (not zombie) postgres binary. Where /proc cannot
/// tell (another pid namespace), the signal probe alone decides.
fn is_postgres(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => parse_stat(&stat)
            .is_some_and(|(comm, state)| matches!(comm, "postgres" | "postmaster") && state != 'Z'),
        Err(_) => true,
    }
}

/// `/proc/PID/stat`: `pid (comm) state …`; comm may itself hold spaces and parentheses.
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_stat(stat: &str) -> Option<(&str, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some((comm, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_start_and_status() {
        let content = "1234\n/var/lib/pg\n1700000000\n5432\n/run/postgresql\n*\n  5432001     32769\nready   \n";
        assert_eq!(pid_file_start(content), Some(1_700_000_000));
        assert_eq!(pid_file_status(content), Some("ready"));
        // Written in steps: early on, no status yet.
        assert_eq!(pid_file_status("1234\n/var/lib/pg\n1700000000\n"), None);
    }

    #[test]
    fn pid_file_first_line() {
        assert_eq!(
            parse_pid_file("1234\n/var/lib/pg\n1700000000\n5432\n"),
            Some(1234)
        );
        assert_eq!(parse_pid_file(""), None);
        assert_eq!(parse_pid_file("abc\n"), None);
        assert_eq!(parse_pid_file("-5\n"), None);
    }

    #[test]
    fn proc_stat_fields() {
        assert_eq!(parse_stat("42 (postgres) S 1 42"), Some(("postgres", 'S')));
        assert_eq!(parse_stat("42 (postgres) Z 1 42"), Some(("postgres", 'Z')));
        assert_eq!(parse_stat("42 (a (b) c) R 1"), Some(("a (b) c", 'R')));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn missing_or_stale_pid_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Postmaster::probe(dir.path()), Postmaster::NotRunning);
        // Our own pid is alive but is not a postgres process.
        std::fs::write(
            dir.path().join("postmaster.pid"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        assert_eq!(Postmaster::probe(dir.path()), Postmaster::NotRunning);
        std::fs::write(dir.path().join("postmaster.pid"), "999999999\n").unwrap();
        assert_eq!(Postmaster::probe(dir.path()), Postmaster::NotRunning);
    }
}
