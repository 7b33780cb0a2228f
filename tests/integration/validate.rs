//! validate-all (`paf.md` §2.3; OCF 1.1 check levels): level 0 checks what is the same on
//! every node, level 10 this node's instance. Every failure names what is wrong, and leaves
//! the data directory as it was, with no server started.

use std::fs;

use crate::agent::{agent, Agent};
use crate::pg::{running_primary, Pg};

/// PAF #216: `pcs resource create` runs validate-all with the parameters only: no meta
/// attributes, no node name, and possibly before the data directory exists anywhere.
#[test]
fn paf_216_level_0_without_meta_or_data_directory_succeeds() {
    agent()
        .param("pgdata", "/nonexistent/pgha/data")
        .action("validate-all")
        .expect(0);
    // Nothing at all but the resource id: every default (pgdata /var/lib/pgsql/data).
    agent().action("validate-all").expect(0);
}

#[test]
fn level_10_on_a_good_instance_succeeds() {
    let pg = Pg::primary("pg1");
    pg.untouched_by("validate-all", || {
        agent()
            .on(&pg)
            .action("validate-all")
            .check_level(10)
            .expect(0)
    });
}

#[test]
fn validation_of_a_running_instance_succeeds() {
    let pg = running_primary();
    agent()
        .on(&pg)
        .action("validate-all")
        .check_level(10)
        .expect(0);
}

/// Runs validate-all on a stopped instance set up by `setup`, expects `code` and a reason
/// containing `reason`, and checks that nothing changed and nothing was started.
#[track_caller]
fn rejects(setup: impl FnOnce(&Pg, Agent) -> Agent, code: i32, reason: &str) {
    let pg = Pg::primary("pg1");
    let run = setup(&pg, agent().on(&pg).action("validate-all"));
    let before = pg.data().is_dir().then(|| pg.snapshot());
    run.expect_reason(code, reason);
    if let Some(before) = before {
        before.assert_same(&pg.snapshot(), "a failed validate-all");
    }
    pg.assert_not_running();
}

/// `rejects!(test_name, |pg, agent| agent.param(..) => code, "reason part")`
macro_rules! rejects {
    ($name:ident, |$pg:ident, $agent:ident| $setup:expr => $code:literal, $reason:literal) => {
        #[test]
        #[allow(unused_variables)]
        fn $name() {
            rejects(|$pg: &Pg, $agent: Agent| $setup, $code, $reason);
        }
    };
}

// Level 0: wrong on every node, OCF_ERR_CONFIGURED, and the reason names the parameter.
rejects!(pgport_not_a_number_is_misconfigured,
    |pg, a| a.param("pgport", "abc") => 6, "pgport");
rejects!(pgport_out_of_range_is_misconfigured,
    |pg, a| a.param("pgport", "70000") => 6, "pgport");
rejects!(maxlag_negative_is_misconfigured,
    |pg, a| a.param("maxlag", "-1") => 6, "maxlag");
rejects!(rewind_engine_unknown_is_misconfigured,
    |pg, a| a.param("rewind_engine", "fast") => 6, "rewind_engine=\"fast\" is invalid: must be native, pg_rewind or auto");
rejects!(pgdata_relative_is_misconfigured,
    |pg, a| a.param("pgdata", "relative/path") => 6, "pgdata");
rejects!(bindir_relative_is_misconfigured,
    |pg, a| a.param("bindir", "relative") => 6, "bindir");
rejects!(bad_parameter_fails_at_level_10_too,
    |pg, a| a.param("pgport", "abc").check_level(10) => 6, "pgport");

rejects!(finding_9_huge_rewind_timeout_is_misconfigured,
    |pg, a| a.param("rewind_timeout", "18446744073709551615") => 6, "rewind_timeout");
rejects!(finding_9_node_name_that_could_escape_a_folder_is_refused,
    |pg, a| a.meta("on_node", "../../etc").check_level(10) => 1, "OCF_RESKEY_CRM_meta_on_node");

/// pg_ctl hands `start_opts` and `pgdata` to /bin/sh: a value a shell would run is refused
/// (OCF_ERR_CONFIGURED, naming the parameter) by validate-all and by start alike, and the
/// command it holds never runs.
#[test]
fn finding_9_start_opts_and_pgdata_a_shell_would_run_are_refused() {
    let pg = Pg::primary("pg1");
    let planted = pg.root().join("x");
    let cases = [
        (
            "start_opts",
            format!("-c work_mem=4MB; touch {}", planted.display()),
        ),
        (
            "pgdata",
            format!("{}/$(touch {})", pg.root().display(), planted.display()),
        ),
    ];
    pg.untouched_by("refused start_opts and pgdata", || {
        for (param, value) in &cases {
            for action in ["validate-all", "start"] {
                agent()
                    .on(&pg)
                    .param(param, value)
                    .action(action)
                    .expect_reason(6, param);
                assert!(
                    !planted.exists(),
                    "{action} with {param}={value:?} ran the shell's command"
                );
            }
        }
    });
}

// Level 0: the clone's meta attributes, when Pacemaker passes them.
rejects!(meta_notify_false_is_misconfigured,
    |pg, a| a.meta("notify", "false") => 6, "notify");
rejects!(meta_promoted_max_2_is_misconfigured,
    |pg, a| a.meta("promoted_max", "2") => 6, "promoted-max");
rejects!(legacy_meta_master_max_2_is_misconfigured,
    |pg, a| a.meta("master_max", "2") => 6, "promoted-max");

#[test]
fn meta_attributes_as_pacemaker_passes_them_succeed() {
    let pg = Pg::primary("pg1");
    agent()
        .on(&pg)
        .meta("notify", "true")
        .meta("promoted_max", "1")
        .meta("master_max", "1")
        .action("validate-all")
        .check_level(10)
        .expect(0);
}

// Level 10: this node's environment; OCF_ERR_ARGS bans the resource from this node only.
rejects!(level_10_unknown_system_user_is_err_args,
    |pg, a| a.param("system_user", "nosuchuser").check_level(10) => 2, "nosuchuser");
rejects!(level_10_missing_pgdata_is_err_args,
    |pg, a| a.param("pgdata", "/nonexistent/pgha/data").check_level(10) => 2, "/nonexistent/pgha/data");
rejects!(level_10_bindir_without_binaries_is_err_args,
    |pg, a| {
        let empty = pg.root().join("empty-bindir");
        fs::create_dir(&empty).unwrap();
        a.param("bindir", &empty.display().to_string()).check_level(10)
    } => 2, "missing PostgreSQL 15 binaries");
rejects!(level_10_recovery_target_timeline_not_latest_is_err_args,
    |pg, a| {
        crate::pg::append(&pg.data().join("postgresql.conf"), "recovery_target_timeline = '1'\n");
        a.check_level(10)
    } => 2, "recovery_target_timeline");
rejects!(level_10_primary_conninfo_without_application_name_is_err_args,
    |pg, a| {
        pg.conf("primary_conninfo = 'host=127.0.0.1 port=5432'");
        a.check_level(10)
    } => 2, "application_name=pg1");
rejects!(level_10_primary_conninfo_of_another_node_is_err_args,
    |pg, a| a.meta("on_node", "pg7").check_level(10) => 2, "application_name=pg7");
rejects!(level_10_recovery_template_present_is_err_args,
    |pg, a| {
        fs::write(pg.data().join("recovery.conf.pcmk"), "standby_mode = on\n").unwrap();
        a.check_level(10)
    } => 2, "recovery.conf.pcmk");
// Finding 4: a TLS setting that cannot authenticate the rewind source is found now, not
// when a failover needs the rewind.
rejects!(finding_4_rewind_conninfo_with_other_keywords_is_misconfigured,
    |pg, a| a.param("rewind_conninfo", "host=10.6.6.6 sslmode=verify-full") => 6, "rewind_conninfo");
rejects!(finding_4_rewind_conninfo_with_an_unknown_sslmode_is_misconfigured,
    |pg, a| a.param("rewind_conninfo", "sslmode=verify") => 6, "sslmode");
rejects!(finding_4_level_10_verify_full_without_its_root_file_is_err_args,
    |pg, a| {
        pg.conf("primary_conninfo = 'host=127.0.0.1 application_name=pg1 sslmode=verify-full \
                 sslrootcert=/nonexistent/root.crt'");
        a.check_level(10)
    } => 2, "/nonexistent/root.crt");
rejects!(level_10_postgresql_11_is_not_installed,
    |pg, a| {
        fs::write(pg.data().join("PG_VERSION"), "11\n").unwrap();
        a.check_level(10)
    } => 5, "11");

/// Under `crm_resource --force-*` Pacemaker passes no `CRM_meta_on_node`: the node name
/// comes from `crm_node -n`.
#[test]
fn node_name_comes_from_crm_node_without_on_node() {
    let pg = Pg::primary("pg1");
    agent()
        .on(&pg)
        .unset("OCF_RESKEY_CRM_meta_on_node")
        .action("validate-all")
        .check_level(10)
        .expect(0);
    assert!(
        pg.fake().calls().lines().any(|l| l == "crm_node -n"),
        "calls:\n{}",
        pg.fake().calls()
    );
}

/// Finding 3: validate-all put the whole `primary_conninfo`, password included, in its exit
/// reason, which Pacemaker keeps in the CIB and syslog. Keyword/value and URI forms.
#[test]
fn finding_3_password_absent_from_exit_reason() {
    for conninfo in [
        "host=127.0.0.1 user=rep password=Sup3rS3cret application_name=pg9",
        "host=127.0.0.1 user=rep password=\\'Sup3rS3cret\\' application_name=pg9",
        "postgresql://rep:Sup3rS3cret@127.0.0.1/postgres?application_name=pg9",
        "postgresql://rep@127.0.0.1/postgres?password=Sup3rS3cret&application_name=pg9",
    ] {
        let pg = Pg::primary("pg1");
        pg.conf(&format!("primary_conninfo = '{conninfo}'"));
        let run = agent()
            .on(&pg)
            .action("validate-all")
            .check_level(10)
            .expect_reason(2, "application_name=pg1");
        // The reason still shows the rest, so the operator sees what is wrong.
        assert!(run.reason().unwrap().contains("pg9"), "{}", run.describe());
        assert!(
            !run.stdout.contains("Sup3rS3cret") && !run.stderr.contains("Sup3rS3cret"),
            "{}",
            run.describe()
        );
    }
}
