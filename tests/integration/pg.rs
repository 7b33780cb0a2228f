//! PostgreSQL instances for the tests, set up and broken behind the agent's back.
//!
//! The programs come from [`bindir`]: `PGHA_TEST_BINDIR` when set (a bindir of any major
//! from 13 on, as `tests/pgbin/fetch.sh MAJOR` prints; `make test-majors` runs the suite
//! once per major that way), else the host's PostgreSQL 15.
//!
//! Each [`Pg`] owns a temporary directory (owned by the `postgres` user, in /dev/shm when
//! there is room; /dev/shm and /tmp are the paths the chroot majors' wrappers, 13 and 19,
//! see as on the host):
//!
//! ```text
//! <root>/data           the data directory (PGDATA)
//! <root>/sock           unix_socket_directories: the agent's pghost
//! <root>/instance.conf  this instance's settings, included from data/postgresql.conf
//! <root>/server.log     the log of servers the fixture starts (pg_ctl -l)
//! <root>/pacemaker/     the fake Pacemaker tools and their state (`fake.rs`)
//! <root>/rsctmp/        HA_RSCTMP for the agent runs on this node
//! ```
//!
//! Node-specific settings (port, socket, `primary_conninfo`) live outside the data directory,
//! as on a real node, so a standby copied from a primary does not inherit them. Data
//! directories are copies of one template (`initdb`, then one start and clean stop), made
//! once per PostgreSQL version and settings and cached in `CARGO_TARGET_TMPDIR`: `initdb`
//! costs a second or two, a copy a tenth of one.
//!
//! Servers are stopped in `Drop` (immediate mode), so no postgres outlives the test binary.
//! The test process makes itself the child subreaper: postmasters that `pg_ctl` leaves
//! behind become its children, and the fixture reaps the ones it kills. Without that, where
//! pid 1 does not reap orphans (some containers and VMs), a killed postmaster would stay a
//! zombie that still "exists" for `kill(pid, 0)`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{chown, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, Once, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::fake::FakePacemaker;

/// The host's PostgreSQL, used when `PGHA_TEST_BINDIR` is not set.
const HOST_BINDIR: &str = "/usr/lib/postgresql/15/bin";
const OS_USER: &str = "postgres";

/// How long a fixture waits for replication to catch up (streaming, replay) before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// Settings every test instance shares, appended to the template's postgresql.conf.
/// Small and quick: nothing here is about durability.
const COMMON_CONF: &str = "
# ---- pgha integration tests (tests/integration/pg.rs) ----
fsync = off
wal_log_hints = on
listen_addresses = '127.0.0.1'
shared_buffers = 16MB
autovacuum = off
wal_retrieve_retry_interval = 1s
# Dynamic shared memory in the data directory: a killed postmaster leaves its segments
# behind, and there they go with the test's directory instead of piling up in /dev/shm.
dynamic_shared_memory_type = mmap
include = '../instance.conf'
";

/// The test process's view of the postgres OS user.
pub struct OsUser {
    pub uid: u32,
    pub gid: u32,
}

pub fn os_user() -> &'static OsUser {
    static USER: OnceLock<OsUser> = OnceLock::new();
    USER.get_or_init(|| {
        let user = nix::unistd::User::from_name(OS_USER)
            .expect("getpwnam(postgres)")
            .unwrap_or_else(|| panic!("the OS user {OS_USER:?} is missing: install postgresql-15"));
        OsUser {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    })
}

/// The PostgreSQL programs every fixture, and the agent, run: `PGHA_TEST_BINDIR`, or the
/// host's 15. Every test of a run uses one major.
pub fn bindir() -> &'static Path {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR.get_or_init(|| {
        std::env::var_os("PGHA_TEST_BINDIR")
            .map_or_else(|| PathBuf::from(HOST_BINDIR), PathBuf::from)
    })
}

/// The bindir the agent must be told (its `bindir` parameter): `None` for the host's 15,
/// which the agent finds alone from `PG_VERSION`, as on a Debian node.
pub fn agent_bindir() -> Option<&'static Path> {
    Some(bindir()).filter(|dir| *dir != Path::new(HOST_BINDIR))
}

/// The major of [`bindir`]'s programs, from `initdb --version` ("initdb (PostgreSQL) 17.11",
/// "… 19rc1", "… 19~rc1"): what the tests whose assertion differs per major ask.
pub fn major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let out = run(Command::new(bin("initdb")).arg("--version"));
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|word| *word != "(PostgreSQL)")
            .nth(1)
            .map(|v| {
                v.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("no major in `initdb --version`: {text:?}"))
    })
}

/// Fails the calling test (not skips it) when the machine cannot run these tests.
#[track_caller]
pub fn prerequisites() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the integration tests need root: they run PostgreSQL as the postgres user and the \
         agent switches to it (run `make test` or `cargo test` as root)"
    );
    os_user();
    for tool in [
        "initdb",
        "pg_ctl",
        "postgres",
        "psql",
        "pg_basebackup",
        "pg_controldata",
    ] {
        let path = bin(tool);
        assert!(
            path.is_file(),
            "{} is missing: the integration tests need PostgreSQL 15 (apt-get install \
             postgresql-15, or `make deps`), or PGHA_TEST_BINDIR naming a full bindir \
             (tests/pgbin/fetch.sh MAJOR)",
            path.display()
        );
    }
    static SUBREAPER: Once = Once::new();
    SUBREAPER.call_once(|| {
        // SAFETY: prctl with integer arguments only; it changes a flag of this process.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    });
}

/// A command run as the postgres OS user, in the C locale, from `/`.
pub fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let user = os_user();
    let mut cmd = Command::new(program);
    cmd.uid(user.uid)
        .gid(user.gid)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("HOME", "/var/lib/postgresql")
        .current_dir("/")
        .stdin(Stdio::null());
    cmd
}

pub fn bin(name: &str) -> PathBuf {
    bindir().join(name)
}

/// Runs a command to completion and fails the test, with its output, if it fails.
#[track_caller]
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({})\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A TCP port nothing listens on, never handed out twice in this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if given.insert(port) {
            return port;
        }
    }
    panic!("no free TCP port found");
}

/// Where instances live: /dev/shm when it is a roomy tmpfs (copying a data directory there
/// takes a tenth of the time it takes on a VM's disk, and nothing here needs to survive),
/// else the system's temporary directory.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let roomy = nix::sys::statvfs::statvfs(shm)
        .is_ok_and(|fs| fs.blocks_available().saturating_mul(fs.fragment_size()) > (1 << 30));
    if roomy {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// A fresh, never started data directory (pg_control: "shut down"), made once per settings.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(make_template)
}

fn make_template() -> PathBuf {
    let version = run(Command::new(bin("initdb")).arg("--version")).stdout;
    let mut hasher = DefaultHasher::new();
    (String::from_utf8_lossy(&version), COMMON_CONF).hash(&mut hasher);
    let cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cached = cache_dir.join(format!("pg{}-template-{:016x}", major(), hasher.finish()));
    if cached.join("PG_VERSION").is_file() {
        return cached;
    }
    fs::create_dir_all(cache_dir).unwrap();
    // initdb runs in /tmp: the repository may sit where postgres cannot enter (/root).
    let stage = tempfile::Builder::new()
        .prefix("pgha-initdb-")
        .tempdir()
        .unwrap();
    chown_postgres(stage.path());
    let data = stage.path().join("data");
    let mut initdb = as_postgres(bin("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", OS_USER, "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--wal-segsize=1"]);
    // Data checksums are each major's default (off up to 17, on from 18), as a new user
    // gets them. 13's initdb has no --no-instructions (14 added it): it only quiets the
    // hint printed at the end.
    if major() >= 14 {
        initdb.arg("--no-instructions");
    }
    run(&mut initdb);
    append(&data.join("postgresql.conf"), COMMON_CONF);
    // One start and clean stop, so that pg_control records the settings (wal_log_hints) as
    // on a primary that has run: still "shut down", a cleanly stopped primary.
    fs::write(
        stage.path().join("instance.conf"),
        format!(
            "port = {}\nunix_socket_directories = '{}'\n",
            free_port(),
            stage.path().display()
        ),
    )
    .unwrap();
    let pg_ctl = |args: &[&str]| {
        run(as_postgres(bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(stage.path().join("server.log"))
            .args(args));
    };
    pg_ctl(&["-w", "-t", "30", "start"]);
    let pid = fs::read_to_string(data.join("postmaster.pid")).unwrap();
    pg_ctl(&["-w", "-t", "30", "-m", "fast", "stop"]);
    if let Some(pid) = pid.lines().next().and_then(|l| l.parse().ok()) {
        wait_gone(pid, Duration::from_secs(10));
    }
    let _ = fs::remove_file(stage.path().join("instance.conf"));
    // Copied under a private name, then renamed: a concurrent test process either sees a
    // complete template or none.
    let partial = cache_dir.join(format!(
        "{}.partial-{}",
        cached.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&partial);
    run(Command::new("cp").arg("-a").arg(&data).arg(&partial));
    if fs::rename(&partial, &cached).is_err() {
        let _ = fs::remove_dir_all(&partial);
        assert!(
            cached.join("PG_VERSION").is_file(),
            "template {cached:?} missing"
        );
    }
    cached
}

pub fn chown_postgres(path: &Path) {
    let user = os_user();
    chown(path, Some(user.uid), Some(user.gid))
        .unwrap_or_else(|e| panic!("chown postgres {}: {e}", path.display()));
}

pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.write_all(text.as_bytes()).unwrap();
}

/// One PostgreSQL instance; see the module doc for its layout.
pub struct Pg {
    root: tempfile::TempDir,
    /// The Pacemaker node name: `application_name` in `primary_conninfo`.
    pub node: String,
    pub port: u16,
    fake: FakePacemaker,
}

impl Pg {
    /// A never started primary, as `initdb` leaves it (pg_control: "shut down"). Its
    /// `primary_conninfo` points at itself, as it would through a VIP on the primary.
    pub fn primary(node: &str) -> Pg {
        prerequisites();
        let pg = Pg::empty(node);
        run(Command::new("cp").arg("-a").arg(template()).arg(pg.data()));
        pg.write_instance_conf(pg.port);
        pg
    }

    /// A standby of `primary` copied by hand while the primary is stopped (as after a clean
    /// shutdown: pg_control says "shut down" until its first start), with `standby.signal`.
    pub fn standby_of(primary: &Pg, node: &str) -> Pg {
        assert!(
            !primary.is_running(),
            "standby_of copies a stopped primary; use base_backup_of for a running one"
        );
        let pg = Pg::empty(node);
        run(Command::new("cp")
            .arg("-a")
            .arg(primary.data())
            .arg(pg.data()));
        pg.write_instance_conf(primary.port);
        pg.touch_standby_signal();
        pg
    }

    /// A standby made with `pg_basebackup` from a running primary and never started:
    /// `backup_label` is there and pg_control still says "in production".
    pub fn base_backup_of(primary: &Pg, node: &str) -> Pg {
        assert!(
            primary.is_running(),
            "base_backup_of needs a running primary"
        );
        let pg = Pg::empty(node);
        run(as_postgres(bin("pg_basebackup"))
            .arg("-D")
            .arg(pg.data())
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                OS_USER,
            ])
            .args(["--checkpoint=fast", "--no-sync", "-X", "stream"]));
        pg.write_instance_conf(primary.port);
        pg.touch_standby_signal();
        pg
    }

    fn empty(node: &str) -> Pg {
        let root = tempfile::Builder::new()
            .prefix(&format!("pgha-it-{node}-"))
            .tempdir_in(scratch())
            .unwrap();
        chown_postgres(root.path());
        fs::create_dir(root.path().join("sock")).unwrap();
        chown_postgres(&root.path().join("sock"));
        fs::create_dir(root.path().join("rsctmp")).unwrap();
        let fake = FakePacemaker::install(&root.path().join("pacemaker"), node);
        Pg {
            node: node.to_owned(),
            port: free_port(),
            fake,
            root,
        }
    }

    fn write_instance_conf(&self, upstream: u16) {
        let text = format!(
            "port = {port}\n\
             unix_socket_directories = '{sock}'\n\
             cluster_name = '{node}'\n\
             {conninfo}\n",
            port = self.port,
            sock = self.sock().display(),
            node = self.node,
            conninfo = self.primary_conninfo(upstream),
        );
        fs::write(self.instance_conf(), text).unwrap();
    }

    fn primary_conninfo(&self, upstream: u16) -> String {
        format!(
            "primary_conninfo = 'host=127.0.0.1 port={upstream} application_name={}'",
            self.node
        )
    }

    /// Points `primary_conninfo` at `upstream`, as a VIP that moved to another node does, and
    /// reloads a running server (13 and later restart the WAL receiver). The rest of
    /// `instance.conf` stays.
    pub fn follow(&self, upstream: &Pg) {
        let text: String = fs::read_to_string(self.instance_conf())
            .unwrap()
            .lines()
            .map(|line| match line.starts_with("primary_conninfo") {
                true => self.primary_conninfo(upstream.port),
                false => line.to_owned(),
            })
            .map(|line| line + "\n")
            .collect();
        fs::write(self.instance_conf(), text).unwrap();
        if self.is_running() {
            self.psql("SELECT pg_reload_conf()");
        }
    }

    fn touch_standby_signal(&self) {
        let path = self.data().join("standby.signal");
        fs::write(&path, "").unwrap();
        chown_postgres(&path);
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn data(&self) -> PathBuf {
        self.root().join("data")
    }

    pub fn sock(&self) -> PathBuf {
        self.root().join("sock")
    }

    /// `HA_RSCTMP` for this node's agent runs.
    pub fn rsctmp(&self) -> PathBuf {
        self.root().join("rsctmp")
    }

    pub fn instance_conf(&self) -> PathBuf {
        self.root().join("instance.conf")
    }

    pub fn fake(&self) -> &FakePacemaker {
        &self.fake
    }

    /// Adds a setting for this instance (later lines win).
    pub fn conf(&self, line: &str) {
        append(&self.instance_conf(), &format!("{line}\n"));
    }

    /// `pg_ctl start`, waiting until the server accepts connections (or, for a standby
    /// without hot_standby, until it is consistent).
    #[track_caller]
    pub fn start(&self) {
        let log = self.root().join("server.log");
        let out = as_postgres(bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .output()
            .unwrap();
        if !out.status.success() {
            panic!(
                "pg_ctl start of {} failed ({}): {}\n--- server log\n{}",
                self.node,
                out.status,
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    /// `pg_ctl promote`, waiting until the standby runs as a primary.
    #[track_caller]
    pub fn promote(&self) {
        run(as_postgres(bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "promote"]));
    }

    /// `pg_ctl stop -m fast`: a clean shutdown.
    #[track_caller]
    pub fn stop(&self) {
        let pid = self.postmaster_pid();
        run(as_postgres(bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "30", "stop"]));
        if let Some(pid) = pid {
            wait_gone(pid, Duration::from_secs(10));
        }
    }

    /// The pid in `postmaster.pid`, whether or not that process lives.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// A live (not zombie) postmaster owns `postmaster.pid`.
    pub fn is_running(&self) -> bool {
        self.postmaster_pid().is_some_and(is_alive)
    }

    /// SIGKILL to the postmaster and its children at once, as a power loss or the OOM killer
    /// would leave them; returns when they are gone (reaped). The pid file and pg_control
    /// stay as they were.
    #[track_caller]
    pub fn kill9(&self) {
        let victims = self.kill9_without_reaping();
        for pid in victims {
            wait_gone(pid, Duration::from_secs(10));
        }
    }

    /// Like [`Pg::kill9`] but leaves the postmaster a zombie (killed, not yet reaped by its
    /// parent), as under a pid 1 that does not reap orphans; the children are reaped. Returns
    /// the postmaster's pid; `Drop` reaps it.
    #[track_caller]
    pub fn kill9_leaving_zombie(&self) -> i32 {
        let mut victims = self.kill9_without_reaping();
        let postmaster = victims.remove(0);
        for pid in victims {
            wait_gone(pid, Duration::from_secs(10));
        }
        let start = Instant::now();
        while proc_state(postmaster) != Some('Z') {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "postmaster {postmaster} did not become a zombie (state {:?})",
                proc_state(postmaster)
            );
            sleep(Duration::from_millis(10));
        }
        postmaster
    }

    /// Kills; returns the postmaster's pid first, then its children's.
    #[track_caller]
    fn kill9_without_reaping(&self) -> Vec<i32> {
        let postmaster = self
            .postmaster_pid()
            .filter(|pid| is_alive(*pid))
            .unwrap_or_else(|| panic!("kill9: no postmaster runs for {}", self.node));
        let mut victims = vec![postmaster];
        victims.extend(children_of(postmaster));
        for pid in &victims {
            // SAFETY: kill(2) with a pid read from the pid file and /proc.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        victims
    }

    /// `psql -XAt -c sql` as postgres over the socket; the output without its last newline.
    #[track_caller]
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// [`Pg::psql`] in the database `db`.
    #[track_caller]
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let out = run(as_postgres(bin("psql"))
            .arg("-h")
            .arg(self.sock())
            .args(["-p", &self.port.to_string(), "-U", OS_USER, "-d", db])
            .args(["-XAt", "-v", "ON_ERROR_STOP=1", "-c", sql]));
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_owned()
    }

    /// A superuser `role` with REPLICATION that must give `password` (SCRAM) over TCP, for
    /// SQL and replication alike; every other role keeps the template's trust. The server
    /// must run; the rule goes first in pg_hba.conf, where the first matching line wins.
    #[track_caller]
    pub fn password_role(&self, role: &str, password: &str) {
        self.psql(&format!(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE {role} LOGIN SUPERUSER REPLICATION PASSWORD '{password}'"
        ));
        let hba = self.data().join("pg_hba.conf");
        let rest = fs::read_to_string(&hba).unwrap();
        fs::write(
            &hba,
            format!(
                "host all {role} 127.0.0.1/32 scram-sha-256\n\
                 host replication {role} 127.0.0.1/32 scram-sha-256\n{rest}"
            ),
        )
        .unwrap();
        self.psql("SELECT pg_reload_conf()");
    }

    pub fn in_recovery(&self) -> bool {
        self.psql("SELECT pg_is_in_recovery()") == "t"
    }

    /// "Database cluster state" from `pg_controldata`.
    pub fn control_state(&self) -> String {
        self.control_field("Database cluster state")
    }

    /// The value of one line of `pg_controldata`, such as "Latest checkpoint location".
    pub fn control_field(&self, field: &str) -> String {
        let out = run(Command::new(bin("pg_controldata"))
            .env("LC_ALL", "C")
            .arg(self.data()));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| panic!("pg_controldata prints no {field:?}"))
    }

    /// Every file of the data directory: path, type, mode, owner, size and content hash.
    pub fn snapshot(&self) -> Snapshot {
        let mut files = BTreeMap::new();
        walk(&self.data(), &self.data(), &mut files);
        Snapshot(files)
    }

    /// Nothing runs from this data directory and nothing listens on its port.
    #[track_caller]
    pub fn assert_not_running(&self) {
        assert!(
            !self.is_running(),
            "a postmaster runs for {}: {:?}",
            self.node,
            self.postmaster_pid()
        );
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "something listens on port {} of {}",
            self.port,
            self.node
        );
    }

    /// Polls `check` every 100 ms for up to `within`; fails naming `what`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, within: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            if start.elapsed() > within {
                panic!(
                    "{} after {within:?}: still waiting for {what}\n--- server log\n{}",
                    self.node,
                    fs::read_to_string(self.root().join("server.log")).unwrap_or_default()
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `node` streams from this primary (`pg_stat_replication`).
    #[track_caller]
    pub fn wait_streaming(&self, node: &str) {
        let sql =
            format!("SELECT state FROM pg_stat_replication WHERE application_name = '{node}'");
        self.wait_for(&format!("{node} streaming"), WAIT, || {
            self.psql(&sql) == "streaming"
        });
    }

    /// Waits until this standby has replayed up to `lsn`; fails naming `what`.
    #[track_caller]
    pub fn wait_replayed(&self, what: &str, lsn: &str) {
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'");
        self.wait_for(what, WAIT, || self.psql(&sql) == "t");
    }

    /// Runs `act`, then checks that the data directory is as it was and that no server runs
    /// from it: what every refused or idempotent action must leave.
    #[track_caller]
    pub fn untouched_by<T>(&self, what: &str, act: impl FnOnce() -> T) -> T {
        let before = self.snapshot();
        let result = act();
        before.assert_same(&self.snapshot(), what);
        self.assert_not_running();
        result
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let Some(pid) = self.postmaster_pid() else {
            return;
        };
        if !is_alive(pid) {
            // Gone, or a zombie a test left behind: ours to reap either way.
            reap(pid);
            return;
        }
        let _ = as_postgres(bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if is_alive(pid) {
            let mut victims = vec![pid];
            victims.extend(children_of(pid));
            for pid in victims {
                // SAFETY: kill(2) with a pid read from the pid file and /proc.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        wait_gone(pid, Duration::from_secs(10));
    }
}

/// What a data directory held at one moment; compare two with `assert_eq!`.
#[derive(PartialEq, Eq)]
pub struct Snapshot(BTreeMap<String, String>);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} entries", self.0.len())?;
        for (path, what) in &self.0 {
            writeln!(f, "  {path}: {what}")?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// Fails listing the entries that were added, removed or changed.
    #[track_caller]
    pub fn assert_same(&self, after: &Snapshot, context: &str) {
        if self == after {
            return;
        }
        let mut diff = String::new();
        for (path, before) in &self.0 {
            match after.0.get(path) {
                None => writeln!(diff, "  removed {path}").unwrap(),
                Some(now) if now != before => {
                    writeln!(diff, "  changed {path}: {before} -> {now}").unwrap()
                }
                Some(_) => {}
            }
        }
        for path in after.0.keys().filter(|p| !self.0.contains_key(*p)) {
            writeln!(diff, "  added {path}").unwrap();
        }
        panic!("{context}: the data directory changed:\n{diff}");
    }
}

fn walk(base: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).unwrap();
        let name = path.strip_prefix(base).unwrap().display().to_string();
        let head = format!("mode {:o} owner {}:{}", meta.mode(), meta.uid(), meta.gid());
        if meta.is_dir() {
            files.insert(name, format!("dir {head}"));
            walk(base, &path, files);
        } else if meta.is_file() {
            let mut hasher = DefaultHasher::new();
            let mut content = Vec::with_capacity(meta.len() as usize);
            fs::File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut content))
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            content.hash(&mut hasher);
            files.insert(
                name,
                format!(
                    "file {head} {} bytes hash {:016x}",
                    meta.len(),
                    hasher.finish()
                ),
            );
        } else {
            let target = fs::read_link(&path).map(|t| t.display().to_string());
            files.insert(name, format!("other {head} {target:?}"));
        }
    }
}

/// The state letter of `/proc/<pid>/stat` (R, S, Z, …); `None` when the process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Killed (or exited) but not reaped by its parent yet.
pub fn is_zombie(pid: i32) -> bool {
    proc_state(pid) == Some('Z')
}

/// A process exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(state) if state != 'Z' && state != 'X')
}

fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
                    ppid.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// Reaps `pid` if it is (or becomes) a child of this process: with the subreaper flag,
/// orphaned postmasters are.
fn reap(pid: i32) {
    // Only postgres processes: a pid from a stale pid file may since belong to a child that
    // std::process spawned (and will wait for) in another test thread.
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "postgres" {
        return;
    }
    // SAFETY: waitpid on one pid, never -1, without keeping the status.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
}

/// Waits until `pid` no longer exists, reaping it when it is ours.
fn wait_gone(pid: i32, within: Duration) {
    let start = Instant::now();
    loop {
        reap(pid);
        match proc_state(pid) {
            None => return,
            Some(_) if start.elapsed() > within => {
                eprintln!(
                    "pgha tests: process {pid} still there after {within:?} (state {:?})",
                    proc_state(pid)
                );
                return;
            }
            Some(_) => sleep(Duration::from_millis(10)),
        }
    }
}

/// A small PKI made with `/usr/bin/openssl`, readable by the postgres user (pg_rewind and
/// pg_basebackup read the client's files as postgres): `ca.crt`, which signed
/// `server.crt` (for `localhost` only, so that `127.0.0.1` is a host name mismatch) and
/// `client.crt` (CN `postgres`, for `cert` authentication), and whose CRLs are `empty.crl`
/// and `revoked.crl` (revoking `server.crt`); and `other-ca.crt`, a CA that signed none of
/// them.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub fn make() -> Certs {
        let openssl = Path::new("/usr/bin/openssl");
        assert!(
            openssl.is_file(),
            "{} is missing: the TLS tests need it (apt-get install openssl)",
            openssl.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("pgha-certs-")
            .tempdir()
            .unwrap();
        let certs = Certs { dir };
        let ossl = |args: &[&str]| {
            run(Command::new(openssl)
                .current_dir(certs.dir.path())
                .args(args));
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            ossl(
                &[
                    &[
                        "req",
                        "-x509",
                        "-days",
                        "2",
                        "-subj",
                        &format!("/CN=pgha test {ca}"),
                    ][..],
                    &key,
                    &[
                        "-keyout",
                        &format!("{ca}.key"),
                        "-out",
                        &format!("{ca}.crt"),
                    ],
                ]
                .concat(),
            );
        }
        fs::write(certs.path("server.ext"), "subjectAltName = DNS:localhost\n").unwrap();
        fs::write(certs.path("client.ext"), "basicConstraints = CA:FALSE\n").unwrap();
        for (name, cn) in [("server", "localhost"), ("client", OS_USER)] {
            ossl(
                &[
                    &["req", "-new", "-subj", &format!("/CN={cn}")][..],
                    &key,
                    &[
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.csr"),
                    ],
                ]
                .concat(),
            );
            ossl(&[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.crt"),
            ]);
        }
        // Two CRLs of the CA: one revoking nothing, then one revoking the server's.
        fs::write(
            certs.path("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
             default_md = sha256\ndefault_crl_days = 2\n",
        )
        .unwrap();
        fs::write(certs.path("index.txt"), "").unwrap();
        fs::write(certs.path("crlnumber"), "01\n").unwrap();
        let ca = ["-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt"];
        ossl(&[&["ca"][..], &ca, &["-gencrl", "-out", "empty.crl"]].concat());
        ossl(&[&["ca"][..], &ca, &["-revoke", "server.crt"]].concat());
        ossl(&[&["ca"][..], &ca, &["-gencrl", "-out", "revoked.crl"]].concat());
        for entry in fs::read_dir(certs.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            chown_postgres(&path);
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        chown_postgres(certs.dir.path());
        certs
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Pg {
    /// Turns TLS on with `certs`' server certificate (from the next start or reload), and,
    /// with `client_cert`, makes every TCP connection, replication included, present a
    /// client certificate signed by `certs`' CA (`hostssl … cert`; everything else over
    /// TCP is rejected).
    pub fn enable_ssl(&self, certs: &Certs, client_cert: bool) {
        for name in ["server.crt", "server.key", "ca.crt"] {
            let to = self.root().join(name);
            fs::copy(certs.path(name), &to).unwrap();
            chown_postgres(&to);
        }
        self.conf(&format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'",
            self.root().join("server.crt").display(),
            self.root().join("server.key").display(),
            self.root().join("ca.crt").display(),
        ));
        if client_cert {
            let hba = self.data().join("pg_hba.conf");
            let old = fs::read_to_string(&hba).unwrap();
            fs::write(
                &hba,
                format!(
                    "hostssl all all 127.0.0.1/32 cert\n\
                     hostssl replication all 127.0.0.1/32 cert\n\
                     host all all 0.0.0.0/0 reject\n\
                     host replication all 0.0.0.0/0 reject\n\
                     {old}"
                ),
            )
            .unwrap();
        }
    }
}

// ---- Set-ups: the states the tests start from ----

/// pg1, a primary, running.
pub fn running_primary() -> Pg {
    let pg = Pg::primary("pg1");
    pg.start();
    pg
}

/// pg1 started, then killed with SIGKILL: a crashed primary (pg_control: "in production"),
/// nothing running.
pub fn crashed_primary() -> Pg {
    let pg = running_primary();
    pg.kill9();
    pg
}

/// pg1, a never started primary, and pg2, its standby copied by hand; nothing runs.
pub fn stopped_primary_and_standby() -> (Pg, Pg) {
    let primary = Pg::primary("pg1");
    let standby = Pg::standby_of(&primary, "pg2");
    (primary, standby)
}

/// pg1, a running primary, and pg2, its standby (copied while pg1 was stopped), not started.
pub fn primary_and_stopped_standby() -> (Pg, Pg) {
    let (primary, standby) = stopped_primary_and_standby();
    primary.start();
    (primary, standby)
}

/// pg1, a primary, and pg2, a standby streaming from it, both running.
pub fn primary_and_standby() -> (Pg, Pg) {
    let (primary, standby) = primary_and_stopped_standby();
    standby.start();
    (primary, standby)
}

/// pg1, a primary, with pg2 and pg3, its standbys, in one partition of pg1's fake Pacemaker
/// (give it to every node's agent with `Agent::cluster`). `configure` runs before the
/// first start; then all three run and both standbys stream.
pub fn three_nodes(configure: impl FnOnce(&Pg, &Pg, &Pg)) -> (Pg, Pg, Pg) {
    let pg1 = Pg::primary("pg1");
    let pg2 = Pg::standby_of(&pg1, "pg2");
    let pg3 = Pg::standby_of(&pg1, "pg3");
    pg1.fake().set_partition(&["pg1", "pg2", "pg3"]);
    configure(&pg1, &pg2, &pg3);
    for pg in [&pg1, &pg2, &pg3] {
        pg.start();
    }
    pg1.wait_streaming("pg2");
    pg1.wait_streaming("pg3");
    (pg1, pg2, pg3)
}

// ---- Diverged primaries ----

/// The replication course's pg_rewind lab (1.6.4/1.7.4), after the fork: pg1, the old
/// primary, wrote `t7` on timeline 1 after pg2, its standby made with pg_basebackup, was
/// promoted and wrote `t8`. Each node has configuration of its own (`work_mem` by ALTER
/// SYSTEM, a line in pg_hba.conf). pg1 is stopped as `Stop` says; pg2 runs.
pub struct Lab {
    pub pg1: Pg,
    pub pg2: Pg,
    /// `pg_relation_filenode('t7')` on pg1, to find t7 in the kept WAL.
    pub t7_filenode: String,
}

/// How the old primary ends after diverging.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Clean,
    Kill9,
}

/// Builds the lab. `before` runs on pg1 before anything (settings), `promoted` on pg2 right
/// after its promotion, `diverge` on pg1 after t7 (more writes, checkpoints).
pub fn lab(
    before: impl FnOnce(&Pg),
    promoted: impl FnOnce(&Pg),
    diverge: impl FnOnce(&Pg),
    stop: Stop,
) -> Lab {
    lab_of(before, promoted, diverge, stop, Source::MakesT8)
}

/// What the new primary does after `promoted` in [`lab_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Creates t8, as the course's lab does.
    MakesT8,
    /// Nothing more: only what `promoted` did (a source that changed blocks only).
    AsPromotedLeftIt,
}

/// [`lab`], where the new primary may leave t8 out.
pub fn lab_of(
    before: impl FnOnce(&Pg),
    promoted: impl FnOnce(&Pg),
    diverge: impl FnOnce(&Pg),
    stop: Stop,
    source: Source,
) -> Lab {
    let pg1 = Pg::primary("pg1");
    // pg_rewind reads pg1's WAL back to the last checkpoint before the fork; a clean stop's
    // checkpoint recycles it unless kept (the brief's measurement: without retention the
    // fork's WAL was gone). Tests about missing WAL set it back to 0.
    pg1.conf("wal_keep_size = '64MB'");
    before(&pg1);
    pg1.start();
    pg1.psql("CREATE TABLE t6 (c1 int); INSERT INTO t6 VALUES (1)");
    let pg2 = Pg::base_backup_of(&pg1, "pg2");
    pg2.start();
    pg1.wait_streaming("pg2");
    // Node-local configuration, made after the copy: each node has its own.
    pg1.psql("ALTER SYSTEM SET work_mem = '7MB'");
    append(&pg1.data().join("pg_hba.conf"), "# pg1 only\n");
    pg2.promote();
    promoted(&pg2);
    pg2.psql("ALTER SYSTEM SET work_mem = '9MB'");
    append(&pg2.data().join("pg_hba.conf"), "# pg2 only\n");

    // Lab 1.7.4: t7 on the old primary, on the old timeline...
    pg1.psql("CREATE TABLE t7 (c1 int); INSERT INTO t7 VALUES (1)");
    let t7_filenode = pg1.psql("SELECT pg_relation_filenode('t7')");
    diverge(&pg1);
    // ... t8 on the new one.
    if source == Source::MakesT8 {
        pg2.psql("CREATE TABLE t8 (c1 int); INSERT INTO t8 VALUES (1)");
    }
    match stop {
        Stop::Clean => pg1.stop(),
        Stop::Kill9 => pg1.kill9(),
    }
    Lab {
        pg1,
        pg2,
        t7_filenode,
    }
}

/// The lab as the course builds it: nothing added, pg1 cleanly stopped.
pub fn plain_lab() -> Lab {
    lab(|_| {}, |_| {}, |_| {}, Stop::Clean)
}

/// For `lab`'s `before`: no WAL kept for standbys and little kept at all, so that
/// [`recycle_fork_segment`] can make the fork's WAL disappear.
pub fn without_wal_retention(pg1: &Pg) {
    pg1.conf("wal_keep_size = 0");
    pg1.conf("min_wal_size = '2MB'");
    pg1.conf("max_wal_size = '4MB'");
}

/// For `lab`'s `diverge`: makes pg1's own WAL from before the fork disappear: enough WAL for
/// several 1 MB segments, then checkpoints, so the fork point's segment is removed or
/// recycled.
pub fn recycle_fork_segment(pg1: &Pg) {
    pg1.psql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 30000) g",
    );
    for _ in 0..3 {
        pg1.psql("SELECT pg_switch_wal()");
        pg1.psql("CHECKPOINT");
    }
}

/// The lab where the fork's WAL is gone: what brings pg1 back is a re-clone.
pub fn reclone_lab() -> Lab {
    lab(
        without_wal_retention,
        |_| {},
        recycle_fork_segment,
        Stop::Clean,
    )
}
