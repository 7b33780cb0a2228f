use super::*;
use crate::rewind::major::pg_rewind;
use proptest::prelude::*;

fn lsn(text: &str) -> Lsn {
    text.parse().unwrap()
}

fn history(tli: TimelineId, text: &str) -> History {
    History::parse(tli, text).unwrap()
}

/// A cleanly stopped former primary on `tli`, whose shutdown checkpoint starts 120 bytes
/// before `end`.
fn target(tli: TimelineId, hist: History, end: &str) -> TargetFacts {
    let end = lsn(end);
    TargetFacts {
        system_identifier: 7,
        catalog_version: 202209061,
        state: DbState::ShutDown,
        checkpoint: Lsn(end.0 - 120),
        checkpoint_timeline: tli,
        checkpoint_end: Some(end),
        min_recovery_point: Lsn::ZERO,
        min_recovery_point_timeline: 0,
        can_rewind: true,
        history: hist,
        wal_segments: WalSegments {
            segment_size: 1 << 20,
            present: (0..4096).map(|s| (1, s)).collect(),
        },
        restore_command: false,
        never_replayed: false,
    }
}

fn source(tli: TimelineId, hist: History, insert: &str) -> SourceFacts {
    SourceFacts {
        system_identifier: 7,
        catalog_version: 202209061,
        in_recovery: false,
        timeline: tli,
        checkpoint_timeline: tli,
        history: hist,
        insert_lsn: lsn(insert),
        full_page_writes: true,
    }
}

// ---- history files ----

#[test]
fn end_of_files_bounds_a_timeline_s_wal() {
    let segments = WalSegments {
        segment_size: 16 << 20,
        present: vec![(1, 5), (1, 7), (2, 7), (2, 8)],
    };
    assert_eq!(segments.end_of_files(1), Some(Lsn(8 * (16 << 20))));
    assert_eq!(segments.end_of_files(2), Some(Lsn(9 * (16 << 20))));
    assert_eq!(segments.end_of_files(3), None);
}

#[test]
fn parses_a_real_pg15_history_file() {
    let h = history(2, "1\t0/27B061F8\tno recovery target specified\n");
    assert_eq!(
        h.entries(),
        [
            HistoryEntry {
                tli: 1,
                begin: Lsn::ZERO,
                end: Some(lsn("0/27B061F8"))
            },
            HistoryEntry {
                tli: 2,
                begin: lsn("0/27B061F8"),
                end: None
            },
        ]
    );
    assert_eq!(h.timeline(), 2);
    assert_eq!(h.switchpoint_of(1), Some(lsn("0/27B061F8")));
    assert_eq!(h.switchpoint_of(2), None);
}

#[test]
fn skips_comments_and_blank_lines_and_ignores_reasons() {
    let h = history(
        4,
        "# comment\n\n1\t0/3000000\tno recovery target specified\n\
         2\t0/5000000\tbefore transaction 123 extra words\n3\t0/5000000\tat restore point \"x\"\n",
    );
    let tlis: Vec<_> = h.entries().iter().map(|e| e.tli).collect();
    assert_eq!(tlis, [1, 2, 3, 4]);
}

#[test]
fn timeline_one_has_no_file() {
    assert_eq!(History::first().entries().len(), 1);
    assert_eq!(History::parse(1, "").unwrap(), History::first());
}

macro_rules! bad_history {
    ($name:ident, $tli:expr, $text:expr) => {
        #[test]
        fn $name() {
            assert!(History::parse($tli, $text).is_err(), "{:?}", $text);
        }
    };
}
bad_history!(rejects_a_non_numeric_timeline, 2, "x\t0/1\treason\n");
bad_history!(rejects_a_missing_switchpoint, 2, "1\n");
bad_history!(rejects_a_bad_switchpoint, 2, "1\t01\treason\n");
bad_history!(rejects_decreasing_timelines, 4, "2\t0/1\tr\n1\t0/2\tr\n");
bad_history!(rejects_repeated_timelines, 4, "1\t0/1\tr\n1\t0/2\tr\n");
bad_history!(rejects_a_parent_not_below_the_child, 2, "2\t0/1\tr\n");
bad_history!(rejects_switchpoints_going_back, 3, "1\t0/5\tr\n2\t0/4\tr\n");

// ---- common ancestor ----

#[test]
fn fork_on_a_shared_parent() {
    let t = History::first();
    let s = history(2, "1\t0/3000000\tr\n");
    assert_eq!(
        common_ancestor(&t, &s),
        Some(Fork {
            tli: 1,
            at: Some(lsn("0/3000000")),
            target_on_common: true
        })
    );
}

#[test]
fn sibling_timelines_fork_at_the_earlier_switch() {
    let t = history(3, "1\t0/3000000\tr\n2\t0/7000000\tr\n");
    let s = history(4, "1\t0/3000000\tr\n2\t0/6000000\tr\n");
    assert_eq!(
        common_ancestor(&t, &s),
        Some(Fork {
            tli: 2,
            at: Some(lsn("0/6000000")),
            target_on_common: false
        })
    );
}

#[test]
fn a_timeline_number_reused_elsewhere_is_not_common() {
    let t = history(3, "1\t0/3000000\tr\n2\t0/7000000\tr\n");
    let s = history(3, "1\t0/4000000\tr\n2\t0/7000000\tr\n");
    let fork = common_ancestor(&t, &s).unwrap();
    assert_eq!(fork.tli, 1);
    assert_eq!(fork.at, Some(lsn("0/3000000")));
}

#[test]
fn no_common_timeline() {
    assert_eq!(common_ancestor(&History::root(1), &History::root(2)), None);
}

// ---- decisions: the cases of the course's lab and the traps ----

#[test]
fn old_primary_that_wrote_after_the_promotion_needs_a_rewind() {
    // Lab 1.7.4: t7 on the old primary after the fork.
    let t = target(1, History::first(), "0/3100000");
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    assert_eq!(
        decide(&t, &s),
        Decision::Rewind {
            fork_point: lsn("0/30000A0"),
            fork_timeline: 1,
            target_end: lsn("0/3100000")
        }
    );
}

/// Found in review: a rewound directory never started since (its `pg_control` the one the
/// rewind copied, its pages a mix awaiting replay) was rewound again after a second
/// failover, from WAL and a checkpoint that do not describe its disk; and a re-clone never
/// started (a base backup's pg_control says "in production") went through crash recovery,
/// without its standby.signal. Both stream on the source's timeline (starting them
/// replays) and are refused, to be re-cloned, anywhere else.
#[test]
fn a_target_never_replayed_since_its_backup_streams_on_the_sources_timeline_only() {
    let on_2 = || history(2, "1\t0/30000A0\tr\n");
    let mut rewound = target(2, on_2(), "0/3100000");
    rewound.state = DbState::ShutDownInRecovery;
    rewound.never_replayed = true;
    let mut recloned = rewound.clone();
    recloned.state = DbState::InProduction;
    let same = source(2, on_2(), "0/3200000");
    let forked = source(
        3,
        history(3, "1\t0/30000A0\tr\n2\t0/3080000\tr\n"),
        "0/3200000",
    );
    let behind = source(2, on_2(), "0/3080000");
    for t in [&rewound, &recloned] {
        assert_eq!(decide(t, &same), Decision::Stream, "{t:?}");
        for s in [&forked, &behind] {
            assert_eq!(
                decide(t, s),
                Decision::Refuse(Refusal::NeverReplayed),
                "{s:?}"
            );
        }
    }
    assert!(Refusal::NeverReplayed.reclone_allowed());
    rewound.never_replayed = false;
    assert!(matches!(decide(&rewound, &forked), Decision::Rewind { .. }));
    recloned.never_replayed = false;
    assert!(matches!(
        decide(&recloned, &same),
        Decision::CrashRecoveryFirst(_)
    ));
}

#[test]
fn old_primary_stopped_cleanly_before_the_promotion_streams() {
    // The standby received the shutdown checkpoint: the switch is exactly its end.
    let t = target(1, History::first(), "0/30000A0");
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    assert_eq!(decide(&t, &s), Decision::Stream);
}

#[test]
fn a_standby_behind_the_fork_streams() {
    let mut t = target(1, History::first(), "0/2000000");
    t.state = DbState::ShutDownInRecovery;
    t.min_recovery_point = lsn("0/2500000");
    t.min_recovery_point_timeline = 1;
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    assert_eq!(decide(&t, &s), Decision::Stream);
}

#[test]
fn a_standby_that_replayed_past_the_fork_needs_a_rewind() {
    let mut t = target(1, History::first(), "0/2000000");
    t.state = DbState::ShutDownInRecovery;
    t.min_recovery_point = lsn("0/3000100");
    t.min_recovery_point_timeline = 1;
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    assert!(matches!(decide(&t, &s), Decision::Rewind { .. }));
}

#[test]
fn crashed_primary_needs_crash_recovery_first() {
    for state in [
        DbState::InProduction,
        DbState::ShuttingDown,
        DbState::InCrashRecovery,
        DbState::Startup,
    ] {
        let mut t = target(1, History::first(), "0/3100000");
        t.state = state;
        let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
        assert_eq!(decide(&t, &s), Decision::CrashRecoveryFirst(state));
    }
}

#[test]
fn same_timeline_behind_streams_and_ahead_is_refused() {
    let s = source(1, History::first(), "0/3000000");
    assert_eq!(
        decide(&target(1, History::first(), "0/2000000"), &s),
        Decision::Stream
    );
    assert!(matches!(
        decide(&target(1, History::first(), "0/4000000"), &s),
        Decision::Refuse(Refusal::TargetAheadOnSameTimeline { .. })
    ));
}

#[test]
fn different_systems_are_refused_and_never_recloned() {
    let mut t = target(1, History::first(), "0/3100000");
    t.system_identifier = 8;
    let d = decide(&t, &source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000"));
    match d {
        Decision::Refuse(why) => assert!(!why.reclone_allowed(), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_standby_source_is_refused() {
    let mut s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    s.in_recovery = true;
    assert_eq!(
        decide(&target(1, History::first(), "0/3100000"), &s),
        Decision::Refuse(Refusal::SourceNotPrimary)
    );
}

#[test]
fn no_hints_nor_checksums_is_refused_only_when_a_rewind_is_needed() {
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    let mut t = target(1, History::first(), "0/3100000");
    t.can_rewind = false;
    assert_eq!(
        decide(&t, &s),
        Decision::Refuse(Refusal::NoHintsNorChecksums)
    );
    let mut t = target(1, History::first(), "0/30000A0");
    t.can_rewind = false;
    assert_eq!(decide(&t, &s), Decision::Stream);
}

#[test]
fn fork_segment_gone_without_archive_is_refused_with_archive_rewinds() {
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    let mut t = target(1, History::first(), "0/9100000");
    t.wal_segments.present = vec![(1, 0x90), (1, 0x91)];
    assert!(matches!(
        decide(&t, &s),
        Decision::Refuse(Refusal::MissingWal { .. })
    ));
    t.restore_command = true;
    assert!(matches!(decide(&t, &s), Decision::Rewind { .. }));
}

#[test]
fn fork_at_a_segment_start_needs_the_previous_segment() {
    // After a base backup's XLOG_SWITCH the standby's last record ends a segment.
    let s = source(2, history(2, "1\t0/800000\tr\n"), "0/900000");
    let mut t = target(1, History::first(), "0/8000A0");
    t.wal_segments.present = vec![(1, 8)];
    assert_eq!(
        decide(&t, &s),
        Decision::Refuse(Refusal::MissingWal {
            at: lsn("0/7FFFFF"),
            what: "the last record before the fork"
        })
    );
    t.wal_segments.present = vec![(1, 7), (1, 8)];
    assert!(matches!(decide(&t, &s), Decision::Rewind { .. }));
}

#[test]
fn unreadable_checkpoint_record_is_never_a_reason_to_stream() {
    let s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    let mut t = target(1, History::first(), "0/3000000");
    t.checkpoint_end = None;
    assert!(matches!(
        decide(&t, &s),
        Decision::Refuse(Refusal::MissingWal { .. })
    ));
    t.restore_command = true;
    assert!(matches!(decide(&t, &s), Decision::Rewind { .. }));
}

#[test]
fn target_on_a_sibling_timeline_needs_a_rewind() {
    let t = {
        let mut t = target(
            3,
            history(3, "1\t0/3000000\tr\n2\t0/7000000\tr\n"),
            "0/7100000",
        );
        t.wal_segments.present = vec![(2, 0x5F), (2, 0x60), (3, 0x70)];
        t
    };
    let s = source(
        4,
        history(4, "1\t0/3000000\tr\n2\t0/6000000\tr\n"),
        "0/8000000",
    );
    assert_eq!(
        decide(&t, &s),
        Decision::Rewind {
            fork_point: lsn("0/6000000"),
            fork_timeline: 2,
            target_end: lsn("0/7100000")
        }
    );
}

#[test]
fn the_promotion_checkpoint_trap_applies_up_to_pg15() {
    let mut s = source(2, history(2, "1\t0/30000A0\tr\n"), "0/3200000");
    s.checkpoint_timeline = 1;
    assert!(s.needs_checkpoint(pg_rewind(13)));
    assert!(s.needs_checkpoint(pg_rewind(15)));
    assert!(!s.needs_checkpoint(pg_rewind(16)));
    s.checkpoint_timeline = 2;
    assert!(!s.needs_checkpoint(pg_rewind(15)));
}

// ---- costs ----

/// An estimate as pg_rewind `major` would copy it; `source_wal_from_fork` is what the
/// source keeps from the fork's segment on.
fn cost(major: u32, source_wal: u64, from_fork: u64, databases: u64, changed: u64) -> CostEstimate {
    CostEstimate {
        source_wal,
        source_wal_from_fork: from_fork,
        wal_copied: pg_rewind(major).wal_copied,
        source_databases: databases,
        source_since_fork: changed,
        target_since_fork: changed,
        native_fetch: None,
    }
}

#[test]
fn measured_case_prefers_the_reclone() {
    // PG 15, 905 MB database, wal_keep_size=4GB: 1.7 GB of WAL on the source.
    assert!(cost(15, 1_700 << 20, 300 << 20, 905 << 20, 150 << 20).prefers_reclone());
}

#[test]
fn a_short_divergence_on_a_large_database_prefers_the_rewind() {
    let e = cost(15, 80 << 20, 2 << 20, 50 << 30, 1 << 20);
    assert!(!e.prefers_reclone());
    assert_eq!(e.rewind_bytes(), 82 << 20);
}

#[test]
fn pg_rewind_bytes_weigh_half_again_as_much() {
    // The rewind benchmark's large setting: about 1 GB either way, the re-clone is faster.
    let e = CostEstimate {
        target_since_fork: 0,
        ..cost(15, 944 << 20, 48 << 20, 1082 << 20, 40 << 20)
    };
    assert!(e.rewind_bytes() < e.reclone_bytes());
    assert!(e.prefers_reclone());
}

/// The native engine's bytes are what its file map fetches, in place of pg_rewind's model,
/// at the same rate.
#[test]
fn the_native_engines_bytes_replace_pg_rewinds() {
    let e = cost(15, 2048 << 20, 48 << 20, 1 << 30, 20 << 20);
    assert!(e.prefers_reclone());
    let native = CostEstimate {
        native_fetch: Some(30 << 20),
        ..e
    };
    assert_eq!(native.rewind_bytes(), 30 << 20);
    assert!(!native.prefers_reclone());
    // 700 MB at 1.5 times the cost weighs more than 1 GB.
    let dear = CostEstimate {
        native_fetch: Some(700 << 20),
        ..e
    };
    assert!(dear.prefers_reclone());
}

/// The same divergence, source and database, rewound by each major's pg_rewind: up to 18
/// it copies every WAL segment the source keeps, and a large retention makes the re-clone
/// cheaper; 19 copies only the segments from the fork's on, so the rewind stays cheaper.
/// The WAL bytes it counts never exceed what the source has.
#[test]
fn the_major_of_pg_rewind_decides_which_wal_counts() {
    // (major, WAL bytes counted with 2 GB kept of which 80 MB from the fork on, re-clone?)
    let table = [
        (13, 2048, true),
        (14, 2048, true),
        (15, 2048, true),
        (16, 2048, true),
        (17, 2048, true),
        (18, 2048, true),
        (19, 80, false),
        (20, 80, false),
    ];
    for (major, wal_mb, reclone) in table {
        let e = cost(major, 2048 << 20, 80 << 20, 1 << 30, 20 << 20);
        assert_eq!(e.wal_bytes(), wal_mb << 20, "PostgreSQL {major}");
        assert_eq!(e.prefers_reclone(), reclone, "PostgreSQL {major}");
        // A small retention: the rewind is cheaper with every major.
        let small = cost(major, 64 << 20, 48 << 20, 1 << 30, 20 << 20);
        assert!(!small.prefers_reclone(), "PostgreSQL {major}");
    }
    // From the fork's segment on is part of the whole: a source that recycled WAL in
    // between cannot make it count more.
    assert_eq!(
        cost(19, 10 << 20, 40 << 20, 1 << 30, 0).wal_bytes(),
        10 << 20
    );
}

// ---- histories a source cannot truthfully serve (finding 4) ----

/// A forged or contradictory source history is refused, and never re-cloned from; the true
/// histories next to them still decide as before.
#[test]
fn finding_4_history_consistency_table() {
    fn standby(mut t: TargetFacts) -> TargetFacts {
        t.state = DbState::ShutDownInRecovery;
        t
    }
    fn unknown_end(mut t: TargetFacts) -> TargetFacts {
        t.checkpoint_end = None;
        t.restore_command = true;
        t
    }
    let tl1 = History::first;
    let forged = || history(2, "1\tFFFFFFFF/FFFFFFFF\tforged\n");
    let cases: Vec<(&str, TargetFacts, SourceFacts, &str)> = vec![
        // The review's reproduction: "can stream as is" from a history claiming timeline 1
        // ended at FFFFFFFF/FFFFFFFF, with the source's position forged to match.
        (
            "forged end past the old primary's WAL",
            target(1, tl1(), "0/5000000"),
            source(2, forged(), "FFFFFFFF/FFFFFFFF"),
            "contradicts",
        ),
        (
            "forged end past the source's own position",
            target(1, tl1(), "0/5000000"),
            source(2, forged(), "0/6000000"),
            "implausible",
        ),
        (
            "a later timeline the old primary wrote on, ended too late",
            target(2, history(2, "1\t0/3000000\tr\n"), "0/5000000"),
            source(
                3,
                history(3, "1\t0/3000000\tr\n2\t0/9000000\tr\n"),
                "0/A000000",
            ),
            "contradicts",
        ),
        (
            "end of WAL unknown: the last WAL file on the timeline bounds it",
            unknown_end(target(1, tl1(), "0/5000000")),
            source(2, history(2, "1\t2/0\tr\n"), "2/1000000"),
            "contradicts",
        ),
        (
            "an ancestor's switchpoint past the source's position",
            target(1, tl1(), "0/5000000"),
            source(
                3,
                history(3, "1\t0/3000000\tr\n2\t0/9000000\tr\n"),
                "0/8000000",
            ),
            "implausible",
        ),
        // True histories.
        (
            "promoted exactly at the old primary's end",
            target(1, tl1(), "0/5000000"),
            source(2, history(2, "1\t0/5000000\tr\n"), "0/6000000"),
            "stream",
        ),
        (
            "promoted before the old primary's end",
            target(1, tl1(), "0/5000000"),
            source(2, history(2, "1\t0/4000000\tr\n"), "0/6000000"),
            "rewind",
        ),
        (
            "a standby that is behind proves nothing",
            standby(target(1, tl1(), "0/5000000")),
            source(2, history(2, "1\t0/9000000\tr\n"), "0/A000000"),
            "stream",
        ),
        (
            "equal switchpoints (promoted before replaying on the newer timeline)",
            target(1, tl1(), "0/5000000"),
            source(
                3,
                history(3, "1\t0/5000000\tr\n2\t0/5000000\tr\n"),
                "0/6000000",
            ),
            "stream",
        ),
    ];
    for (what, t, s, want) in cases {
        let d = decide(&t, &s);
        let got = match &d {
            Decision::Refuse(Refusal::SourceHistoryContradicts { .. }) => "contradicts",
            Decision::Refuse(Refusal::ImplausibleSourceHistory { .. }) => "implausible",
            Decision::Stream => "stream",
            Decision::Rewind { .. } => "rewind",
            _ => "other",
        };
        assert_eq!(got, want, "{what}: {d}");
        if let Decision::Refuse(why) = &d {
            assert!(!why.reclone_allowed(), "{what}: {why}");
            assert!(why.to_string().contains("timeline"), "{what}: {why}");
        }
    }
}

/// The histories `History::parse` refuses before anything else looks at them.
#[test]
fn finding_4_history_parse_table() {
    for (tli, text) in [
        (2, "2\t0/1\tthe file's own timeline\n"),
        (3, "1\t0/5\tr\n1\t0/6\ttimeline repeated\n"),
        (3, "2\t0/5\tr\n1\t0/6\ttimeline going back\n"),
        (3, "1\t0/6\tr\n2\t0/5\tswitchpoint going back\n"),
        (2, "1\tFFFFFFFFF/0\tnot an LSN\n"),
        (2, "1\n"),
    ] {
        assert!(History::parse(tli, text).is_err(), "{text:?}");
    }
}

// ---- invariants ----

/// A chain of timelines 1..=n with increasing switchpoints.
fn chain() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec(1u64..0x1000_0000, 0..5).prop_map(|mut v| {
        v.sort_unstable();
        v.dedup();
        v
    })
}

fn history_of(switches: &[u64], tli: TimelineId) -> History {
    let text: String = switches
        .iter()
        .take(tli as usize - 1)
        .enumerate()
        .map(|(i, s)| format!("{}\t{}\tr\n", i + 1, Lsn(*s)))
        .collect();
    History::parse(tli, &text).unwrap()
}

proptest! {
    /// Never `Stream` when the target's WAL goes past the point where the source left the
    /// target's timeline, nor past the source's position on the same timeline.
    #[test]
    fn never_streams_a_target_ahead_of_the_fork(
        switches in chain(),
        target_pick in 0usize..6,
        end in 0x100u64..0x2000_0000,
        insert in 0x100u64..0x2000_0000,
        standby in any::<bool>(),
    ) {
        let source_tli = switches.len() as u32 + 1;
        let target_tli = (target_pick as u32 % source_tli) + 1;
        let mut t = target(target_tli, history_of(&switches, target_tli), &Lsn(end).to_string());
        if standby {
            t.state = DbState::ShutDownInRecovery;
        }
        t.wal_segments.present = (1..=source_tli)
            .flat_map(|tli| (0..0x200).map(move |s| (tli, s)))
            .collect();
        let s = source(source_tli, history_of(&switches, source_tli), &Lsn(insert).to_string());
        let d = decide(&t, &s);
        let limit = s.history.switchpoint_of(target_tli).unwrap_or(Lsn(insert));
        if Lsn(end) > limit {
            prop_assert_ne!(d.clone(), Decision::Stream);
        }
        if d == Decision::Stream {
            prop_assert!(Lsn(end) <= limit);
        }
        if let Decision::Rewind { fork_point, .. } = d {
            prop_assert!(fork_point < Lsn(end));
        }
    }

    #[test]
    fn history_text_round_trips(switches in chain()) {
        let tli = switches.len() as u32 + 1;
        let h = history_of(&switches, tli);
        prop_assert_eq!(h.entries().len(), tli as usize);
        for (i, s) in switches.iter().enumerate() {
            prop_assert_eq!(h.switchpoint_of(i as u32 + 1), Some(Lsn(*s)));
        }
    }
}

/// Review of the native engine (low): the pg_control it reads from the source at the end
/// (the new control file's base) was not compared with the source the rewind was decided
/// on; a server swapped behind the connection string meanwhile would have been trusted.
#[test]
fn finding_native_final_pg_control_of_another_source_is_refused() {
    let s = source(2, History::first(), "0/3000000");
    assert_eq!(s.changed_since(7, 202209061), None);
    for (system, catalog) in [(8, 202209061), (7, 202307071)] {
        let why = s.changed_since(system, catalog).unwrap();
        assert!(
            why.contains(&format!("system {system} (catalog {catalog})")),
            "{why}"
        );
    }
}

#[test]
fn replayed_past_fork_only_beyond_the_sources_switchpoint_scenario_31() {
    // The source's timeline 3 left timeline 2 at 0/403C8D0 (the failed run of scenario 31).
    let source = history(3, "1\t0/4000000\tpromoted\n2\t0/403C8D0\tpromoted\n");
    let table: [(TimelineId, &str, Option<&str>); 6] = [
        // The standby of scenario 31: the old primary's WAL past the fork.
        (2, "0/403CD08", Some("0/403C8D0")),
        // Up to the fork exactly, or before it: it follows timeline 3.
        (2, "0/403C8D0", None),
        (2, "0/4000100", None),
        // Already on the source's timeline, or on one the source never left.
        (3, "0/5000000", None),
        // An older timeline the source left earlier.
        (1, "0/4000001", Some("0/4000000")),
        // A timeline the source does not know: not this judgement's to make.
        (4, "0/9000000", None),
    ];
    for (tli, at, fork) in table {
        assert_eq!(
            replayed_past_fork(tli, lsn(at), &source),
            fork.map(lsn),
            "{tli}#{at}"
        );
    }
}
