//! SQL to the local instance over tokio-postgres, behind a small synchronous API.
//!
//! A current-thread runtime lives inside [`Session`]; callers never see async. Every connect
//! and query is bounded by the operation's deadline. Failures are classified by SQLSTATE and
//! I/O error kind, never by message text. When the agent runs as root and the system user is
//! not, the effective uid is switched around the connect so peer authentication on the Unix
//! socket sees the system user (PAF does the same with psql); and the socket's listener must
//! run as that user (`SO_PEERCRED`) before its answers count. Connections to other nodes use
//! TLS as their connection string's `ssl*` keywords say (`tls.rs`).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use nix::unistd::Uid;
use postgres_openssl::MakeTlsConnector;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, SimpleQueryMessage};

use super::tls::Connector;
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
    /// The socket is served by a process of another user than the server's: not PostgreSQL.
    #[error(
        "{target} is served by uid {uid} (pid {}), not by the server's uid {expected}: its \
         answers are not believed", pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    )]
    Impostor {
        target: String,
        uid: u32,
        pid: Option<i32>,
        expected: u32,
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

/// How a connection is made.
enum Link {
    /// A Unix socket whose listener must run as `owner`.
    Socket { path: PathBuf, owner: Uid },
    /// TCP (or a socket path inside the configuration), with TLS when a connector is given.
    Network(Option<MakeTlsConnector>),
}

impl Link {
    /// Connects and starts the connection's task on the current runtime. Called inside
    /// `block_on`, which every query goes through, so the task runs when it is needed.
    async fn connect(self, config: &Config, shown: &str) -> Result<Client, SqlError> {
        match self {
            Link::Socket { path, owner } => {
                let stream = UnixStream::connect(&path)
                    .await
                    .map_err(|e| io_connect_error(shown, &e))?;
                check_peer(&stream, owner, shown)?;
                spawned(config.connect_raw(stream, NoTls), shown).await
            }
            Link::Network(None) => spawned(config.connect(NoTls), shown).await,
            Link::Network(Some(tls)) => spawned(config.connect(tls), shown).await,
        }
    }
}

/// The client of a connection being made, its connection task spawned.
async fn spawned<C>(
    connecting: impl Future<Output = Result<(Client, C), tokio_postgres::Error>>,
    shown: &str,
) -> Result<Client, SqlError>
where
    C: Future + Send + 'static,
    C::Output: Send,
{
    let (client, connection) = connecting
        .await
        .map_err(|e| classify_connect_error(shown, &e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The process listening on `stream`'s other end (`SO_PEERCRED`: the credentials it had when
/// it called `listen`) must run as `owner`.
fn check_peer(stream: &UnixStream, owner: Uid, shown: &str) -> Result<(), SqlError> {
    let cred = stream.peer_cred().map_err(|e| SqlError::Connect {
        target: shown.to_owned(),
        code: None,
        message: format!("could not read the socket's peer credentials: {e}"),
    })?;
    if cred.uid() == owner.as_raw() {
        return Ok(());
    }
    Err(SqlError::Impostor {
        target: shown.to_owned(),
        uid: cred.uid(),
        pid: cred.pid(),
        expected: owner.as_raw(),
    })
}

impl Session {
    /// Connects to the local instance. On its Unix socket, the listening process must run as
    /// `as_user` (the system user; this process's user without one) before anything it says
    /// is believed: while PostgreSQL is down, any local user may bind the socket's path in a
    /// shared directory such as `/tmp` and answer "I am a primary".
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
        let link = if target.host.starts_with('/') {
            Link::Socket {
                path: target.to_string().into(),
                owner: as_user.map_or_else(nix::unistd::geteuid, |u| u.uid),
            }
        } else {
            Link::Network(None)
        };
        Session::establish(config, link, target.to_string(), as_user, deadline)
    }

    /// Connects with a prepared configuration (another server's, from a connection string),
    /// with TLS as `tls` says; `shown` names it in errors and must not hold a password.
    pub fn open(
        mut config: Config,
        tls: &Connector,
        shown: String,
        deadline: &Deadline,
    ) -> Result<Session, SqlError> {
        config.ssl_mode(tls.mode);
        Session::establish(
            config,
            Link::Network(tls.make.clone()),
            shown,
            None,
            deadline,
        )
    }

    fn establish(
        mut config: Config,
        link: Link,
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
            runtime.block_on(async {
                tokio::time::timeout(budget, link.connect(&config, &shown)).await
            })
        };
        let client = match connected {
            Err(_) => {
                return Err(SqlError::Timeout {
                    target: shown,
                    what: "a connection".into(),
                    after: budget,
                })
            }
            Ok(result) => result?,
        };
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

/// The server's own message when there is one, else the client's with its causes; a cause
/// already said by the one above it is not repeated (OpenSSL's chain says "certificate
/// verify failed" three times, once with the reason).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let said = s.to_string();
                if !text.contains(said.trim_end_matches(':')) {
                    text = format!("{text}: {said}");
                }
                source = s.source();
            }
            text
        }
    }
}

/// A socket connect that failed: nothing listens there, or something else went wrong.
fn io_connect_error(target: &str, e: &std::io::Error) -> SqlError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            SqlError::NoServer {
                target: target.to_owned(),
                message: e.to_string(),
            }
        }
        _ => SqlError::Connect {
            target: target.to_owned(),
            code: None,
            message: e.to_string(),
        },
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
