//! What a native rewind would do (`rewind::check_in_full`'s native view: the target's changes read
//! from its WAL, and the file map over both listings) against pg_rewind's own plan: on the
//! lab, `pg_rewind --dry-run --debug` lists every path it acts on with its action and the
//! blocks it fetches back; the native map must list the same, path for path and block for
//! block. The differences pg_rewind's version explains: 13's pg_rewind copies pg_control
//! like any file and removes the WAL recovery needs (the keepwal fix came in 14.15), the
//! native map does neither; 19's lists the WAL segments it spares, with no action.

use std::collections::BTreeSet;
use std::path::Path;

use pgha::rewind::filemap::Action;

use super::{conninfo, deadline, instance, settings, source};
use crate::pg::{as_postgres, bin, bindir, lab, major, run, Stop};

/// How pg_rewind's debug file map ends a file's line: `path (ACTION)`.
const FILE_ACTIONS: [&str; 6] = ["CREATE", "COPY", "COPY_TAIL", "NONE", "TRUNCATE", "REMOVE"];

/// One line of the plan: a path and its action, or a block of a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Line {
    File(String, String),
    Block(String, u32),
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "CREATE",
        Action::Copy => "COPY",
        Action::CopyTail => "COPY_TAIL",
        Action::None => "NONE",
        Action::Truncate => "TRUNCATE",
        Action::Remove => "REMOVE",
    }
}

/// pg_rewind's plan: the file lines of its debug file map and the `block N` lines under
/// them.
fn pg_rewind_plan(target: &Path, source_conninfo: &str) -> BTreeSet<Line> {
    let out = run(as_postgres(bin("pg_rewind"))
        .args(["--dry-run", "--debug", "--target-pgdata"])
        .arg(target)
        .arg(format!("--source-server={source_conninfo}")));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let mut file = None;
    let mut plan = BTreeSet::new();
    for line in text.lines() {
        // "pg_rewind: " then, from some majors on, "debug: ".
        let Some(message) = line.strip_prefix("pg_rewind: ") else {
            continue;
        };
        let message = message.strip_prefix("debug: ").unwrap_or(message);
        if let Some(n) = message.strip_prefix("block ") {
            let path: &String = file.as_ref().expect("a block line before any file line");
            plan.insert(Line::Block(path.clone(), n.trim().parse().unwrap()));
        } else if let Some((path, action)) = message
            .strip_suffix(')')
            .and_then(|m| m.rsplit_once(" ("))
            .filter(|(_, action)| FILE_ACTIONS.contains(action))
        {
            file = Some(path.to_string());
            plan.insert(Line::File(path.into(), action.into()));
        }
    }
    assert!(
        text.contains("Done!"),
        "pg_rewind --dry-run failed:\n{text}"
    );
    plan
}

#[test]
fn native_file_map_and_blocks_are_pg_rewinds_plan() {
    let lab = lab(
        |_| {},
        // The source's copy of t6 grows past the target's: none of the target's t6 blocks is
        // past the end of the shorter copy.
        |pg2| {
            pg2.psql("INSERT INTO t6 SELECT g FROM generate_series(1, 40000) g");
        },
        |pg1| {
            pg1.psql("INSERT INTO t6 SELECT g FROM generate_series(1, 5000) g");
            pg1.psql("UPDATE t6 SET c1 = c1 + 1 WHERE c1 % 3 = 0");
            pg1.psql("CREATE INDEX t6_c1 ON t6 (c1)");
            pg1.psql("VACUUM t6");
            pg1.psql("CHECKPOINT");
            pg1.psql("DELETE FROM t6 WHERE c1 % 5 = 0");
        },
        Stop::Clean,
    );
    // Up to 15 a just-promoted source must have checkpointed (the agent does it too).
    lab.pg2.psql("CHECKPOINT");
    let source_end = super::lsn(&lab.pg2.psql("SELECT pg_current_wal_lsn()"));
    let check = pgha::rewind::check_in_full(
        &instance(&lab.pg1, bindir()),
        &source(&lab.pg2),
        &settings(&lab.pg2),
        &deadline(),
    )
    .unwrap();
    let native = match check.native {
        Some(Ok(native)) => native,
        other => panic!("no native view: {other:?}"),
    };
    eprintln!("native: {}; {}", native.changes, native.map);
    let mut ours = BTreeSet::new();
    for entry in native.map.plan() {
        ours.insert(Line::File(
            entry.path.clone(),
            action_name(entry.action).into(),
        ));
        for &block in &entry.blocks {
            ours.insert(Line::Block(entry.path.clone(), block));
        }
    }
    let mut theirs = pg_rewind_plan(&lab.pg1.data(), &conninfo(&lab.pg2));
    // Lines that carry no work: 19 lists the WAL segments it spares as "(NONE)".
    let idle = |path: &str| {
        native
            .map
            .entries
            .iter()
            .any(|e| e.path == path && e.action == Action::None && e.blocks.is_empty())
    };
    let blockless: BTreeSet<String> = theirs
        .iter()
        .filter_map(|l| match l {
            Line::File(p, a) if a == "NONE" => Some(p.clone()),
            _ => None,
        })
        .filter(|p| {
            !theirs
                .iter()
                .any(|l| matches!(l, Line::Block(b, _) if b == p))
        })
        .collect();
    theirs.retain(|l| !matches!(l, Line::File(p, _) if blockless.contains(p) && idle(p)));
    // The segments the source recycled ahead of its end of WAL: pg_rewind copies them, the
    // native map leaves them out.
    let recycled: Vec<Line> = theirs
        .iter()
        .filter(|l| match l {
            Line::File(p, a) => {
                a == "COPY"
                    && super::wal_segment_start(p).is_some_and(|start| start > source_end)
                    && !ours.contains(l)
            }
            Line::Block(..) => false,
        })
        .cloned()
        .collect();
    eprintln!("recycled WAL segments pg_rewind copies and the native map leaves out: {recycled:?}");
    theirs.retain(|l| !recycled.contains(l));
    if major() == 13 {
        // 13's pg_rewind copies pg_control like any file (then rewrites it), and removes
        // the WAL recovery needs.
        theirs.retain(|l| match l {
            Line::File(p, a) if p == "global/pg_control" => a != "COPY",
            Line::File(p, a) if p.starts_with("pg_wal/") && a == "REMOVE" => ours.contains(l),
            _ => true,
        });
    }
    let blocks = theirs
        .iter()
        .filter(|l| matches!(l, Line::Block(..)))
        .count();
    assert!(
        blocks > 20,
        "too few changed blocks to prove anything: {theirs:?}"
    );
    assert!(
        theirs
            .iter()
            .any(|l| matches!(l, Line::Block(p, _) if p.starts_with("base/"))),
        "no block of a user relation: {theirs:?}"
    );
    assert_eq!(
        ours.difference(&theirs).collect::<Vec<_>>(),
        Vec::<&Line>::new(),
        "in the native plan, not in pg_rewind's"
    );
    assert_eq!(
        theirs.difference(&ours).collect::<Vec<_>>(),
        Vec::<&Line>::new(),
        "in pg_rewind's plan, not in the native one"
    );
    eprintln!(
        "{} lines of pg_rewind's plan, {blocks} of them blocks",
        theirs.len()
    );
}
