//! The differential suite of the native engine (issue 14): workloads drawn from a seed
//! (`workload.rs`; `PGHA_DIFF_SEED=<n>[,<n>…]` replays some, `random` draws one and prints
//! it; CI runs [`SEEDS`]) diverge a pair. The old primary is copied three times and, with
//! the original, rewound four ways: by the native engine and by pg_rewind, each over SQL
//! from the running source and from a stopped copy of the source's data directory. Then:
//! - right after the rewinds, each native copy holds every file pg_rewind's copy from the
//!   same source holds (but those pg_rewind never copies), equal block for block, or
//!   differing by one of pg_rewind's own rules, named in [`explain`] and printed;
//! - all four start as standbys and replay to the source's end: the same rows as the source
//!   (a checksum of every table), amcheck clean (`pg_amcheck --heapallindexed` on every
//!   database; 13, which has neither pg_amcheck nor heap checks, `bt_index_check(…,
//!   heapallindexed)` on every B-tree), then, stopped, `pg_checksums --check` clean (the
//!   pair runs with data checksums) and every file equal block for block but each
//!   standby's own WAL and statistics.
//! - once more with the old primary killed: the native engine rewinds it without crash
//!   recovery (its WAL read to the end), pgha's crash recovery runs before pg_rewind; after
//!   replay, the same rows and files.
//!
//! One running source serves both rewinds over SQL, not a copy each: 13's pg_rewind writes
//! to its source (its temporary table), and copies rewound from different sources would
//! replay different WAL. The native engines run first, so pg_rewind's writes reach
//! neither of them (the suite checks that the native engines write nothing there). This is
//! what the one-block difference in length of a catalog (pg_depend, pg_attribute) between
//! the two engines on 13 was: pg_rewind ran first and grew the source's catalogs, which the
//! native engine, listing the source after it, then saw. The native engine was right.

mod mask;
mod workload;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use pgha::rewind::filemap::is_excluded;

use super::{conninfo, lsn, pg_checksums, pgha_rewind, wal_segment_start};
use crate::pg::{append, as_postgres, bin, lab_of, major, run, Lab, Pg, Source, Stop};
use workload::{common_schema, Op, Side, Workload};

/// The seeds CI runs: fixed, so a run is deterministic.
const SEEDS: [u64; 3] = [1, 2, 3];
const BLOCK: usize = 8192;

/// `PGHA_DIFF_SEED` (a list, or `random`), else [`SEEDS`].
fn seeds() -> Vec<u64> {
    match std::env::var("PGHA_DIFF_SEED") {
        Ok(text) if text == "random" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            vec![u64::from(now.subsec_nanos()) ^ now.as_secs()]
        }
        Ok(text) => text
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("PGHA_DIFF_SEED: numbers, or random")
            })
            .collect(),
        Err(_) => SEEDS.to_vec(),
    }
}

#[test]
fn native_engine_matches_pg_rewind_on_seeded_workloads() {
    for seed in seeds() {
        eprintln!("seed {seed} (replay it with PGHA_DIFF_SEED={seed})");
        let started = std::time::Instant::now();
        differential(seed, Stop::Clean, Changes::Everything);
        eprintln!("seed {seed}: equal in {:?}", started.elapsed());
    }
}

/// A source that changed blocks only since the fork (no file created, dropped or
/// truncated), then checkpointed: the native engine starts replay at that checkpoint,
/// fetching the blocks the source's WAL names up to it, where pg_rewind replays from the
/// last common checkpoint. After replay, the same rows and files. The first seed only.
#[test]
fn native_engine_replays_from_the_sources_checkpoint_after_block_changes_only() {
    let seed = seeds()[0];
    eprintln!("seed {seed}, blocks only on the source (replay it with PGHA_DIFF_SEED={seed})");
    differential(seed, Stop::Clean, Changes::SourceBlocksOnly);
}

/// Both sides changed blocks only since the fork, and the source checkpointed: the native
/// engine fetches every block the target changed since its own checkpoint and syncs it, so
/// its pg_control says "shut down in recovery" and the server starts without syncing the
/// whole data directory. After replay, the same rows and files. The first seed only.
#[test]
fn native_engine_spares_the_servers_sync_at_start_after_block_changes_only_on_both_sides() {
    let seed = seeds()[0];
    eprintln!("seed {seed}, blocks only on both sides (replay it with PGHA_DIFF_SEED={seed})");
    differential(seed, Stop::Clean, Changes::BlocksOnly);
}

/// The old primary killed after its workload (pg_control: "in production"): the native
/// engine rewinds it as it is, reading its WAL to the end, where pgha runs crash recovery
/// before pg_rewind. Right after the rewinds the copies differ by what that recovery wrote
/// and pg_rewind kept (not one of pg_rewind's rules): they are compared after replay, where
/// everything must be equal. The first seed only.
#[test]
fn native_engine_matches_pg_rewind_on_a_crashed_old_primary() {
    let seed = seeds()[0];
    eprintln!("seed {seed}, old primary killed (replay it with PGHA_DIFF_SEED={seed})");
    differential(seed, Stop::Kill9, Changes::Everything);
}

/// What the workloads do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changes {
    /// Every kind of change on both sides ([`Workload::draw`]): the native engine replays
    /// from the last common checkpoint, as pg_rewind does.
    Everything,
    /// Block changes only ([`Op::BLOCKS_ONLY`]) on the source: it replays from the source's
    /// checkpoint.
    SourceBlocksOnly,
    /// Block changes only on both sides: and the server skips its sync at start.
    BlocksOnly,
}

fn differential(seed: u64, stop: Stop, changes: Changes) {
    let crashed = stop == Stop::Kill9;
    let blocks_only = changes != Changes::Everything;
    let draw = |side, only_blocks| match only_blocks {
        true => Workload::draw_from(seed, side, &Op::BLOCKS_ONLY),
        false => Workload::draw(seed, side),
    };
    let source_ops = draw(Side::Source, blocks_only);
    let target_ops = draw(Side::Target, changes == Changes::BlocksOnly);
    eprintln!("source: {:?}\ntarget: {:?}", source_ops.ops, target_ops.ops);
    let mut quiet_file = String::new();
    let lab = lab_of(
        |pg1| {
            // Standbys need at least the primary's max_prepared_transactions: the base
            // backup copies it to pg2.
            append(
                &pg1.data().join("postgresql.auto.conf"),
                "max_prepared_transactions = 8\n",
            );
            if !checksums_on(pg1) {
                pg_checksums(pg1, "--enable");
            }
            pg1.start();
            common_schema(pg1);
            // A table no workload touches, in a database of its own (a workload's VACUUM
            // covers its database), frozen: the source writes no page image of it that
            // would repair, on replay, what the target changed and an engine missed.
            pg1.psql("CREATE DATABASE quiet");
            pg1.psql_in(
                "quiet",
                "CREATE TABLE quiet AS SELECT g AS id, g AS v FROM generate_series(1, 100000) g",
            );
            pg1.psql_in("quiet", "VACUUM FREEZE quiet");
            pg1.stop();
        },
        |pg2| {
            // Every rewound copy replays pg2's WAL from the fork on: pg2 keeps it.
            pg2.psql("ALTER SYSTEM SET wal_keep_size = '256MB'");
            if blocks_only {
                // Autovacuum may cut a table's empty last pages off (a file truncated).
                pg2.psql("ALTER SYSTEM SET autovacuum = off");
            }
            pg2.psql("SELECT pg_reload_conf()");
            source_ops.run(pg2);
        },
        |pg1| {
            if changes == Changes::BlocksOnly {
                pg1.psql("ALTER SYSTEM SET autovacuum = off");
                pg1.psql("SELECT pg_reload_conf()");
            }
            target_ops.run(pg1);
            if crashed {
                // Blocks changed after the target's own last checkpoint and written before
                // it is killed (so few buffers that the update evicts its own pages): only
                // its WAL past pg_control's checkpoint shows them.
                pg1.psql("ALTER SYSTEM SET shared_buffers = '256kB'");
                pg1.stop();
                pg1.start();
                pg1.psql("CHECKPOINT");
                // Then files made, dropped and cut short past that checkpoint too.
                pg1.psql_in(
                    "quiet",
                    "UPDATE quiet SET v = v + 1 WHERE id % 7 = 0;
                     CREATE TABLE late AS SELECT g FROM generate_series(1, 3000) g;
                     CREATE TABLE gone AS SELECT g FROM generate_series(1, 3000) g;
                     DROP TABLE gone;
                     DELETE FROM quiet WHERE id > 90000",
                );
                pg1.psql_in("quiet", "VACUUM quiet");
                quiet_file = pg1.psql_in("quiet", "SELECT pg_relation_filepath('quiet')");
            }
        },
        stop,
        if blocks_only {
            Source::AsPromotedLeftIt
        } else {
            Source::MakesT8
        },
    );
    if crashed {
        assert_eq!(lab.pg1.control_state(), "in production");
        assert_written_past_checkpoint(&lab.pg1, &quiet_file);
    }
    // Up to 15 a just-promoted source must have checkpointed (pgha does it too); then a
    // copy of its stopped data directory.
    lab.pg2.psql("CHECKPOINT");
    assert_workloads_covered(&lab, blocks_only);
    let copy_end = lsn(&lab.pg2.psql("SELECT pg_current_wal_lsn()"));
    lab.pg2.stop();
    let source_copy = Pg::standby_of(&lab.pg2, "pg2d");
    fs::remove_file(source_copy.data().join("standby.signal")).unwrap();
    lab.pg2.start();
    let server = format!("--source-server={}", conninfo(&lab.pg2));
    let from_dir = format!("--source-pgdata={}", source_copy.data().display());

    // The target copied: one copy per engine and source; pg_rewind on the original.
    let native = Pg::standby_of(&lab.pg1, "pg1n");
    let native_dir = Pg::standby_of(&lab.pg1, "pg1d");
    let pg_rewind_dir = Pg::standby_of(&lab.pg1, "pg1e");
    // What the source has written to its WAL files (not the insert position: bytes up to
    // that may still be in its WAL buffers).
    let first_rewind_lsn = lsn(&lab.pg2.psql("SELECT pg_current_wal_lsn()"));
    let xid_before = next_xid(&lab.pg2);
    let native_run = Run {
        engine: "native",
        crashed,
        changes,
    };
    let pg_rewind_run = Run {
        engine: "pg_rewind",
        ..native_run
    };
    rewind(&lab, &native, &native_run, &server);
    rewind(&lab, &native_dir, &native_run, &from_dir);
    rewind(&lab, &pg_rewind_dir, &pg_rewind_run, &from_dir);
    assert_eq!(
        next_xid(&lab.pg2),
        xid_before,
        "the native engine wrote to its source"
    );
    // What pg_rewind's own session may write to the source from here on (13) is newer.
    let before_pg_rewind = Before {
        first_rewind_lsn,
        lsn: lsn(&lab.pg2.psql("SELECT pg_current_wal_insert_lsn()")),
        end: first_rewind_lsn,
    };
    rewind(&lab, &lab.pg1, &pg_rewind_run, &server);
    // The premise of 13's rule in `explain`: its pg_rewind runs transactions on its source
    // (its temporary table); 14's reads only.
    assert_eq!(
        next_xid(&lab.pg2) > xid_before,
        major() == 13,
        "pg_rewind ran transactions on its source"
    );

    // Right after the rewinds, each native copy against pg_rewind's from the same source
    // (not after a crash, nor where the native engine fetched the blocks the source changed
    // up to its checkpoint: pg_rewind's copy gets them from replay).
    let stopped = Before {
        first_rewind_lsn: u64::MAX,
        lsn: u64::MAX,
        end: copy_end,
    };
    let right_after = if crashed || blocks_only {
        Vec::new()
    } else {
        vec![
            (&lab.pg1, &native, &before_pg_rewind),
            (&pg_rewind_dir, &native_dir, &stopped),
        ]
    };
    for (theirs, ours, before) in right_after {
        let count = assert_same_files(
            &files_of(theirs),
            &files_of(ours),
            &ours.node,
            before,
            (false, false),
        );
        eprintln!("{}: {count} files as pg_rewind left them", ours.node);
    }

    if major() == 13 {
        for pg in [&lab.pg1, &pg_rewind_dir] {
            put_back_pg_versions(pg, &native);
        }
    }

    // Replayed, every copy against pg_rewind's from the running source.
    let copies = [
        (&lab.pg1, "pg_rewind"),
        (&native, "native"),
        (&native_dir, "native, from the stopped source"),
        (&pg_rewind_dir, "pg_rewind, from the stopped source"),
    ];
    let expected = table_checksums(&lab.pg2);
    for (name, found) in recover_all(&lab, &copies) {
        assert_eq!(
            found, expected,
            "rows after replay on the copy rewound by {name}"
        );
    }
    for (pg, _) in copies {
        run(as_postgres(bin("pg_checksums"))
            .arg("--check")
            .arg("-D")
            .arg(pg.data()));
    }
    let theirs = files_of(&lab.pg1);
    for (pg, _) in &copies[1..] {
        let count = assert_same_files(
            &theirs,
            &files_of(pg),
            &pg.node,
            &stopped,
            (
                true,
                blocks_only && pg.node != lab.pg1.node && pg.node != pg_rewind_dir.node,
            ),
        );
        eprintln!("{}: {count} files as pg_rewind's after replay", pg.node);
    }
}

/// How a rewind of the suite runs, and what it must report.
#[derive(Clone, Copy)]
struct Run {
    engine: &'static str,
    /// The target was killed: pgha runs crash recovery before pg_rewind only.
    crashed: bool,
    /// What the workloads did: where the source changed blocks only, the native engine's
    /// replay starts at the source's checkpoint, else at the last common one; where both
    /// did, the server need not sync the data directory at start.
    changes: Changes,
}

/// Rewinds `pg` from `source` as `run` says, writing the standby configuration for the
/// lab's pg2; fails unless it rewound with that engine, after crash recovery when crashed
/// only for pg_rewind, and the native engine's replay starts where `run` says.
fn rewind(lab: &Lab, pg: &Pg, run: &Run, source: &str) {
    let Run {
        engine,
        crashed,
        changes,
    } = *run;
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let args = [
        source,
        "-R",
        "--node",
        &pg.node,
        &upstream,
        "--engine",
        engine,
        // A rewind, even where a re-clone of the small database would cost less.
        "--no-fallback",
    ];
    let (code, text, took) = pgha_rewind(pg, &args);
    assert_eq!(code, Some(0), "{engine} {source}: {text}");
    assert!(text.contains("rewound"), "{engine}: {text}");
    assert_eq!(
        text.contains("native rewind:"),
        engine == "native",
        "{engine} {source}: {text}"
    );
    assert_eq!(
        text.contains("crash recovery: ran first"),
        crashed && engine == "pg_rewind",
        "{engine} {source}: {text}"
    );
    if engine == "native" {
        let start = if changes != Changes::Everything {
            "replay from the source's checkpoint"
        } else {
            "replay from the last common checkpoint"
        };
        assert!(text.contains(start), "{engine} {source}: {text}");
    }
    // Where the native engine synced all the server would sync at start, it says so.
    let synced = engine == "native" && !text.contains("pg_control says \"in archive recovery\"");
    let state = match synced {
        true => "shut down in recovery",
        false => "in archive recovery",
    };
    assert_eq!(pg.control_state(), state, "{engine} {source}: {text}");
    if engine == "native" {
        match changes {
            Changes::Everything => assert!(!synced, "{source}: {text}"),
            Changes::BlocksOnly => assert!(synced, "{source}: {text}"),
            Changes::SourceBlocksOnly => {}
        }
    }
    eprintln!("{engine} {source}: rewound in {took:?}");
}

/// The premise of the crashed run: the killed target's `file` holds pages written after its
/// last checkpoint's redo point, which only its WAL past pg_control's checkpoint describes.
#[track_caller]
fn assert_written_past_checkpoint(pg: &Pg, file: &str) {
    let redo = lsn(&pg.control_field("Latest checkpoint's REDO location"));
    let bytes = fs::read(pg.data().join(file)).unwrap();
    let newest = bytes.chunks(BLOCK).map(page_lsn).max().unwrap_or(0);
    assert!(
        newest > redo,
        "{file}: no page written after the checkpoint at {redo:#X} (newest page LSN {newest:#X})"
    );
}

/// Whether `pg`'s pg_control says data checksums are on.
fn checksums_on(pg: &Pg) -> bool {
    pg.control_field("Data page checksum version") != "0"
}

/// What the workloads must have made on both sides, lest the suite prove less than it says:
/// multixacts, a prepared transaction left open (but where the source changes blocks only:
/// preparing takes a table of its own), visibility-map and free-space-map forks.
fn assert_workloads_covered(lab: &Lab, blocks_only: bool) {
    let multixacts = "Latest checkpoint's NextMultiXactId";
    for pg in [&lab.pg1, &lab.pg2] {
        let next: u64 = pg.control_field(multixacts).parse().unwrap();
        assert!(next > 1, "{}: no multixact made", pg.node);
    }
    if !blocks_only {
        assert_ne!(lab.pg2.psql("SELECT count(*) FROM pg_prepared_xacts"), "0");
    }
    for fork in ["vm", "fsm"] {
        let tables = lab.pg2.psql(&format!(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND pg_relation_size(oid, '{fork}') > 0"
        ));
        assert_ne!(tables, "0", "no table of pg2's has a {fork} fork");
    }
}

/// Where the source's WAL was before the first rewind and before pg_rewind's (`u64::MAX`:
/// a stopped source, which does not move), and where it ended at most when the native
/// engine listed it.
struct Before {
    first_rewind_lsn: u64,
    lsn: u64,
    end: u64,
}

/// The next transaction id `pg` will assign (asking assigns none).
fn next_xid(pg: &Pg) -> u64 {
    pg.psql("SELECT txid_snapshot_xmax(txid_current_snapshot())")
        .parse()
        .unwrap()
}

/// A page's LSN (`pd_lsn`, its first 8 bytes).
fn page_lsn(page: &[u8]) -> u64 {
    let word = |at: usize| u64::from(u32::from_le_bytes(page[at..at + 4].try_into().unwrap()));
    (word(0) << 32) | word(4)
}

/// Every file of `pg`'s data directory (relative path → bytes) but those pg_rewind never
/// copies and pg_control, which each engine writes with its own times; the `START TIME`
/// line of the backup label (and of its `.old` after replay) left out for the same reason,
/// and the node's own name (`application_name` in `primary_conninfo`) made the same.
fn files_of(pg: &Pg) -> BTreeMap<String, Vec<u8>> {
    let datadir = pg.data();
    let own_name = format!("application_name={}", pg.node);
    let mut out = BTreeMap::new();
    walk(&datadir, &datadir, &mut out);
    let auto = out
        .get_mut("postgresql.auto.conf")
        .expect("postgresql.auto.conf");
    *auto = String::from_utf8_lossy(auto)
        .replace(&own_name, "application_name=NODE")
        .into_bytes();
    return out;

    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let label = rel == "backup_label" || rel == "backup_label.old";
            if path.is_dir() {
                walk(base, &path, out);
            } else if label {
                let text = fs::read_to_string(&path).unwrap();
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with("START TIME:"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                out.insert(rel, kept.into_bytes());
            } else if rel != "global/pg_control" && !is_excluded(&rel) {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
}

/// The blocks in which two versions of a file differ, and their lengths.
fn describe(a: Option<&Vec<u8>>, b: Option<&Vec<u8>>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let blocks: Vec<usize> = (0..a.len().max(b.len()).div_ceil(BLOCK))
                .filter(|n| a.chunks(BLOCK).nth(*n) != b.chunks(BLOCK).nth(*n))
                .collect();
            format!(
                "{} and {} bytes, blocks {blocks:?} differ",
                a.len(),
                b.len()
            )
        }
        (a, _) => format!(
            "only after {}",
            if a.is_some() {
                "pg_rewind"
            } else {
                "the native engine"
            }
        ),
    }
}

/// The rule of pg_rewind's by which `path` may differ between its copy (`theirs`) and the
/// native engine's (`ours`) right after the rewinds, when it holds; `None` otherwise.
/// After replay no rule applies: the files must be equal.
fn explain(
    path: &str,
    theirs: Option<&Vec<u8>>,
    ours: Option<&Vec<u8>>,
    before: &Before,
) -> Option<&'static str> {
    if let (Some(_), None, Some(start)) = (theirs, ours, wal_segment_start(path)) {
        return (start > before.end).then_some(
            "a WAL segment the source had recycled ahead of its end of WAL when the native \
             engine listed it: pg_rewind copies it whole, the native engine leaves it out \
             (recovery reads none of it)",
        );
    }
    if let (Some(a), Some(b), Some(start)) = (theirs, ours, wal_segment_start(path)) {
        // Bytes of WAL the running source wrote while the engines ran one after the other
        // (its bgwriter logs the running transactions every 15 s).
        let first_differing = a.iter().zip(b).position(|(x, y)| x != y)? as u64;
        return (a.len() == b.len() && start + first_differing >= before.first_rewind_lsn)
            .then_some(
                "a running source writes WAL while the engines run one after the other, and \
             pg_rewind copies every WAL file whole: the bytes differ only past where the \
             source had written its WAL to when the first rewind began",
            );
    }
    if major() != 13 {
        return None;
    }
    match (theirs, ours) {
        (None, Some(_)) if path.ends_with("/PG_VERSION") => Some(
            "13's pg_rewind never copies a PG_VERSION, even of a database only the source \
             has (filemap.c gives a name ending in PG_VERSION no action; 14 copies it): \
             unless replay recreates the database, that database is lost \
             (`put_back_pg_versions`)",
        ),
        (Some(a), Some(b)) if a.len() == b.len() && a.len() % BLOCK == 0 => a
            .chunks(BLOCK)
            .zip(b.chunks(BLOCK))
            .filter(|(x, y)| x != y)
            .all(|(x, y)| page_lsn(x) > before.lsn && page_lsn(y) <= before.lsn)
            .then_some(
                "13's pg_rewind writes to its source before it fetches (CREATE TEMPORARY TABLE \
                 fetchchunks, libpq_fetch.c, in the database it connects to): every block that \
                 differs carries, in pg_rewind's copy only, a page LSN the source wrote after \
                 pg_rewind started; the native engines read the source before (seen only \
                 when the source's background writer flushes those pages while pg_rewind runs)",
            ),
        _ => None,
    }
}

/// 13's pg_rewind leaves out the PG_VERSION of a database the target lacks (see
/// [`explain`]); when the database was created before the last common checkpoint, replay
/// does not write it again and the database refuses connections ("is not a valid data
/// directory"). Puts back in `pg`, rewound by pg_rewind, the PG_VERSION files the native
/// engine's copy `native` has, so that both are compared after replay.
fn put_back_pg_versions(pg: &Pg, native: &Pg) {
    for entry in fs::read_dir(native.data().join("base")).unwrap() {
        let db = entry.unwrap().file_name();
        let (theirs, ours) = (
            pg.data().join("base").join(&db),
            native.data().join("base").join(&db).join("PG_VERSION"),
        );
        if theirs.is_dir() && !theirs.join("PG_VERSION").exists() {
            fs::copy(&ours, theirs.join("PG_VERSION")).unwrap();
            crate::pg::chown_postgres(&theirs.join("PG_VERSION"));
            eprintln!(
                "13: put back base/{}/PG_VERSION in {}",
                db.to_string_lossy(),
                pg.node
            );
        }
    }
}

/// Whether a file is left out of the comparison after replay, and why.
fn not_compared_after_replay(path: &str) -> bool {
    // Each standby's own WAL: streamed, recycled and preallocated at its own pace; and the
    // statistics it writes when it stops (its own reads, its own times).
    path.starts_with("pg_wal/") || path.starts_with("pg_stat/")
}

/// Where the native engine's replay started at the source's checkpoint, it took from the
/// source's disk the pages the source changed before it, where pg_rewind's copy replayed
/// them: after replay, those may differ by what the source's server wrote without WAL.
fn explain_source_pages(
    path: &str,
    theirs: Option<&Vec<u8>>,
    ours: Option<&Vec<u8>>,
) -> Option<&'static str> {
    let (theirs, ours) = (theirs?, ours?);
    if path == "backup_label.old" {
        return Some("the label names where replay started: the source's checkpoint");
    }
    if path.ends_with("_fsm") {
        return Some("the free-space map, written without WAL: the source's, as it was");
    }
    let relation = path.starts_with("base/") || path.starts_with("global/");
    (relation
        && theirs.len() == ours.len()
        && theirs
            .chunks(BLOCK)
            .zip(ours.chunks(BLOCK))
            .all(|(a, b)| mask::equal_masked(a, b)))
    .then_some(
        "pages the source changed before its checkpoint, taken from its disk: equal once \
         masked as PostgreSQL's consistency checks of replay mask what a server writes \
         without WAL (hint bits, LP_DEAD, the page LSN)",
    )
}

/// Fails unless `ours` holds the files of `theirs` (pg_rewind's copy), each equal or
/// differing by a rule of [`explain`] (right after the rewinds only), or after replay by
/// one of [`explain_source_pages`] where `source_pages`.
fn assert_same_files(
    theirs: &BTreeMap<String, Vec<u8>>,
    ours: &BTreeMap<String, Vec<u8>>,
    node: &str,
    before: &Before,
    (after_replay, source_pages): (bool, bool),
) -> usize {
    let mut explained: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let paths: std::collections::BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for path in paths {
        let (a, b) = (theirs.get(path), ours.get(path));
        if a == b || after_replay && not_compared_after_replay(path) {
            continue;
        }
        let rule = if after_replay {
            source_pages
                .then(|| explain_source_pages(path, a, b))
                .flatten()
        } else {
            explain(path, a, b, before)
        };
        match rule {
            Some(rule) => explained.entry(rule).or_default().push(path),
            None => unexplained.push(format!("{path}: {}", describe(a, b))),
        }
    }
    let when = if after_replay {
        "after replay"
    } else {
        "right after the rewinds"
    };
    for (rule, paths) in &explained {
        eprintln!(
            "{when}: {} files differ by a rule: {rule}: {paths:?}",
            paths.len()
        );
    }
    assert!(
        unexplained.is_empty(),
        "{when}, files that differ between pg_rewind's copy and {node}, by no rule of \
         pg_rewind's: {unexplained:#?}\nexplained: {explained:#?}"
    );
    theirs.len()
}

/// Starts every copy as a standby of the lab's pg2, waits until each replayed all pg2 has,
/// checks it with amcheck and reads its rows, then stops it; returns the rows of each.
///
/// The files a standby leaves when it stops are those of its last restartpoint plus what
/// it happened to write since: a standby stopping with no checkpoint record replayed since
/// its last restartpoint skips the shutdown one and leaves its dirty buffers unwritten
/// ("skipping restartpoint, already performed"). So pg2 checkpoints, each standby replays
/// that checkpoint and makes its restartpoint (CHECKPOINT on a standby) before anything
/// reads it: every page replay changed is on disk, and reads dirty nothing more (hint bits
/// set during recovery never dirty a page with checksums on).
fn recover_all<'a>(lab: &Lab, copies: &[(&Pg, &'a str)]) -> Vec<(&'a str, String)> {
    for (pg, _) in copies {
        pg.start();
        lab.pg2.wait_streaming(&pg.node);
    }
    lab.pg2.psql("CHECKPOINT");
    let end = lab.pg2.psql("SELECT pg_current_wal_lsn()");
    copies
        .iter()
        .map(|(pg, name)| {
            pg.wait_replayed(&format!("{} replays to {end}", pg.node), &end);
            pg.psql("CHECKPOINT");
            amcheck(pg);
            let rows = table_checksums(pg);
            pg.stop();
            (*name, rows)
        })
        .collect()
}

/// Databases that take connections.
fn databases(pg: &Pg) -> Vec<String> {
    pg.psql("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every permanent table of every database (and the large objects), as its row count and
/// the md5 of its rows in order. Unlogged tables cannot be read on a standby, and sequences
/// read there show the value they logged ahead: those are compared as files.
fn table_checksums(pg: &Pg) -> String {
    let mut all = String::new();
    for db in databases(pg) {
        let tables = pg.psql_in(
            &db,
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'm') AND c.relpersistence = 'p' \
             AND ((n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%') OR c.relname = 'pg_largeobject') \
             ORDER BY 1",
        );
        let query = tables
            .lines()
            .map(|t| {
                format!(
                    "SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY \
                     x::text), '')) FROM {t} x"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
            + " ORDER BY 1";
        all += &format!("{db}:\n{}\n", pg.psql_in(&db, &query));
    }
    all
}

/// amcheck on every database of a running standby: `pg_amcheck --heapallindexed` (heap
/// and B-tree checks) from 14; on 13, which has neither pg_amcheck nor heap checks,
/// `bt_index_check(index, heapallindexed => true)` on every B-tree.
fn amcheck(pg: &Pg) {
    if major() >= 14 {
        run(as_postgres(bin("pg_amcheck"))
            .arg("-h")
            .arg(pg.sock())
            .args(["-p", &pg.port.to_string(), "-U", "postgres"])
            .args(["--all", "--heapallindexed"]));
        return;
    }
    for db in databases(pg) {
        let checked = pg.psql_in(
            &db,
            "SELECT count(*) FROM (SELECT bt_index_check(c.oid, true) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
             WHERE a.amname = 'btree' AND c.relpersistence = 'p' AND i.indisvalid \
             AND i.indisready) checked",
        );
        assert_ne!(checked, "0", "no B-tree checked in {db}");
    }
}

/// The native engine does not rewind tablespaces: it hands over to pg_rewind, before
/// changing anything, and says so.
#[test]
fn native_engine_hands_tablespaces_over_to_pg_rewind() {
    let lab = crate::pg::lab(
        |_| {},
        |_| {},
        |pg1| {
            let location = pg1.root().join("ts_old");
            fs::create_dir(&location).unwrap();
            crate::pg::chown_postgres(&location);
            pg1.psql(&format!(
                "CREATE TABLESPACE ts_old LOCATION '{}'",
                location.display()
            ));
            pg1.psql("CREATE TABLE in_ts (v int) TABLESPACE ts_old; INSERT INTO in_ts VALUES (1)");
        },
        Stop::Clean,
    );
    lab.pg2.psql("CHECKPOINT");
    let server = format!("--source-server={}", conninfo(&lab.pg2));
    let upstream = format!("--primary-conninfo={}", conninfo(&lab.pg2));
    let (code, text, _) = pgha_rewind(
        &lab.pg1,
        &[
            &server,
            "-R",
            "--node",
            "pg1",
            &upstream,
            "--engine",
            "native",
            "--no-fallback",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("the native engine hands over to pg_rewind: pg_tblspc/")
            && text.contains("is a tablespace or a link"),
        "{text}"
    );
    assert!(!text.contains("native rewind:"), "{text}");
    assert!(text.contains("rewound"), "{text}");
    assert!(
        fs::read_dir(lab.pg1.data().join("pg_tblspc"))
            .unwrap()
            .next()
            .is_none(),
        "pg_rewind left the tablespace the source does not have"
    );
}

/// The native engine reads the source on a second connection too: that one must reach the
/// server the first one did. A connection string that lists two primaries, one picked at
/// random each time, reaches the other one about half the time: refused then, never used.
#[test]
fn second_connection_to_another_server_is_refused() {
    use pgha::deadline::Deadline;
    use pgha::rewind::source::SourceSession;
    let (a, b) = (Pg::primary("pga"), Pg::primary("pgb"));
    a.start();
    b.start();
    let conninfo = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?load_balance_hosts=random",
        a.port, b.port
    );
    let deadline = Deadline::after(std::time::Duration::from_secs(60));
    let first = SourceSession::connect(&conninfo, None, &deadline).unwrap();
    let (mut same, mut refused) = (0, 0);
    for _ in 0..40 {
        match first.another(&deadline) {
            Ok(_) => same += 1,
            Err(e) => {
                assert!(e.to_string().contains("reached another server"), "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        same > 0 && refused > 0,
        "{same} reached the same server, {refused} another"
    );
}

/// Found by the soak (seed 6606, December 7): a standby promoted, then cut off and killed
/// before its first checkpoint as a primary completed, while its own standby was promoted in
/// turn. On disk it holds only what its last restartpoint wrote, older than the last common
/// checkpoint (the old primary's, which it replayed). The native engine rewinds such a
/// target without crash recovery (it shares its timeline with the source) and fetched only
/// the blocks changed from the last common checkpoint on, where replay starts: the rows
/// written between the two were lost on the rewound node (7,400 acknowledged rows; here, 322
/// rows of 20,100 left).
#[test]
fn soak_6606_blocks_changed_before_the_last_common_checkpoint_of_a_crashed_target_are_fetched() {
    let a = Pg::primary("losta");
    a.start();
    a.psql("CREATE TABLE t (id int, pad text)");
    let b = Pg::base_backup_of(&a, "lostb");
    // No restartpoint, no page written but by a checkpoint, which never ends in time.
    for line in [
        "checkpoint_timeout = '1h'",
        "max_wal_size = '4GB'",
        "bgwriter_lru_maxpages = 0",
    ] {
        b.conf(line);
    }
    b.start();
    let c = Pg::base_backup_of(&a, "lostc");
    c.start();
    a.psql("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g");
    a.psql("CHECKPOINT");
    let end = a.psql("SELECT pg_current_wal_lsn()");
    b.wait_replayed("lostb replays the rows and the checkpoint", &end);
    c.wait_replayed("lostc replays the rows and the checkpoint", &end);
    a.stop();
    b.promote();
    c.conf(&format!(
        "primary_conninfo = '{} application_name=lostc'",
        conninfo(&b)
    ));
    c.stop();
    c.start();
    b.wait_streaming("lostc");
    c.promote();
    b.psql("INSERT INTO t VALUES (-1, 'only on lostb')");
    b.kill9();
    c.psql("INSERT INTO t SELECT g, 'after' FROM generate_series(20001, 20100) g");
    assert_eq!(b.control_state(), "in production");
    let own_redo = lsn(&b.control_field("Latest checkpoint's REDO location"));
    let common = lsn(&a.control_field("Latest checkpoint's REDO location"));
    assert!(
        own_redo < common,
        "premise: lostb's own checkpoint ({own_redo:#X}) is older than the common one ({common:#X})"
    );
    let server = format!("--source-server={}", conninfo(&c));
    let upstream = format!("--primary-conninfo={}", conninfo(&c));
    let args = [
        server.as_str(),
        "-R",
        "--node",
        &b.node,
        &upstream,
        "--engine",
        "native",
        "--no-fallback",
    ];
    let (code, text, _) = pgha_rewind(&b, &args);
    assert_eq!(code, Some(0), "{text}");
    // Its WAL from its own checkpoint is on the timeline before: the native engine does not
    // read it yet, and has pgha run crash recovery first instead of skipping it.
    assert!(text.contains("native rewind:"), "{text}");
    b.start();
    let end = c.psql("SELECT pg_current_wal_lsn()");
    b.wait_replayed("lostb replays as a standby of lostc", &end);
    let count = "SELECT count(*), sum(id) FROM t";
    assert_eq!(b.psql(count), c.psql(count), "{text}");
}
