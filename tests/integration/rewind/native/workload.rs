//! Workloads drawn from a seed for the differential suite: a schema both sides share
//! (written before the fork), then on each side, in an order and with sizes the seed picks,
//! every kind of change a rewind must undo ([`Op::ALL`], each at least once per side) and
//! a few more drawn at random. The same seed gives the same SQL, so a failure is replayed
//! with `PGHA_DIFF_SEED=<seed>`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use crate::pg::{as_postgres, bin, major, Pg};

/// splitmix64: a few lines, and the same numbers on every machine (no crate's version
/// changes a seed's meaning).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.next() as usize % (i + 1));
        }
    }
}

/// Large objects both sides start with (fixed OIDs, so either side can write or unlink
/// them).
const LARGE_OBJECTS: [u32; 2] = [4242, 4243];

/// The schema both sides share, written on the old primary before its standby is copied:
/// every table the ops change, with indexes, TOAST, the visibility map and free-space map
/// forks (VACUUM), a sequence, an unlogged table, large objects and a second database.
/// amcheck is created in `template1` too, so every later database has it (the checks
/// run on standbys, which cannot create it).
pub fn common_schema(pg: &Pg) {
    for db in ["template1", "postgres"] {
        pg.psql_in(db, "CREATE EXTENSION amcheck");
    }
    pg.psql(
        "CREATE TABLE heap_a (id int PRIMARY KEY, v int, w int, pad text) \
             WITH (fillfactor = 70);
         CREATE INDEX heap_a_w ON heap_a (w);
         INSERT INTO heap_a SELECT g, g, g, repeat('x', g % 50) FROM generate_series(1, 20000) g;
         CREATE TABLE toasty (id int PRIMARY KEY, doc text);
         INSERT INTO toasty SELECT g, repeat(md5(g::text), 300) FROM generate_series(1, 30) g;
         CREATE TABLE victim_t (id int, pad text);
         INSERT INTO victim_t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
         CREATE TABLE victim_v (id int PRIMARY KEY, pad text);
         INSERT INTO victim_v SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
         CREATE TABLE mx (id int PRIMARY KEY, v int);
         INSERT INTO mx SELECT g, 0 FROM generate_series(1, 300) g;
         CREATE TABLE dropme (id int); CREATE INDEX dropme_id ON dropme (id);
         INSERT INTO dropme SELECT generate_series(1, 500);
         CREATE SEQUENCE seq_a;
         CREATE UNLOGGED TABLE unlogged_a (id int PRIMARY KEY, pad text);
         INSERT INTO unlogged_a SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
    );
    for oid in LARGE_OBJECTS {
        pg.psql(&format!(
            "SELECT lo_from_bytea({oid}, convert_to(repeat('lo{oid}', 3000), 'UTF8'))"
        ));
    }
    pg.psql("CREATE DATABASE common_db");
    pg.psql_in(
        "common_db",
        "CREATE TABLE c (id int PRIMARY KEY, pad text);
         INSERT INTO c SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
    );
    pg.psql("VACUUM");
    pg.psql("CHECKPOINT");
}

/// Which side of the fork a list of ops runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The promoted standby, the rewind's source.
    Source,
    /// The old primary, the rewind's target.
    Target,
}

/// One kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    HotUpdate,
    ColdUpdate,
    Delete,
    Toast,
    Truncate,
    Vacuum,
    VacuumFull,
    Cluster,
    CreateTable,
    DropTable,
    CreateIndex,
    DropIndex,
    CreateDatabase,
    DropDatabase,
    Unlogged,
    Sequence,
    Prepared,
    LargeObject,
    Multixact,
    Abort,
    Checkpoint,
}

impl Op {
    pub const ALL: [Op; 22] = [
        Op::Insert,
        Op::HotUpdate,
        Op::ColdUpdate,
        Op::Delete,
        Op::Toast,
        Op::Truncate,
        Op::Vacuum,
        Op::VacuumFull,
        Op::Cluster,
        Op::CreateTable,
        Op::DropTable,
        Op::CreateIndex,
        Op::DropIndex,
        Op::CreateDatabase,
        Op::DropDatabase,
        Op::Unlogged,
        Op::Sequence,
        Op::Prepared,
        Op::LargeObject,
        Op::Multixact,
        Op::Abort,
        Op::Checkpoint,
    ];
}

impl Op {
    /// The ops that change blocks only: no file is created, dropped or truncated (VACUUM
    /// may cut a table's empty last pages off, and then does).
    pub const BLOCKS_ONLY: [Op; 9] = [
        Op::Insert,
        Op::HotUpdate,
        Op::ColdUpdate,
        Op::Delete,
        Op::Toast,
        Op::LargeObject,
        Op::Multixact,
        Op::Abort,
        Op::Checkpoint,
    ];
}

/// One side's ops, in order, and the rng that sizes them.
pub struct Workload {
    pub side: Side,
    pub ops: Vec<Op>,
    rng: Rng,
    /// Names this side made and may drop.
    tables: Vec<String>,
    indexes: Vec<String>,
    databases: Vec<String>,
    prepared: Vec<String>,
    made: u64,
}

impl Workload {
    /// Every op once and 4 to 10 more, shuffled: the order and sizes are the seed's.
    pub fn draw(seed: u64, side: Side) -> Workload {
        Workload::draw_from(seed, side, &Op::ALL)
    }

    /// [`Workload::draw`] from `kinds` only.
    pub fn draw_from(seed: u64, side: Side, kinds: &[Op]) -> Workload {
        let mut rng = Rng::new(seed ^ if side == Side::Source { 0x5 } else { 0x7 });
        let mut ops = kinds.to_vec();
        for _ in 0..rng.range(4, 10) {
            ops.push(*rng.pick(kinds));
        }
        rng.shuffle(&mut ops);
        Workload {
            side,
            ops,
            rng,
            tables: Vec::new(),
            indexes: Vec::new(),
            databases: Vec::new(),
            prepared: Vec::new(),
            made: 0,
        }
    }

    /// Runs every op on `pg`.
    pub fn run(mut self, pg: &Pg) {
        for op in self.ops.clone() {
            self.one(op, pg);
        }
    }

    /// A name no other op of either side uses.
    fn fresh(&mut self, what: &str) -> String {
        self.made += 1;
        let side = if self.side == Side::Source { "s" } else { "t" };
        format!("{what}_{side}{}", self.made)
    }

    /// The first key of a new range of ids, apart from the other side's and the schema's.
    fn keys(&mut self) -> u64 {
        self.made += 1;
        let base = if self.side == Side::Source {
            1_000_000
        } else {
            2_000_000
        };
        base + self.made * 10_000
    }

    fn one(&mut self, op: Op, pg: &Pg) {
        let r = &mut self.rng;
        let (n, m) = (r.range(200, 3000), r.range(2, 9));
        let k = r.range(0, m - 1);
        match op {
            Op::Insert => {
                let first = self.keys();
                pg.psql(&format!(
                    "INSERT INTO heap_a SELECT g, g, g, repeat('i', g % 40) \
                     FROM generate_series({first}, {first} + {n}) g"
                ));
            }
            Op::HotUpdate => {
                pg.psql(&format!("UPDATE heap_a SET v = v + 1 WHERE id % {m} = {k}"));
            }
            Op::ColdUpdate => {
                pg.psql(&format!(
                    "UPDATE heap_a SET w = w + 7, pad = pad || 'c' WHERE id % {m} = {k}"
                ));
            }
            Op::Delete => {
                pg.psql(&format!("DELETE FROM heap_a WHERE id % {} = {k}", m * 3));
            }
            Op::Toast => {
                let first = self.keys();
                pg.psql(&format!(
                    "INSERT INTO toasty SELECT g, repeat(md5(g::text), 200 + g % 400) \
                     FROM generate_series({first}, {first} + {}) g;
                     UPDATE toasty SET doc = doc || md5(id::text) WHERE id % {m} = {k}",
                    n / 100
                ));
            }
            Op::Truncate => {
                pg.psql(&format!(
                    "TRUNCATE victim_t; INSERT INTO victim_t \
                     SELECT g, md5(g::text) FROM generate_series(1, {n}) g"
                ));
            }
            Op::Vacuum => {
                let table = *self.rng.pick(&["heap_a", "toasty", "mx", "victim_t"]);
                let freeze = if self.rng.range(0, 1) == 0 {
                    "FREEZE, "
                } else {
                    ""
                };
                pg.psql(&format!("VACUUM ({freeze}ANALYZE) {table}"));
            }
            Op::VacuumFull => {
                let table = *self.rng.pick(&["victim_v", "toasty", "heap_a"]);
                pg.psql(&format!("VACUUM FULL {table}"));
            }
            Op::Cluster => {
                pg.psql("CLUSTER victim_v USING victim_v_pkey");
            }
            Op::CreateTable => {
                let name = self.fresh("tab");
                pg.psql(&format!(
                    "CREATE TABLE {name} (id int PRIMARY KEY, pad text); \
                     INSERT INTO {name} SELECT g, md5(g::text) FROM generate_series(1, {n}) g"
                ));
                self.tables.push(name);
            }
            Op::DropTable => {
                let name = self.tables.pop().unwrap_or_else(|| "dropme".into());
                pg.psql(&format!("DROP TABLE IF EXISTS {name}"));
            }
            Op::CreateIndex => {
                let name = self.fresh("idx");
                let column = *self.rng.pick(&["v", "pad", "(v + w)"]);
                pg.psql(&format!("CREATE INDEX {name} ON heap_a ({column})"));
                self.indexes.push(name);
            }
            Op::DropIndex => {
                let name = self.indexes.pop().unwrap_or_else(|| "dropme_id".into());
                pg.psql(&format!("DROP INDEX IF EXISTS {name}"));
            }
            Op::CreateDatabase => {
                let name = self.fresh("db");
                // From 15 a database is created by WAL records or by copying files.
                let strategy = if major() >= 15 {
                    *self.rng.pick(&[" STRATEGY wal_log", " STRATEGY file_copy"])
                } else {
                    ""
                };
                pg.psql(&format!("CREATE DATABASE {name}{strategy}"));
                pg.psql_in(
                    &name,
                    &format!(
                        "CREATE TABLE d (id int PRIMARY KEY); \
                         INSERT INTO d SELECT generate_series(1, {n})"
                    ),
                );
                self.databases.push(name);
            }
            Op::DropDatabase => {
                let name = self.databases.pop().unwrap_or_else(|| "common_db".into());
                pg.psql(&format!("DROP DATABASE IF EXISTS {name}"));
            }
            Op::Unlogged => {
                let first = self.keys();
                let name = self.fresh("ul");
                pg.psql(&format!(
                    "INSERT INTO unlogged_a SELECT g, 'u' FROM generate_series({first}, \
                     {first} + {n}) g; CREATE UNLOGGED TABLE {name} AS SELECT g \
                     FROM generate_series(1, {n}) g"
                ));
            }
            Op::Sequence => {
                pg.psql(&format!(
                    "SELECT count(nextval('seq_a')) FROM generate_series(1, {n})"
                ));
                if self.rng.range(0, 1) == 0 {
                    // A new relfilenode for the sequence.
                    pg.psql(&format!("ALTER SEQUENCE seq_a RESTART WITH {m}"));
                }
                let name = self.fresh("seq");
                pg.psql(&format!("CREATE SEQUENCE {name}; SELECT nextval('{name}')"));
            }
            Op::Prepared => self.prepared_transaction(pg, n),
            Op::LargeObject => {
                let oid = *self.rng.pick(&LARGE_OBJECTS);
                pg.psql(&format!(
                    "SELECT lo_put(oid, {n}, convert_to(repeat('w', {n}), 'UTF8')) \
                     FROM pg_largeobject_metadata WHERE oid = {oid}; \
                     SELECT lo_from_bytea(0, convert_to(repeat('n', {n} * 3), 'UTF8'))"
                ));
                if self.rng.range(0, 2) == 0 {
                    pg.psql(&format!(
                        "SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = {oid}"
                    ));
                }
            }
            Op::Multixact => multixacts(pg, m, k),
            Op::Abort => {
                let first = self.keys();
                pg.psql(&format!(
                    "BEGIN; INSERT INTO heap_a SELECT g, g, g, 'a' \
                     FROM generate_series({first}, {first} + {n}) g; ROLLBACK"
                ));
                pg.psql(&format!(
                    "BEGIN; SAVEPOINT s; UPDATE heap_a SET v = -v WHERE id % {m} = {k}; \
                     ROLLBACK TO s; UPDATE mx SET v = v + 1 WHERE id % {m} = {k}; COMMIT"
                ));
            }
            Op::Checkpoint => {
                pg.psql("CHECKPOINT");
            }
        }
    }

    /// A transaction prepared and left open, on a table of its own (its lock stays with
    /// it); now and then an earlier one of this side committed or rolled back.
    fn prepared_transaction(&mut self, pg: &Pg, n: u64) {
        let name = self.fresh("prep");
        pg.psql(&format!("CREATE TABLE {name} (v int)"));
        pg.psql(&format!(
            "BEGIN; INSERT INTO {name} SELECT generate_series(1, {n}); \
             PREPARE TRANSACTION '{name}'"
        ));
        if !self.prepared.is_empty() && self.rng.range(0, 1) == 0 {
            let earlier = self.prepared.remove(0);
            let end = *self.rng.pick(&["COMMIT PREPARED", "ROLLBACK PREPARED"]);
            pg.psql(&format!("{end} '{earlier}'"));
        }
        self.prepared.push(name);
    }
}

/// `SELECT … FOR SHARE` of the same rows from two sessions at once (a multixact per row),
/// then, in one session, a row locked and updated in a subtransaction (a multixact with an
/// updater).
fn multixacts(pg: &Pg, m: u64, k: u64) {
    let rows =
        format!("SELECT count(*) FROM (SELECT id FROM mx WHERE id % {m} = {k} FOR SHARE) locked");
    let mut first = Session::open(pg);
    first.send(&format!("BEGIN; {rows};"));
    first.line();
    pg.psql(&format!("BEGIN; {rows}; COMMIT"));
    first.send("COMMIT;");
    first.close();
    pg.psql(&format!(
        "BEGIN; SELECT * FROM mx WHERE id = {k} + 1 FOR SHARE; SAVEPOINT s; \
         UPDATE mx SET v = v + 1 WHERE id = {k} + 1; COMMIT"
    ));
}

/// A psql session held open, fed a statement at a time.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    fn open(pg: &Pg) -> Session {
        let mut child = as_postgres(bin("psql"))
            .arg("-h")
            .arg(pg.sock())
            .args([
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn psql");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("psql's stdout"));
        Session {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().expect("session open");
        writeln!(stdin, "{sql}")
            .and_then(|()| stdin.flush())
            .unwrap();
    }

    /// The next line of output: the statement before it has run.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "psql ended before answering");
        line
    }

    fn close(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "psql session: {status}");
    }
}
