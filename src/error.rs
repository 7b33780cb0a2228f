//! The agent's error type, and the only place an error becomes an OCF exit code.

use std::time::Duration;

use crate::instance::control::ControlError;
use crate::instance::sql::SqlError;
use crate::ocf::params::ParamError;
use crate::ocf::status::OcfStatus;
use crate::pacemaker::ClusterError;
use crate::process::{ToolError, UserError};
use crate::rewind::RewindError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is wrong on every node.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The resource is configured wrongly for every node (meta attributes, clone setup).
    #[error("{0}")]
    Misconfigured(String),
    /// Something on this node does not fit the configuration (a missing directory, a
    /// setting of this instance): Pacemaker bans the resource from this node only.
    #[error("{0}")]
    LocalSetup(String),
    /// Software this node needs is missing.
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
    Cluster(#[from] ClusterError),
    /// Bringing a diverged node back failed or was refused (`RewindError::target_modified`
    /// tells whether the data directory may be half rewound).
    #[error(transparent)]
    Rewind(Box<RewindError>),
    #[error("gave up after {waited:.1?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    /// The instance is not in a state this action can work from.
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

impl From<RewindError> for Error {
    fn from(e: RewindError) -> Error {
        Error::Rewind(Box::new(e))
    }
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The OCF code this error ends an action with.
    pub fn ocf_status(&self) -> OcfStatus {
        match self {
            Error::Param(_) | Error::Misconfigured(_) => OcfStatus::ErrConfigured,
            Error::LocalSetup(_) | Error::User(_) => OcfStatus::ErrArgs,
            Error::NotInstalled(_) => OcfStatus::ErrInstalled,
            Error::Control(e) if e.is_missing() => OcfStatus::ErrArgs,
            Error::Control(_)
            | Error::Tool(_)
            | Error::Sql(_)
            | Error::Cluster(_)
            | Error::Rewind(_)
            | Error::Timeout { .. }
            | Error::State(_)
            | Error::Io { .. }
            | Error::Internal(_) => OcfStatus::ErrGeneric,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_are_fatal_and_local_ones_ban_the_node() {
        let param = ParamError {
            name: "pgport",
            value: "x".into(),
            why: "",
        };
        assert_eq!(Error::from(param).ocf_status(), OcfStatus::ErrConfigured);
        assert_eq!(
            Error::Misconfigured(String::new()).ocf_status(),
            OcfStatus::ErrConfigured
        );
        assert_eq!(
            Error::LocalSetup(String::new()).ocf_status(),
            OcfStatus::ErrArgs
        );
        assert_eq!(
            Error::NotInstalled(String::new()).ocf_status(),
            OcfStatus::ErrInstalled
        );
        assert_eq!(
            Error::from(UserError::Unknown("nobody2".into())).ocf_status(),
            OcfStatus::ErrArgs
        );
    }

    #[test]
    fn runtime_failures_are_generic() {
        let timeout = Error::Timeout {
            what: "x".into(),
            waited: Duration::ZERO,
        };
        assert_eq!(timeout.ocf_status(), OcfStatus::ErrGeneric);
        assert_eq!(
            Error::State(String::new()).ocf_status(),
            OcfStatus::ErrGeneric
        );
        assert_eq!(
            Error::Internal(String::new()).ocf_status(),
            OcfStatus::ErrGeneric
        );
    }
}
