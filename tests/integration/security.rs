//! Issue 11, the security review: the postgres account (every database superuser can run
//! code as it) plants links, FIFOs and huge files where root works, and the agent dies at
//! any instant. Each finding is reproduced against real PostgreSQL (any major) and shown to
//! fail.
//! (Findings 3, 4, 7 and 9's own tests sit with the behaviour they guard: `validate.rs`,
//! `rewind.rs`, `monitor.rs`.)

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgha::rewind::{self, marker, Outcome};

use crate::agent::agent;
use crate::pg::{
    as_postgres, os_user, plain_lab, primary_and_stopped_standby, reclone_lab, run,
    stopped_primary_and_standby, Lab,
};
use crate::rewind::{assert_back_as_standby, conninfo, pgha_rewind_with, rejoin, settings};

/// A root-owned file in a root-only folder: what postgres must never reach through pgha.
fn root_victim() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shadow");
    fs::write(&file, "root:secret\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    (dir, file)
}

#[track_caller]
fn assert_untouched(victim: &Path) {
    let meta = fs::metadata(victim).unwrap();
    assert_eq!(fs::read_to_string(victim).unwrap(), "root:secret\n");
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o640), "{victim:?}");
}

/// What postgres does: a symbolic link at `link` to `target`.
fn plant_link(target: &Path, link: &Path) {
    let _ = fs::remove_file(link);
    run(as_postgres("ln").arg("-s").arg(target).arg(link));
}

/// Finding 1: postgres linked `PGDATA/standby.signal` to a root-owned file, and root's
/// start emptied it and made it postgres's, mode 0600.
#[test]
fn finding_1_symlinked_standby_signal_does_not_hand_a_root_file_to_postgres() {
    let (_primary, standby) = primary_and_stopped_standby();
    let (_dir, victim) = root_victim();
    let signal = standby.data().join("standby.signal");
    plant_link(&victim, &signal);
    agent().on(&standby).action("start").expect(0);
    assert_untouched(&victim);
    let written = fs::symlink_metadata(&signal).unwrap();
    assert!(written.is_file(), "standby.signal is still a link");
    assert_eq!(written.uid(), os_user().uid);
    assert!(standby.in_recovery());
}

/// Finding 2: root created the kept-WAL folder through a link postgres planted (a
/// root-owned folder became postgres's), and wrote the marker through a planted temporary
/// name. Finding 9: kept folders followed the umask and stayed root's.
#[test]
fn finding_2_planted_keep_dir_and_marker_links_are_not_followed() {
    let lab = plain_lab();
    let (_dir, victim) = root_victim();
    let foreign = tempfile::tempdir().unwrap();
    fs::set_permissions(foreign.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let parent = lab.pg1.data().parent().unwrap().to_owned();
    let keep_link = parent.join("pgha-rewind");
    plant_link(foreign.path(), &keep_link);
    let marker = marker::path(&lab.pg1.data());
    let marker_name = marker.file_name().unwrap().to_string_lossy().into_owned();
    for tmp in [
        PathBuf::from(format!("{}.tmp", marker.display())),
        parent.join(format!(".{marker_name}.pgha-tmp")),
    ] {
        plant_link(&victim, &tmp);
    }
    let before = lab.pg1.snapshot();
    let err = rewind::rejoin(
        &crate::rewind::instance(&lab.pg1, crate::pg::bindir()),
        &crate::rewind::source(&lab.pg2),
        "pg1",
        &settings(&lab.pg2),
        &crate::rewind::deadline(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("pgha-rewind"), "{err}");
    assert!(!err.target_modified(), "{err}");
    before.assert_same(&lab.pg1.snapshot(), "a refused keep dir");
    let foreign_meta = fs::metadata(foreign.path()).unwrap();
    assert_eq!(
        (foreign_meta.uid(), foreign_meta.mode() & 0o777),
        (0, 0o755)
    );
    assert_eq!(fs::read_dir(foreign.path()).unwrap().count(), 0);

    fs::remove_file(&keep_link).unwrap();
    let report = rejoin(&lab, &settings(&lab.pg2));
    assert_eq!(report.outcome, Outcome::Rewound);
    assert_untouched(&victim);
    let run_dir = report.saved_in.clone().unwrap();
    for kept in [
        run_dir.clone(),
        run_dir.join("pg_wal"),
        run_dir.join("config"),
    ] {
        let meta = fs::metadata(&kept).unwrap();
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777),
            (os_user().uid, 0o700),
            "{kept:?}"
        );
    }
    let keep = fs::metadata(&keep_link).unwrap();
    assert_eq!((keep.uid(), keep.mode() & 0o777), (0, 0o700));
    assert_back_as_standby(&lab);
}

/// `pgha rewind` of pg1 from pg2 with `engine`, optionally dying at a failpoint.
fn pgha_rewind_pg1(lab: &Lab, failpoint: Option<&str>, engine: &str) -> (Option<i32>, String) {
    let source = format!("--source-server={}", conninfo(&lab.pg2));
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let env: Vec<(&str, &str)> = failpoint
        .map(|f| ("PGHA_FAILPOINT", f))
        .into_iter()
        .collect();
    let (code, text, _) = pgha_rewind_with(
        &lab.pg1,
        crate::pg::bindir(),
        &[
            &source, "-R", "--node", "pg1", &upstream, "--engine", engine,
        ],
        &env,
    );
    (code, text)
}

/// The directories next to pg1's data directory that hold t7, the old primary's own table:
/// it must be somewhere at every instant (the data directory, the re-clone's name, a
/// replaced directory set aside, or the run's folder).
fn copies_of_t7(lab: &Lab) -> Vec<PathBuf> {
    let data = lab.pg1.data();
    let parent = data.parent().unwrap();
    let name = data.file_name().unwrap().to_string_lossy().into_owned();
    let mut candidates: Vec<PathBuf> = fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&name))
        .collect();
    if let Ok(runs) = fs::read_dir(parent.join("pgha-rewind")) {
        candidates.extend(runs.filter_map(|e| Some(e.ok()?.path().join("datadir"))));
    }
    candidates
        .into_iter()
        .filter(|dir| {
            fs::read_dir(dir.join("base")).is_ok_and(|dbs| {
                dbs.filter_map(|d| d.ok())
                    .any(|d| d.path().join(&lab.t7_filenode).is_file())
            })
        })
        .collect()
}

/// Finding 6: the agent killed between two steps of a re-clone's swap left no data
/// directory, or removed the old one. At every failpoint: the data directory is whole,
/// the old primary's data is still somewhere, and the next run brings pg1 back.
fn killed_during_a_reclone(point: &str) {
    let lab = reclone_lab();
    let (code, text) = pgha_rewind_pg1(&lab, Some(point), "pg_rewind");
    assert_eq!(code, None, "pgha did not die at {point}:\n{text}");
    assert!(
        lab.pg1.data().join("PG_VERSION").is_file(),
        "no data directory after a kill at {point}"
    );
    assert!(
        !copies_of_t7(&lab).is_empty(),
        "the old primary's data is gone after a kill at {point}"
    );
    let (code, text) = pgha_rewind_pg1(&lab, None, "pg_rewind");
    assert_eq!(code, Some(0), "the repair after {point}:\n{text}");
    assert!(text.contains("re-cloned"), "{text}");
    assert!(
        !copies_of_t7(&lab).is_empty(),
        "the repair lost the old data"
    );
    assert_back_as_standby(&lab);
}

macro_rules! killed_during_a_reclone {
    ($($test:ident: $point:literal,)*) => {$(
        #[test]
        fn $test() {
            killed_during_a_reclone($point);
        }
    )*};
}

killed_during_a_reclone! {
    finding_6_killed_after_the_copy: "reclone-copied",
    finding_6_killed_after_the_clone_is_configured: "reclone-configured",
    finding_6_killed_after_the_marker: "reclone-marked",
    finding_6_killed_after_the_old_directory_is_tagged: "reclone-tagged",
    finding_6_killed_after_the_exchange: "reclone-exchanged",
    finding_6_killed_after_the_old_directory_is_set_aside: "reclone-set-aside",
}

/// Finding 6: the marker lives outside PGDATA, so a hand-run `pg_ctl start` ignored it and
/// started a half-rewound directory. Killed at each step after the marker (`engine` rewinding),
/// the data directory carries a guard the server itself obeys; the next run repairs it, and
/// pg1 then reads what pg2 has.
fn killed_during_a_rewind(point: &str, engine: &str) {
    let lab = plain_lab();
    let (code, text) = pgha_rewind_pg1(&lab, Some(point), engine);
    assert_eq!(code, None, "pgha did not die at {point}:\n{text}");
    assert!(rewind::is_marked(&lab.pg1.data()));
    assert!(rewind::ensure_startable(&lab.pg1.data()).is_err());
    let by_hand = as_postgres(crate::pg::bin("pg_ctl"))
        .arg("-D")
        .arg(lab.pg1.data())
        .args(["-w", "-t", "20", "start"])
        .output()
        .unwrap();
    // Not pg_ctl's exit status: from 18 on, a postmaster that exits at once from a data
    // directory whose pg_control says "shut down in recovery" (the native engine writes it)
    // is reported as "server shut down because of recovery target settings", exit 0.
    assert!(
        !lab.pg1.is_running(),
        "pg_ctl started a guarded directory:\n{}",
        String::from_utf8_lossy(&by_hand.stdout)
    );
    let log = fs::read_to_string(lab.pg1.root().join("server.log")).unwrap_or_default()
        + &String::from_utf8_lossy(&by_hand.stdout)
        + &String::from_utf8_lossy(&by_hand.stderr);
    assert!(log.contains("invalid permissions"), "{log}");
    let (code, text) = pgha_rewind_pg1(&lab, None, engine);
    assert_eq!(code, Some(0), "the repair after {point}:\n{text}");
    assert!(
        text.contains("re-cloned"),
        "the repair after {point}:\n{text}"
    );
    assert_back_as_standby(&lab);
    let end = lab.pg2.psql("SELECT pg_current_wal_lsn()");
    lab.pg1.wait_replayed("pg1 replays all pg2 has", &end);
    let rows = "SELECT count(*), sum(c1) FROM t6 UNION ALL SELECT count(*), 0 FROM t8";
    assert_eq!(lab.pg1.psql(rows), lab.pg2.psql(rows), "after {point}");
}

macro_rules! killed_during_a_rewind {
    ($($test:ident: $point:literal by $engine:literal,)*) => {$(
        #[test]
        fn $test() {
            killed_during_a_rewind($point, $engine);
        }
    )*};
}

killed_during_a_rewind! {
    finding_6_guard_stops_pg_ctl_after_a_kill_before_pg_rewind: "rewind-marked" by "pg_rewind",
    finding_6_guard_stops_pg_ctl_after_a_kill_before_the_standby_settings:
        "rewind-restored" by "pg_rewind",
    finding_6_guard_stops_pg_ctl_after_a_kill_before_the_marker_goes:
        "rewind-configured" by "pg_rewind",
    native_engine_killed_after_the_marker: "rewind-marked" by "native",
    native_engine_killed_mid_apply: "native-mid-apply" by "native",
    native_engine_killed_before_pg_control: "native-before-control" by "native",
    native_engine_killed_before_the_standby_settings: "rewind-restored" by "native",
}

/// Finding 8: unbounded and blocking reads, as root, of files postgres controls: a link to
/// /dev/zero grew the monitor past 265 MB; a FIFO blocked past the operation's deadline.
#[test]
fn finding_8_dev_zero_and_a_fifo_as_postmaster_pid_and_pg_version() {
    let (_primary, standby) = stopped_primary_and_standby();
    let version = fs::read(standby.data().join("PG_VERSION")).unwrap();
    for file in ["postmaster.pid", "PG_VERSION"] {
        let path = standby.data().join(file);
        for kind in ["/dev/zero", "fifo"] {
            let _ = fs::remove_file(&path);
            if kind == "fifo" {
                run(as_postgres("mkfifo").arg(&path));
            } else {
                plant_link(Path::new(kind), &path);
            }
            let run = agent()
                .on(&standby)
                .action("monitor")
                .recurring()
                .timeout_ms(10_000)
                .run();
            assert!(
                run.elapsed < Duration::from_secs(5),
                "{file} as {kind}:\n{}",
                run.describe()
            );
            assert!(
                matches!(run.code, Some(1 | 2 | 5 | 7)),
                "{file} as {kind}:\n{}",
                run.describe()
            );
            fs::remove_file(&path).unwrap();
        }
    }
    fs::write(standby.data().join("PG_VERSION"), version).unwrap();
    crate::pg::chown_postgres(&standby.data().join("PG_VERSION"));
    agent().on(&standby).action("monitor").recurring().expect(7);
}
