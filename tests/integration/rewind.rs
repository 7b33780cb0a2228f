//! The rewind module against real PostgreSQL pairs (any major: `pg::bindir`), no cluster:
//! the replication course's pg_rewind lab (1.6.4/1.7.4) and the traps around it.
//!
//! Every test builds the lab (`pg::lab`, the fixture of a diverged primary): pg1 is the primary, pg2 a streaming standby made with
//! pg_basebackup; pg2 is promoted; pg1 keeps writing (`t7`, on the old timeline: the
//! transactions a rewind discards) while pg2 writes `t8`. Each node has a configuration of its
//! own (`work_mem` by ALTER SYSTEM, a line in pg_hba.conf) that must survive. Then pg1 is
//! brought back by `pgha::rewind` (the library, as the actions call it; `pgha rewind` for
//! the command line) and must stream from pg2 with `t8` and without `t7`.

mod changes;
mod native;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pgha::deadline::Deadline;
use pgha::instance::Instance;
use pgha::ocf::params::Params;
use pgha::rewind::runner::{self, RewindOptions, RewindSource};
use pgha::rewind::{
    self, Decision, Engine, Fallback, Outcome, Plan, Refusal, RewindSettings, Source,
    SourceConninfo,
};

use crate::agent::{agent, BIN};
use crate::pg::{
    as_postgres, bin, bindir, chown_postgres, lab, major, plain_lab, reclone_lab,
    recycle_fork_segment, run, stopped_primary_and_standby, without_wal_retention, Certs, Lab, Pg,
    Stop, WAIT,
};

pub(crate) fn instance(pg: &Pg, bindir: &Path) -> Instance {
    let values = [
        ("pgdata", pg.data().display().to_string()),
        ("pghost", pg.sock().display().to_string()),
        ("pgport", pg.port.to_string()),
        ("bindir", bindir.display().to_string()),
    ];
    let params = Params::from_lookup(|name| {
        values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    Instance::resolve(&params).map_err(|(_, e)| e).unwrap()
}

pub(crate) fn conninfo(pg: &Pg) -> String {
    format!("host=127.0.0.1 port={} user=postgres", pg.port)
}

pub(crate) fn source(pg: &Pg) -> Source {
    Source::Server(SourceConninfo::new(conninfo(pg)))
}

/// The agent's settings, with pg2 as the upstream (the fixture's own primary_conninfo, in
/// instance.conf, points pg1 at itself).
pub(crate) fn settings(upstream: &Pg) -> RewindSettings {
    RewindSettings {
        primary_conninfo: Some(conninfo(upstream)),
        ..RewindSettings::default()
    }
}

pub(crate) fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(90))
}

/// `rewind::check` of pg1 against pg2 with the agent's settings, which must succeed.
#[track_caller]
pub(crate) fn check_lab(lab: &Lab) -> rewind::Check {
    rewind::check(
        &instance(&lab.pg1, bindir()),
        &source(&lab.pg2),
        &settings(&lab.pg2),
        &deadline(),
    )
    .unwrap()
}

pub(crate) fn rejoin(lab: &Lab, settings: &RewindSettings) -> rewind::RejoinReport {
    rejoin_with(lab, settings, bindir())
}

/// An LSN's text (`X/Y`) as a number.
pub(crate) fn lsn(text: &str) -> u64 {
    text.parse::<pgha::lsn::Lsn>().expect("an LSN").0
}

/// The test clusters' WAL segment size (`initdb --wal-segsize=1`, `pg.rs`).
pub(crate) const WAL_SEGMENT: u64 = 1 << 20;

/// The WAL position where the segment file `path` (`pg_wal/TTTTTTTTXXXXXXXXYYYYYYYY`)
/// starts; `None` for any other file.
pub(crate) fn wal_segment_start(path: &str) -> Option<u64> {
    let name = path.strip_prefix("pg_wal/")?;
    let hex = |range: std::ops::Range<usize>| u64::from_str_radix(name.get(range)?, 16).ok();
    if name.len() != 24 {
        return None;
    }
    let segno = hex(8..16)? * (0x1_0000_0000 / WAL_SEGMENT) + hex(16..24)?;
    Some(segno * WAL_SEGMENT)
}

fn rejoin_with(lab: &Lab, settings: &RewindSettings, bindir: &Path) -> rewind::RejoinReport {
    let started = Instant::now();
    let report = rewind::rejoin(
        &instance(&lab.pg1, bindir),
        &source(&lab.pg2),
        "pg1",
        settings,
        &deadline(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "rejoin failed: {e}\n--- pg1 server log\n{}",
            fs::read_to_string(lab.pg1.root().join("server.log")).unwrap_or_default()
        )
    });
    // What the command line does (the agent's start waits to see the standby stream).
    report.settle_replaced(false);
    eprintln!(
        "rejoin: {:?} ({}) in {:?}",
        report.outcome,
        report.plan,
        started.elapsed()
    );
    report
}

/// pg1 starts as a standby of pg2, streams, has t8 and not t7, and kept its own settings.
#[track_caller]
pub(crate) fn assert_back_as_standby(lab: &Lab) {
    assert_config_kept(&lab.pg1);
    assert_streams_without_t7(lab);
    assert_eq!(lab.pg1.psql("SELECT count(*) FROM t8"), "1");
    assert_eq!(lab.pg1.psql("SHOW work_mem"), "7MB");
}

/// pg1, unmarked, starts as a standby, streams from pg2, has t8 and not t7.
#[track_caller]
fn assert_streams_without_t7(lab: &Lab) {
    let (pg1, pg2) = (&lab.pg1, &lab.pg2);
    assert!(!rewind::is_marked(&pg1.data()), "the marker is still there");
    pg1.start();
    assert!(pg1.in_recovery(), "pg1 is not a standby");
    pg2.wait_streaming("pg1");
    pg1.wait_for("t8 on pg1", WAIT, || {
        pg1.psql("SELECT to_regclass('t8') IS NOT NULL") == "t"
    });
    assert_eq!(
        pg1.psql("SELECT to_regclass('t7') IS NULL"),
        "t",
        "t7 survived"
    );
}

/// The rejoin kept t7's WAL from the fork point on, and pg1 is back as a standby.
#[track_caller]
fn assert_back_keeping_t7(lab: &Lab, report: &rewind::RejoinReport) {
    let Decision::Rewind { fork_point, .. } = report.decision else {
        panic!("{:?}", report.decision);
    };
    assert_t7_kept(lab, report.saved_in.as_ref().unwrap(), fork_point);
    assert_back_as_standby(lab);
}

#[track_caller]
fn assert_config_kept(pg1: &Pg) {
    let auto = fs::read_to_string(pg1.data().join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("work_mem = '7MB'"), "{auto}");
    assert!(!auto.contains("9MB"), "{auto}");
    assert!(auto.contains("application_name=pg1"), "{auto}");
    let hba = fs::read_to_string(pg1.data().join("pg_hba.conf")).unwrap();
    assert!(
        hba.contains("# pg1 only") && !hba.contains("# pg2 only"),
        "{hba}"
    );
    assert!(pg1.data().join("standby.signal").exists());
}

/// The kept WAL holds t7's records: pg_waldump finds its relation file there.
#[track_caller]
fn assert_t7_kept(lab: &Lab, saved_in: &Path, fork: pgha::lsn::Lsn) {
    let wal = saved_in.join("pg_wal");
    let files: Vec<_> = fs::read_dir(&wal).unwrap().collect();
    assert!(!files.is_empty(), "nothing kept in {}", wal.display());
    let out = Command::new(bin("pg_waldump"))
        .arg("-p")
        .arg(&wal)
        .args(["--timeline=1", "--start", &fork.to_string()])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.lines()
            .any(|l| l.contains(&format!("/{} ", lab.t7_filenode))
                || l.ends_with(&format!("/{}", lab.t7_filenode))),
        "t7 (filenode {}) not in the kept WAL:\n{dump}\n{}",
        lab.t7_filenode,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(saved_in.join("pg_control").is_file());
    assert!(saved_in.join("README").is_file());
}

fn fork_segment_present(lab: &Lab, fork: pgha::lsn::Lsn) -> bool {
    let name = format!("00000001{:08X}{:08X}", 0, fork.0 >> 20);
    lab.pg1.data().join("pg_wal").join(name).exists()
}

// ---- the lab ----

/// Course lab 1.7.4: the old primary wrote t7 after the fork, the new one t8.
#[test]
fn lab_t7_t8_rewinds_the_old_primary_and_keeps_what_it_discards() {
    let lab = plain_lab();
    let check = check_lab(&lab);
    let Decision::Rewind { fork_point, .. } = check.decision else {
        panic!("{check}");
    };
    assert_eq!(check.plan, Plan::Rewind, "{check}");
    // pg_rewind's own report is read back (the native engine's is tested in rewind::native).
    let by_pg_rewind = RewindSettings {
        engine: Engine::PgRewind,
        ..settings(&lab.pg2)
    };
    let warnings = rewind::preflight(&instance(&lab.pg1, bindir()), &by_pg_rewind);
    assert!(warnings.is_empty(), "{warnings:?}");
    let report = rejoin(&lab, &by_pg_rewind);
    assert_eq!(report.outcome, Outcome::Rewound);
    let out = report.rewind.as_ref().unwrap();
    assert_eq!(out.diverged, Some((fork_point, 1)), "{out:?}");
    assert_eq!(lab.pg1.control_state(), "in archive recovery");
    assert!(lab.pg1.data().join("backup_label").is_file());
    assert_t7_kept(&lab, report.saved_in.as_ref().unwrap(), fork_point);
    assert_back_as_standby(&lab);
}

/// Regression (issue 14's differential suite found it): 13's pg_rewind copies no
/// `PG_VERSION`, so a database that the old primary dropped after the fork came back without
/// one and refused every connection ("not a valid data directory"); replay does not make it
/// again. pgha writes it back after 13's pg_rewind. On 14 and later pg_rewind copies it.
#[test]
fn finding_pg_rewind_13_lost_a_database_the_old_primary_dropped() {
    let made_before_the_fork = |pg1: &Pg| {
        pg1.start();
        pg1.psql("CREATE DATABASE kept");
        pg1.psql_in("kept", "CREATE TABLE k (c int); INSERT INTO k VALUES (42)");
        pg1.stop();
    };
    let lab = lab(
        made_before_the_fork,
        |_| {},
        |pg1| {
            pg1.psql("DROP DATABASE kept");
        },
        Stop::Clean,
    );
    let by_pg_rewind = RewindSettings {
        engine: Engine::PgRewind,
        ..settings(&lab.pg2)
    };
    let report = rejoin(&lab, &by_pg_rewind);
    assert_eq!(report.outcome, Outcome::Rewound, "{report:?}");
    assert_back_as_standby(&lab);
    assert_eq!(lab.pg1.psql_in("kept", "SELECT c FROM k"), "42");
}

/// The cost model counts the WAL the pg_rewind of this major copies. The source keeps
/// about 48 MB of WAL from before the fork (48 switched segments it replayed as a standby):
/// pg_rewind up to 18 copies all of it, so the estimate counts all of it and a re-clone of
/// the small databases is cheaper; 19's copies only the segments from the fork's on, and so
/// does the estimate, which then prefers the rewind. pg_rewind's own "need to copy" (run
/// with the fallback off) agrees with the estimate on each major.
#[test]
fn the_estimate_counts_the_wal_this_majors_pg_rewind_copies() {
    let pg1 = Pg::primary("pg1");
    pg1.conf("wal_keep_size = '64MB'");
    pg1.start();
    pg1.psql("CREATE TABLE t6 (c1 int)");
    let pg2 = Pg::base_backup_of(&pg1, "pg2");
    pg2.conf("wal_keep_size = '256MB'");
    pg2.start();
    pg1.wait_streaming("pg2");
    for _ in 0..48 {
        pg1.psql("INSERT INTO t6 VALUES (1); SELECT pg_switch_wal()");
    }
    pg2.wait_replayed(
        "pg2 to replay the switches",
        &pg1.psql("SELECT pg_current_wal_lsn()"),
    );
    pg2.promote();
    pg1.psql("CREATE TABLE t7 (c1 int); INSERT INTO t7 VALUES (1)");
    let t7_filenode = pg1.psql("SELECT pg_relation_filenode('t7')");
    pg2.psql("CREATE TABLE t8 (c1 int); INSERT INTO t8 VALUES (1)");
    pg1.stop();
    let lab = Lab {
        pg1,
        pg2,
        t7_filenode,
    };
    let all_wal = major() <= 18;
    let check = check_lab(&lab);
    let e = check
        .estimate
        .unwrap_or_else(|| panic!("no estimate: {check}"));
    assert!(e.source_wal >= 48 << 20, "{e:?}");
    assert!(e.source_wal_from_fork < 16 << 20, "{e:?}");
    assert_eq!(e.wal_bytes() == e.source_wal, all_wal, "{e:?}");
    assert_eq!(matches!(check.plan, Plan::Reclone(_)), all_wal, "{check}");
    let report = rejoin(
        &lab,
        &RewindSettings {
            fallback: Fallback::None,
            engine: Engine::PgRewind,
            ..settings(&lab.pg2)
        },
    );
    assert_eq!(report.outcome, Outcome::Rewound);
    let out = report.rewind.as_ref().unwrap();
    let (copied_mb, _) = out.need_to_copy_mb.unwrap_or_else(|| panic!("{out:?}"));
    let wal_mb = e.wal_bytes() >> 20;
    eprintln!(
        "pg_rewind {}: need to copy {copied_mb} MB; source pg_wal {} MB, from the fork's \
         segment on {} MB",
        major(),
        e.source_wal >> 20,
        e.source_wal_from_fork >> 20
    );
    assert!(
        copied_mb >= wal_mb && copied_mb < wal_mb + 32,
        "pg_rewind {} copied {copied_mb} MB, the estimate counted {wal_mb} MB of WAL: {e:?}",
        major()
    );
    assert_streams_without_t7(&lab);
}

/// `pg_checksums --enable` or `--disable` on a stopped instance.
fn pg_checksums(pg: &Pg, switch: &str) {
    run(as_postgres(bin("pg_checksums"))
        .args([switch, "-D"])
        .arg(pg.data()));
}

/// pg_rewind needs data checksums or `wal_log_hints` in the target's pg_control. 18's
/// `initdb` turns checksums on by default, so from 18 a cluster made with the defaults is
/// rewound without `wal_log_hints`; with checksums off (`--no-data-checksums`, or
/// `pg_checksums --disable`, as before 18) the preflight warns and the node is re-cloned.
#[test]
fn checksums_by_default_from_18_rewind_without_wal_log_hints() {
    let lab = lab(
        |pg1| pg1.conf("wal_log_hints = off"),
        |_| {},
        |_| {},
        Stop::Clean,
    );
    let target = instance(&lab.pg1, bindir());
    let by_default = major() >= 18;
    let control = target.control().unwrap();
    assert!(!control.wal_log_hints);
    assert_eq!(
        control.data_checksums(),
        by_default,
        "PostgreSQL {}",
        major()
    );
    let no_hints = |warnings: &[String]| {
        warnings
            .iter()
            .any(|w| w.contains("neither wal_log_hints nor data checksums"))
    };
    let warnings = rewind::preflight(&target, &settings(&lab.pg2));
    assert_eq!(no_hints(&warnings), !by_default, "{warnings:?}");
    let check = check_lab(&lab);
    if by_default {
        assert_eq!(check.plan, Plan::Rewind, "{check}");
        // What a cluster made with --no-data-checksums has: checksums off in pg_control.
        pg_checksums(&lab.pg1, "--disable");
        assert!(!target.control().unwrap().can_rewind());
        assert!(no_hints(&rewind::preflight(&target, &settings(&lab.pg2))));
        let check = check_lab(&lab);
        assert_eq!(
            check.decision,
            Decision::Refuse(Refusal::NoHintsNorChecksums),
            "{check}"
        );
        assert!(matches!(check.plan, Plan::Reclone(_)), "{check}");
        pg_checksums(&lab.pg1, "--enable");
        assert_eq!(rejoin(&lab, &settings(&lab.pg2)).outcome, Outcome::Rewound);
    } else {
        assert_eq!(
            check.decision,
            Decision::Refuse(Refusal::NoHintsNorChecksums),
            "{check}"
        );
        assert!(matches!(check.plan, Plan::Reclone(_)), "{check}");
        assert_eq!(rejoin(&lab, &settings(&lab.pg2)).outcome, Outcome::Recloned);
    }
    assert_back_as_standby(&lab);
}

/// A clean switchover: pg1 stopped before the promotion, so pg2 has all of pg1's WAL and the
/// switch is exactly the end of pg1's shutdown checkpoint. Nothing to rewind.
#[test]
fn old_primary_stopped_before_the_promotion_streams_as_is() {
    let pg1 = Pg::primary("pg1");
    pg1.start();
    let pg2 = Pg::base_backup_of(&pg1, "pg2");
    pg2.start();
    pg1.psql("CREATE TABLE t6 (c1 int); INSERT INTO t6 VALUES (1)");
    let end = pg1.psql("SELECT pg_current_wal_lsn()");
    pg2.wait_replayed("pg2 to replay t6", &end);
    pg1.stop();
    // The shutdown checkpoint reached pg2 before pg1 exited (walsenders are waited for).
    pg2.promote();
    let instance = instance(&pg1, bindir());
    let check = rewind::check(&instance, &source(&pg2), &settings(&pg2), &deadline()).unwrap();
    assert_eq!(check.decision, Decision::Stream, "{check}");
    let lab = Lab {
        pg1,
        pg2,
        t7_filenode: String::new(),
    };
    let report = rejoin(&lab, &settings(&lab.pg2));
    assert_eq!(report.outcome, Outcome::Streamable);
    assert!(report.saved_in.is_none());
    lab.pg1.start();
    assert!(lab.pg1.in_recovery());
    lab.pg2.wait_streaming("pg1");
}

// ---- the traps ----

/// PG ≤ 15: right after `pg_ctl promote` the new primary's pg_control still shows timeline 1
/// until its (spread) checkpoint ends, and pg_rewind then says "no rewind required", exit 0.
/// pgha sees the fork anyway (the history file and the current WAL file's timeline) and
/// runs CHECKPOINT on the source first. From 16 on, pg_rewind takes the source's timeline
/// from its minimum recovery point and sees the fork itself: the same set-up then needs no
/// CHECKPOINT, and pgha runs none (the source's checkpoint stays on timeline 1).
#[test]
fn no_rewind_required_trap_of_a_just_promoted_source() {
    let pg1 = Pg::primary("pg1");
    pg1.conf("wal_keep_size = '64MB'");
    pg1.start();
    let pg2 = Pg::base_backup_of(&pg1, "pg2");
    pg2.conf("checkpoint_timeout = '1h'");
    pg2.conf("checkpoint_completion_target = 0.9");
    pg2.start();
    // Dirty pages on pg2, from replay: its spread checkpoint writes them 10 per second.
    pg1.psql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g",
    );
    let end = pg1.psql("SELECT pg_current_wal_lsn()");
    pg2.wait_replayed("pg2 to replay the filler", &end);
    pg2.promote();
    pg1.psql("CREATE TABLE t7 (c1 int); INSERT INTO t7 VALUES (1)");
    pg2.psql("CREATE TABLE t8 (c1 int); INSERT INTO t8 VALUES (1)");
    pg1.stop();
    let lab = Lab {
        pg1,
        pg2,
        t7_filenode: String::new(),
    };
    let checkpoint_tli = lab
        .pg2
        .psql("SELECT timeline_id FROM pg_control_checkpoint()");
    assert_eq!(
        checkpoint_tli, "1",
        "the promotion's checkpoint already ended: the trap cannot be shown"
    );
    // The trap: pg_rewind alone (dry run) finds nothing to do, and says so with exit 0.
    let inst = instance(&lab.pg1, bindir());
    let (out, _) = runner::pg_rewind(
        &inst,
        &RewindSource::Server(conninfo(&lab.pg2)),
        &RewindOptions {
            dry_run: true,
            ..RewindOptions::default()
        },
        &deadline(),
    )
    .unwrap();
    let trapped = crate::pg::major() <= 15;
    assert_eq!(out.no_rewind_required, trapped, "{out:?}");
    assert_eq!(out.diverged.is_some(), !trapped, "{out:?}");
    // pgha is not fooled, and checkpoints the source only where pg_rewind needs it.
    let check = check_lab(&lab);
    assert!(matches!(check.decision, Decision::Rewind { .. }), "{check}");
    assert_eq!(check.source_needs_checkpoint, trapped, "{check}");
    // pg_rewind's trap: pg_rewind itself runs.
    let by_pg_rewind = RewindSettings {
        engine: Engine::PgRewind,
        ..settings(&lab.pg2)
    };
    let report = rejoin(&lab, &by_pg_rewind);
    assert_eq!(report.outcome, Outcome::Rewound);
    assert!(report.rewind.as_ref().unwrap().diverged.is_some());
    let source_checkpoint_tli = if trapped { "2" } else { "1" };
    assert_eq!(
        lab.pg2
            .psql("SELECT timeline_id FROM pg_control_checkpoint()"),
        source_checkpoint_tli
    );
    assert_streams_without_t7(&lab);
}

/// pg1 killed after t7 (pg_control: "in production"): crash recovery first, then
/// pg_rewind (the native engine rewinds such a target without it: `rewind::native`).
#[test]
fn uncleanly_stopped_old_primary_is_recovered_then_rewound() {
    let lab = lab(|_| {}, |_| {}, |_| {}, Stop::Kill9);
    assert_eq!(lab.pg1.control_state(), "in production");
    let by_pg_rewind = RewindSettings {
        engine: Engine::PgRewind,
        ..settings(&lab.pg2)
    };
    let report = rejoin(&lab, &by_pg_rewind);
    assert!(report.crash_recovery);
    assert_eq!(report.outcome, Outcome::Rewound);
    assert_back_keeping_t7(&lab, &report);
}

/// A crashed old primary whose rewind would cost more than a re-clone (the new primary keeps
/// more WAL than its databases weigh): pgha reads pg1's WAL natively to see that it went
/// past the fork, skips the crash recovery of a directory it is about to replace, and
/// re-clones, keeping t7's WAL.
#[test]
fn crashed_old_primary_with_a_cheaper_reclone_skips_crash_recovery() {
    let lab = lab(
        |_| {},
        |pg2| {
            pg2.psql("ALTER SYSTEM SET wal_keep_size = '256MB'");
            pg2.psql("SELECT pg_reload_conf()");
            pg2.psql(
                "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad \
                 FROM generate_series(1, 150000) g",
            );
            pg2.psql("DROP TABLE big");
            pg2.psql("CHECKPOINT");
        },
        |_| {},
        Stop::Kill9,
    );
    assert_eq!(lab.pg1.control_state(), "in production");
    let report = rejoin(&lab, &settings(&lab.pg2));
    assert!(!report.crash_recovery, "{report:?}");
    assert_eq!(report.outcome, Outcome::Recloned, "{report:?}");
    let estimate = report.estimate.as_ref().unwrap();
    assert!(estimate.prefers_reclone(), "{estimate:?}");
    assert_back_keeping_t7(&lab, &report);
}

/// The WAL pg_rewind needs from pg1 is gone from its pg_wal but archived: pg_rewind gets it
/// with pg1's restore_command (`--restore-target-wal`).
#[test]
fn wal_needed_from_the_archive_is_restored() {
    let archive = tempfile::Builder::new()
        .prefix("pgha-it-archive-")
        .tempdir()
        .unwrap();
    chown_postgres(archive.path());
    let dir = archive.path().display().to_string();
    let lab = lab(
        |pg1| {
            pg1.conf("archive_mode = on");
            pg1.conf(&format!("archive_command = 'cp %p {dir}/%f'"));
            pg1.conf(&format!("restore_command = 'cp {dir}/%f %p'"));
            pg1.conf("min_wal_size = '2MB'");
            pg1.conf("max_wal_size = '4MB'");
            pg1.conf("wal_keep_size = 0");
        },
        |_| {},
        |pg1| {
            recycle_fork_segment(pg1);
            let last = pg1.psql("SELECT pg_walfile_name(pg_switch_wal())");
            pg1.wait_for("the archiver", WAIT, || {
                pg1.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= last
            });
            pg1.psql("CHECKPOINT");
        },
        Stop::Clean,
    );
    let check = check_lab(&lab);
    let Decision::Rewind { fork_point, .. } = check.decision else {
        panic!("{check}");
    };
    assert!(check.target.restore_command, "{check}");
    assert!(
        !fork_segment_present(&lab, fork_point),
        "the fork point's segment is still in pg_wal: the test proves nothing"
    );
    // A database this small is as cheap to re-clone: this test is about pg_rewind.
    let rewind_only = RewindSettings {
        fallback: Fallback::None,
        ..settings(&lab.pg2)
    };
    let report = rejoin(&lab, &rewind_only);
    assert_eq!(report.outcome, Outcome::Rewound, "{report:?}");
    assert_back_as_standby(&lab);
}

/// The benchmark's finding (archive, little WAL retention): pgha's crash recovery of the
/// old primary ended with a checkpoint that removed the archived segment of the last common
/// checkpoint, so the native engine, which reads only pg_wal, handed over to pg_rewind.
#[test]
fn finding_crash_recovery_kept_the_last_common_checkpoints_wal_for_the_native_engine() {
    let archive = tempfile::Builder::new()
        .prefix("pgha-it-archive-")
        .tempdir()
        .unwrap();
    chown_postgres(archive.path());
    let dir = archive.path().display().to_string();
    let lab = lab(
        |pg1| {
            without_wal_retention(pg1);
            // No checkpoint before the crash: only crash recovery's could remove the WAL.
            pg1.conf("max_wal_size = '64MB'");
            pg1.conf("checkpoint_timeout = '1h'");
            pg1.conf("archive_mode = on");
            pg1.conf(&format!("archive_command = 'cp %p {dir}/%f'"));
        },
        |_| {},
        |pg1| {
            pg1.psql("CREATE TABLE filler AS SELECT g FROM generate_series(1, 30000) g");
            for _ in 0..4 {
                pg1.psql("SELECT pg_switch_wal()");
                pg1.psql("INSERT INTO filler VALUES (0)");
            }
            let last = pg1.psql("SELECT pg_walfile_name(pg_switch_wal())");
            pg1.wait_for("the archiver", WAIT, || {
                pg1.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= last
            });
        },
        Stop::Kill9,
    );
    assert_eq!(lab.pg1.control_state(), "in production");
    let source = format!("--source-server={}", conninfo(&lab.pg2));
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let (code, text, _) = pgha_rewind(
        &lab.pg1,
        &[
            &source, &upstream, "-R", "--node", "pg1", "--engine", "native",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("crash recovery first"), "{text}");
    assert!(!text.contains("hands over to pg_rewind"), "{text}");
    assert!(text.contains("native rewind: "), "{text}");
    // Read on two connections to the source, the second pinned to the same server.
    assert!(text.contains("on 2 connection(s)"), "{text}");
    assert_back_as_standby(&lab);
}

/// The fork point's WAL recycled and no archive: pg_rewind cannot work, pgha re-clones with
/// pg_basebackup, keeping the node's configuration and what WAL pg1 still had.
#[test]
fn recycled_fork_wal_without_archive_falls_back_to_a_reclone() {
    let lab = reclone_lab();
    let inst = instance(&lab.pg1, bindir());
    let check = check_lab(&lab);
    assert!(
        matches!(check.decision, Decision::Refuse(Refusal::MissingWal { .. })),
        "{check}"
    );
    assert!(matches!(check.plan, Plan::Reclone(_)), "{check}");
    // Without the fallback, pgha refuses and changes nothing.
    let before = lab.pg1.snapshot();
    let no_fallback = RewindSettings {
        fallback: Fallback::None,
        ..settings(&lab.pg2)
    };
    let err =
        rewind::rejoin(&inst, &source(&lab.pg2), "pg1", &no_fallback, &deadline()).unwrap_err();
    assert!(!err.target_modified(), "{err}");
    before.assert_same(&lab.pg1.snapshot(), "refused rejoin");

    let report = rejoin(&lab, &settings(&lab.pg2));
    assert_eq!(report.outcome, Outcome::Recloned);
    let saved_in = report.saved_in.as_ref().unwrap();
    assert!(saved_in.join("pg_wal").read_dir().unwrap().next().is_some());
    assert!(!PathBuf::from(format!("{}.pgha-clone", lab.pg1.data().display())).exists());
    assert!(report.replaced.is_some(), "{report:?}");
    // Finding 5: the fork's WAL was gone, so the kept WAL may not hold what the old primary
    // had: its data directory is kept, whole, in the run's folder, not removed.
    assert!(!PathBuf::from(format!("{}.pgha-old", lab.pg1.data().display())).exists());
    assert!(saved_in.join("datadir/PG_VERSION").is_file(), "{report:?}");
    assert_back_as_standby(&lab);
}

/// `dry_run` runs pg_rewind -n and changes no byte of the target.
#[test]
fn dry_run_changes_no_byte_of_the_target() {
    let lab = plain_lab();
    let before = lab.pg1.snapshot();
    let dry = RewindSettings {
        dry_run: true,
        ..settings(&lab.pg2)
    };
    let report = rejoin(&lab, &dry);
    assert_eq!(report.outcome, Outcome::DryRun);
    assert_eq!(report.plan, Plan::Rewind);
    let out = report.rewind.as_ref().unwrap();
    assert!(out.need_to_copy_mb.is_some() && out.done, "{out:?}");
    before.assert_same(&lab.pg1.snapshot(), "dry run");
    assert!(!rewind::is_marked(&lab.pg1.data()));
}

/// `<root>/bin`: links to every program of the bindir under test but pg_rewind, which the
/// caller writes.
fn bindir_but_pg_rewind(root: &Path) -> PathBuf {
    let dir = root.join("bin");
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(bindir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "pg_rewind" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    dir
}

/// A bindir whose pg_rewind is killed (SIGKILL) as soon as it prints "need to copy", its
/// point of no return, then runs the shell commands `after_kill`; every other program is
/// the real one.
fn bindir_with_killed_pg_rewind(root: &Path, after_kill: &str) -> PathBuf {
    let dir = bindir_but_pg_rewind(root);
    let script = format!(
        "#!/bin/sh\n\
         log=$(mktemp)\n\
         {real}/pg_rewind \"$@\" >\"$log\" 2>&1 &\n\
         pid=$!\n\
         while kill -0 \"$pid\" 2>/dev/null; do\n\
           if grep -q 'need to copy' \"$log\"; then\n\
             kill -9 \"$pid\"; wait \"$pid\"; {after_kill}\n\
             cat \"$log\"; rm -f \"$log\"; exit 137\n\
           fi\n\
         done\n\
         wait \"$pid\"; rc=$?; cat \"$log\"; rm -f \"$log\"; exit $rc\n",
        real = bindir().display()
    );
    let path = dir.join("pg_rewind");
    fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A bindir whose pg_rewind, after a real run that changed the target, removes from
/// `target`'s pg_wal every segment `source`'s lacks, as 13.16's (Debian bullseye's) does
/// (14.23, 15 and later keep the target's WAL up to the fork); every other program is the
/// real one.
fn bindir_with_wal_removing_pg_rewind(root: &Path, target: &Pg, source: &Pg) -> PathBuf {
    let dir = bindir_but_pg_rewind(root);
    let script = format!(
        "#!/bin/sh\n\
         {real}/pg_rewind \"$@\" || exit\n\
         case \" $* \" in *\" --dry-run \"*) exit 0 ;; esac\n\
         for f in {target}/pg_wal/0*; do\n\
           [ -e \"{source}/pg_wal/${{f##*/}}\" ] || rm -f \"$f\"\n\
         done\n",
        real = bindir().display(),
        target = target.data().display(),
        source = source.data().display(),
    );
    let path = dir.join("pg_rewind");
    fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Found on PostgreSQL 13: its pg_rewind removed pg1's segments from the last common
/// checkpoint to the fork, which pg2 had already recycled, so the rewound pg1 never started
/// ("requested WAL segment … has already been removed"). pgha holds them during pg_rewind
/// and puts back what it removed.
#[test]
fn wal_removed_by_pg_rewind_up_to_the_fork_is_put_back() {
    let lab = plain_lab();
    let tools = tempfile::tempdir().unwrap();
    let bindir = bindir_with_wal_removing_pg_rewind(tools.path(), &lab.pg1, &lab.pg2);
    let report = rejoin_with(&lab, &settings(&lab.pg2), &bindir);
    assert_eq!(report.outcome, Outcome::Rewound, "{report:?}");
    let Decision::Rewind { fork_point, .. } = report.decision else {
        panic!("{:?}", report.decision);
    };
    let fork_segment = format!("00000001{:08X}{:08X}", 0, fork_point.0 >> 20);
    assert!(
        !lab.pg2.data().join("pg_wal").join(&fork_segment).exists(),
        "pg2 still has {fork_segment}: pg_rewind removed nothing, the test proves nothing"
    );
    assert!(
        lab.pg1.data().join("pg_wal").join(&fork_segment).is_file(),
        "{fork_segment} was not put back"
    );
    let held = report.saved_in.as_ref().unwrap().join("pg_wal.held");
    assert!(!held.exists(), "{} left behind", held.display());
    assert_back_as_standby(&lab);
}

/// pg_rewind killed mid-copy: the marker stays, the directory is refused, and the next
/// attempt repairs it (a re-clone: a half-rewound directory is never trusted).
#[test]
fn pg_rewind_killed_mid_copy_is_never_started_and_repaired_next_time() {
    killed_mid_copy_then_recloned(":");
}

/// Found on PostgreSQL 13, whose pg_rewind rewrites pg_control like any other file: killed
/// mid-copy, it left pg_control empty, and the next attempt failed reading it instead of
/// re-cloning. The copy kept before pg_rewind ran now stands in.
#[test]
fn pg_control_emptied_by_a_killed_pg_rewind_is_recloned() {
    killed_mid_copy_then_recloned(": >\"$target\"/global/pg_control");
}

/// The lab, pg1 rewound by a pg_rewind killed mid-copy (then `after_kill`, where `$target`
/// is pg1's data directory), refused, then re-cloned by the next attempt.
fn killed_mid_copy_then_recloned(after_kill: &str) {
    let lab = lab(
        |_| {},
        |pg2| {
            // Something to copy, so that the kill lands during the copy.
            pg2.psql("CREATE TABLE big AS SELECT g, repeat('y', 500) AS pad FROM generate_series(1, 60000) g");
        },
        |_| {},
        Stop::Clean,
    );
    let tools = tempfile::tempdir().unwrap();
    let after_kill = format!("target={}; {after_kill}", lab.pg1.data().display());
    let bindir = bindir_with_killed_pg_rewind(tools.path(), &after_kill);
    let before = lab.pg1.snapshot();
    let no_fallback = RewindSettings {
        fallback: Fallback::None,
        engine: Engine::PgRewind,
        ..settings(&lab.pg2)
    };
    let err = rewind::rejoin(
        &instance(&lab.pg1, &bindir),
        &source(&lab.pg2),
        "pg1",
        &no_fallback,
        &deadline(),
    )
    .unwrap_err();
    assert!(err.target_modified(), "{err}");
    assert!(rewind::is_marked(&lab.pg1.data()));
    if lab.pg1.snapshot() == before {
        eprintln!("note: the kill landed before pg_rewind wrote anything");
    }
    // Start refuses it.
    let refusal = rewind::ensure_startable(&lab.pg1.data()).unwrap_err();
    assert!(
        refusal.to_string().contains("must not be started"),
        "{refusal}"
    );
    // The next attempt: a re-clone, whatever the half-rewound pg_control now says.
    let check = check_lab(&lab);
    assert!(matches!(check.plan, Plan::Reclone(_)), "{check}");
    let report = rejoin(&lab, &settings(&lab.pg2));
    assert_eq!(report.outcome, Outcome::Recloned);
    rewind::ensure_startable(&lab.pg1.data()).unwrap();
    assert_back_as_standby(&lab);
}

// ---- the command line ----

/// `pgha rewind -D <target> --bindir … <args>` as root: exit code, stdout and stderr
/// together, and how long it took.
pub(crate) fn pgha_rewind(target: &Pg, args: &[&str]) -> (Option<i32>, String, Duration) {
    pgha_rewind_with(target, bindir(), args, &[])
}

/// [`pgha_rewind`] with another bindir and more environment.
pub(crate) fn pgha_rewind_with(
    target: &Pg,
    bindir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .arg("rewind")
        .arg("-D")
        .arg(target.data())
        .arg("--bindir")
        .arg(bindir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, started.elapsed())
}

/// `pgha rewind --check` prints the decision and changes nothing; `pgha rewind -n` is a dry
/// run; `pgha rewind -R` rewinds and writes the standby configuration.
#[test]
fn command_line_check_dry_run_and_rewind() {
    let lab = plain_lab();
    let before = lab.pg1.snapshot();
    let source = format!("--source-server={}", conninfo(&lab.pg2));
    let pgha = |args: &[&str]| {
        let (code, text, _) = pgha_rewind(&lab.pg1, &[&[source.as_str()], args].concat());
        (code, text)
    };
    let (code, text) = pgha(&["--check"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("needs a rewind: diverged at"), "{text}");
    assert!(text.contains("target changes: "), "{text}");
    assert!(!text.contains("target changes: not known"), "{text}");
    before.assert_same(&lab.pg1.snapshot(), "pgha rewind --check");
    // The default engine is auto, which says what it picks and why.
    assert!(text.contains(" (auto: "), "{text}");
    let (code, text) = pgha(&["-n", "-P", "--engine", "pg_rewind"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("need to copy"), "{text}");
    assert!(text.contains("engine: pg_rewind (asked for)"), "{text}");
    before.assert_same(&lab.pg1.snapshot(), "pgha rewind -n");
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let (code, text) = pgha(&["-R", "--node", "pg1", &upstream]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("rewound"), "{text}");
    assert_back_as_standby(&lab);
}

/// `--sync-method` reaches pg_rewind 17 and later (`rewind_sync_method` for the agent); an
/// older major's pg_rewind has none: validate-all refuses the parameter, and `pgha rewind`
/// refuses before anything changes (no kept folder, no marker, the directory as it was).
#[test]
fn sync_method_reaches_pg_rewind_17_and_later_and_is_refused_before() {
    let supported = major() >= 17;
    let pg = Pg::primary("pg1");
    let validate = agent()
        .on(&pg)
        .action("validate-all")
        .check_level(10)
        .param("rewind_sync_method", "syncfs");
    if supported {
        validate.expect(0);
    } else {
        validate.expect_reason(6, "rewind_sync_method");
    }
    let lab = plain_lab();
    let before = lab.pg1.snapshot();
    let source = format!("--source-server={}", conninfo(&lab.pg2));
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let (code, text, _) = pgha_rewind(&lab.pg1, &[&source, "--sync-method=syncfs", "--check"]);
    assert_eq!(code, Some(if supported { 0 } else { 1 }), "{text}");
    let (code, text, _) = pgha_rewind(
        &lab.pg1,
        &[
            &source,
            "--sync-method=syncfs",
            "-R",
            "--node",
            "pg1",
            &upstream,
            // pg_rewind's option: the native engine syncs only what it wrote.
            "--engine",
            "pg_rewind",
        ],
    );
    if supported {
        assert_eq!(code, Some(0), "{text}");
        let ran = text
            .lines()
            .find(|l| l.contains("running ") && l.contains("pg_rewind"))
            .unwrap_or_else(|| panic!("no pg_rewind command line logged: {text}"));
        assert!(ran.contains(" --sync-method=syncfs"), "{ran}");
        assert!(text.contains("rewound"), "{text}");
        assert_back_as_standby(&lab);
    } else {
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains(&format!(
                "pg_rewind of PostgreSQL {} has no --sync-method=syncfs",
                major()
            )),
            "{text}"
        );
        before.assert_same(&lab.pg1.snapshot(), "a refused --sync-method");
        assert!(!rewind::marker::path(&lab.pg1.data()).exists());
        let keep_dir = lab.pg1.data().with_file_name("pgha-rewind");
        assert!(!keep_dir.exists(), "{}", keep_dir.display());
    }
}

/// `--timeout 18446744073709551615` overflowed `Instant` (a panic); now it is a usage error
/// that names the accepted range, before anything is read or written.
#[test]
fn finding_9_overflowing_timeout_on_the_command_line_is_refused() {
    let (pg1, pg2) = stopped_primary_and_standby();
    let before = pg1.snapshot();
    let source = pg2.data().display().to_string();
    let (code, text, _) = pgha_rewind(
        &pg1,
        &[
            "--source-pgdata",
            &source,
            "--timeout",
            "18446744073709551615",
        ],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("--timeout") && text.contains("1..=604800"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        !rewind::marker::path(&pg1.data()).exists(),
        "a marker was written"
    );
    before.assert_same(&pg1.snapshot(), "pgha rewind with an overflowing timeout");
}

/// A time limit with no useful bound (what `rewind_timeout` could hold before it was
/// checked) panicked once the marker was written; the deadline now saturates and the rewind
/// finishes.
#[test]
fn finding_9_unbounded_time_limit_rewinds_without_panic() {
    let lab = plain_lab();
    let settings = RewindSettings {
        time_limit: Some(Duration::from_secs(u64::MAX)),
        ..settings(&lab.pg2)
    };
    let report = rejoin(&lab, &settings);
    assert_eq!(report.outcome, Outcome::Rewound);
    assert_back_as_standby(&lab);
}

/// Where a real pg_control keeps its CRC: the first 4-byte word that is the CRC-32C of every
/// byte before it (288 up to 17, 292 in 18, 308 in 19), found rather than assumed.
fn crc_offset(control: &[u8]) -> usize {
    (0..control.len().saturating_sub(4))
        .step_by(4)
        .find(|&at| control[at..at + 4] == crc32c::crc32c(&control[..at]).to_le_bytes())
        .expect("no CRC in pg_control")
}

/// pg_control rewritten by postgres (CRC and all) to say minRecoveryPointTLI = 0xFFFFFFFF,
/// with a history planted for that timeline: the checkpoint's WAL was looked for on every
/// timeline up to it, four billion of them. Now the history is followed and pg_control is
/// checked against it: a prompt, clear refusal, nothing changed.
#[test]
fn finding_9_crafted_pg_control_ends_promptly_with_a_clear_error() {
    // `minRecoveryPointTLI` follows `checkPointCopy`, which 19 grew from 88 to 96 bytes
    // (pg_control.h of each major).
    let at_min_recovery_point_tli = if crate::pg::major() >= 19 { 152 } else { 144 };
    let (pg1, pg2) = stopped_primary_and_standby();
    let control = pg1.data().join("global/pg_control");
    let mut bytes = fs::read(&control).unwrap();
    let at_crc = crc_offset(&bytes);
    bytes[at_min_recovery_point_tli..at_min_recovery_point_tli + 4]
        .copy_from_slice(&u32::MAX.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..at_crc]);
    bytes[at_crc..at_crc + 4].copy_from_slice(&crc.to_le_bytes());
    fs::write(&control, bytes).unwrap();
    let history = pg1.data().join("pg_wal/FFFFFFFF.history");
    fs::write(&history, "1\t0/3000000\tcrafted\n").unwrap();
    chown_postgres(&history);
    let before = pg1.snapshot();
    let source = pg2.data().display().to_string();
    let (code, text, took) = pgha_rewind(&pg1, &["--source-pgdata", &source, "--check"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("minimum recovery point 0/0 is on timeline 4294967295"),
        "{text}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}: {text}");
    before.assert_same(
        &pg1.snapshot(),
        "pgha rewind --check of a crafted pg_control",
    );
}

/// pgha's own checks need nothing beyond pg_rewind's four documented grants (pgha's notes
/// §7.3): a non-superuser role without CHECKPOINT rights rewinds pg1 (waiting for the
/// promotion's checkpoint instead of running one).
#[test]
fn a_role_with_pg_rewinds_four_grants_suffices() {
    let lab = lab(
        |_| {},
        |pg2| {
            pg2.psql(
                "CREATE ROLE rewinder LOGIN; \
                 GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewinder; \
                 GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO rewinder; \
                 GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO rewinder; \
                 GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewinder",
            );
        },
        |_| {},
        Stop::Clean,
    );
    let source = Source::Server(SourceConninfo {
        sql: format!("host=127.0.0.1 port={} user=rewinder", lab.pg2.port),
        replication: conninfo(&lab.pg2),
    });
    let inst = instance(&lab.pg1, bindir());
    let check = rewind::check(&inst, &source, &settings(&lab.pg2), &deadline()).unwrap();
    assert!(matches!(check.decision, Decision::Rewind { .. }), "{check}");
    assert!(check.estimate.is_some(), "{check}");
    let report = rewind::rejoin(&inst, &source, "pg1", &settings(&lab.pg2), &deadline()).unwrap();
    assert_eq!(report.outcome, Outcome::Rewound);
    assert_back_as_standby(&lab);
}

/// `pgha rewind --source-pgdata`: a cleanly stopped new primary as the source, read directly.
#[test]
fn command_line_with_a_stopped_source_data_directory() {
    let lab = plain_lab();
    lab.pg2.stop();
    let source = lab.pg2.data().display().to_string();
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let (code, text, _) = pgha_rewind(
        &lab.pg1,
        &["--source-pgdata", &source, "-R", "--node", "pg1", &upstream],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("rewound"), "{text}");
    lab.pg2.start();
    assert_back_as_standby(&lab);
}

// ---- finding 3: passwords ----

const PASSWORD: &str = "Sup3rS3cret";

/// A bindir of wrappers, one per PostgreSQL program, each appending its own argument
/// list (what `/proc/<pid>/cmdline` shows every local user) as one line to the returned log,
/// then running the real program under the wrapper's name: pg_rewind and pg_ctl find the
/// `postgres` they run next to themselves, so theirs are recorded too.
fn bindir_recording_argv(pg: &Pg) -> (PathBuf, PathBuf) {
    let dir = pg.root().join("recording-bin");
    fs::create_dir(&dir).unwrap();
    let log = pg.root().join("argv.log");
    fs::write(&log, "").unwrap();
    chown_postgres(&log);
    for entry in fs::read_dir(bindir()).unwrap() {
        let entry = entry.unwrap();
        let script = format!(
            "#!/bin/bash\n\
             echo \"$0 $*\" >>{log}\n\
             exec -a \"$0\" {real} \"$@\"\n",
            log = log.display(),
            real = entry.path().display(),
        );
        let path = dir.join(entry.file_name());
        fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    (dir, log)
}

/// `pgha rewind` from pg2 as `rewinder`, whose password pg2 requires, through the recording
/// wrappers; returns what it printed and every recorded argument list.
fn rewind_with_password(lab: &Lab, extra: &[&str]) -> (String, String) {
    let (bindir, argv_log) = bindir_recording_argv(&lab.pg1);
    let conninfo = format!(
        "host=127.0.0.1 port={} user=rewinder password={PASSWORD}",
        lab.pg2.port
    );
    let source = format!("--source-server={conninfo}");
    let upstream = format!("--primary-conninfo={conninfo}");
    let args = [
        &[source.as_str(), &upstream, "-R", "--node", "pg1", "-P"],
        extra,
    ]
    .concat();
    let (code, text, _) = pgha_rewind_with(&lab.pg1, &bindir, &args, &[]);
    assert_eq!(code, Some(0), "{text}");
    (text, fs::read_to_string(argv_log).unwrap())
}

/// The recorded children include `tools`, and no argument list nor output holds the
/// password.
#[track_caller]
fn assert_password_nowhere(text: &str, argv: &str, tools: &[&str]) {
    for tool in tools {
        assert!(
            argv.lines()
                .any(|l| l.contains(&format!("/recording-bin/{tool} "))),
            "{tool} was not run through the wrappers:\n{argv}"
        );
    }
    for line in argv.lines() {
        assert!(!line.contains(PASSWORD), "a child's arguments: {line}");
    }
    assert!(
        !text.contains(PASSWORD),
        "pgha printed the password:\n{text}"
    );
}

/// The plain lab whose new primary (the source) requires `PASSWORD` of role `rewinder`.
fn password_lab() -> Lab {
    lab(
        |_| {},
        |pg2| pg2.password_role("rewinder", PASSWORD),
        |_| {},
        Stop::Clean,
    )
}

/// Finding 3: `pg_rewind --source-server=…` carried the password in its arguments, visible
/// in `ps` to every local user. The source requires a password: the rewind working proves
/// the password reached pg_rewind, through its environment.
#[test]
fn finding_3_password_absent_from_pg_rewind_arguments() {
    let lab = password_lab();
    let (text, argv) = rewind_with_password(&lab, &["--no-fallback", "--engine", "pg_rewind"]);
    assert!(text.contains("\nrewound in"), "{text}");
    assert_password_nowhere(&text, &argv, &["pg_rewind", "postgres"]);
    assert_back_as_standby(&lab);
}

/// The native engine reads the source over its own connection: the password stays out of
/// every argument list and of what it prints too.
#[test]
fn finding_3_password_absent_with_the_native_engine() {
    let lab = password_lab();
    let (text, argv) = rewind_with_password(&lab, &["--no-fallback", "--engine", "native"]);
    assert!(text.contains("native rewind: "), "{text}");
    // The second connection authenticates as the first did.
    assert!(text.contains("on 2 connection(s)"), "{text}");
    assert!(text.contains("\nrewound in"), "{text}");
    assert_password_nowhere(&text, &argv, &["postgres"]);
    assert_back_as_standby(&lab);
}

/// Finding 3: `pg_basebackup --dbname=…` carried the password in its arguments. The fork's
/// WAL is gone, so pgha re-clones from a source that requires the password.
#[test]
fn finding_3_password_absent_from_pg_basebackup_arguments() {
    let lab = lab(
        without_wal_retention,
        |pg2| pg2.password_role("rewinder", PASSWORD),
        recycle_fork_segment,
        Stop::Clean,
    );
    let (text, argv) = rewind_with_password(&lab, &[]);
    assert!(text.contains("\nre-cloned in"), "{text}");
    assert_password_nowhere(&text, &argv, &["pg_basebackup"]);
    assert_back_as_standby(&lab);
}

// ---- authenticating the source (finding 4) ----

/// pg2 over TLS as `host`, with `sslmode` and the root `root` (a file of `certs`), and the
/// client certificate. The password is there to be looked for in messages.
fn tls_conninfo(pg: &Pg, certs: &Certs, host: &str, mode: &str, root: &str) -> String {
    format!(
        "host={host} port={} user=postgres password=s3cret-pw sslmode={mode} sslrootcert={} \
         sslcert={} sslkey={}",
        pg.port,
        certs.path(root).display(),
        certs.path("client.crt").display(),
        certs.path("client.key").display()
    )
}

/// `pgha rewind --check` of `target` against `conninfo`: exit code and all output.
fn command_line_check(target: &Pg, conninfo: &str) -> (Option<i32>, String) {
    let source = format!("--source-server={conninfo}");
    let (code, text, _) = pgha_rewind(target, &[&source, "--check"]);
    (code, text)
}

/// A source that cannot prove who it is, is refused before anything it says counts: another
/// CA's root, a certificate for another host name under verify-full, or a revoked one; with
/// the right root (and, for verify-ca, whatever the name) the check goes on. pgha refused every TLS mode
/// but `prefer`, and `prefer` connected in clear text.
#[test]
fn finding_4_verify_full_refuses_a_source_it_cannot_authenticate() {
    let certs = Certs::make();
    let pg1 = Pg::primary("pg1");
    let pg2 = Pg::primary("pg2");
    pg2.enable_ssl(&certs, true);
    pg2.start();
    let before = pg1.snapshot();
    #[rustfmt::skip]
    let cases = [
        ("localhost", "verify-full", "other-ca.crt", None, Some("certificate verify failed")),
        ("127.0.0.1", "verify-full", "ca.crt", None, Some("IP address mismatch")),
        // libpq's rule: with a root file, require checks the chain too.
        ("localhost", "require", "other-ca.crt", None, Some("certificate verify failed")),
        ("localhost", "verify-full", "ca.crt", Some("revoked.crl"), Some("certificate revoked")),
        ("localhost", "verify-full", "ca.crt", Some("empty.crl"), None),
        ("localhost", "verify-full", "ca.crt", None, None),
        ("127.0.0.1", "verify-ca", "ca.crt", None, None),
    ];
    for (host, mode, root, crl, refused) in cases {
        let mut conninfo = tls_conninfo(&pg2, &certs, host, mode, root);
        if let Some(crl) = crl {
            conninfo.push_str(&format!(" sslcrl={}", certs.path(crl).display()));
        }
        let (code, text) = command_line_check(&pg1, &conninfo);
        let case = format!("{mode} to {host} with {root} and CRL {crl:?}");
        assert!(
            !text.contains("s3cret-pw"),
            "{case}: password shown: {text}"
        );
        match refused {
            Some(why) => {
                assert_eq!(code, Some(1), "{case}: {text}");
                assert!(text.contains(why), "{case}: {text}");
            }
            None => {
                assert_eq!(code, Some(0), "{case}: {text}");
                assert!(text.contains("can stream as is"), "{case}: {text}");
            }
        }
        before.assert_same(&pg1.snapshot(), &case);
    }
}

/// `sslmode=require` against a server without TLS is refused, not answered in clear text.
#[test]
fn finding_4_sslmode_require_against_a_server_without_tls_is_refused() {
    let pg1 = Pg::primary("pg1");
    let pg2 = Pg::primary("pg2");
    pg2.start();
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres sslmode=require",
        pg2.port
    );
    let (code, text) = command_line_check(&pg1, &conninfo);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("TLS"), "{text}");
    let (code, text) = command_line_check(&pg1, &conninfo.replace("require", "prefer"));
    assert_eq!(code, Some(0), "{text}");
}

/// The lab with pg2 accepting only TLS with a client certificate over TCP: pgha's checks,
/// pg_rewind (or pg_basebackup) and pg1's streaming afterwards all need the TLS keywords of
/// the connection string, so a rewind that ends as `want` proves each of them got them.
fn rejoin_over_tls(recycle: bool, want: Outcome) {
    let certs = Certs::make();
    let lab = lab(
        |pg1| {
            if recycle {
                without_wal_retention(pg1);
            }
        },
        |pg2| {
            pg2.enable_ssl(&certs, true);
            pg2.psql("SELECT pg_reload_conf()");
        },
        |pg1| {
            if recycle {
                recycle_fork_segment(pg1);
            }
        },
        Stop::Clean,
    );
    let conninfo = tls_conninfo(&lab.pg2, &certs, "localhost", "verify-full", "ca.crt");
    // Without the client certificate, pg2 refuses: the keywords are what lets them in.
    let bare = format!(
        "host=localhost port={} user=postgres sslmode=verify-full sslrootcert={}",
        lab.pg2.port,
        certs.path("ca.crt").display()
    );
    let inst = instance(&lab.pg1, bindir());
    let settings = RewindSettings {
        primary_conninfo: Some(conninfo.clone()),
        ..RewindSettings::default()
    };
    let source = Source::Server(SourceConninfo::new(conninfo));
    let bare_source = Source::Server(SourceConninfo::new(bare));
    let e = rewind::check(&inst, &bare_source, &settings, &deadline()).unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let report = rewind::rejoin(&inst, &source, "pg1", &settings, &deadline())
        .unwrap_or_else(|e| panic!("rejoin over TLS failed: {e}"));
    report.settle_replaced(false);
    assert_eq!(report.outcome, want, "{report:?}");
    assert_back_as_standby(&lab);
}

#[test]
fn finding_4_pg_rewind_receives_the_tls_keywords() {
    rejoin_over_tls(false, Outcome::Rewound);
}

#[test]
fn finding_4_pg_basebackup_receives_the_tls_keywords() {
    rejoin_over_tls(true, Outcome::Recloned);
}

/// The source serves a forged history (timeline 1 "ended" at FFFFFFFF/FFFFFFFF): before,
/// pg1, which wrote past the fork, was told it "can stream as is". Now it is refused, not
/// re-cloned from such a source, and pg1 is left as it was.
#[test]
fn finding_4_forged_history_of_the_source_is_refused() {
    let lab = plain_lab();
    let history = lab.pg2.data().join("pg_wal/00000002.history");
    fs::write(&history, "1\tFFFFFFFF/FFFFFFFF\tforged\n").unwrap();
    chown_postgres(&history);
    let inst = instance(&lab.pg1, bindir());
    let check = check_lab(&lab);
    assert!(
        matches!(
            check.decision,
            Decision::Refuse(Refusal::ImplausibleSourceHistory { .. })
        ),
        "{check}"
    );
    assert!(matches!(check.plan, Plan::Refuse(_)), "{check}");
    let before = lab.pg1.snapshot();
    let e = rewind::rejoin(
        &inst,
        &source(&lab.pg2),
        "pg1",
        &settings(&lab.pg2),
        &deadline(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("forged"), "{e}");
    assert!(!e.target_modified(), "{e}");
    before.assert_same(&lab.pg1.snapshot(), "refused rejoin from a forged history");
}
