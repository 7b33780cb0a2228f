//! The view built from crm_mon documents captured on the cluster harness (Pacemaker 2.1.5 on
//! Debian 12 nodes, 3.0 on Debian 13 nodes; `tests/fixtures/crm_mon/<os>/`), with the SQL
//! facts the local node would give in that state, against golden outputs
//! (`tests/fixtures/status/<os>-<state>.{txt,json,prom}`). `PGHA_BLESS=1 cargo test --lib
//! status` rewrites the golden files after a deliberate change; review their diff.

use std::path::PathBuf;

use super::crm::{parse_crm_mon, parse_primitives};
use super::model::{build, Inputs, LocalFiles, LocalSql, Marker, Replica, Status, Unavailable};
use super::render;
use crate::lsn::Lsn;

const OSES: [&str; 2] = ["debian12", "debian13"];

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lsn(text: &str) -> Option<Lsn> {
    Some(text.parse().unwrap())
}

fn replica(node: &str, replayed: &str, lag: Option<f64>) -> Replica {
    Replica {
        application_name: node.into(),
        state: "streaming".into(),
        sync_state: "async".into(),
        replay_lsn: lsn(replayed),
        replay_lag: lag,
    }
}

fn primary(replicas: Vec<Replica>) -> LocalSql {
    LocalSql {
        timeline: Some(1),
        current_lsn: lsn("0/5000148"),
        replication: replicas,
        ..LocalSql::default()
    }
}

/// The inputs of `state` on `os`: crm_mon's document, the CIB, and what the local node's
/// instance and files would say.
fn inputs(os: &str, state: &str) -> Inputs {
    let mon = parse_crm_mon(&read(&format!("crm_mon/{os}/{state}.xml"))).unwrap();
    let primitives = parse_primitives(&read(&format!("crm_mon/{os}/cib-resources.xml"))).unwrap();
    let promoted = mon
        .instances
        .iter()
        .find(|i| i.id == "pgsqld" && i.role == "Promoted")
        .and_then(|i| i.nodes.first().cloned())
        .unwrap();
    let standbys: Vec<String> = mon
        .instances
        .iter()
        .filter(|i| i.id == "pgsqld" && i.role == "Unpromoted")
        .flat_map(|i| i.nodes.clone())
        .collect();
    let streaming = |lagging: Option<&str>| {
        standbys
            .iter()
            .map(|n| match lagging {
                Some(l) if l == n => replica(n, "0/3000000", Some(17.25)),
                _ => replica(n, "0/5000148", None),
            })
            .collect()
    };
    let mut inputs = Inputs {
        now: "2026-12-05T07:30:00Z".into(),
        local_node: Some(promoted.clone()),
        resource: Some("pgsqld".into()),
        primitives,
        files: Some(LocalFiles::default()),
        ..Inputs::default()
    };
    match state {
        "healthy" | "primary-fenced" => inputs.sql = Some(primary(streaming(None))),
        "standby-lagging" => {
            inputs.sql = Some(primary(streaming(standbys.first().map(String::as_str))))
        }
        "failed-action" => {
            // The standby whose postmaster was killed is not in pg_stat_replication.
            let failed: Vec<&str> = mon.failures.iter().map(|f| f.node.as_str()).collect();
            let mut rows: Vec<Replica> = streaming(None);
            rows.retain(|r| !failed.contains(&r.application_name.as_str()));
            inputs.sql = Some(primary(rows));
        }
        "rewinding" => {
            // Seen from the node being brought back: its instance is down, a marker is there.
            inputs.local_node = Some("node1".into());
            inputs.files = Some(LocalFiles {
                marker: Some(Marker {
                    operation: "re-clone".into(),
                    started: "2026-12-05T07:22:41Z".into(),
                }),
                kept: vec![(
                    "node1-20261205T072241Z".into(),
                    "2026-12-05T07:22:41Z".into(),
                )],
            });
            inputs.unavailable.push(Unavailable {
                source: "the local instance (SQL)".into(),
                error: "no server answers on /run/postgresql/.s.PGSQL.5432".into(),
            });
        }
        other => panic!("no such state {other}"),
    }
    inputs.mon = Some(mon);
    inputs
}

const STATES: [&str; 5] = [
    "healthy",
    "standby-lagging",
    "primary-fenced",
    "rewinding",
    "failed-action",
];

fn status(os: &str, state: &str) -> Status {
    build(&inputs(os, state))
}

fn node<'a>(s: &'a Status, name: &str) -> &'a super::model::NodeView {
    s.nodes.iter().find(|n| n.name == name).unwrap()
}

#[test]
fn golden_outputs() {
    let bless = std::env::var_os("PGHA_BLESS").is_some();
    for os in OSES {
        for state in STATES {
            let s = status(os, state);
            for (ext, out) in [
                ("txt", render::text(&s)),
                ("json", render::json(&s)),
                ("prom", render::prometheus(&s)),
            ] {
                let path = fixture(&format!("status/{os}-{state}.{ext}"));
                if bless {
                    std::fs::write(&path, &out).unwrap();
                }
                let want = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(out, want, "{}", path.display());
            }
        }
    }
}

#[test]
fn healthy_one_primary_two_streaming_standbys() {
    for os in OSES {
        let s = status(os, "healthy");
        assert_eq!(s.nodes.len(), 3, "{os}");
        let roles: Vec<&str> = s.nodes.iter().map(|n| n.role.as_str()).collect();
        assert_eq!(
            roles.iter().filter(|r| **r == "Promoted").count(),
            1,
            "{os}: {roles:?}"
        );
        assert_eq!(
            roles.iter().filter(|r| **r == "Unpromoted").count(),
            2,
            "{os}: {roles:?}"
        );
        for n in &s.nodes {
            assert!(n.flags.is_empty(), "{os}: {n:?}");
            assert!(n.promotion_score.is_some_and(|p| p > 0), "{os}: {n:?}");
            assert_eq!(n.pacemaker_state, "online");
        }
        let vip = s.vip.as_ref().unwrap();
        assert_eq!(vip.address.as_deref(), Some("10.200.0.10"));
        assert_eq!(vip.node, s.local_node, "{os}");
        assert_eq!(s.events.last_failover, None, "{os}");
        assert!(s.unavailable.is_empty());
    }
}

#[test]
fn a_lagging_standby_shows_its_lag_in_bytes_and_time() {
    for os in OSES {
        let s = status(os, "standby-lagging");
        let lagging: Vec<_> = s
            .nodes
            .iter()
            .filter(|n| n.lag_bytes.unwrap_or(0) > 0)
            .collect();
        assert_eq!(lagging.len(), 1, "{os}");
        assert_eq!(lagging[0].lag_bytes, Some(0x2000148));
        assert_eq!(lagging[0].lag_seconds, Some(17.25));
        assert_eq!(lagging[0].postgres_source, "primary's pg_stat_replication");
    }
}

#[test]
fn a_fenced_primary_is_offline_and_the_failover_is_dated() {
    for os in OSES {
        let s = status(os, "primary-fenced");
        let off = node(&s, "node1");
        assert_eq!(
            (off.pacemaker_state.as_str(), off.role.as_str()),
            ("offline", "Stopped")
        );
        assert_eq!(off.postgres_role, None);
        let failover = s.events.last_failover.as_ref().unwrap();
        assert_eq!(Some(&failover.node), s.local_node.as_ref(), "{os}");
        assert!(failover.detail.contains("node1 was fenced"), "{failover:?}");
        assert_eq!(s.vip.as_ref().unwrap().node, s.local_node);
    }
}

#[test]
fn a_rewind_in_progress_is_flagged_and_the_silent_instance_named() {
    for os in OSES {
        let s = status(os, "rewinding");
        let me = node(&s, "node1");
        assert!(
            me.flags.contains(&"rewind-marker".to_owned()),
            "{os}: {me:?}"
        );
        assert!(me.flags.contains(&"kept-wal".to_owned()), "{os}: {me:?}");
        assert_eq!(me.postgres_role, None);
        let rewind = s.events.last_rewind.as_ref().unwrap();
        assert!(
            rewind.detail.starts_with("re-clone in progress"),
            "{rewind:?}"
        );
        assert_eq!(s.unavailable.len(), 1);
        // Other nodes' files are not readable from here: not known, not "none".
        assert_eq!(node(&s, "node2").kept_folders, None);
    }
}

#[test]
fn a_failed_action_and_a_standby_that_does_not_replicate_are_flagged() {
    for os in OSES {
        let s = status(os, "failed-action");
        let flagged: Vec<_> = s
            .nodes
            .iter()
            .filter(|n| n.flags.contains(&"failed-action".to_owned()))
            .collect();
        assert_eq!(flagged.len(), 1, "{os}");
        assert!(
            !flagged[0].failed_actions[0].reason.contains("&quot;"),
            "{flagged:?}"
        );
        assert!(
            flagged[0].flags.contains(&"not-replicating".to_owned()),
            "{os}: {flagged:?}"
        );
        let replicating = s
            .nodes
            .iter()
            .filter(|n| n.flags.contains(&"not-replicating".to_owned()));
        assert_eq!(replicating.count(), 1, "{os}: {:?}", s.nodes);
    }
}
