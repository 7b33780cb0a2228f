//! Promotion scores, as pure functions over what the primary sees of its standbys.
//!
//! PAF's scale (`paf.md` §4.3), so scores mean the same to users switching from PAF: 1001 for
//! the primary; 1000, 990, 980, … for streaming standbys, most advanced first (PAF #198
//! inverted that in 2.3.0); the same negated past `maxlag`; −1 while a standby is still
//! starting or taking a base backup; −1000 for a partition node that does not replicate.
//! One change: synchronous standbys rank before asynchronous ones, as they hold every
//! committed transaction.

use crate::lsn::Lsn;

pub const PRIMARY_SCORE: i64 = 1001;
pub const BEST_STANDBY_SCORE: i64 = 1000;
pub const NOT_STREAMING_SCORE: i64 = -1;
pub const DISCONNECTED_SCORE: i64 = -1000;
/// Pacemaker's -INFINITY: never promote this node, whatever constraints say.
pub const SCORE_NEVER: i64 = -1_000_000;

/// One row of `pg_stat_replication`, as the primary sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub application_name: String,
    /// `state`: startup, catchup, streaming, backup, stopping.
    pub state: String,
    pub write_lsn: Option<Lsn>,
    /// `sync_state`: async, potential, sync, quorum.
    pub sync_state: String,
    /// Bytes between the primary's current position and the standby's write position.
    pub lag: u64,
}

/// The scores the primary wants: for itself, each partition node and each replica.
pub fn desired_scores(
    local_node: &str,
    partition: &[String],
    replicas: &[Replica],
    maxlag: u64,
) -> Vec<(String, i64)> {
    let known = |name: &str| partition.iter().any(|n| n == name) && name != local_node;
    let mut candidates: Vec<&Replica> = replicas
        .iter()
        .filter(|r| known(&r.application_name))
        .collect();
    let starting = |r: &Replica| matches!(r.state.as_str(), "startup" | "backup");
    let synchronous = |r: &Replica| matches!(r.sync_state.as_str(), "sync" | "quorum");
    candidates.sort_by(|a, b| {
        starting(a)
            .cmp(&starting(b))
            .then(synchronous(b).cmp(&synchronous(a)))
            .then(b.write_lsn.cmp(&a.write_lsn))
            .then(a.application_name.cmp(&b.application_name))
    });
    let mut scores = vec![(local_node.to_owned(), PRIMARY_SCORE)];
    let mut rank = 0;
    for replica in candidates {
        if scores.iter().any(|(n, _)| *n == replica.application_name) {
            continue; // two walsenders with one name: the better one counts
        }
        let score = if starting(replica) {
            NOT_STREAMING_SCORE
        } else {
            let score = BEST_STANDBY_SCORE - 10 * rank;
            rank += 1;
            if maxlag > 0 && replica.lag > maxlag {
                -score
            } else {
                score
            }
        };
        scores.push((replica.application_name.clone(), score));
    }
    for node in partition {
        if !scores.iter().any(|(n, _)| n == node) {
            scores.push((node.clone(), DISCONNECTED_SCORE));
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, state: &str, lsn: u64, sync: &str, lag: u64) -> Replica {
        Replica {
            application_name: name.into(),
            state: state.into(),
            write_lsn: Some(Lsn(lsn)),
            sync_state: sync.into(),
            lag,
        }
    }

    fn nodes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn score_of(scores: &[(String, i64)], node: &str) -> i64 {
        scores
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, s)| *s)
            .unwrap()
    }

    #[test]
    fn most_advanced_standby_first_paf_198() {
        let s = desired_scores(
            "n1",
            &nodes(&["n1", "n2", "n3"]),
            &[
                replica("n2", "streaming", 100, "async", 0),
                replica("n3", "streaming", 200, "async", 0),
            ],
            0,
        );
        assert_eq!(score_of(&s, "n1"), 1001);
        assert_eq!(score_of(&s, "n3"), 1000);
        assert_eq!(score_of(&s, "n2"), 990);
    }

    #[test]
    fn synchronous_before_asynchronous() {
        let s = desired_scores(
            "n1",
            &nodes(&["n1", "n2", "n3"]),
            &[
                replica("n2", "streaming", 100, "sync", 0),
                replica("n3", "streaming", 200, "async", 0),
            ],
            0,
        );
        assert_eq!(score_of(&s, "n2"), 1000);
        assert_eq!(score_of(&s, "n3"), 990);
    }

    #[test]
    fn lagging_standby_goes_negative() {
        let s = desired_scores(
            "n1",
            &nodes(&["n1", "n2", "n3"]),
            &[
                replica("n2", "streaming", 100, "async", 5000),
                replica("n3", "streaming", 200, "async", 0),
            ],
            1000,
        );
        assert_eq!(score_of(&s, "n3"), 1000);
        assert_eq!(score_of(&s, "n2"), -990);
    }

    #[test]
    fn starting_standby_and_absent_node() {
        let s = desired_scores(
            "n1",
            &nodes(&["n1", "n2", "n3"]),
            &[replica("n2", "startup", 0, "async", 0)],
            0,
        );
        assert_eq!(score_of(&s, "n2"), -1);
        assert_eq!(score_of(&s, "n3"), -1000);
    }

    #[test]
    fn unknown_names_and_self_replication_are_ignored() {
        let s = desired_scores(
            "n1",
            &nodes(&["n1", "n2"]),
            &[
                replica("pg_basebackup", "streaming", 9, "async", 0),
                replica("n1", "streaming", 9, "async", 0),
            ],
            0,
        );
        assert_eq!(s, vec![("n1".to_string(), 1001), ("n2".to_string(), -1000)]);
    }

    #[test]
    fn name_matching_is_exact_paf_25() {
        let s = desired_scores(
            "n1",
            &nodes(&["n1", "n2"]),
            &[replica("n22", "streaming", 9, "async", 0)],
            0,
        );
        assert_eq!(score_of(&s, "n2"), -1000);
        assert!(!s.iter().any(|(n, _)| n == "n22"));
    }
}

/// Where a node's WAL ends: its timeline, then its position. Ordered: a later timeline
/// wins over a larger LSN, as in PAF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub timeline: crate::lsn::TimelineId,
    pub lsn: Lsn,
}

impl Position {
    /// PAF's `lsn_location` attribute: `TL#LSN`, the LSN in decimal (`21#100672008`), so a
    /// cluster switching from PAF reads the same values.
    pub fn to_attribute(self) -> String {
        format!("{}#{}", self.timeline, self.lsn.0)
    }

    pub fn from_attribute(text: &str) -> Option<Position> {
        let (tl, lsn) = text.trim().split_once('#')?;
        Some(Position {
            timeline: tl.parse().ok()?,
            lsn: Lsn(lsn.parse().ok()?),
        })
    }
}

/// Where a node's WAL ends, and the timelines it descends from: for each ancestor timeline,
/// the position where the node's line left it (its `.history` file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub position: Position,
    pub ancestors: Vec<(crate::lsn::TimelineId, Lsn)>,
}

impl Line {
    /// Whether `other` lies on this line: this node holds all the WAL `other` holds.
    pub fn contains(&self, other: Position) -> bool {
        if other.timeline == self.position.timeline {
            return other.lsn <= self.position.lsn;
        }
        self.ancestors
            .iter()
            .any(|(tli, left_at)| *tli == other.timeline && other.lsn <= *left_at)
    }

    /// A line whose ancestors are unknown (timeline 1, or no history published).
    pub fn without_history(position: Position) -> Line {
        Line {
            position,
            ancestors: Vec::new(),
        }
    }
}

/// The `timelines-<rsc>` attribute: each ancestor timeline and where the line left it,
/// `1:0/3000060 2:0/5000000`.
pub fn ancestors_to_attribute(ancestors: &[(crate::lsn::TimelineId, Lsn)]) -> String {
    let parts: Vec<String> = ancestors
        .iter()
        .map(|(tli, lsn)| format!("{tli}:{lsn}"))
        .collect();
    parts.join(" ")
}

pub fn ancestors_from_attribute(text: &str) -> Option<Vec<(crate::lsn::TimelineId, Lsn)>> {
    text.split_whitespace()
        .map(|part| {
            let (tli, lsn) = part.split_once(':')?;
            Some((tli.parse().ok()?, lsn.parse().ok()?))
        })
        .collect()
}

/// The node to promote instead of `designated`, if another is strictly ahead of it on its
/// own line. Ties keep the designated node, so the election never moves on equal data. A
/// node ahead only by timeline, whose history does not contain the designated node's
/// position (it forked off earlier, e.g. a former primary promoted during a split brain),
/// is never preferred: promoting it would discard what the designated node holds (PAF #57).
/// Pacemaker designates the node with the best score, and scores come from the primary's
/// view of replication, so the designated node stands on the primary's line.
pub fn better_candidate(
    designated: Position,
    others: &[(String, Line)],
) -> Option<&(String, Line)> {
    others
        .iter()
        .filter(|(_, line)| line.position > designated && line.contains(designated))
        .max_by_key(|(_, line)| line.position)
}

#[cfg(test)]
mod election_tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(timeline: u32, lsn: u64) -> Position {
        Position {
            timeline,
            lsn: Lsn(lsn),
        }
    }

    fn line(timeline: u32, lsn: u64, ancestors: &[(u32, u64)]) -> Line {
        Line {
            position: pos(timeline, lsn),
            ancestors: ancestors.iter().map(|(t, l)| (*t, Lsn(*l))).collect(),
        }
    }

    fn elect(designated: Position, others: &[(&str, Line)]) -> Option<String> {
        let others: Vec<(String, Line)> = others
            .iter()
            .map(|(n, l)| (n.to_string(), l.clone()))
            .collect();
        better_candidate(designated, &others).map(|c| c.0.clone())
    }

    #[test]
    fn attribute_round_trip_in_pafs_format() {
        assert_eq!(pos(21, 100_672_008).to_attribute(), "21#100672008");
        assert_eq!(
            Position::from_attribute("21#100672008"),
            Some(pos(21, 100_672_008))
        );
        assert_eq!(Position::from_attribute("21"), None);
        assert_eq!(Position::from_attribute("x#1"), None);
    }

    #[test]
    fn higher_timeline_beats_higher_lsn_on_the_same_line() {
        // pg2 was promoted at 0/A000000, after everything the designated node holds.
        let pg2 = line(4, 0x300_0000, &[(3, 0xA00_0000)]);
        assert_eq!(
            elect(pos(3, 0x900_0000), &[("pg2", pg2)]).as_deref(),
            Some("pg2")
        );
    }

    #[test]
    fn a_forked_timeline_never_wins_paf_57() {
        // pg2 forked off timeline 3 at 0/5000000; the designated node went on to 0/9000000.
        let pg2 = line(4, 0x300_0000, &[(3, 0x500_0000)]);
        assert_eq!(elect(pos(3, 0x900_0000), &[("pg2", pg2)]), None);
    }

    #[test]
    fn lsn_decides_within_a_timeline_and_ties_keep_the_designated() {
        let others = [("pg2", line(4, 100, &[])), ("pg3", line(4, 200, &[]))];
        assert_eq!(elect(pos(4, 150), &others).as_deref(), Some("pg3"));
        assert_eq!(elect(pos(4, 200), &others), None);
    }

    #[test]
    fn ancestors_attribute_round_trip() {
        let ancestors = vec![(1, Lsn(0x300_0060)), (2, Lsn(0x500_0000))];
        let text = ancestors_to_attribute(&ancestors);
        assert_eq!(text, "1:0/3000060 2:0/5000000");
        assert_eq!(ancestors_from_attribute(&text), Some(ancestors));
        assert_eq!(ancestors_from_attribute(""), Some(vec![]));
        assert_eq!(ancestors_from_attribute("1:zz"), None);
    }

    #[test]
    fn a_line_contains_its_past_only() {
        let l = line(3, 900, &[(1, 100), (2, 500)]);
        assert!(l.contains(pos(3, 900)));
        assert!(l.contains(pos(2, 500)));
        assert!(l.contains(pos(1, 50)));
        assert!(!l.contains(pos(2, 501)));
        assert!(!l.contains(pos(3, 901)));
        assert!(!l.contains(pos(4, 1)));
    }

    proptest! {
        #[test]
        fn the_winner_holds_everything_the_designated_node_holds(
            own in (1u32..5, 0u64..1000),
            others in proptest::collection::vec((1u32..5, 0u64..1000, 0u64..1000), 0..6),
        ) {
            let own = pos(own.0, own.1);
            // Each other node descends from every lower timeline, leaving it at `left`.
            let others: Vec<(String, Line)> = others
                .iter()
                .enumerate()
                .map(|(i, (t, l, left))| {
                    let ancestors: Vec<(u32, u64)> = (1..*t).map(|a| (a, *left)).collect();
                    (format!("n{i}"), line(*t, *l, &ancestors))
                })
                .collect();
            if let Some((_, winner)) = better_candidate(own, &others) {
                prop_assert!(winner.position > own);
                prop_assert!(winner.contains(own));
                for (_, other) in &others {
                    if other.contains(own) {
                        prop_assert!(winner.position >= other.position);
                    }
                }
            }
        }
    }
}
