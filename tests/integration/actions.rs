//! The actions that need no instance (meta-data, methods, unknown actions, the human command
//! line) and how a hand run logs.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgha::ocf::params::PARAMS;

use crate::agent::{agent, BIN};
use crate::pg::Pg;

pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The committed copy of `pgha meta-data`.
fn golden() -> PathBuf {
    repo().join("ocf/meta-data.xml")
}

pub(crate) fn meta_data() -> String {
    agent().action("meta-data").any_stdout().expect(0).stdout
}

/// Runs a tool that must exist on the test machine; missing is a failure, not a skip.
#[track_caller]
pub(crate) fn tool(program: &str, package: &str) -> Command {
    assert!(
        Path::new(program).is_file(),
        "{program} is missing: install {package} (`make deps`)"
    );
    Command::new(program)
}

/// Unknown actions end with OCF_ERR_UNIMPLEMENTED and a reason, not with clap's usage
/// error (2, OCF_ERR_ARGS, would ban the resource from the node).
#[test]
fn unknown_action_is_unimplemented_with_reason() {
    agent().action("frobnicate").expect_reason(3, "frobnicate");
}

#[test]
fn methods_lists_the_actions() {
    let run = agent().action("methods").any_stdout().expect(0);
    let listed: Vec<&str> = run.stdout.lines().collect();
    for action in [
        "start",
        "stop",
        "monitor",
        "promote",
        "demote",
        "notify",
        "reload",
        "reload-agent",
        "meta-data",
        "methods",
        "validate-all",
    ] {
        assert!(listed.contains(&action), "{action} missing from {listed:?}");
    }
    assert_eq!(listed.len(), 11, "one action per line, no more: {listed:?}");
}

/// meta-data and methods need nothing from the environment (Pacemaker runs them with no
/// instance name, e.g. `crm_resource --show-metadata`).
#[test]
fn meta_data_and_methods_need_no_ocf_environment() {
    agent()
        .unset("OCF_RESOURCE_INSTANCE")
        .action("meta-data")
        .stdout(&meta_data())
        .expect(0);
    agent()
        .unset("OCF_RESOURCE_INSTANCE")
        .action("methods")
        .any_stdout()
        .expect(0);
}

/// STYLE.md practice 13. An intended change is regenerated with
/// `PGHA_BLESS=1 cargo test --release --test integration meta_data` and reviewed as a diff.
#[test]
fn meta_data_matches_golden_file() {
    let got = meta_data();
    if std::env::var_os("PGHA_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(golden(), &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(golden()).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\ncreate it with: PGHA_BLESS=1 cargo test --release --test integration \
             meta_data_matches_golden_file",
            golden().display()
        )
    });
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
        panic!(
            "`pgha meta-data` differs from {} from line {}:\n  got:  {:?}\n  want: {:?}\n\
             If the change is intended, bless it and review the diff:\n  \
             PGHA_BLESS=1 cargo test --release --test integration meta_data_matches_golden_file",
            golden().display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

#[track_caller]
fn xmllint_validates(schema: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("meta-data.xml");
    std::fs::write(&xml, meta_data()).unwrap();
    assert!(schema.is_file(), "schema {} is missing", schema.display());
    let out = tool("/usr/bin/xmllint", "libxml2-utils")
        .arg("--noout")
        .arg("--relaxng")
        .arg(schema)
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "meta-data does not validate against {}:\n{}",
        schema.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The official OCF 1.1 schema (ClusterLabs OCF-spec `ra/1.1/ra-api.rng`), kept in the
/// repository because no Debian package ships it.
#[test]
fn meta_data_validates_against_ocf_1_1_schema() {
    xmllint_validates(&repo().join("ocf/ra-api-1.1.rng"));
}

/// Issue 12: `ocf-tester` (resource-agents) checks meta-data with `xmllint --valid` against
/// the OCF 1.0 DTD in /usr/share/resource-agents, exactly as this does; it failed on OCF
/// 1.1's attributes and on a document without a DOCTYPE.
#[test]
fn meta_data_is_valid_for_ocf_testers_dtd() {
    let dtd_dir = Path::new("/usr/share/resource-agents");
    assert!(
        dtd_dir.join("ra-api-1.dtd").is_file(),
        "ra-api-1.dtd is missing: install resource-agents (`make deps`)"
    );
    let mut lint = tool("/usr/bin/xmllint", "libxml2-utils")
        .args(["--noout", "--valid", "-"])
        .current_dir(dtd_dir)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    lint.stdin
        .take()
        .unwrap()
        .write_all(meta_data().as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 12: resource-agents' own compliance tool, on a real instance: meta-data (the DTD
/// check above), then start, monitor, stop, promote, demote, notify and their repeats. Its
/// node is this host (no Pacemaker here), so primary_conninfo names it.
#[test]
fn ocf_tester_passes_on_a_real_instance() {
    let pg = Pg::primary("ocf-tester");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    pg.conf(&format!(
        "primary_conninfo = 'host=127.0.0.1 port={} application_name={host}'",
        pg.port
    ));
    let out = tool("/usr/sbin/ocf-tester", "resource-agents")
        .args(["-n", "pgsqld"])
        .arg("-o")
        .arg(format!("pgdata={}", pg.data().display()))
        .arg("-o")
        .arg(format!("pghost={}", pg.sock().display()))
        .arg("-o")
        .arg(format!("pgport={}", pg.port))
        .arg("-o")
        .arg(format!("bindir={}", crate::pg::bindir().display()))
        .arg(BIN)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "{text}"
    );
}

/// Issue 12: `HA_LOGFILE` and `HA_DEBUGLOG` are honoured as the shell agents' `ha_log`
/// honours them: every line appended to both (debug lines with `HA_debug=1`), tagged, and
/// nothing on stderr when a log file is set and stderr is not a terminal.
#[test]
fn log_lines_go_to_ha_logfile_and_ha_debuglog() {
    let pg = Pg::primary("pg1");
    let dir = tempfile::tempdir().unwrap();
    let (logfile, debuglog) = (dir.path().join("ha.log"), dir.path().join("ha-debug.log"));
    let run = agent()
        .on(&pg)
        .env("HA_LOGFILE", &logfile.display().to_string())
        .env("HA_DEBUGLOG", &debuglog.display().to_string())
        .env("HA_debug", "1")
        .action("monitor")
        .recurring()
        .expect(7);
    let log = std::fs::read_to_string(&logfile).unwrap();
    let debug = std::fs::read_to_string(&debuglog).unwrap();
    for text in [&log, &debug] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("pgsqlms(pgsqld)[") && l.contains("DEBUG: monitor: ")),
            "{text}"
        );
    }
    assert!(
        run.stderr
            .lines()
            .all(|l| l.starts_with("ocf-exit-reason:")),
        "{}",
        run.stderr
    );
}

/// pcs refuses an agent whose meta-data fails its own schema.
#[test]
fn meta_data_validates_against_pcs_schema() {
    xmllint_validates(Path::new("/usr/share/pcs/data/ocf-1.1.rng"));
}

/// What an operator sees: `pcs resource describe`, with the agent installed where pcs looks
/// for it, in a private mount namespace, so the host's /usr is never written.
#[test]
fn pcs_resource_describe_shows_the_parameters() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "mounting an overlay needs root"
    );
    tool("/usr/sbin/pcs", "pcs");
    let dir = tempfile::tempdir().unwrap();
    let script = r#"set -e
        mkdir -p "$TMP/upper/pgha" "$TMP/work"
        ln -s "$BIN" "$TMP/upper/pgha/pgsqlms"
        mount -t overlay overlay \
            -o "lowerdir=/usr/lib/ocf/resource.d,upperdir=$TMP/upper,workdir=$TMP/work" \
            /usr/lib/ocf/resource.d
        exec pcs resource describe ocf:pgha:pgsqlms"#;
    let out = tool("/usr/bin/unshare", "util-linux")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("TMP", dir.path())
        .env("BIN", BIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pcs resource describe failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ocf:pgha:pgsqlms - "), "{stdout}");
    // PAF's nine parameters, which the table lists first (pinned by a unit test in
    // src/ocf/params.rs).
    for param in PARAMS.iter().take(9).map(|p| p.name) {
        assert!(
            stdout.contains(&format!("\n  {param}")),
            "pcs does not show parameter {param}:\n{stdout}"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    let help = agent().args(&["--help"]).any_stdout().expect(0);
    assert!(help.stdout.contains("ocf:pgha:pgsqlms"), "{}", help.stdout);
    let version = agent().args(&["--version"]).any_stdout().expect(0);
    assert_eq!(
        version.stdout,
        format!("pgha {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// A hand run (no `HA_LOGFACILITY`): log lines go to stderr, tagged like the shell agents'
/// `ocf_log`: `pgsqlms(<instance>)[<pid>]: <LEVEL>: <action>: <message>`.
#[test]
fn hand_run_logs_to_stderr_with_the_agent_tag() {
    let pg = Pg::primary("pg1");
    let run = agent()
        .on(&pg)
        .param("pgdata", "/nonexistent/pgha/data")
        .action("monitor")
        .probe()
        .expect(7);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("INFO: monitor: "))
        .unwrap_or_else(|| panic!("no INFO line for monitor\n{}", run.describe()));
    assert_tagged(line);

    let run = agent()
        .on(&pg)
        .env("HA_debug", "1")
        .action("monitor")
        .probe()
        .expect(7);
    let debug: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("DEBUG: monitor: "))
        .collect();
    assert!(
        !debug.is_empty(),
        "HA_debug=1 logs debug lines\n{}",
        run.describe()
    );
    debug.iter().for_each(|l| assert_tagged(l));
}

#[track_caller]
fn assert_tagged(line: &str) {
    let rest = line
        .strip_prefix("pgsqlms(pgsqld)[")
        .unwrap_or_else(|| panic!("log line without the agent tag: {line:?}"));
    let (pid, rest) = rest.split_once("]: ").unwrap_or_else(|| panic!("{line:?}"));
    assert!(
        !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()),
        "pid {pid:?} in {line:?}"
    );
    assert!(
        ["INFO: ", "DEBUG: ", "WARNING: ", "ERROR: "]
            .iter()
            .any(|level| rest.starts_with(level)),
        "{line:?}"
    );
}

#[test]
fn reload_succeeds_without_touching_the_instance() {
    let pg = Pg::primary("pg1");
    pg.untouched_by("reload", || {
        agent().on(&pg).action("reload").expect(0);
        agent().on(&pg).action("reload-agent").expect(0);
    });
}
