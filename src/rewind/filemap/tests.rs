use super::*;
use crate::rewind::changes::TargetChanges;

const TS_DIR: &str = "PG_15_202209061";

fn rel(tablespace: u32, database: u32, number: u32) -> Relation {
    Relation {
        tablespace,
        database,
        number,
    }
}

fn file(path: &str, size: u64) -> FileEntry {
    FileEntry {
        path: path.into(),
        file_type: FileType::Regular,
        size,
    }
}

fn dir(path: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        file_type: FileType::Directory,
        size: 0,
    }
}

fn rules() -> Rules {
    Rules {
        tablespace_dir: TS_DIR.into(),
        ..Rules::default()
    }
}

fn action_of(map: &FileMap, path: &str) -> Action {
    map.entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} not in the map"))
        .action
}

#[test]
fn relation_files_are_main_fork_segments_of_the_three_places() {
    let cases: &[(&str, Option<(Relation, u32)>)] = &[
        ("global/1262", Some((rel(1664, 0, 1262), 0))),
        ("base/5/16384", Some((rel(1663, 5, 16384), 0))),
        ("base/5/16384.2", Some((rel(1663, 5, 16384), 2))),
        (
            "pg_tblspc/16500/PG_15_202209061/5/16390",
            Some((rel(16500, 5, 16390), 0)),
        ),
        // Another major's directory in the same tablespace.
        ("pg_tblspc/16500/PG_16_202307071/5/16390", None),
        ("base/5/16384_fsm", None),
        ("base/5/16384_vm", None),
        ("base/5/16384_init", None),
        ("base/5/t3_16384", None),
        ("base/5/PG_VERSION", None),
        ("base/5/1234.foo", None),
        ("base/5/01234", None),
        ("base/5/16384.01", None),
        ("base/5/99999999999", None),
        ("base/5", None),
        ("global/pg_control", None),
        ("pg_wal/000000010000000000000003", None),
    ];
    for (path, expected) in cases {
        assert_eq!(relation_file(path, TS_DIR), *expected, "{path}");
    }
}

#[test]
fn excluded_paths_are_pg_rewinds() {
    let cases: &[(&str, bool)] = &[
        ("pg_replslot/slot1/state", true),
        ("pg_replslot", false),
        ("pg_stat_tmp/global.stat", true),
        ("pg_subtrans/0000", true),
        ("pg_dynshmem/mmap.1", true),
        ("postmaster.pid", true),
        ("postmaster.opts", true),
        ("backup_label", true),
        ("backup_manifest", true),
        ("tablespace_map", true),
        ("base/5/pg_internal.init", true),
        ("global/pg_internal.init.123", true),
        ("current_logfiles.tmp", true),
        ("postgresql.auto.conf.tmp", true),
        ("base/pgsql_tmp/pgsql_tmp1.0", true),
        ("base/5/pgsql_tmp12", true),
        ("backup_label.old", false),
        ("postgresql.auto.conf", false),
        ("pg_xact/0000", false),
        ("pg_replslotx/a", false),
        ("base/5/16384", false),
    ];
    for (path, expected) in cases {
        assert_eq!(is_excluded(path), *expected, "{path}");
    }
}

#[test]
fn each_path_gets_pg_rewinds_action() {
    let source = vec![
        dir("base"),
        dir("base/5"),
        file("base/5/PG_VERSION", 3),
        file("base/5/100", 8192 * 4),  // target larger: truncate
        file("base/5/101", 8192 * 4),  // target smaller: tail
        file("base/5/102", 8192 * 4),  // same: none
        file("base/5/102_fsm", 24576), // other fork: copy
        file("base/5/103", 8192),      // source only: copy
        dir("base/6"),                 // source only: create
        file("pg_xact/0000", 8192),    // not a relation: copy
        file("global/pg_control", 8192),
        file("postgresql.conf", 100),
    ];
    let target = vec![
        dir("base"),
        dir("base/5"),
        file("base/5/PG_VERSION", 3),
        file("base/5/100", 8192 * 6),
        file("base/5/101", 8192 * 2),
        file("base/5/102", 8192 * 4),
        file("base/5/102_fsm", 24576),
        file("base/5/104", 8192), // target only: remove
        file("pg_xact/0000", 8192),
        file("global/pg_control", 8192),
        file("postgresql.conf", 100),
        file("postmaster.pid", 80), // excluded, on target: remove
        file("pg_wal/000000010000000000000002", 1 << 24), // kept for recovery
        file("pg_wal/000000010000000000000001", 1 << 24), // target only: remove
    ];
    let rules = Rules {
        keep_wal: ["pg_wal/000000010000000000000002".to_owned()].into(),
        ..rules()
    };
    let map = build(source, target, &Blocks::new(), &rules).unwrap();
    let expected = [
        ("base", Action::None),
        ("base/5/PG_VERSION", Action::None),
        ("base/5/100", Action::Truncate),
        ("base/5/101", Action::CopyTail),
        ("base/5/102", Action::None),
        ("base/5/102_fsm", Action::Copy),
        ("base/5/103", Action::Copy),
        ("base/5/104", Action::Remove),
        ("base/6", Action::Create),
        ("pg_xact/0000", Action::Copy),
        ("global/pg_control", Action::None),
        ("postgresql.conf", Action::Copy),
        ("postmaster.pid", Action::Remove),
        ("pg_wal/000000010000000000000002", Action::None),
        ("pg_wal/000000010000000000000001", Action::Remove),
    ];
    for (path, action) in expected {
        assert_eq!(action_of(&map, path), action, "{path}");
    }
    // Copies: fsm 24576 + 103's 8192 + pg_xact 8192 + postgresql.conf 100; 101's tail 16384.
    assert_eq!(map.bytes_to_fetch(), 24576 + 8192 + 8192 + 100 + 16384);
}

#[test]
fn changed_blocks_inside_both_copies_are_fetched_the_rest_left_to_the_file_rules() {
    let mut changes = TargetChanges::default();
    let big = rel(1663, 5, 100);
    // Blocks 1 and 3 of the first segment file, 131072 + 2 = block 2 of the second.
    changes.blocks.insert(big, [1, 3, 131_074].into());
    changes.blocks.insert(rel(1663, 5, 200), [0].into()); // only on the target
    let source = vec![
        file("base/5/100", 8192 * 131_072),
        file("base/5/100.1", 8192 * 2),
    ];
    let target = vec![
        file("base/5/100", 8192 * 131_072),
        file("base/5/100.1", 8192 * 5),
        file("base/5/200", 8192),
    ];
    let map = build(source, target, &changes.blocks, &rules()).unwrap();
    let blocks = |path: &str| {
        let entry = map.entries.iter().find(|e| e.path == path).unwrap();
        entry.blocks.iter().copied().collect::<Vec<_>>()
    };
    assert_eq!(blocks("base/5/100"), [1, 3]);
    // Block 2 of .1 is past the source's 2 blocks: the truncation covers it.
    assert_eq!(blocks("base/5/100.1"), Vec::<u32>::new());
    assert_eq!(action_of(&map, "base/5/100.1"), Action::Truncate);
    assert_eq!(blocks("base/5/200"), Vec::<u32>::new());
    assert_eq!(action_of(&map, "base/5/200"), Action::Remove);
    assert_eq!(map.bytes_to_fetch(), 2 * BLOCK_SIZE);
}

#[test]
fn nineteens_pg_rewind_spares_same_size_wal_before_the_forks_segment() {
    let wal = |name: &str, size| file(&format!("pg_wal/{name}"), size);
    let source = vec![
        wal("000000010000000000000003", 1 << 24),
        wal("000000010000000000000004", 1 << 24),
        wal("000000020000000000000005", 1 << 24),
        wal("000000010000000000000002", 1 << 24),
    ];
    let target = vec![
        wal("000000010000000000000003", 1 << 24),
        wal("000000010000000000000004", 1 << 24),
        wal("000000010000000000000002", 1 << 20),
    ];
    let before_19 = build(source.clone(), target.clone(), &Blocks::new(), &rules()).unwrap();
    let rules_19 = Rules {
        skip_wal_before: Some("0000000000000004".into()),
        ..rules()
    };
    let on_19 = build(source, target, &Blocks::new(), &rules_19).unwrap();
    let name = |n: &str| format!("pg_wal/{n}");
    assert_eq!(
        action_of(&before_19, &name("000000010000000000000003")),
        Action::Copy
    );
    assert_eq!(
        action_of(&on_19, &name("000000010000000000000003")),
        Action::None
    );
    // The fork's own segment, and one of another size, are copied.
    assert_eq!(
        action_of(&on_19, &name("000000010000000000000004")),
        Action::Copy
    );
    assert_eq!(
        action_of(&on_19, &name("000000010000000000000002")),
        Action::Copy
    );
    assert_eq!(
        action_of(&on_19, &name("000000020000000000000005")),
        Action::Copy
    );
}

#[test]
fn native_leaves_out_wal_the_source_recycled_past_its_end() {
    let wal = |name: &str| file(&format!("pg_wal/{name}"), 1 << 24);
    let source = vec![
        wal("000000020000000000000005"), // the fork's segment, on the new timeline
        wal("000000020000000000000006"), // the source's end is in it
        wal("000000020000000000000007"), // recycled ahead of the end
        wal("000000020000000000000008"), // recycled ahead, and the target has one too
        file("pg_wal/00000002.history", 42),
        dir("pg_wal/archive_status"),
    ];
    let target = vec![
        wal("000000010000000000000005"),
        wal("000000020000000000000008"),
    ];
    let rules = Rules {
        skip_wal_before: Some("0000000000000005".into()),
        skip_wal_after: Some("0000000000000006".into()),
        ..rules()
    };
    let map = build(source, target, &Blocks::new(), &rules).unwrap();
    let table = [
        ("000000020000000000000005", Action::Copy),
        ("000000020000000000000006", Action::Copy),
        ("000000020000000000000007", Action::None),
        ("000000020000000000000008", Action::Remove),
        ("000000010000000000000005", Action::Remove),
        ("00000002.history", Action::Copy),
        ("archive_status", Action::Create),
    ];
    for (name, action) in table {
        assert_eq!(action_of(&map, &format!("pg_wal/{name}")), action, "{name}");
    }
    assert_eq!(map.bytes_to_fetch(), 2 * (1 << 24) + 42);
}

#[test]
fn native_copies_no_source_wal_older_than_where_replay_starts() {
    let wal = |name: &str| file(&format!("pg_wal/{name}"), 1 << 24);
    let source = vec![
        wal("000000010000000000000004"), // common, before the fork
        wal("000000020000000000000005"), // the fork's segment, on the new timeline
        wal("000000020000000000000006"), // the source's checkpoint's redo point is in it
        wal("000000020000000000000007"),
        file("pg_wal/000000010000000000000005.partial", 1 << 24),
        file("pg_wal/00000002.history", 42),
    ];
    let target = vec![
        wal("000000010000000000000004"),
        wal("000000010000000000000005"),
    ];
    let rules = Rules {
        skip_wal_before: Some("0000000000000005".into()),
        skip_source_wal_before: Some("0000000000000006".into()),
        keep_wal: BTreeSet::from(["pg_wal/000000010000000000000005".to_owned()]),
        ..rules()
    };
    let map = build(source, target, &Blocks::new(), &rules).unwrap();
    let table = [
        ("000000010000000000000004", Action::None),
        ("000000020000000000000005", Action::None),
        ("000000020000000000000006", Action::Copy),
        ("000000020000000000000007", Action::Copy),
        ("000000010000000000000005", Action::None),
        ("000000010000000000000005.partial", Action::Copy),
        ("00000002.history", Action::Copy),
    ];
    for (name, action) in table {
        assert_eq!(action_of(&map, &format!("pg_wal/{name}")), action, "{name}");
    }
}

#[test]
fn a_running_sources_last_wal_segment_is_copied_to_just_past_its_end_of_wal() {
    let wal = |name: &str| file(&format!("pg_wal/{name}"), 1 << 24);
    let source = vec![
        wal("000000020000000000000006"),
        wal("000000020000000000000007"),
        file("pg_xact/0000", 1 << 24),
    ];
    let rules = Rules {
        wal_copy_end: Some(("0000000000000007".into(), 3 * 8192)),
        ..rules()
    };
    let map = build(source, Vec::new(), &Blocks::new(), &rules).unwrap();
    let copy_len = |path: &str| {
        map.entries
            .iter()
            .find(|e| e.path == path)
            .unwrap()
            .copy_len
    };
    assert_eq!(copy_len("pg_wal/000000020000000000000006"), None);
    assert_eq!(copy_len("pg_wal/000000020000000000000007"), Some(3 * 8192));
    assert_eq!(copy_len("pg_xact/0000"), None);
    assert_eq!(map.bytes_to_fetch(), 2 * (1 << 24) + 3 * 8192);
}

#[test]
fn plan_runs_creations_first_and_removals_last_children_before_parents() {
    let source = vec![dir("a"), file("a/f", 1), dir("n"), file("n/x", 1)];
    let target = vec![dir("a"), dir("old"), file("old/f", 1), dir("old/sub")];
    let map = build(source, target, &Blocks::new(), &rules()).unwrap();
    let order: Vec<(&str, Action)> = map
        .plan()
        .iter()
        .map(|e| (e.path.as_str(), e.action))
        .collect();
    assert_eq!(
        order,
        [
            ("n", Action::Create),
            ("a/f", Action::Copy),
            ("n/x", Action::Copy),
            ("old/sub", Action::Remove),
            ("old/f", Action::Remove),
            ("old", Action::Remove),
        ]
    );
}

#[test]
fn listings_pg_rewind_would_refuse_are_refused() {
    let no_changes = Blocks::new();
    let cases: &[(Vec<FileEntry>, Vec<FileEntry>, FileMapError)] = &[
        (
            vec![file("../etc/passwd", 1)],
            vec![],
            FileMapError::UnsafePath("../etc/passwd".into()),
        ),
        (
            vec![file("/etc/passwd", 1)],
            vec![],
            FileMapError::UnsafePath("/etc/passwd".into()),
        ),
        (
            vec![file("base/./1", 1)],
            vec![],
            FileMapError::UnsafePath("base/./1".into()),
        ),
        (
            vec![file("a", 1), file("a", 2)],
            vec![],
            FileMapError::Duplicate("a".into(), "source"),
        ),
        (
            vec![file("x", 1)],
            vec![dir("x")],
            FileMapError::DifferentType("x".into()),
        ),
        (
            vec![dir("base/5/16384")],
            vec![],
            FileMapError::NotRegular("base/5/16384".into()),
        ),
    ];
    for (source, target, expected) in cases {
        assert_eq!(
            build(source.clone(), target.clone(), &no_changes, &rules()),
            Err(expected.clone())
        );
    }
}

/// Review of the native engine (low): a build with other block or segment sizes was not
/// checked; its blocks would be fetched at the wrong offsets. It hands over to pg_rewind.
#[test]
fn finding_native_other_block_or_segment_sizes_hand_over_to_pg_rewind() {
    assert_eq!(native_geometry(8192, 131_072), Ok(()));
    for (block, segment) in [(16_384, 65_536), (8192, 262_144), (4096, 131_072)] {
        let why = native_geometry(block, segment).unwrap_err();
        assert!(
            why.contains(&format!("{segment} blocks of {block} bytes")),
            "{why}"
        );
    }
}
