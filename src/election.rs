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

/// The node to promote instead of `designated`, if another is strictly ahead. Ties keep the
/// designated node, so the election never moves on equal data.
pub fn better_candidate(
    designated: Position,
    others: &[(String, Position)],
) -> Option<&(String, Position)> {
    others
        .iter()
        .filter(|(_, pos)| *pos > designated)
        .max_by_key(|(_, pos)| *pos)
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
    fn higher_timeline_beats_higher_lsn() {
        let others = vec![("pg2".to_string(), pos(4, 0x300_0000))];
        assert_eq!(
            better_candidate(pos(3, 0x900_0000), &others).map(|c| c.0.as_str()),
            Some("pg2")
        );
    }

    #[test]
    fn lsn_decides_within_a_timeline_and_ties_keep_the_designated() {
        let others = vec![
            ("pg2".to_string(), pos(4, 100)),
            ("pg3".to_string(), pos(4, 200)),
        ];
        assert_eq!(
            better_candidate(pos(4, 150), &others).map(|c| c.0.as_str()),
            Some("pg3")
        );
        assert_eq!(better_candidate(pos(4, 200), &others), None);
    }

    proptest! {
        #[test]
        fn the_winner_is_never_behind_anyone(own in (1u32..5, 0u64..1000),
                                             others in proptest::collection::vec((1u32..5, 0u64..1000), 0..6)) {
            let own = pos(own.0, own.1);
            let others: Vec<(String, Position)> =
                others.iter().enumerate().map(|(i, (t, l))| (format!("n{i}"), pos(*t, *l))).collect();
            let winner = better_candidate(own, &others).map_or(own, |c| c.1);
            prop_assert!(winner >= own);
            for (_, p) in &others {
                prop_assert!(winner >= *p);
            }
        }
    }
}
