//! SQL to the local instance over tokio-postgres, behind a small synchronous API.
//!
//! A current-thread runtime lives inside [`Session`]; callers never see async. Every connect
//! and query is bounded by the operation's deadline. Failures are classified by SQLSTATE and
//! I/O error kind, never by message text. When the agent runs as root and the system user is
//! not, the effective uid is switched around the connect so peer authentication on the Unix
//! socket sees the system user (PAF does the same with psql).

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, SimpleQueryMessage};

use crate::deadline::Deadline;
use crate::process::RunAs;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A socket directory (starts with `/`) or a host address.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.starts_with('/') {
            write!(
                f,
                "{}/.s.PGSQL.{}",
                self.host.trim_end_matches('/'),
                self.port
            )
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Nothing answers at the address: the server is not running (or listens elsewhere).
    #[error("no server answers on {target}: {message}")]
    NoServer { target: String, message: String },
    /// The server answered but does not accept connections yet (or any more): starting up,
    /// shutting down, recovering, or a standby without hot_standby.
    #[error("{target} rejects connections: {message}")]
    Rejected { target: String, message: String },
    #[error("could not connect to {target}: {message}")]
    Connect {
        target: String,
        code: Option<String>,
        message: String,
    },
    #[error("gave up after {after:?} waiting for {what} on {target}")]
    Timeout {
        target: String,
        what: String,
        after: Duration,
    },
    #[error("query {query:?} failed: {message}")]
    Query {
        query: String,
        code: Option<String>,
        message: String,
    },
    #[error("could not start the SQL client runtime: {0}")]
    Runtime(std::io::Error),
}

/// One open connection.
#[derive(Debug)]
pub struct Session {
    runtime: Runtime,
    client: Client,
    target: String,
}

/// The smallest budget given to a connect, even when the deadline is nearly spent.
const MIN_CONNECT: Duration = Duration::from_millis(500);
/// Connects without a timeout of their own never take longer than this: a local server
/// answers in milliseconds.
const MAX_CONNECT: Duration = Duration::from_secs(5);

impl Session {
    /// Connects to the local instance.
    pub fn connect(
        target: &Target,
        as_user: Option<&RunAs>,
        deadline: &Deadline,
    ) -> Result<Session, SqlError> {
        let mut config = Config::new();
        if target.host.starts_with('/') {
            config.host_path(&target.host);
        } else {
            config.host(&target.host);
        }
        config
            .port(target.port)
            .user(&target.user)
            .dbname(&target.dbname)
            .application_name("pgha");
        Session::open(config, target.to_string(), as_user, deadline)
    }

    /// Connects with a prepared configuration (another server's, from a connection string);
    /// `shown` names it in errors and must not hold a password.
    pub fn open(
        mut config: Config,
        shown: String,
        as_user: Option<&RunAs>,
        deadline: &Deadline,
    ) -> Result<Session, SqlError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SqlError::Runtime)?;
        // The configuration's own connect timeout, within what the deadline leaves.
        let wanted = config.get_connect_timeout().copied().unwrap_or(MAX_CONNECT);
        let budget = wanted.min(deadline.remaining()).max(MIN_CONNECT);
        config.connect_timeout(budget);
        let connected = {
            let _euid = as_user.and_then(EffectiveUser::switch);
            runtime.block_on(async { tokio::time::timeout(budget, config.connect(NoTls)).await })
        };
        let (client, connection) = match connected {
            Err(_) => {
                return Err(SqlError::Timeout {
                    target: shown,
                    what: "a connection".into(),
                    after: budget,
                })
            }
            Ok(Err(e)) => return Err(classify_connect_error(&shown, &e)),
            Ok(Ok(pair)) => pair,
        };
        // The connection task only runs inside block_on, which every query goes through.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Session {
            runtime,
            client,
            target: shown,
        })
    }

    /// The server closed the connection (it stopped or restarted).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs one statement and returns its rows.
    pub fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        deadline: &Deadline,
    ) -> Result<Vec<Row>, SqlError> {
        self.bounded(sql, deadline, self.client.query(sql, params))
    }

    /// Runs statements that return nothing (e.g. `CHECKPOINT`).
    pub fn execute(&self, sql: &str, deadline: &Deadline) -> Result<(), SqlError> {
        self.bounded(sql, deadline, self.client.batch_execute(sql))
    }

    /// Runs a statement with the simple protocol (one round trip, no prepare) and returns
    /// its rows as text, as psql would print them; `None` is SQL NULL.
    pub fn text_rows(
        &self,
        sql: &str,
        deadline: &Deadline,
    ) -> Result<Vec<Vec<Option<String>>>, SqlError> {
        let messages = self.bounded(sql, deadline, self.client.simple_query(sql))?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Whether the server is in recovery, and its WAL receiver's status (`streaming`,
    /// `waiting`, …; `None` without one), in one round trip: a monitor's whole SQL. The
    /// function is called directly rather than through the `pg_stat_wal_receiver` view, which
    /// would cost a fresh backend a view expansion.
    pub fn recovery_status(&self, deadline: &Deadline) -> Result<(bool, Option<String>), SqlError> {
        const SQL: &str =
            "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_get_wal_receiver())";
        let rows = self.text_rows(SQL, deadline)?;
        let row = rows.first();
        let field = |i: usize| row.and_then(|r| r.get(i)).cloned().flatten();
        match field(0).as_deref() {
            Some("t") => Ok((true, field(1))),
            Some("f") => Ok((false, field(1))),
            other => Err(SqlError::Query {
                query: SQL.into(),
                code: None,
                message: format!("unexpected answer {other:?}"),
            }),
        }
    }

    fn bounded<T>(
        &self,
        sql: &str,
        deadline: &Deadline,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SqlError> {
        let budget = deadline.remaining().max(MIN_CONNECT);
        match self
            .runtime
            .block_on(async { tokio::time::timeout(budget, fut).await })
        {
            Err(_) => Err(SqlError::Timeout {
                target: self.target.clone(),
                what: format!("{sql:?}"),
                after: budget,
            }),
            Ok(Err(e)) => Err(query_error(sql, &e)),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

fn query_error(sql: &str, e: &tokio_postgres::Error) -> SqlError {
    SqlError::Query {
        query: sql.to_owned(),
        code: e.code().map(|c| c.code().to_owned()),
        message: describe(e),
    }
}

/// The server's own message when there is one, else the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

fn classify_connect_error(target: &str, e: &tokio_postgres::Error) -> SqlError {
    let message = describe(e);
    if e.code() == Some(&SqlState::CANNOT_CONNECT_NOW) {
        return SqlError::Rejected {
            target: target.to_owned(),
            message,
        };
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) {
                return SqlError::NoServer {
                    target: target.to_owned(),
                    message,
                };
            }
        }
        source = s.source();
    }
    SqlError::Connect {
        target: target.to_owned(),
        code: e.code().map(|c| c.code().to_owned()),
        message,
    }
}

/// Runs the enclosing scope with the effective uid of the system user; restores root on drop.
struct EffectiveUser;

impl EffectiveUser {
    fn switch(user: &RunAs) -> Option<EffectiveUser> {
        if !user.needs_switch() {
            return None;
        }
        nix::unistd::seteuid(user.uid).ok().map(|()| EffectiveUser)
    }
}

impl Drop for EffectiveUser {
    fn drop(&mut self) {
        // Our real uid is root, so this cannot be refused.
        let _ = nix::unistd::seteuid(nix::unistd::Uid::from_raw(0));
    }
}
