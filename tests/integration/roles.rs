//! Roles: promote and demote (`paf.md` §2.7, §2.8), the election through pre-promote
//! notifications (§4.4, §4.5), and the scores the primary's monitor keeps (§4.3).

use std::time::Duration;

use crate::agent::{agent, RSC};
use crate::pg::{crashed_primary, primary_and_standby, running_primary, three_nodes, Pg};

#[test]
fn demote_running_primary_restarts_it_as_standby() {
    let pg = running_primary();
    agent().on(&pg).action("demote").expect(0);
    assert!(pg.in_recovery());
    agent().on(&pg).action("monitor").recurring().expect(0);
}

/// PAF's rule: failing the demote of a stopped instance makes Pacemaker loop
/// demote → stop → start → promote; starting it as a standby ends the loop.
#[test]
fn demote_of_stopped_instance_starts_it_as_standby() {
    let (primary, standby) = primary_and_standby();
    standby.stop();
    agent().on(&standby).action("demote").expect(0);
    assert!(standby.in_recovery());
    primary.wait_streaming("pg2");
}

#[test]
fn demote_of_standby_succeeds() {
    let (_primary, standby) = primary_and_standby();
    agent().on(&standby).action("demote").expect(0);
    assert!(standby.in_recovery());
}

#[test]
fn demote_refuses_crashed_primary_and_changes_nothing() {
    let pg = crashed_primary();
    pg.untouched_by("demote of a crashed primary", || {
        agent().on(&pg).action("demote").expect_reason(1, "pg1")
    });
}

/// Without notification data (`crm_resource --force-promote`, PAF #80) there is no election:
/// the standby is promoted.
#[test]
fn promote_running_standby_without_election_data() {
    let (primary, standby) = primary_and_standby();
    primary.stop();
    agent().on(&standby).action("promote").expect(0);
    assert!(!standby.in_recovery());
    agent().on(&standby).action("monitor").recurring().expect(8);
}

#[test]
fn promote_of_primary_succeeds() {
    let pg = running_primary();
    agent().on(&pg).action("promote").expect(0);
    assert!(!pg.in_recovery());
}

#[test]
fn promote_refuses_crashed_primary_and_changes_nothing() {
    let pg = crashed_primary();
    pg.untouched_by("promote of a crashed primary", || {
        agent().on(&pg).action("promote").expect_reason(1, "pg1")
    });
}

/// A promote notification of `kind` ("pre" or "post") run on `pg` with `shared`'s Pacemaker
/// tools. `lists` gives the node lists (`notify_<list>_uname`) that are not empty; the others
/// are " ", as Pacemaker passes an empty list.
fn notify_promote(pg: &Pg, shared: &Pg, kind: &str, lists: &[(&str, &str)]) {
    let mut notify = agent()
        .on(pg)
        .cluster(shared.fake())
        .action("notify")
        .meta("notify_type", kind)
        .meta("notify_operation", "promote");
    for list in [
        "active",
        "start",
        "stop",
        "promote",
        "demote",
        "promoted",
        "master",
        "unpromoted",
        "slave",
    ] {
        let nodes = lists
            .iter()
            .find(|(name, _)| *name == list)
            .map_or(" ", |(_, nodes)| *nodes);
        notify = notify.meta(&format!("notify_{list}_uname"), nodes);
    }
    notify.expect(0);
}

/// A pre-promote or post-promote notification as Pacemaker sends it after pg1, the primary,
/// was stopped: pg2 and pg3 remain, `target` is to be promoted.
fn promote_notification(kind: &str, pg: &Pg, shared: &Pg, target: &str) {
    notify_promote(
        pg,
        shared,
        kind,
        &[
            ("active", "pg2 pg3"),
            ("promote", target),
            ("unpromoted", "pg2 pg3"),
        ],
    );
}

/// After its primary is gone, Pacemaker picks pg2 by score, but pg3 received more WAL: pg2's
/// promote must give way (scores 1 and 1000, exit 1), and pg3's must succeed. Then the
/// post-promote notification clears the election's attributes. A `recover_primary` flag
/// left on pg2 by an interrupted election must not make it skip the election.
#[test]
fn election_promotes_the_most_advanced_standby() {
    let (pg1, pg2, pg3) = three_nodes(|_, _, _| {});
    let cluster = &pg1;
    // pg2 misses what follows; pg3 gets all of it, the shutdown checkpoint included.
    pg2.stop();
    pg1.psql("CREATE TABLE only_pg3_has_it AS SELECT 1 AS x");
    pg1.stop();
    pg2.start();
    let received = |pg: &Pg| pg.psql("SELECT pg_last_wal_receive_lsn() IS NOT NULL");
    pg3.wait_for("pg3 to have received WAL", Duration::from_secs(5), || {
        received(&pg3) == "t"
    });

    cluster
        .fake()
        .set_private_attribute(&format!("recover_primary-{RSC}"), "pg2", "1");
    for pg in [&pg2, &pg3] {
        promote_notification("pre", pg, cluster, "pg2");
    }
    let lsn_location = format!("lsn_location-{RSC}");
    for node in ["pg2", "pg3"] {
        assert!(
            cluster
                .fake()
                .private_attribute(&lsn_location, node)
                .is_some(),
            "{node} published no WAL position:\n{}",
            cluster.fake().calls()
        );
    }
    agent()
        .on(&pg2)
        .cluster(cluster.fake())
        .action("promote")
        .expect_reason(1, "pg3 is the best candidate");
    assert!(pg2.in_recovery(), "pg2 must not have been promoted");
    let score = |node| cluster.fake().promotion_score(RSC, node);
    assert_eq!(score("pg2").as_deref(), Some("1"));
    assert_eq!(score("pg3").as_deref(), Some("1000"));

    // Pacemaker recomputes and designates pg3.
    for pg in [&pg2, &pg3] {
        promote_notification("pre", pg, cluster, "pg3");
    }
    agent()
        .on(&pg3)
        .cluster(cluster.fake())
        .action("promote")
        .expect(0);
    assert!(!pg3.in_recovery());
    for pg in [&pg2, &pg3] {
        promote_notification("post", pg, cluster, "pg3");
    }
    for node in ["pg2", "pg3"] {
        for name in ["lsn_location", "nodes", "recover_primary"] {
            assert_eq!(
                cluster
                    .fake()
                    .private_attribute(&format!("{name}-{RSC}"), node),
                None,
                "post-promote leaves {name} of {node}"
            );
        }
    }
}

/// Issue 10: after every node lost power at once, the former primary (pg_control "in
/// production") was refused until an operator's cleanup, and a less advanced standby was
/// promoted. With Pacemaker's lists saying no node is promoted, it starts as a standby,
/// replays its own WAL, and wins the election with its true position, even when Pacemaker
/// designates the other node first.
#[test]
fn whole_cluster_power_cut_the_crashed_primary_takes_part_in_the_election() {
    let (pg1, pg2) = primary_and_standby();
    let cluster = &pg1;
    cluster.fake().set_partition(&["pg1", "pg2"]);
    pg1.wait_streaming("pg2");
    pg2.stop();
    pg1.psql("CREATE TABLE only_pg1_has_it AS SELECT 1 AS x");
    pg1.kill9();
    // As on a real cluster, a standby's upstream is the VIP, which nobody holds now.
    pg2.conf("primary_conninfo = 'host=127.0.0.1 port=1 application_name=pg2'");
    for pg in [&pg1, &pg2] {
        agent()
            .on(pg)
            .cluster(cluster.fake())
            .action("start")
            .meta("notify_start_uname", "pg1 pg2")
            .meta("notify_active_uname", " ")
            .meta("notify_promoted_uname", " ")
            .meta("notify_promote_uname", " ")
            .expect(0);
        assert!(pg.in_recovery(), "{} must start as a standby", pg.node);
    }
    assert_eq!(
        cluster.fake().promotion_score(RSC, "pg1").as_deref(),
        Some("2"),
        "the crashed former primary's first-start score"
    );
    let election = |designated: &str| {
        for pg in [&pg1, &pg2] {
            notify_promote(
                pg,
                cluster,
                "pre",
                &[
                    ("active", "pg1 pg2"),
                    ("promote", designated),
                    ("unpromoted", "pg1 pg2"),
                ],
            );
        }
    };
    election("pg2");
    agent()
        .on(&pg2)
        .cluster(cluster.fake())
        .action("promote")
        .expect_reason(1, "pg1 is the best candidate");
    election("pg1");
    agent()
        .on(&pg1)
        .cluster(cluster.fake())
        .action("promote")
        .expect(0);
    assert!(!pg1.in_recovery());
    assert_eq!(pg1.psql("SELECT count(*) FROM only_pg1_has_it"), "1");
}

/// Issue 10: a standby restarted with no WAL receiver (no primary left) may hold WAL it
/// received but has not replayed (here held back by `recovery_min_apply_delay`); its
/// published position is where that WAL ends, read natively, not how far replay got, or a
/// less advanced node could win the election.
#[test]
fn a_standby_publishes_the_end_of_the_wal_it_holds_not_of_what_it_replayed() {
    let (pg1, pg2) = primary_and_standby();
    let cluster = &pg1;
    cluster.fake().set_partition(&["pg1", "pg2"]);
    pg2.conf("recovery_min_apply_delay = '1h'");
    pg2.stop();
    pg2.start();
    pg1.wait_streaming("pg2");
    pg1.psql("CREATE TABLE held_back AS SELECT 1 AS x");
    let written = pg1.psql("SELECT pg_current_wal_flush_lsn()");
    pg2.wait_for(
        "pg2 to receive pg1's write",
        Duration::from_secs(10),
        || pg2.psql(&format!("SELECT pg_last_wal_receive_lsn() >= '{written}'")) == "t",
    );
    pg1.stop();
    pg2.stop();
    pg2.conf("primary_conninfo = 'host=127.0.0.1 port=1 application_name=pg2'");
    pg2.start();
    let replayed = pg2.psql("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn");
    notify_promote(
        &pg2,
        cluster,
        "pre",
        &[("active", "pg2"), ("promote", "pg2"), ("unpromoted", "pg2")],
    );
    let published = cluster
        .fake()
        .private_attribute(&format!("lsn_location-{RSC}"), "pg2")
        .expect("pg2 published no position");
    let lsn: u64 = published.trim().split_once('#').unwrap().1.parse().unwrap();
    let written = written.parse::<pgha::lsn::Lsn>().unwrap().0;
    assert!(
        lsn >= written && lsn > replayed.parse::<u64>().unwrap(),
        "published {published}, replayed {replayed}, pg1 wrote up to {written}"
    );
}

/// `paf.md` §4.3: 1001 for the primary, 1000 for the most advanced streaming standby, −1000
/// for a partition node that is not connected.
#[test]
fn primary_monitor_sets_promotion_scores() {
    let (primary, _standby) = primary_and_standby();
    primary.fake().set_partition(&["pg1", "pg2", "pg3"]);
    primary.wait_streaming("pg2");
    agent().on(&primary).action("monitor").recurring().expect(8);
    let score = |node| primary.fake().promotion_score(RSC, node);
    assert_eq!(score("pg1").as_deref(), Some("1001"));
    assert_eq!(score("pg2").as_deref(), Some("1000"));
    assert_eq!(score("pg3").as_deref(), Some("-1000"));
}

/// Score writes are CIB updates that abort Pacemaker's transition: only changes are written,
/// and a monitor that changes nothing calls no Pacemaker tool at all.
#[test]
fn primary_monitor_writes_scores_only_on_change() {
    let (primary, standby) = primary_and_standby();
    primary.fake().set_partition(&["pg1", "pg2"]);
    primary.wait_streaming("pg2");
    agent().on(&primary).action("monitor").recurring().expect(8);
    let calls = primary.fake().calls();
    agent().on(&primary).action("monitor").recurring().expect(8);
    assert_eq!(
        primary.fake().calls(),
        calls,
        "a monitor with nothing to change called Pacemaker tools"
    );
    standby.stop();
    // The first look that misses a standby leaves its score (it may be reconnecting, as
    // after every promotion); the second one marks it unpromotable.
    for (score, why) in [
        ("1000", "one miss is not enough"),
        ("-1000", "the standby left"),
    ] {
        agent().on(&primary).action("monitor").recurring().expect(8);
        assert_eq!(
            primary.fake().promotion_score(RSC, "pg2").as_deref(),
            Some(score),
            "{why}: calls\n{}",
            primary.fake().calls()
        );
    }
}

/// Issue 10: a standby that left the cluster (its node isolated or fenced: Pacemaker drops
/// its score and the partition forgets it) and came back got no score until the primary's
/// memory of what it wrote expired, five minutes later: a second failure meanwhile had one
/// candidate fewer. It gets its score at the primary's next monitor.
#[test]
fn rejoined_standby_gets_its_score_at_the_next_monitor() {
    let (primary, standby) = primary_and_standby();
    let fake = primary.fake();
    fake.set_partition(&["pg1", "pg2"]);
    primary.wait_streaming("pg2");
    agent().on(&primary).action("monitor").recurring().expect(8);
    assert_eq!(fake.promotion_score(RSC, "pg2").as_deref(), Some("1000"));
    // pg2's node leaves: Pacemaker forgets its transient score and its membership.
    standby.stop();
    fake.set_partition(&["pg1"]);
    fake.remove_promotion_score(RSC, "pg2");
    agent().on(&primary).action("monitor").recurring().expect(8);
    // It comes back and streams again.
    fake.set_partition(&["pg1", "pg2"]);
    standby.start();
    primary.wait_streaming("pg2");
    agent().on(&primary).action("monitor").recurring().expect(8);
    assert_eq!(
        fake.promotion_score(RSC, "pg2").as_deref(),
        Some("1000"),
        "no score for the rejoined standby: calls\n{}",
        fake.calls()
    );
}

/// The pre-promote notification of a switchover from pg1 (demoted) to `target`, run on
/// `target`.
fn switchover_notification(pg: &Pg, shared: &Pg, target: &str) {
    notify_promote(
        pg,
        shared,
        "pre",
        &[
            ("active", "pg1 pg2 pg3"),
            ("promote", target),
            ("demote", "pg1"),
            ("promoted", "pg1"),
            ("master", "pg1"),
            ("unpromoted", "pg2 pg3"),
            ("slave", "pg2 pg3"),
        ],
    );
}

/// Switchover safety (`paf.md` §6.4), read natively from pg_wal: pg2 received pg1's shutdown
/// checkpoint but has not replayed it (its replay waits an hour on a commit), and is
/// accepted; pg3 stopped before pg1's last writes, and is refused (`cancel_switchover`).
#[test]
fn switchover_needs_the_shutdown_checkpoint_received_not_replayed() {
    let (pg1, pg2, pg3) = three_nodes(|_, pg2, _| pg2.conf("recovery_min_apply_delay = '1h'"));
    let cluster = &pg1;
    // The last checkpoint pg2 replays is an online one: what replay and pg_control show
    // then says nothing of the shutdown checkpoint received later.
    pg1.psql("CHECKPOINT");
    let checkpoint = pg1.psql("SELECT pg_current_wal_flush_lsn()");
    pg2.wait_replayed("pg2 to replay pg1's checkpoint", &checkpoint);
    // pg3's last record is a write of pg1's, not a checkpoint.
    pg1.psql("CREATE TABLE before_pg3_left AS SELECT 1 AS x");
    let written = pg1.psql("SELECT pg_current_wal_flush_lsn()");
    pg3.wait_replayed("pg3 to replay pg1's write", &written);
    pg3.stop();
    pg1.psql("CREATE TABLE after_pg3_left AS SELECT 1 AS x");
    pg1.stop();
    pg3.start();
    let lag = pg2.psql("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()");
    assert_eq!(lag, "t", "pg2 replayed everything: the test proves nothing");

    let cancel = format!("cancel_switchover-{RSC}");
    switchover_notification(&pg2, cluster, "pg2");
    assert_eq!(
        cluster.fake().private_attribute(&cancel, "pg2"),
        None,
        "switchover to pg2 refused:\n{}",
        cluster.fake().calls()
    );
    assert!(cluster
        .fake()
        .private_attribute(&format!("lsn_location-{RSC}"), "pg2")
        .is_some());

    switchover_notification(&pg3, cluster, "pg3");
    assert_eq!(
        cluster.fake().private_attribute(&cancel, "pg3").as_deref(),
        Some("1")
    );
    agent()
        .on(&pg3)
        .cluster(cluster.fake())
        .action("promote")
        .expect_reason(1, "switchover to pg3 canceled");
    assert!(pg3.in_recovery());
}
