//! start and stop (`paf.md` §2.5, §2.6): always start as a standby, idempotence, crashes, and
//! the first-start promotion score.

use std::time::Duration;

use crate::agent::{agent, RSC};
use crate::pg::{
    crashed_primary, primary_and_standby, primary_and_stopped_standby, running_primary,
    stopped_primary_and_standby, Pg,
};

#[test]
fn start_stopped_standby_streams_from_primary() {
    let (primary, standby) = primary_and_stopped_standby();
    agent().on(&standby).action("start").expect(0);
    assert!(standby.in_recovery());
    primary.wait_for(
        "pg2 in pg_stat_replication",
        Duration::from_secs(10),
        || {
            primary
                .psql("SELECT application_name FROM pg_stat_replication")
                .lines()
                .any(|name| name == "pg2")
        },
    );
    agent().on(&standby).action("monitor").recurring().expect(0);
}

/// `start_opts` is parsed once into words: pg_ctl's shell hands the server exactly those
/// words, a quoted one with its spaces (the agent re-quotes them for `pg_ctl -o`).
#[test]
fn finding_9_start_opts_words_reach_the_server_as_parsed() {
    let (_primary, standby) = primary_and_stopped_standby();
    agent()
        .on(&standby)
        .param("start_opts", "-c 'search_path=a,  b' -c work_mem=5MB")
        .action("start")
        .expect(0);
    assert_eq!(standby.psql("SHOW search_path"), "a,  b");
    assert_eq!(standby.psql("SHOW work_mem"), "5MB");
}

#[test]
fn start_twice_succeeds_both_times() {
    let (_primary, standby) = primary_and_stopped_standby();
    agent().on(&standby).action("start").expect(0);
    agent().on(&standby).action("start").expect(0);
    assert!(standby.in_recovery());
}

#[test]
fn stop_twice_succeeds_both_times() {
    let pg = running_primary();
    agent().on(&pg).action("stop").expect(0);
    pg.assert_not_running();
    assert_eq!(pg.control_state(), "shut down");
    pg.untouched_by("second stop", || agent().on(&pg).action("stop").expect(0));
}

#[test]
fn stop_of_running_standby_is_a_clean_shutdown() {
    let (_primary, standby) = primary_and_standby();
    agent().on(&standby).action("stop").expect(0);
    standby.assert_not_running();
    assert_eq!(standby.control_state(), "shut down in recovery");
}

/// A primary that crashed may hold writes the new primary never saw: starting it as a
/// standby would hide the divergence (`paf.md` §5.6). Start refuses and touches nothing.
#[test]
fn start_refuses_crashed_primary_and_changes_nothing() {
    let pg = crashed_primary();
    pg.untouched_by("start of a crashed primary", || {
        agent()
            .on(&pg)
            .action("start")
            .expect_reason(1, "crashed as a primary")
    });
    assert_eq!(pg.fake().calls(), "", "no promotion score may be touched");
}

#[test]
fn start_recovers_crashed_standby() {
    let (_primary, standby) = primary_and_standby();
    standby.kill9();
    assert_eq!(standby.control_state(), "in archive recovery");
    agent().on(&standby).action("start").expect(0);
    assert!(standby.in_recovery());
    agent().on(&standby).action("monitor").recurring().expect(0);
}

/// Nothing of a crashed instance runs, so stop succeeds (a failed stop means fencing, on
/// every rejoin: PAF #162, #204) and leaves the evidence for start to judge.
#[test]
fn stop_of_crashed_primary_succeeds_and_changes_nothing() {
    let pg = crashed_primary();
    pg.untouched_by("stop of a crashed primary", || {
        agent().on(&pg).action("stop").expect(0)
    });
    // Still a crashed primary for the next monitor.
    agent()
        .on(&pg)
        .action("monitor")
        .probe()
        .expect_reason(9, "crashed");
}

#[test]
fn stop_of_crashed_standby_succeeds() {
    let (_primary, standby) = primary_and_standby();
    standby.kill9();
    standby.untouched_by("stop of a crashed standby", || {
        agent().on(&standby).action("stop").expect(0)
    });
}

/// PAF's first start: a cleanly stopped primary, in a partition where no node has a
/// promotion score, sets its own (2, above a standby's first-start 1) so that Pacemaker
/// promotes it.
#[test]
fn first_start_of_clean_primary_sets_promotion_score() {
    let pg = Pg::primary("pg1");
    pg.fake().set_partition(&["pg1", "pg2", "pg3"]);
    assert_eq!(pg.control_state(), "shut down");
    agent().on(&pg).action("start").expect(0);
    assert!(pg.in_recovery(), "start always starts a standby");
    assert_eq!(
        pg.fake().promotion_score(RSC, "pg1").as_deref(),
        Some("2"),
        "calls:\n{}",
        pg.fake().calls()
    );
    for other in ["pg2", "pg3"] {
        assert_eq!(pg.fake().promotion_score(RSC, other), None);
    }
}

/// The first start of a cleanly shut down primary, pg1, in a partition where pg2 already has
/// promotion score `pg2_score`.
fn first_start_beside(pg2_score: &str) -> Pg {
    let pg = Pg::primary("pg1");
    pg.fake().set_partition(&["pg1", "pg2"]);
    pg.fake().set_promotion_score(RSC, "pg2", pg2_score);
    agent().on(&pg).action("start").expect(0);
    pg
}

/// A negative score is a node that must not be promoted: it does not count as a candidate.
#[test]
fn first_start_sets_score_when_other_scores_are_negative() {
    let pg = first_start_beside("-1");
    assert_eq!(pg.fake().promotion_score(RSC, "pg1").as_deref(), Some("2"));
}

/// A standby that started first, in parallel, may already hold its first-start 1: the former
/// primary still takes precedence.
#[test]
fn first_start_of_clean_primary_outranks_a_standbys_first_start() {
    let pg = first_start_beside("1");
    assert_eq!(pg.fake().promotion_score(RSC, "pg1").as_deref(), Some("2"));
}

#[test]
fn first_start_sets_no_score_when_another_node_has_one() {
    let pg = first_start_beside("1000");
    assert_eq!(
        pg.fake().promotion_score(RSC, "pg1"),
        None,
        "calls:\n{}",
        pg.fake().calls()
    );
    assert_eq!(
        pg.fake().promotion_score(RSC, "pg2").as_deref(),
        Some("1000")
    );
}

/// A standby's first start is not a cluster's first start: no score.
#[test]
fn start_of_standby_sets_no_score() {
    let (_primary, standby) = primary_and_standby();
    standby.stop();
    agent().on(&standby).action("start").expect(0);
    assert_eq!(standby.fake().promotion_score(RSC, "pg2"), None);
}

#[test]
fn start_refuses_running_primary() {
    let pg = running_primary();
    agent()
        .on(&pg)
        .action("start")
        .expect_reason(1, "running as a primary");
    assert!(!pg.in_recovery());
}

/// start checks the settings before it writes `standby.signal`: a refused start leaves the
/// data directory as it was.
#[test]
fn start_with_bad_primary_conninfo_is_err_args_and_changes_nothing() {
    let (_primary, standby) = stopped_primary_and_standby();
    standby.conf("primary_conninfo = 'host=127.0.0.1 port=5432 application_name=pg9'");
    standby.untouched_by("a refused start", || {
        agent()
            .on(&standby)
            .action("start")
            .expect_reason(2, "application_name=pg2")
    });
}

/// PAF #161: a setting that validation would refuse must not make a stop fail (a failed
/// stop gets the node fenced); stop only stops.
#[test]
fn paf_161_stop_ignores_local_validation_errors() {
    let pg = running_primary();
    std::fs::write(pg.data().join("recovery.conf.pcmk"), "").unwrap();
    pg.conf("primary_conninfo = 'host=127.0.0.1'");
    agent().on(&pg).action("stop").expect(0);
    pg.assert_not_running();
    assert_eq!(pg.control_state(), "shut down");
}

/// Nothing can run from a data directory that does not exist: stop succeeds.
#[test]
fn paf_161_stop_without_pgdata_succeeds() {
    let pg = Pg::primary("pg1");
    agent()
        .on(&pg)
        .param("pgdata", "/nonexistent/pgha/data")
        .action("stop")
        .expect(0);
}

/// Debian's layout (PAF #11, #170): `pgdata` is the configuration directory, `datadir` the
/// data directory named by its `data_directory`.
#[test]
fn debian_layout_with_configuration_outside_the_data_directory() {
    let pg = Pg::primary("pg1");
    let conf = pg.root().join("conf");
    std::fs::create_dir(&conf).unwrap();
    for file in ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
        std::fs::rename(pg.data().join(file), conf.join(file)).unwrap();
    }
    crate::pg::append(
        &conf.join("postgresql.conf"),
        &format!(
            "data_directory = '{data}'\nhba_file = '{conf}/pg_hba.conf'\n\
             ident_file = '{conf}/pg_ident.conf'\n",
            data = pg.data().display(),
            conf = conf.display()
        ),
    );
    crate::pg::chown_postgres(&conf);
    let on = || {
        agent()
            .on(&pg)
            .param("pgdata", &conf.display().to_string())
            .param("datadir", &pg.data().display().to_string())
    };
    on().action("validate-all").check_level(10).expect(0);
    on().action("monitor").probe().expect(7);
    on().action("start").expect(0);
    assert!(pg.in_recovery());
    assert!(pg.data().join("standby.signal").exists());
    assert_eq!(pg.fake().promotion_score(RSC, "pg1").as_deref(), Some("2"));
    on().action("monitor").recurring().expect(0);
    on().action("stop").expect(0);
    pg.assert_not_running();
    assert_eq!(pg.control_state(), "shut down in recovery");
}
