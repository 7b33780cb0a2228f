//! Clone notification variables (`ocf-pacemaker.md` §1.6), as plain data.
//!
//! Lists are whitespace separated (an empty list is a single space) and `_resource`/`_uname`
//! lists pair by position. The names of Pacemaker 2.1 (`promoted`, `unpromoted`) are read
//! first, the legacy ones (`master`, `slave`) otherwise.

/// One set of a notification: the node names in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSet(pub Vec<String>);

impl NodeSet {
    pub fn contains(&self, node: &str) -> bool {
        self.0.iter().any(|n| n == node)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// `pre` or `post`.
    pub kind: String,
    /// `start`, `stop`, `promote` or `demote`.
    pub operation: String,
    pub active: NodeSet,
    pub start: NodeSet,
    pub stop: NodeSet,
    pub promote: NodeSet,
    pub demote: NodeSet,
    pub promoted: NodeSet,
    pub unpromoted: NodeSet,
}

impl Notification {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Notification {
        let var = |name: &str| get(&format!("OCF_RESKEY_CRM_meta_notify_{name}"));
        let set = |names: &[&str]| {
            let text = names
                .iter()
                .find_map(|n| var(&format!("{n}_uname")))
                .unwrap_or_default();
            NodeSet(text.split_whitespace().map(str::to_owned).collect())
        };
        Notification {
            kind: var("type").unwrap_or_default().trim().to_owned(),
            operation: var("operation").unwrap_or_default().trim().to_owned(),
            active: set(&["active"]),
            start: set(&["start"]),
            stop: set(&["stop"]),
            promote: set(&["promote"]),
            demote: set(&["demote"]),
            promoted: set(&["promoted", "master"]),
            unpromoted: set(&["unpromoted", "slave"]),
        }
    }

    /// The lists of this process's environment: Pacemaker sets them on notify actions, and
    /// copies them onto the start, stop, promote and demote actions of the same transition.
    pub fn from_env() -> Notification {
        Notification::from_lookup(|k| std::env::var(k).ok())
    }

    /// The node being promoted, when exactly one is.
    pub fn promoting(&self) -> Option<&str> {
        match self.promote.0.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The primary is being recovered in place: promoted now and promoted again after.
    pub fn is_primary_recovery(&self, node: &str) -> bool {
        self.promoted.contains(node) && self.promote.contains(node)
    }

    /// A switchover: one primary demoted (not stopped) and `node`, a standby, promoted.
    pub fn is_switchover_to(&self, node: &str) -> bool {
        match (
            self.promoted.0.as_slice(),
            self.demote.0.as_slice(),
            self.promote.0.as_slice(),
        ) {
            ([old], [demoted], [new]) => {
                old == demoted
                    && new == node
                    && !self.stop.contains(old)
                    && self.unpromoted.contains(node)
            }
            _ => false,
        }
    }

    /// Nodes that will run the resource after this transition: active + start − stop,
    /// counted per name, so a node restarted in this transition (in `stop` and in `start`)
    /// stays a candidate (PAF counts the same way).
    pub fn candidates(&self) -> Vec<String> {
        let mut counts: Vec<(String, i32)> = Vec::new();
        let mut add = |node: &String, by: i32| match counts.iter_mut().find(|(n, _)| n == node) {
            Some((_, count)) => *count += by,
            None => counts.push((node.clone(), by)),
        };
        for node in self.active.0.iter().chain(&self.start.0) {
            add(node, 1);
        }
        for node in &self.stop.0 {
            add(node, -1);
        }
        counts
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(node, _)| node)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn notification(pairs: &[(&str, &str)]) -> Notification {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("OCF_RESKEY_CRM_meta_notify_{k}"), v.to_string()))
            .collect();
        Notification::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn first_start_and_promote_as_pacemaker_sends_it() {
        // Values from a real crm_simulate transition graph (ocf-pacemaker.md §1.6).
        let n = notification(&[
            ("type", "pre"),
            ("operation", "promote"),
            ("start_resource", "pgsqld:0 pgsqld:1 pgsqld:2"),
            ("start_uname", "srv2 srv1 srv3"),
            ("promote_uname", "srv2"),
            ("promoted_uname", " "),
            ("master_uname", " "),
            ("slave_uname", " "),
            ("active_uname", " "),
        ]);
        assert_eq!(n.kind, "pre");
        assert_eq!(n.operation, "promote");
        assert_eq!(n.promoting(), Some("srv2"));
        assert!(n.promoted.0.is_empty());
        assert_eq!(n.candidates(), ["srv2", "srv1", "srv3"]);
        assert!(!n.is_primary_recovery("srv2"));
    }

    #[test]
    fn legacy_names_are_the_fallback() {
        let n = notification(&[("master_uname", "a"), ("slave_uname", "b c")]);
        assert_eq!(n.promoted.0, ["a"]);
        assert_eq!(n.unpromoted.0, ["b", "c"]);
        let n = notification(&[("promoted_uname", "x"), ("master_uname", "a")]);
        assert_eq!(n.promoted.0, ["x"]);
    }

    #[test]
    fn failover_candidates_exclude_stopped_nodes() {
        let n = notification(&[
            ("active_uname", "n1 n2 n3"),
            ("stop_uname", "n1"),
            ("promote_uname", "n2"),
            ("promoted_uname", "n1"),
            ("demote_uname", "n1"),
        ]);
        assert_eq!(n.candidates(), ["n2", "n3"]);
        assert!(
            !n.is_switchover_to("n2"),
            "the old primary stops: a failover"
        );
    }

    #[test]
    fn switchover_and_primary_recovery() {
        let n = notification(&[
            ("active_uname", "n1 n2 n3"),
            ("promoted_uname", "n1"),
            ("unpromoted_uname", "n2 n3"),
            ("demote_uname", "n1"),
            ("promote_uname", "n2"),
            ("stop_uname", " "),
        ]);
        assert!(n.is_switchover_to("n2"));
        assert!(!n.is_switchover_to("n3"));
        let n = notification(&[("promoted_uname", "n1"), ("promote_uname", "n1")]);
        assert!(n.is_primary_recovery("n1"));
    }

    #[test]
    fn a_node_restarted_in_the_transition_stays_a_candidate() {
        let n = notification(&[
            ("active_uname", "n1 n2 n3"),
            ("stop_uname", "n1 n2"),
            ("start_uname", "n2"),
            ("promote_uname", "n3"),
        ]);
        assert_eq!(n.candidates(), ["n2", "n3"]);
    }
}
