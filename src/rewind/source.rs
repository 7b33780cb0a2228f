//! The rewind's source: the current primary, over SQL (or a stopped data directory).
//!
//! Owns the questions pgha asks the source before a rewind: is it a primary, which system,
//! which timeline and history, has it checkpointed since its promotion (PG ≤ 15), and how
//! much a rewind or a re-clone would copy. Everything is read with the functions pg_rewind
//! itself needs (`pg_read_binary_file`, `pg_ls_dir`, `pg_stat_file`: pgha's pg_rewind notes
//! §7.3), so a role with pg_rewind's four grants suffices; `CHECKPOINT` additionally needs a
//! superuser or (PG ≥ 15) `pg_checkpoint`, and without it pgha waits for the checkpoint.
//!
//! The connection is a libpq connection string, as `primary_conninfo` and pg_rewind take;
//! tokio-postgres understands most of it, and its `ssl*` keywords are honoured with libpq's
//! meanings (`crate::instance::tls`): with `sslmode=verify-full` a source that cannot prove
//! it is the host named is refused before anything it says is believed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::TargetSessionAttrs;
use tokio_postgres::{Config, Row};

use super::decision::{CostEstimate, History, SourceFacts};
use super::error::RewindError;
use super::filemap::{FileEntry, FileType};
use super::major::WalCopied;
use super::target::{history_file_name, read_history};
use crate::deadline::{Deadline, Expired};
use crate::instance::conninfo::{self, redact};
use crate::instance::control::{self, ControlFile, DbState};
use crate::instance::sql::{Session, SqlError};
use crate::instance::tls::{self, Connector, TlsSettings};
use crate::instance::wal::segno_file_name;
use crate::lsn::Lsn;

mod pieces;
use pieces::Pieces;

/// SQLSTATE `insufficient_privilege`.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// How often pg_control is read again while waiting for a checkpoint.
const CHECKPOINT_POLL: Duration = Duration::from_millis(250);
/// A connect never waits longer than this, whatever the conninfo says.
const MAX_CONNECT: Duration = Duration::from_secs(10);

/// One connection to the source.
pub struct SourceSession {
    session: Session,
    shown: String,
    /// How it was made, for [`SourceSession::another`].
    config: Config,
    tls: Connector,
}

impl SourceSession {
    /// Connects as libpq would for the system user whose home is `home`: a password missing
    /// from `conninfo` is looked up in `passfile=`, `$PGPASSFILE`, or `<home>/.pgpass`.
    pub fn connect(
        conninfo: &str,
        home: Option<&Path>,
        deadline: &Deadline,
    ) -> Result<SourceSession, RewindError> {
        let shown = redact(conninfo);
        let mut config = config_from(conninfo, deadline).map_err(|why| RewindError::Source {
            source_conninfo: shown.clone(),
            what: format!("unusable connection string: {why}"),
        })?;
        let options = without_jit(config.get_options());
        config.options(&options);
        if config.get_password().is_none() {
            let file = conninfo::get(conninfo, "passfile")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
                .or_else(|| home.map(|h| h.join(".pgpass")));
            if let Some(password) = file.and_then(|f| read_passfile(&f)).and_then(|text| {
                let host = config.get_hosts().first().map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(_) => "localhost".to_owned(),
                });
                let port = config.get_ports().first().copied().unwrap_or(5432);
                pgpass_lookup(
                    &text,
                    host.as_deref().unwrap_or("localhost"),
                    port,
                    config.get_dbname().unwrap_or("postgres"),
                    config.get_user().unwrap_or(""),
                )
            }) {
                config.password(password);
            }
        }
        let tls = TlsSettings::from_conninfo(conninfo, home)
            .and_then(|settings| settings.build())
            .map_err(|e| RewindError::Source {
                source_conninfo: shown.clone(),
                what: e.to_string(),
            })?;
        SourceSession::open(config, tls, shown, deadline)
    }

    fn open(
        config: Config,
        tls: Connector,
        shown: String,
        deadline: &Deadline,
    ) -> Result<SourceSession, RewindError> {
        let session =
            Session::open(config.clone(), &tls, shown.clone(), deadline).map_err(|e| {
                RewindError::Source {
                    source_conninfo: shown.clone(),
                    what: e.to_string(),
                }
            })?;
        Ok(SourceSession {
            session,
            shown,
            config,
            tls,
        })
    }

    /// A second connection to the same server, made as this one was. A connection string
    /// can reach another server the second time (a moved address, a list of hosts): the
    /// postmaster's start time, to the microsecond, must be this one's, or it is refused.
    pub fn another(&self, deadline: &Deadline) -> Result<SourceSession, RewindError> {
        let other = SourceSession::open(
            self.config.clone(),
            self.tls.clone(),
            self.shown.clone(),
            deadline,
        )?;
        let (ours, theirs) = (self.started_at(deadline)?, other.started_at(deadline)?);
        if ours != theirs {
            return Err(RewindError::Source {
                source_conninfo: self.shown.clone(),
                what: format!(
                    "a second connection reached another server (started at {theirs}, not \
                     {ours})"
                ),
            });
        }
        Ok(other)
    }

    /// When the server's postmaster started: which server this is, among those a
    /// connection string may reach.
    fn started_at(&self, deadline: &Deadline) -> Result<String, RewindError> {
        const SQL: &str = "SELECT pg_catalog.pg_postmaster_start_time()::text";
        self.one_row(SQL, deadline)?
            .try_get(0)
            .map_err(|e| column_error(SQL, &e))
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        deadline: &Deadline,
    ) -> Result<Vec<Row>, RewindError> {
        self.session
            .query(sql, params, deadline)
            .map_err(|e| match e {
                SqlError::Query {
                    query,
                    code,
                    message,
                } => RewindError::SourceQuery {
                    query,
                    code,
                    message,
                },
                other => RewindError::Source {
                    source_conninfo: self.shown.clone(),
                    what: other.to_string(),
                },
            })
    }

    fn one_row(&self, sql: &str, deadline: &Deadline) -> Result<Row, RewindError> {
        self.query(sql, &[], deadline)?
            .into_iter()
            .next()
            .ok_or_else(|| RewindError::SourceQuery {
                query: sql.to_owned(),
                code: None,
                message: "no row".into(),
            })
    }

    /// A file of the source's data directory (`pg_read_binary_file`, as pg_rewind reads it).
    fn read_file(&self, path: &str, deadline: &Deadline) -> Result<Vec<u8>, RewindError> {
        const SQL: &str = "SELECT pg_catalog.pg_read_binary_file($1)";
        let rows = self.query(SQL, &[&path], deadline)?;
        let row = rows.first().ok_or_else(|| RewindError::SourceQuery {
            query: SQL.into(),
            code: None,
            message: format!("no row for {path}"),
        })?;
        row.try_get::<_, Vec<u8>>(0)
            .map_err(|e| column_error(SQL, &e))
    }

    /// Many ranges of the source's files in one round trip (`pg_read_binary_file` with
    /// `missing_ok` over `unnest`, as pg_rewind's libpq mode fetches its chunks): one reply
    /// per `(path, offset, len)`, in order; fewer bytes at a file's end, `None` for a file
    /// that is gone. Each range is asked for in [`pieces`] of 64 kB, which the server sends
    /// faster than larger rows. A reply longer than asked is refused.
    pub fn read_ranges(
        &self,
        ranges: &[(&str, u64, u64)],
        deadline: &Deadline,
    ) -> Result<Vec<Option<Vec<u8>>>, RewindError> {
        const SQL: &str = "SELECT pg_catalog.pg_read_binary_file(r.path, r.off, r.len, true) \
             FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::int8[]), \
                             pg_catalog.unnest($3::int8[])) \
                  WITH ORDINALITY AS r(path, off, len, n) ORDER BY r.n";
        let pieces = Pieces::of(ranges);
        let rows = self.query(
            SQL,
            &[&pieces.paths, &pieces.offsets, &pieces.lens],
            deadline,
        )?;
        let refused = |message: String| RewindError::SourceQuery {
            query: SQL.into(),
            code: None,
            message,
        };
        if rows.len() != pieces.len() {
            return Err(refused(format!(
                "{} rows for {} pieces of ranges",
                rows.len(),
                pieces.len()
            )));
        }
        let replies = rows
            .iter()
            .map(|row| row.try_get::<_, Option<&[u8]>>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| column_error(SQL, &e))?;
        pieces.join(&replies).map_err(refused)
    }

    /// The source's `global/pg_control`, as its bytes.
    pub fn control_bytes(&self, deadline: &Deadline) -> Result<Vec<u8>, RewindError> {
        self.read_file("global/pg_control", deadline)
    }

    /// `pg_current_wal_insert_lsn()`: where a primary source's WAL ends now.
    pub fn insert_lsn(&self, deadline: &Deadline) -> Result<Lsn, RewindError> {
        const SQL: &str = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text";
        let text: String = self
            .one_row(SQL, deadline)?
            .try_get(0)
            .map_err(|e| column_error(SQL, &e))?;
        text.parse().map_err(|_| RewindError::SourceQuery {
            query: SQL.into(),
            code: None,
            message: format!("not a WAL position: {text:?}"),
        })
    }

    pub fn control(&self, deadline: &Deadline) -> Result<ControlFile, RewindError> {
        let bytes = self.read_file("global/pg_control", deadline)?;
        control::decode(&bytes).map_err(|e| RewindError::Source {
            source_conninfo: self.shown.clone(),
            what: format!("its global/pg_control: {e}"),
        })
    }

    /// What the decision needs from the source.
    pub fn facts(&self, deadline: &Deadline) -> Result<SourceFacts, RewindError> {
        const SQL: &str = "SELECT pg_catalog.pg_is_in_recovery(), \
             pg_catalog.current_setting('full_page_writes'), \
             CASE WHEN pg_catalog.pg_is_in_recovery() \
                  THEN pg_catalog.pg_last_wal_replay_lsn() \
                  ELSE pg_catalog.pg_current_wal_insert_lsn() END, \
             CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL \
                  ELSE pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_insert_lsn()) END";
        let row = self.one_row(SQL, deadline)?;
        let in_recovery: bool = row.try_get(0).map_err(|e| column_error(SQL, &e))?;
        let fpw: String = row.try_get(1).map_err(|e| column_error(SQL, &e))?;
        let insert: Option<tokio_postgres::types::PgLsn> =
            row.try_get(2).map_err(|e| column_error(SQL, &e))?;
        let walfile: Option<String> = row.try_get(3).map_err(|e| column_error(SQL, &e))?;
        let control = self.control(deadline)?;
        // The timeline the primary writes on: its current WAL file's, which is right from
        // the moment of the promotion; pg_control's catches up at the next checkpoint.
        let timeline = walfile
            .as_deref()
            .and_then(|name| name.get(0..8))
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .unwrap_or(0)
            .max(control.checkpoint_timeline)
            .max(control.min_recovery_point_timeline);
        let history = if timeline <= 1 {
            History::first()
        } else {
            let path = format!("pg_wal/{}", history_file_name(timeline));
            let bytes = self.read_file(&path, deadline)?;
            History::parse(timeline, &String::from_utf8_lossy(&bytes))?
        };
        Ok(SourceFacts {
            system_identifier: control.system_identifier,
            catalog_version: control.catalog_version,
            in_recovery,
            timeline,
            checkpoint_timeline: control.checkpoint_timeline,
            history,
            insert_lsn: insert.map(Lsn::from).unwrap_or_default(),
            full_page_writes: fpw == "on",
        })
    }

    /// Makes sure the source's pg_control shows its current timeline: `CHECKPOINT` when the
    /// role may, else waits for the promotion's own checkpoint, within the deadline. Returns
    /// how it got there, for the log.
    pub fn ensure_checkpointed(
        &self,
        facts: &SourceFacts,
        deadline: &Deadline,
    ) -> Result<&'static str, RewindError> {
        if facts.checkpoint_timeline >= facts.timeline {
            return Ok("already checkpointed");
        }
        let how = match self.query("CHECKPOINT", &[], deadline) {
            Ok(_) => "CHECKPOINT",
            Err(RewindError::SourceQuery { code, .. })
                if code.as_deref() == Some(INSUFFICIENT_PRIVILEGE) =>
            {
                log::info!(
                    "the rewind role may not run CHECKPOINT on the source: waiting for the \
                     promotion's checkpoint"
                );
                "waited for the promotion's checkpoint"
            }
            Err(e) => return Err(e),
        };
        loop {
            let control = self.control(deadline)?;
            if control.checkpoint_timeline >= facts.timeline {
                return Ok(how);
            }
            if deadline.expired() {
                return Err(Expired {
                    what: format!(
                        "a checkpoint on the source's timeline {} (its pg_control still shows \
                         timeline {})",
                        facts.timeline, control.checkpoint_timeline
                    ),
                    waited: deadline.elapsed(),
                }
                .into());
            }
            std::thread::sleep(CHECKPOINT_POLL.min(deadline.remaining()));
        }
    }

    /// The sizes the cost estimate needs, for a pg_rewind that copies `wal_copied`; `None`
    /// when the role may not see them. `segment_size` is the cluster's (pg_control's), which
    /// names the fork's segment: the source's files from it on are those whose name, past
    /// the timeline, is not smaller (fixed-width upper-case hex). Preallocated segments past
    /// the source's end count too: pg_rewind 19 skips only older ones.
    pub fn estimate(
        &self,
        fork_point: Lsn,
        facts: &SourceFacts,
        target_end: Lsn,
        segment_size: u64,
        wal_copied: WalCopied,
        deadline: &Deadline,
    ) -> Option<CostEstimate> {
        const SQL: &str = "SELECT \
             (SELECT sum((pg_catalog.pg_stat_file('pg_wal/' || f, true)).size) \
                FROM pg_catalog.pg_ls_dir('pg_wal', true, false) AS f)::bigint, \
             (SELECT sum((pg_catalog.pg_stat_file('pg_wal/' || f, true)).size) \
                FROM pg_catalog.pg_ls_dir('pg_wal', true, false) AS f \
                WHERE f ~ '^[0-9A-F]{24}$' AND substr(f, 9) >= $1::text)::bigint, \
             (SELECT sum(pg_catalog.pg_database_size(oid)) FROM pg_catalog.pg_database \
                WHERE datallowconn)::bigint";
        // An unknown segment size names no segment: every file counts, as up to 18.
        let from_fork = match fork_point.0.checked_div(segment_size) {
            Some(segno) => segno_file_name(0, segno, segment_size)
                .get(8..)
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        };
        let row = match self.query(SQL, &[&from_fork], deadline) {
            Ok(rows) => rows.into_iter().next()?,
            Err(e) => {
                log::warn!("could not estimate the cost of a rewind: {e}");
                return None;
            }
        };
        let size = |i: usize| -> Option<u64> {
            row.try_get::<_, Option<i64>>(i)
                .ok()
                .flatten()
                .and_then(|v| u64::try_from(v).ok())
        };
        Some(CostEstimate {
            source_wal: size(0)?,
            // No segment from the fork's on: none to copy.
            source_wal_from_fork: size(1).unwrap_or(0),
            wal_copied,
            source_databases: size(2)?,
            source_since_fork: facts.insert_lsn.bytes_after(fork_point),
            target_since_fork: target_end.bytes_after(fork_point),
            native_fetch: None,
        })
    }

    /// The file names in the source's pg_wal; `None` when the role may not list them.
    pub fn wal_file_names(&self, deadline: &Deadline) -> Option<HashSet<String>> {
        const SQL: &str = "SELECT f FROM pg_catalog.pg_ls_dir('pg_wal', true, false) AS f";
        match self.query(SQL, &[], deadline) {
            Ok(rows) => rows.iter().map(|r| r.try_get(0).ok()).collect(),
            Err(e) => {
                log::warn!("could not list the source's WAL files: {e}");
                None
            }
        }
    }

    /// Every entry of the source's data directory, as pg_rewind lists it over SQL: a
    /// recursive `pg_ls_dir` with `pg_stat_file` (files that vanish meanwhile are skipped),
    /// a tablespace's link reported as a link (its location is the source's own path; an
    /// in-place tablespace, 17's relative location, is a directory).
    pub fn file_list(&self, deadline: &Deadline) -> Result<Vec<FileEntry>, RewindError> {
        const SQL: &str = "WITH RECURSIVE listed (dir, name, size, isdir) AS ( \
               SELECT '', f, st.size, st.isdir \
                 FROM pg_catalog.pg_ls_dir('.', true, false) AS f, \
                      pg_catalog.pg_stat_file(f, true) AS st \
               UNION ALL \
               SELECT l.dir || l.name || '/', f, st.size, st.isdir \
                 FROM listed AS l, \
                      pg_catalog.pg_ls_dir(l.dir || l.name, true, false) AS f, \
                      pg_catalog.pg_stat_file(l.dir || l.name || '/' || f, true) AS st \
                WHERE l.isdir) \
             SELECT l.dir || l.name, l.size, l.isdir, \
                    pg_catalog.pg_tablespace_location(t.oid) \
               FROM listed AS l LEFT JOIN pg_catalog.pg_tablespace AS t \
                 ON l.dir = 'pg_tblspc/' AND t.oid::text = l.name \
              WHERE l.size IS NOT NULL";
        let rows = self.query(SQL, &[], deadline)?;
        rows.iter()
            .map(|row| {
                let path: String = row.try_get(0).map_err(|e| column_error(SQL, &e))?;
                let size: i64 = row.try_get(1).map_err(|e| column_error(SQL, &e))?;
                let is_dir: bool = row.try_get(2).map_err(|e| column_error(SQL, &e))?;
                let location: Option<String> = row.try_get(3).map_err(|e| column_error(SQL, &e))?;
                let is_link = location.is_some_and(|l| l.starts_with('/'));
                let file_type = match (is_link, is_dir) {
                    (true, _) => FileType::Symlink,
                    (false, true) => FileType::Directory,
                    (false, false) => FileType::Regular,
                };
                Ok(FileEntry {
                    path,
                    file_type,
                    size: if is_dir {
                        0
                    } else {
                        u64::try_from(size).unwrap_or(0)
                    },
                })
            })
            .collect()
    }

    /// User tablespaces: a re-clone into a new directory would collide with their paths.
    pub fn tablespaces(&self, deadline: &Deadline) -> Result<i64, RewindError> {
        const SQL: &str = "SELECT count(*) FROM pg_catalog.pg_tablespace \
             WHERE spcname NOT IN ('pg_default', 'pg_global')";
        let row = self.one_row(SQL, deadline)?;
        row.try_get(0).map_err(|e| column_error(SQL, &e))
    }
}

/// The startup options of a source session: the user's, then JIT off. The file listing's
/// recursive query is estimated at millions of rows: with JIT on (the default where
/// PostgreSQL is built with LLVM) it was compiled for 0.37 s and ran in 6 ms (benchmark,
/// PostgreSQL 15). No query here is worth compiling. The user's options are kept as they
/// are: trimming could cut an escaped space (`-c x=a\ `) from their last value.
fn without_jit(given: Option<&str>) -> String {
    match given.filter(|o| !o.trim().is_empty()) {
        Some(given) => format!("{given} -c jit=off"),
        None => "-c jit=off".to_owned(),
    }
}

/// Facts of a stopped local source (`--source-pgdata`): it must be a cleanly shut down
/// primary, as pg_rewind requires.
pub fn local_facts(source: &Path) -> Result<SourceFacts, RewindError> {
    let control = control::read(source)?;
    let timeline = control
        .checkpoint_timeline
        .max(control.min_recovery_point_timeline);
    let history = read_history(source, timeline)?;
    Ok(SourceFacts {
        system_identifier: control.system_identifier,
        catalog_version: control.catalog_version,
        in_recovery: control.state != DbState::ShutDown,
        timeline,
        checkpoint_timeline: control.checkpoint_timeline,
        history,
        insert_lsn: control.checkpoint,
        full_page_writes: control.checkpoint_full_page_writes,
    })
}

/// The text of a password file, or `None` when libpq would not use it: a file that is not
/// a regular file, or whose mode gives its group or others any access ("password file has
/// group or world access; permissions should be u=rw (0600) or less", libpq says, and
/// ignores it). The mode is that of the open file, not of a name looked up again.
fn read_passfile(path: &Path) -> Option<String> {
    use std::io::Read;
    // The postgres user owns its home: a link, a FIFO or a huge file there is refused.
    let (file, stat) = match crate::safe_fs::open_path(path) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("password file \"{}\" ignored: {e}", path.display());
            return None;
        }
    };
    if stat.st_mode & 0o077 != 0 {
        log::warn!(
            "password file \"{}\" has group or world access; permissions should be u=rw \
             (0600) or less: ignored",
            path.display()
        );
        return None;
    }
    let mut text = String::new();
    match file.take(PASSFILE_LIMIT + 1).read_to_string(&mut text) {
        Ok(n) if n as u64 <= PASSFILE_LIMIT => Some(text),
        _ => {
            log::warn!(
                "password file \"{}\" ignored: not text, or larger than {PASSFILE_LIMIT} bytes",
                path.display()
            );
            None
        }
    }
}

/// The most pgha reads of a password file.
const PASSFILE_LIMIT: u64 = 1024 * 1024;

/// The password of the first `.pgpass` line matching (`host:port:database:user:password`,
/// `*` matches anything, `\\` escapes `:` and `\\`), as libpq reads it.
fn pgpass_lookup(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        let [h, p, d, u, password] = fields.as_slice() else {
            continue;
        };
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if matches(h, host) && matches(p, &port) && matches(d, dbname) && matches(u, user) {
            return Some(password.clone());
        }
    }
    None
}

fn column_error(sql: &str, e: &tokio_postgres::Error) -> RewindError {
    RewindError::SourceQuery {
        query: sql.to_owned(),
        code: None,
        message: e.to_string(),
    }
}

/// A URI without the TLS keywords, which tokio-postgres refuses (`sslrootcert`) or reads
/// only in part (`sslmode=verify-full`): [`TlsSettings`] reads them.
fn without_tls_keywords(uri: &str) -> String {
    let Some((base, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !tls::KEYWORDS.contains(&key)
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// A tokio-postgres configuration from a libpq connection string: the keywords it knows are
/// taken, the TLS ones are [`TlsSettings`]'s, the others (libpq-only, e.g. `passfile`) are
/// left to pg_rewind.
fn config_from(conninfo: &str, deadline: &Deadline) -> Result<Config, String> {
    let text = conninfo.trim();
    let mut config = if text.starts_with("postgresql://") || text.starts_with("postgres://") {
        without_tls_keywords(text)
            .parse::<Config>()
            .map_err(|e| e.to_string())?
    } else {
        let mut config = Config::new();
        let get = |key: &str| conninfo::get(text, key).filter(|v| !v.is_empty());
        for host in get("host").iter().flat_map(|h| h.split(',')) {
            if host.starts_with('/') {
                config.host_path(host);
            } else {
                config.host(host);
            }
        }
        if let Some(addrs) = get("hostaddr") {
            for addr in addrs.split(',') {
                config.hostaddr(addr.parse().map_err(|_| format!("hostaddr {addr:?}"))?);
            }
        }
        if let Some(ports) = get("port") {
            for port in ports.split(',') {
                config.port(port.parse().map_err(|_| format!("port {port:?}"))?);
            }
        }
        if let Some(v) = get("user") {
            config.user(&v);
        }
        if let Some(v) = get("password") {
            config.password(v);
        }
        if let Some(v) = get("dbname") {
            config.dbname(&v);
        }
        if let Some(v) = get("options") {
            config.options(&v);
        }
        if let Some(v) = get("connect_timeout").and_then(|v| v.parse::<u64>().ok()) {
            config.connect_timeout(Duration::from_secs(v.max(1)));
        }
        config
    };
    if config.get_user().is_none() {
        return Err("no user= in the connection string".into());
    }
    if config.get_dbname().is_none() {
        config.dbname("postgres");
    }
    let budget = deadline
        .remaining()
        .clamp(Duration::from_millis(500), MAX_CONNECT);
    let timeout = config.get_connect_timeout().copied().unwrap_or(budget);
    config
        .connect_timeout(timeout.min(budget))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .target_session_attrs(TargetSessionAttrs::ReadWrite)
        .application_name("pgha-rewind");
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_jit_compiled_the_file_listing_for_0_37_s() {
        for (given, options) in [
            (None, "-c jit=off"),
            (Some(""), "-c jit=off"),
            (Some("-c work_mem=7MB"), "-c work_mem=7MB -c jit=off"),
            // The user's own jit=on loses: later settings win.
            (Some("-c jit=on"), "-c jit=on -c jit=off"),
            (Some("  "), "-c jit=off"),
            // An escaped trailing space belongs to the user's value.
            (
                Some("-c application_name=a\\ "),
                "-c application_name=a\\  -c jit=off",
            ),
        ] {
            assert_eq!(without_jit(given), options, "{given:?}");
        }
    }

    /// Finding 9: libpq ignores a password file its group or others may access; pgha did
    /// not.
    #[test]
    fn finding_9_group_or_world_readable_pgpass_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pgpass");
        std::fs::write(&path, "*:*:*:rewinder:s3cret\n").unwrap();
        for (mode, used) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read_passfile(&path).is_some(), used, "mode {mode:o}");
        }
        assert_eq!(read_passfile(dir.path()), None, "a directory");
    }

    #[test]
    fn pgpass_lines() {
        let text = "# comment\n10.0.0.9:*:*:rewinder:other\n\
                    *:5432:*:rewinder:s3c\\:ret\n";
        assert_eq!(
            pgpass_lookup(text, "10.0.0.1", 5432, "postgres", "rewinder").as_deref(),
            Some("s3c:ret")
        );
        assert_eq!(
            pgpass_lookup(text, "10.0.0.9", 5433, "postgres", "rewinder").as_deref(),
            Some("other")
        );
        assert_eq!(
            pgpass_lookup(text, "10.0.0.1", 5433, "postgres", "rewinder"),
            None
        );
        assert_eq!(pgpass_lookup(text, "10.0.0.1", 5432, "postgres", "x"), None);
    }

    #[test]
    fn conninfo_keywords_reach_the_config() {
        let d = Deadline::after(Duration::from_secs(5));
        let c = config_from(
            "host=10.0.0.1,10.0.0.2 port=5433 user=rewinder passfile=/x sslmode=prefer",
            &d,
        )
        .unwrap();
        assert_eq!(c.get_user(), Some("rewinder"));
        assert_eq!(c.get_ports(), [5433]);
        assert_eq!(c.get_hosts().len(), 2);
        assert_eq!(c.get_dbname(), Some("postgres"));
        assert!(config_from("host=a", &d).is_err());
    }

    /// Today's refusal of `require` and the verify modes is gone: they reach the TLS
    /// settings, in keyword and URI form.
    #[test]
    fn finding_4_tls_keywords_are_accepted_in_both_forms() {
        let d = Deadline::after(Duration::from_secs(5));
        for ci in [
            "host=a user=u sslmode=require",
            "host=a user=u sslmode=verify-full sslrootcert=/r.crt",
            "postgresql://u@a/db?sslmode=verify-full&sslrootcert=/r.crt&application_name=x",
            "postgresql://u@a/db?sslmode=verify-ca",
        ] {
            assert!(config_from(ci, &d).is_ok(), "{ci}");
        }
        assert_eq!(
            without_tls_keywords("postgresql://u@a/db?sslmode=verify-ca&sslcrl=/c&x=1"),
            "postgresql://u@a/db?x=1"
        );
        assert_eq!(
            without_tls_keywords("postgresql://u@a/db?sslmode=verify-ca"),
            "postgresql://u@a/db"
        );
    }
}
