//! monitor and probes: every row of the decision table (`paf.md` §2.4, §5.3) on a real
//! instance put in that situation behind the agent's back.

use std::time::Duration;

use crate::agent::{agent, expect_monitors};
use crate::pg::{
    crashed_primary, is_zombie, primary_and_standby, running_primary, stopped_primary_and_standby,
    Pg,
};

#[test]
fn monitor_running_primary_is_running_promoted() {
    expect_monitors(&running_primary(), 8);
}

#[test]
fn monitor_running_standby_is_success() {
    let (_primary, standby) = primary_and_standby();
    expect_monitors(&standby, 0);
}

#[test]
fn monitor_cleanly_stopped_primary_is_not_running() {
    let pg = running_primary();
    pg.stop();
    assert_eq!(pg.control_state(), "shut down");
    expect_monitors(&pg, 7);
}

#[test]
fn monitor_cleanly_stopped_standby_is_not_running() {
    let (_primary, standby) = primary_and_standby();
    standby.stop();
    assert_eq!(standby.control_state(), "shut down in recovery");
    expect_monitors(&standby, 7);
}

#[test]
fn monitor_killed_primary_is_failed_promoted_and_changes_nothing() {
    let pg = crashed_primary();
    pg.untouched_by("monitor of a crashed primary", || {
        let monitor = || agent().on(&pg).action("monitor");
        monitor().recurring().expect_reason(9, "crashed");
        monitor().probe().expect_reason(9, "crashed");
    });
}

#[test]
fn monitor_killed_standby_is_generic_error() {
    let (_primary, standby) = primary_and_standby();
    standby.kill9();
    standby.untouched_by("monitor of a crashed standby", || {
        agent()
            .on(&standby)
            .action("monitor")
            .recurring()
            .expect_reason(1, "crashed")
    });
}

/// Where pid 1 does not reap orphans (a container's shell, a minimal VM init), a killed
/// postmaster stays a zombie: `kill(pid, 0)` still succeeds and `/proc/<pid>/comm` still
/// says postgres, but nothing will ever answer. That is a crash, not a transition to wait
/// for until the timeout; and stop must not wait for it (a failed stop means fencing).
#[test]
fn killed_primary_left_as_zombie_reads_as_crashed() {
    let pg = running_primary();
    let zombie = pg.kill9_leaving_zombie();
    let on = || agent().on(&pg).timeout_ms(3_000);
    on().action("monitor")
        .recurring()
        .expect_reason(9, "crashed");
    on().action("start")
        .expect_reason(1, "crashed as a primary");
    on().action("stop").expect(0);
    assert!(
        is_zombie(zombie),
        "the test lost its zombie: it proved nothing"
    );
    // Pg's Drop reaps it.
}

#[test]
fn monitor_fresh_base_backup_never_started_is_not_running() {
    let primary = running_primary();
    let backup = Pg::base_backup_of(&primary, "pg2");
    assert!(backup.data().join("backup_label").exists());
    assert_eq!(backup.control_state(), "in production");
    agent().on(&backup).action("monitor").probe().expect(7);
    agent().on(&backup).action("monitor").recurring().expect(7);
}

/// A standby with hot_standby=off runs but rejects every connection, forever: the agent must
/// not wait for it past its deadline.
#[test]
fn monitor_postmaster_rejecting_connections_fails_within_timeout() {
    let (primary, standby) = stopped_primary_and_standby();
    standby.conf("hot_standby = off");
    primary.start();
    standby.start();
    let run = agent()
        .on(&standby)
        .action("monitor")
        .recurring()
        .timeout_ms(5_000)
        .expect_reason(1, "rejects connections");
    assert!(
        run.elapsed < Duration::from_secs(5),
        "monitor ran {:?}, past its 5 s timeout",
        run.elapsed
    );
}

/// PAF #235: a probe on a node where the instance does not exist (yet) must say "not
/// running", or Pacemaker bans the resource from that node.
#[test]
fn paf_235_probe_without_pgdata_is_not_running() {
    let pg = Pg::primary("pg1");
    agent()
        .on(&pg)
        .param("pgdata", "/nonexistent/pgha/data")
        .action("monitor")
        .probe()
        .expect(7);
}

#[test]
fn recurring_monitor_without_pgdata_is_err_args() {
    let pg = Pg::primary("pg1");
    agent()
        .on(&pg)
        .param("pgdata", "/nonexistent/pgha/data")
        .action("monitor")
        .recurring()
        .expect_reason(2, "/nonexistent/pgha/data");
}

/// PAF #235 again: a data directory that exists but holds nothing (a mount point whose disk
/// is not mounted, a node being built) is an absent instance for a probe.
#[test]
fn paf_235_probe_with_empty_pgdata_is_not_running() {
    let pg = Pg::primary("pg1");
    let empty = pg.root().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let on = || {
        agent()
            .on(&pg)
            .param("pgdata", &empty.display().to_string())
            .action("monitor")
    };
    on().probe().expect(7);
    on().recurring().expect_reason(2, "PG_VERSION");
}

/// `pghost` may be an address instead of a socket directory.
#[test]
fn monitor_over_tcp_when_pghost_is_an_address() {
    let pg = running_primary();
    agent()
        .on(&pg)
        .param("pghost", "127.0.0.1")
        .action("monitor")
        .recurring()
        .expect(8);
}

/// Relays a Unix socket, bound as `nobody`, to a TCP port: what any local user can do with
/// PostgreSQL's socket path in a shared directory such as `/tmp` while the server is down.
const SPOOF: &str = r#"
import os, socket, sys, threading
os.umask(0)
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(8)
print("ready", flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
"#;

/// Kills the relay when the test ends, however it ends.
struct Relay(std::process::Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn finding_7_spoofed_socket_of_a_stopped_instance_is_not_running() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    let pg1 = Pg::primary("pg1");
    let other = Pg::primary("pg2");
    other.start();
    // pg1's socket directory made shared like /tmp (sticky, world-writable).
    std::fs::set_permissions(pg1.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(pg1.sock(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = pg1.sock().join(format!(".s.PGSQL.{}", pg1.port));
    let python = "/usr/bin/python3";
    assert!(
        std::path::Path::new(python).is_file(),
        "{python} is missing: this test needs python3 (apt-get install python3)"
    );
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            python,
        ])
        .args(["-c", SPOOF])
        .arg(&path)
        .arg(other.port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("setpriv python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _relay = Relay(child);
    assert_eq!(line.trim(), "ready", "the relay did not start");
    // The attack works on a client that believes the socket: "a primary answers".
    assert_eq!(pg1.psql("SELECT pg_is_in_recovery()"), "f");
    assert!(!pg1.is_running());

    expect_monitors(&pg1, 7);
}

/// A data directory whose pg_control says PostgreSQL 20 (a `pg_control_version`, 2000, no
/// major pgha reads writes): probe, monitor and start refuse with a reason that names the
/// version and the majors pgha knows, and change nothing. pgha never guesses a layout. The
/// code is "not installed" (5): Pacemaker bans the resource from the node instead of
/// recovering it with a stop that would fail too and get the node fenced.
#[test]
fn unknown_major_pg_control_is_refused_and_changes_nothing() {
    let pg = running_primary();
    pg.stop();
    let path = pg.data().join("global/pg_control");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&2000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    pg.untouched_by("actions on a PostgreSQL 20 pg_control", || {
        let reason = "pg_control_version 2000 is not one pgha knows (pgha knows PostgreSQL 13–19";
        agent()
            .on(&pg)
            .action("monitor")
            .probe()
            .expect_reason(5, reason);
        agent()
            .on(&pg)
            .action("monitor")
            .recurring()
            .expect_reason(5, reason);
        agent().on(&pg).action("start").expect_reason(5, reason);
    });
}

/// A corrupt pg_control (one byte of `unloggedLSN` flipped, which pgha does not read but the
/// CRC covers) is called corrupt, and nothing is changed.
#[test]
fn corrupt_pg_control_is_refused_and_changes_nothing() {
    let pg = running_primary();
    pg.stop();
    let path = pg.data().join("global/pg_control");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[130] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    pg.untouched_by("actions on a corrupt pg_control", || {
        let reason = "pg_control CRC mismatch";
        agent()
            .on(&pg)
            .action("monitor")
            .probe()
            .expect_reason(1, reason);
        agent()
            .on(&pg)
            .action("monitor")
            .recurring()
            .expect_reason(1, reason);
        agent().on(&pg).action("start").expect_reason(1, reason);
    });
}

/// A standby of `primary` that serves on `port` through its socket only, started and
/// streaming: standbys that share the port of the standby they will follow, as the nodes of
/// a cluster do (the agent reaches the primary at `primary_conninfo`'s host and its own
/// `pgport`).
fn standby_on_port(upstream: &Pg, node: &str, port: u16) -> Pg {
    let mut pg = Pg::base_backup_of(upstream, node);
    pg.port = port;
    pg.conf(&format!("port = {port}"));
    pg.conf("listen_addresses = ''");
    pg.start();
    upstream.wait_streaming(node);
    pg
}

/// Scenario 31 failed once (Debian 13, stop 19): the healed network delivered the demoted
/// primary's last WAL to node3 after node2 was promoted. node3 replayed it, past the fork,
/// and could never stream from node2 again; its pg_control (minRecoveryPoint, last
/// restartpoint) lagged replay, so its monitor saw no divergence and it stayed stuck. Its
/// monitor must fail so that start rewinds it; a standby that followed the promotion and
/// does not stream for another reason must not. pg3 here is node3; pg4 cascades from pg2,
/// so that nothing of pg1's past the fork can reach it.
#[test]
fn scenario_31_standby_that_replayed_past_the_fork_fails_its_monitor() {
    let pg1 = running_primary();
    pg1.psql("CREATE TABLE t31 (i int); INSERT INTO t31 VALUES (1)");
    let pg2 = Pg::base_backup_of(&pg1, "pg2");
    pg2.start();
    pg1.wait_streaming("pg2");
    let pg3 = standby_on_port(&pg1, "pg3", pg2.port);
    let pg4 = standby_on_port(&pg2, "pg4", pg2.port);
    pg2.wait_replayed("pg1's WAL", &pg1.psql("SELECT pg_current_wal_lsn()"));
    pg2.promote();
    pg2.psql("INSERT INTO t31 SELECT generate_series(2, 100)");
    pg2.wait_streaming("pg4");
    pg4.wait_replayed("pg2's rows", &pg2.psql("SELECT pg_current_wal_lsn()"));
    // pg1 goes on writing: pg3 still streams from it.
    pg1.psql("INSERT INTO t31 SELECT -generate_series(1, 10)");
    pg3.wait_replayed(
        "pg1's rows past the fork",
        &pg1.psql("SELECT pg_current_wal_lsn()"),
    );
    pg1.stop();
    pg3.follow(&pg2);
    pg3.wait_for(
        "the server to see the fork",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(pg3.root().join("server.log"))
                .unwrap()
                .contains("before current recovery point")
        },
    );
    // What this test is about: pg3's pg_control does not show the divergence (no
    // restartpoint since the fork), only its replay position does.
    let fork = std::fs::read_to_string(pg2.data().join("pg_wal/00000002.history")).unwrap();
    let fork = fork.split_whitespace().nth(1).expect("a switchpoint");
    for field in [
        "Minimum recovery ending location",
        "Latest checkpoint location",
    ] {
        let at = pg3.control_field(field);
        let lags = pg2.psql(&format!("SELECT '{at}'::pg_lsn <= '{fork}'::pg_lsn"));
        assert_eq!(
            lags, "t",
            "precondition: pg3's {field} {at} is past the fork {fork}"
        );
    }
    // pg2 stops serving WAL: pg4's receiver cannot reconnect.
    let hba = pg2.data().join("pg_hba.conf");
    let rest = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host replication all 127.0.0.1/32 reject\n{rest}"),
    )
    .unwrap();
    pg2.psql("SELECT pg_reload_conf()");
    pg2.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication");
    pg4.wait_for(
        "its WAL receiver to stop streaming",
        Duration::from_secs(30),
        || pg4.psql("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'") == "0",
    );

    agent().on(&pg4).action("monitor").recurring().expect(0);
    agent()
        .on(&pg3)
        .action("monitor")
        .recurring()
        .expect_reason(1, "past the fork");
    // Pacemaker then stops it, and start's decision, made on pg_control, sees the fork (a
    // rewind, or a re-clone where the WAL before the fork is recycled, as here).
    agent().on(&pg3).action("stop").expect(0);
    let source = format!("--source-server={}", crate::rewind::conninfo(&pg2));
    let (code, text, _) = crate::rewind::pgha_rewind(&pg3, &[&source, "--check"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        ["plan: rewind", "plan: re-clone"]
            .iter()
            .any(|plan| text.contains(plan)),
        "{text}"
    );
}
