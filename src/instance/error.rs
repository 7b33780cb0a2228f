//! What can go wrong with the local instance: its error type, for every `Instance` method.
//!
//! The variants say what kind of failure it is (this node's setup, missing software, the
//! server's state, a tool, SQL, a wait), not what Pacemaker should do about it: the actions
//! decide that (`actions::error`), and `pgha rewind` prints it.

use crate::deadline::Expired;
use crate::process::{ToolError, UserError};

use super::control::ControlError;
use super::sql::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something on this node does not fit the configuration (a missing directory, an
    /// unreadable `PG_VERSION`, missing binaries): a problem of this node only.
    #[error("{0}")]
    LocalSetup(String),
    /// Software this node needs is missing (a PostgreSQL major pgha does not support).
    #[error("{0}")]
    NotInstalled(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Expired(#[from] Expired),
    /// The server answered, but not as asked.
    #[error("{0}")]
    State(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A bug: reported instead of a panic.
    #[error("internal error (a bug in pgha): {0}")]
    Internal(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
