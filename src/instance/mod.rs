//! The local PostgreSQL instance: where it lives, its binaries, and what it is doing.
//!
//! Knows PostgreSQL, not Pacemaker. Observing the instance (pg_control, the pid file, SQL)
//! spawns no process; changing it goes through `pg_ctl` as the system user.

pub mod conninfo;
pub mod control;
pub mod error;
pub mod postmaster;
pub mod sql;
pub mod state;
pub mod tls;
pub mod wal;

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::deadline::{Deadline, Expired};
use crate::lsn::{Lsn, TimelineId};
use crate::ocf::params::Params;
use crate::process::{Cmd, RunAs};
use crate::safe_fs::{read_path_string, Dir};
use control::ControlFile;
pub use error::{Error, Result};
use postmaster::Postmaster;
use sql::{Session, SqlError, Target};
use state::{InstanceState, SqlProbe};

/// The oldest major version pgha manages: 12 brought `standby.signal` and recovery settings
/// in the main configuration, but is out of upstream support since November 2024, and pgha
/// reads the pg_control and WAL of 13–19 only (`control`, `wal::major`).
pub const MIN_MAJOR: u32 = 13;

/// The most pgha reads of a small file the system user controls (`PG_VERSION`,
/// `postmaster.pid`): far more than PostgreSQL writes there, far less than memory.
pub const SMALL_FILE: u64 = 64 * 1024;

/// The most pgha reads of a timeline history file: one line per timeline switch.
pub const HISTORY_FILE: u64 = 16 * 1024 * 1024;

/// How often transitional states are looked at again.
const POLL: Duration = Duration::from_millis(100);

/// Restartpoints asked for before pg_control's timeline is trusted to be that of the WAL a
/// standby replayed ([`Instance::replayed_position`]).
const RESTARTPOINT_TRIES: usize = 2;

/// The instance as configured on this node, with what was found on disk.
#[derive(Debug, Clone)]
pub struct Instance {
    pub params: Params,
    pub user: RunAs,
    /// Major version from `PG_VERSION`.
    pub major: u32,
    pub bindir: PathBuf,
    /// The open connection, shared by the probes of one action: each new connection costs
    /// the server a backend start, the largest part of a monitor.
    connection: RefCell<Option<Rc<Session>>>,
    /// The WAL receiver's status the last probe read along with the role.
    receiver: RefCell<Option<Option<String>>>,
}

/// What the local checks found missing; the probe turns these into "not running".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// No system user: PostgreSQL is not installed here.
    User,
    Pgdata,
    Datadir,
    PgVersion,
    Binaries,
}

impl Instance {
    /// The local checks of validate-all level 10 that need no child process: the user, the
    /// directories, `PG_VERSION`, and the binaries of that major version.
    pub fn resolve(params: &Params) -> std::result::Result<Instance, (Option<Absence>, Error)> {
        let user = RunAs::lookup(&params.system_user).map_err(|e| {
            let absence =
                matches!(e, crate::process::UserError::Unknown(_)).then_some(Absence::User);
            (absence, Error::from(e))
        })?;
        if !params.pgdata.is_dir() {
            return Err((
                Some(Absence::Pgdata),
                Error::LocalSetup(format!(
                    "PGDATA \"{}\" does not exist",
                    params.pgdata.display()
                )),
            ));
        }
        if !params.datadir.is_dir() {
            return Err((
                Some(Absence::Datadir),
                Error::LocalSetup(format!(
                    "data_directory \"{}\" does not exist",
                    params.datadir.display()
                )),
            ));
        }
        let version_file = params.datadir.join("PG_VERSION");
        let version = read_path_string(&version_file, SMALL_FILE).map_err(|e| {
            (
                Some(Absence::PgVersion),
                Error::LocalSetup(format!("could not read {}: {e}", version_file.display())),
            )
        })?;
        let major = parse_major(&version).ok_or_else(|| {
            (
                None,
                Error::LocalSetup(format!(
                    "{} holds {:?}, not a PostgreSQL major version",
                    version_file.display(),
                    version.trim()
                )),
            )
        })?;
        if major < MIN_MAJOR {
            return Err((
                None,
                Error::NotInstalled(format!(
                    "PostgreSQL {} in \"{}\" is not supported: pgha needs {MIN_MAJOR} or newer",
                    version.trim(),
                    params.datadir.display()
                )),
            ));
        }
        let bindir = match &params.bindir {
            Some(dir) => dir.clone(),
            None => default_bindir(major),
        };
        let missing: Vec<String> = ["pg_ctl", "postgres"]
            .iter()
            .map(|name| bindir.join(name))
            .filter(|path| !is_executable(path))
            .map(|path| path.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err((
                Some(Absence::Binaries),
                Error::LocalSetup(format!(
                    "missing PostgreSQL {major} binaries: {} (set bindir)",
                    missing.join(", ")
                )),
            ));
        }
        Ok(Instance {
            params: params.clone(),
            user,
            major,
            bindir,
            connection: RefCell::default(),
            receiver: RefCell::default(),
        })
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    pub fn datadir(&self) -> &Path {
        &self.params.datadir
    }

    pub fn control(&self) -> std::result::Result<ControlFile, control::ControlError> {
        control::read(self.datadir())
    }

    pub fn postmaster(&self) -> Postmaster {
        Postmaster::probe(self.datadir())
    }

    pub fn target(&self) -> Target {
        Target {
            host: self.params.pghost.clone(),
            port: self.params.pgport,
            user: self.params.system_user.clone(),
            dbname: "postgres".into(),
        }
    }

    /// A connection to the instance: the one already open, else a new one.
    pub fn connect(&self, deadline: &Deadline) -> std::result::Result<Rc<Session>, SqlError> {
        if let Some(session) = self.connection.borrow().as_ref().filter(|s| !s.is_closed()) {
            return Ok(Rc::clone(session));
        }
        let session = Rc::new(Session::connect(
            &self.target(),
            Some(&self.user),
            deadline,
        )?);
        self.connection.replace(Some(Rc::clone(&session)));
        Ok(session)
    }

    /// Forgets the open connection (the server restarted, or a query failed on it).
    fn disconnect(&self) {
        self.connection.replace(None);
    }

    /// One SQL look at the instance.
    pub fn probe_sql(&self, deadline: &Deadline) -> SqlProbe {
        let session = match self.connect(deadline) {
            Ok(s) => s,
            Err(SqlError::NoServer { .. }) => return SqlProbe::NoServer,
            Err(SqlError::Rejected { message, .. }) => return SqlProbe::Rejecting(message),
            Err(e @ SqlError::Impostor { .. }) => {
                log::warn!("{e}");
                return SqlProbe::Impostor(e.to_string());
            }
            Err(e) => return SqlProbe::Failed(e.to_string()),
        };
        match session.recovery_status(deadline) {
            Ok((true, receiver)) => {
                self.receiver.replace(Some(receiver));
                SqlProbe::Standby
            }
            Ok((false, _)) => SqlProbe::Primary,
            Err(e) => {
                self.disconnect();
                SqlProbe::Failed(e.to_string())
            }
        }
    }

    /// One observation of the instance's state.
    pub fn observe(&self, deadline: &Deadline) -> Result<InstanceState> {
        let sql = self.probe_sql(deadline);
        match sql {
            SqlProbe::Primary => return Ok(InstanceState::Primary),
            SqlProbe::Standby => return Ok(InstanceState::Standby),
            SqlProbe::Rejecting(_)
            | SqlProbe::NoServer
            | SqlProbe::Failed(_)
            | SqlProbe::Impostor(_) => {}
        }
        let postmaster = self.postmaster();
        let control = self.control()?;
        Ok(state::decide_offline(
            &sql,
            postmaster,
            control.state,
            self.has_backup_label(),
        ))
    }

    /// Whether the data directory holds a `backup_label`: restored from a base backup or
    /// rewound, and not started since (the server renames it once replay is under way).
    pub fn has_backup_label(&self) -> bool {
        self.datadir().join("backup_label").exists()
    }

    /// Observes until the state is not transitional, within the deadline.
    pub fn settled_state(&self, deadline: &Deadline) -> Result<InstanceState> {
        let mut last = String::new();
        let found = deadline.poll("the instance to settle", POLL, || {
            match self.observe(deadline)? {
                InstanceState::Transitional(why) => {
                    log::debug!("waiting: {why}");
                    last = why;
                    Ok(None)
                }
                settled => Ok(Some(settled)),
            }
        });
        match found {
            Err(Error::Expired(Expired { waited, .. })) => Err(Error::Expired(Expired {
                what: format!(
                    "instance \"{}\" to settle (last seen: {last})",
                    self.datadir().display()
                ),
                waited,
            })),
            other => other,
        }
    }

    /// Where this standby's WAL ends, for the election: the greatest of what it received and
    /// what it replayed (after a restart the received position is only the start of the
    /// segment streaming resumes from: PAF #225/#228), on the latest timeline it is on.
    pub fn wal_position(&self, deadline: &Deadline) -> Result<crate::election::Position> {
        self.position(deadline, TimelineCheck::BestEffort)
    }

    /// How far this standby replayed, on the timeline it replayed it on, for a judgement that
    /// restarts the node when that timeline is an old one (a divergence): the replay
    /// position alone (not what was received), and a timeline taken from pg_control only
    /// once a restartpoint brought its minimum recovery point up to that position. Fails
    /// rather than give a timeline that may lag.
    pub fn replayed_position(&self, deadline: &Deadline) -> Result<crate::election::Position> {
        self.position(deadline, TimelineCheck::Exact)
    }

    fn position(
        &self,
        deadline: &Deadline,
        check: TimelineCheck,
    ) -> Result<crate::election::Position> {
        let session = self.connect(deadline)?;
        let seen = WalSeen::query(&session, deadline)?;
        let known = |control: &ControlFile| {
            [
                control.checkpoint_timeline,
                control.min_recovery_point_timeline,
            ]
            .into_iter()
            .chain(seen.received_tli)
            .max()
            .unwrap_or(control.checkpoint_timeline)
        };
        let mut control = self.control()?;
        // pg_control's timelines lag behind replay until a restartpoint: when pg_wal holds
        // the history of a later timeline than they show (a standby that followed a
        // promotion, with no WAL receiver now), a restartpoint brings them up to what was
        // replayed, or the node could lose the election to one that is not ahead. PAF runs
        // it every time; a restartpoint writes out every dirty buffer, so only when needed.
        if self
            .newest_history()
            .is_some_and(|newest| newest > known(&control))
        {
            control = match check {
                TimelineCheck::BestEffort => {
                    if let Err(e) = session.execute("CHECKPOINT", deadline) {
                        log::warn!("CHECKPOINT before reading the WAL position failed: {e}")
                    }
                    self.control()?
                }
                TimelineCheck::Exact => self.control_covering(&session, seen.replayed, deadline)?,
            };
        }
        let timeline = known(&control);
        let from_control = control.min_recovery_point.max(control.checkpoint);
        if let TimelineCheck::Exact = check {
            let lsn = seen.replayed.unwrap_or(from_control);
            return Ok(crate::election::Position { timeline, lsn });
        }
        let mut lsn = seen.received.max(seen.replayed).unwrap_or(from_control);
        if seen.received_tli.is_none() {
            // No WAL receiver: the node may still be replaying WAL of its own (a primary that
            // crashed and was started as a standby, after a whole-cluster power cut). Its
            // true position is where that WAL ends, not how far replay got.
            lsn = lsn.max(self.end_of_local_wal(timeline, lsn, &control, deadline));
        }
        Ok(crate::election::Position { timeline, lsn })
    }

    /// pg_control once a restartpoint brought its minimum recovery point up to `replayed`,
    /// so that its timeline is that of the replayed WAL ([`covering`]).
    fn control_covering(
        &self,
        session: &Session,
        replayed: Option<Lsn>,
        deadline: &Deadline,
    ) -> Result<ControlFile> {
        covering(
            replayed,
            || Ok(session.execute("CHECKPOINT", deadline)?),
            || Ok(self.control()?),
            |control| control.min_recovery_point,
        )
    }

    /// Where the valid WAL in pg_wal that continues from `from` ends (`from` itself when
    /// none does), read natively within a quarter of the time left.
    fn end_of_local_wal(
        &self,
        timeline: TimelineId,
        from: Lsn,
        control: &ControlFile,
        deadline: &Deadline,
    ) -> Lsn {
        let budget = deadline.at_most(deadline.remaining() / 4);
        wal::end_of_valid_wal(
            &self.datadir().join("pg_wal"),
            timeline,
            from,
            control.wal_segment_size,
            &budget,
        )
        .unwrap_or(from)
    }

    /// The latest timeline whose history file is in pg_wal.
    fn newest_history(&self) -> Option<TimelineId> {
        std::fs::read_dir(self.datadir().join("pg_wal"))
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let stem = name.to_str()?.strip_suffix(".history")?;
                TimelineId::from_str_radix(stem, 16).ok()
            })
            .max()
    }

    /// The WAL receiver's status (`streaming`, `waiting`, …), `None` when there is none: as
    /// the last probe saw it, else asked.
    pub fn wal_receiver(&self, deadline: &Deadline) -> Result<Option<String>> {
        if let Some(seen) = self.receiver.take() {
            return Ok(seen);
        }
        let session = self.connect(deadline)?;
        Ok(session.recovery_status(deadline)?.1)
    }

    /// A `pg_ctl` command for this data directory, run as the system user.
    /// `pg_ctl` waiting until the operation is done, within `deadline`; without one, it
    /// returns at once (the caller waits, at a finer step than pg_ctl's 100 ms).
    fn pg_ctl(&self, wait: Option<&Deadline>) -> Cmd {
        let cmd = Cmd::new(self.bin("pg_ctl"))
            .run_as(&self.user)
            .arg("--pgdata")
            .arg(&self.params.pgdata);
        match wait {
            // pg_ctl's own wait must end before ours, so that it reports what it saw.
            Some(deadline) => {
                let secs = deadline.remaining().as_secs().max(1);
                cmd.arg("-w").arg("--timeout").arg(secs.to_string())
            }
            None => cmd.arg("-W"),
        }
    }

    /// The data directory, opened for changes: it must belong to the system user.
    pub fn data_dir_handle(&self) -> Result<Dir> {
        Dir::open_owned(self.datadir(), self.user.owner())
            .map_err(|e| Error::io(format!("could not open {}", self.datadir().display()), e))
    }

    /// Writes `standby.signal`, so the next start is a standby's (a new file: a link planted
    /// under that name is replaced, never followed).
    pub fn write_standby_signal(&self) -> Result<()> {
        self.data_dir_handle()?
            .write_file("standby.signal", b"", 0o600, self.user.owner())
            .map_err(|e| {
                let path = self.datadir().join("standby.signal");
                Error::io(format!("could not write {}", path.display()), e)
            })
    }

    /// `pg_ctl start`, until the server is up.
    pub fn pg_ctl_start(&self, deadline: &Deadline) -> Result<()> {
        self.disconnect();
        let mut cmd = self.pg_ctl(Some(deadline)).arg("start");
        if !self.params.start_opts.is_empty() {
            // pg_ctl pastes -o into a /bin/sh command line: the words go re-quoted.
            cmd = cmd.arg("-o").arg(self.params.start_opts.for_shell());
        }
        // pg_ctl looks every 100 ms; look every 10 ms as well, and stop waiting for pg_ctl
        // once the server is up (pg_ctl still reports a failed start).
        let launched = std::time::SystemTime::now();
        let datadir = self.datadir().to_owned();
        // The server inherits pg_ctl's stdout when no log file is given.
        cmd.discard_stdout()
            .run_until(deadline, Duration::from_millis(10), || {
                Postmaster::is_up(&datadir, launched)
            })?;
        Ok(())
    }

    /// `pg_ctl stop -m fast`, then waits until the postmaster is gone.
    pub fn pg_ctl_stop(&self, deadline: &Deadline) -> Result<()> {
        self.disconnect();
        self.pg_ctl(None)
            .args(["--mode", "fast", "stop"])
            .run(deadline)?;
        deadline.poll("the postmaster to exit", Duration::from_millis(10), || {
            Ok((!self.postmaster().is_running()).then_some(()))
        })
    }

    /// Asks the server to end recovery (`pg_promote(wait => false)`: what `pg_ctl promote`
    /// does, without a child process and without its 100 ms polling); the caller waits.
    pub fn request_promotion(&self, deadline: &Deadline) -> Result<()> {
        const SQL: &str = "SELECT pg_promote(wait => false)";
        let rows = self.connect(deadline)?.text_rows(SQL, deadline)?;
        match rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            .as_deref()
        {
            Some("t") => Ok(()),
            other => Err(Error::State(format!(
                "the server did not accept the promotion request ({SQL} returned {other:?})"
            ))),
        }
    }

    /// A setting as the server would read it at start (`postgres -C`), as the system user.
    pub fn configured(&self, name: &str, deadline: &Deadline) -> Result<String> {
        let out = Cmd::new(self.bin("postgres"))
            .run_as(&self.user)
            .arg("-C")
            .arg(name)
            .arg("-D")
            .arg(&self.params.pgdata)
            .args(self.params.start_opts.words())
            .run(deadline)?;
        Ok(out.text.trim_end_matches('\n').to_owned())
    }
}

/// `PG_VERSION` holds `15`, or `9.6` for old majors.
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_major(text: &str) -> Option<u32> {
    let text = text.trim();
    let first = text.split('.').next()?;
    first.parse().ok()
}

/// Debian and PGDG keep each major's binaries apart; anything else is in /usr/bin.
fn default_bindir(major: u32) -> PathBuf {
    [
        format!("/usr/lib/postgresql/{major}/bin"),
        format!("/usr/pgsql-{major}/bin"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|dir| is_executable(&dir.join("pg_ctl")))
    .unwrap_or_else(|| PathBuf::from("/usr/bin"))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks for restartpoints until pg_control, as `read` gives it, has a minimum recovery point
/// at or past `replayed` (its timeline is then that of the replayed WAL), at most
/// [`RESTARTPOINT_TRIES`] times. A restartpoint raises that point to replay only when a page
/// it writes out is newer than it; otherwise to the end of its checkpoint record, which may
/// lag replay. The next one, with no new checkpoint record replayed in between, is skipped
/// ("already performed"), and a skipped one moves the point to where replay is. When a new
/// checkpoint record was replayed in between, it is a full restartpoint again: `Err`, and
/// the caller makes no judgement.
fn covering<C>(
    replayed: Option<Lsn>,
    mut restartpoint: impl FnMut() -> Result<()>,
    mut read: impl FnMut() -> Result<C>,
    min_recovery_point: impl Fn(&C) -> Lsn,
) -> Result<C> {
    let mut lagging = Lsn::default();
    for _ in 0..RESTARTPOINT_TRIES {
        restartpoint()?;
        let control = read()?;
        lagging = min_recovery_point(&control);
        if replayed.is_none_or(|lsn| lagging >= lsn) {
            return Ok(control);
        }
    }
    Err(Error::Internal(format!(
        "pg_control's minimum recovery point ({lagging}) still lags the replayed WAL ({}) \
         after {RESTARTPOINT_TRIES} restartpoints: its timeline may be an old one",
        replayed.unwrap_or_default()
    )))
}

/// What a standby's WAL receiver and startup process report of its WAL.
struct WalSeen {
    received: Option<Lsn>,
    replayed: Option<Lsn>,
    /// The timeline of the last WAL received; none without a WAL receiver.
    received_tli: Option<TimelineId>,
}

impl WalSeen {
    fn query(session: &Session, deadline: &Deadline) -> Result<WalSeen> {
        const SQL: &str = "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), \
             (SELECT received_tli FROM pg_stat_wal_receiver)::bigint";
        let rows = session.query(SQL, &[], deadline)?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal(format!("{SQL} returned no row")))?;
        let lsn = |i: usize| -> Result<Option<Lsn>> {
            row.try_get::<_, Option<tokio_postgres::types::PgLsn>>(i)
                .map(|lsn| lsn.map(Lsn::from))
                .map_err(|e| Error::Internal(format!("{SQL}: {e}")))
        };
        let received_tli: Option<i64> = row
            .try_get(2)
            .map_err(|e| Error::Internal(format!("{SQL}: {e}")))?;
        Ok(WalSeen {
            received: lsn(0)?,
            replayed: lsn(1)?,
            received_tli: received_tli.and_then(|t| u32::try_from(t).ok()),
        })
    }
}

/// How sure [`Instance::wal_position`] must be of the timeline it reads from pg_control.
#[derive(Clone, Copy)]
enum TimelineCheck {
    /// The election's view: a lagging timeline only costs a worse rank.
    BestEffort,
    /// A divergence judgement: a lagging timeline would restart a healthy node.
    Exact,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review of scenario 31's fix: pg_control's timeline is trusted only once its minimum
    /// recovery point covers the replayed WAL, after at most two restartpoints.
    #[test]
    fn pg_control_is_trusted_once_a_restartpoint_covers_replay() {
        // (replayed, what pg_control shows after each restartpoint, restartpoints asked,
        // the point trusted)
        type Case = (Option<u64>, &'static [u64], usize, Option<u64>);
        let cases: &[Case] = &[
            (Some(0x500), &[0x500], 1, Some(0x500)),
            (Some(0x500), &[0x600], 1, Some(0x600)),
            (Some(0x500), &[0x400, 0x500], 2, Some(0x500)),
            (Some(0x500), &[0x400, 0x480], 2, None),
            (None, &[0x100], 1, Some(0x100)),
        ];
        for &(replayed, shown, asked, trusted) in cases {
            let mut restartpoints = 0;
            let mut reads = shown.iter();
            let got = covering(
                replayed.map(Lsn),
                || {
                    restartpoints += 1;
                    Ok(())
                },
                || {
                    Ok(Lsn(*reads
                        .next()
                        .expect("no more restartpoints than shown")))
                },
                |lsn| *lsn,
            );
            assert_eq!(got.ok().map(|l| l.0), trusted, "{replayed:?} {shown:?}");
            assert_eq!(restartpoints, asked, "{replayed:?} {shown:?}");
        }
    }

    #[test]
    fn a_failed_restartpoint_is_no_judgement() {
        let failed = covering(
            Some(Lsn(0x500)),
            || Err(Error::Internal("CHECKPOINT: canceled".into())),
            || -> Result<Lsn> { panic!("pg_control read after a failed CHECKPOINT") },
            |lsn| *lsn,
        );
        assert!(failed.is_err());
    }

    #[test]
    fn major_versions() {
        assert_eq!(parse_major("15\n"), Some(15));
        assert_eq!(parse_major("9.6\n"), Some(9));
        assert_eq!(parse_major("x"), None);
    }
}
