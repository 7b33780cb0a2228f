//! `pgha status`, the real binary against fake Pacemaker tools (`fake.rs`) printing crm_mon
//! documents captured on the cluster harness: every source has `--timeout` to answer, one
//! that does not is named rather than waited for, and the JSON is what docs/status.md says.
//! The cluster scenario `tests/cluster/scenarios/50-status.sh` runs it on real nodes.

use std::time::{Duration, Instant};

use crate::agent::BIN;
use crate::fake::FakePacemaker;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/crm_mon/debian12/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fake node2 whose resource's data directory is `datadir` (absent: no local instance).
fn cluster(dir: &std::path::Path, crm_mon_delay: u64) -> FakePacemaker {
    let fake = FakePacemaker::install(dir, "node2");
    fake.set_crm_mon(&fixture("healthy.xml"), crm_mon_delay);
    let datadir = dir.join("data");
    fake.set_cib_resources(&fixture("cib-resources.xml").replace(
        "/var/lib/postgresql/15/data",
        &datadir.display().to_string(),
    ));
    fake
}

fn status(fake: &FakePacemaker, args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = assert_cmd::Command::new(BIN)
        .arg("status")
        .args(args)
        .env("HA_SBIN_DIR", fake.sbin())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), text, started.elapsed())
}

#[test]
fn json_of_a_healthy_cluster_names_the_local_instance_it_could_not_reach() {
    let dir = tempfile::tempdir().unwrap();
    let fake = cluster(dir.path(), 0);
    let (code, text, _) = status(&fake, &["--json", "--timeout", "2"]);
    assert_eq!(code, Some(0), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["local_node"], "node2");
    assert_eq!(doc["resource"], "pgsqld");
    assert_eq!(doc["vip"]["node"], "node1");
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["role"], "Promoted");
    let missing = doc["unavailable"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0]["source"], "the local instance (SQL)");
    assert!(fake.calls().contains("crm_mon --one-shot --output-as=xml"));
}

#[test]
fn a_crm_mon_that_does_not_answer_is_named_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let fake = cluster(dir.path(), 20);
    let (code, text, took) = status(&fake, &["--timeout", "1"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(text.contains("UNAVAILABLE     crm_mon:"), "{text}");
    // The CIB still answered: the resource is known, the nodes are not.
    assert!(text.contains("resource pgsqld"), "{text}");
}

#[test]
fn prometheus_text_has_one_sample_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let fake = cluster(dir.path(), 0);
    let (code, text, _) = status(&fake, &["--prometheus"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("pgha_promoted{").count(), 3, "{text}");
    assert!(
        text.contains("pgha_promoted{resource=\"pgsqld\",node=\"node1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pgha_source_up{source=\"the local instance (SQL)\"} 0"),
        "{text}"
    );
}

#[test]
fn an_empty_primitive_and_two_resources_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let fake = cluster(dir.path(), 0);
    fake.set_cib_resources(
        r#"<resources><primitive id="a" class="ocf" provider="pgha" type="pgsqlms"/>
           <primitive id="b" class="ocf" provider="pgha" type="pgsqlms"/></resources>"#,
    );
    let (code, text, _) = status(&fake, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("several resources of agent ocf:pgha:pgsqlms (a, b)"),
        "{text}"
    );
    let (_, text, _) = status(&fake, &["--resource", "a", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["resource"], "a");
}
