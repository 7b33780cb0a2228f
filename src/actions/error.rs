//! The actions' error type, and the only place an error becomes an OCF exit code.
//!
//! It sits at the top, where every layer's errors arrive (`instance`, `pacemaker`,
//! `rewind`, `deadline`): each layer reports what went wrong in its own terms, and only
//! here is it decided what Pacemaker makes of it. `pgha rewind` and `pgha kept` map their
//! errors to exit codes themselves (`rewind::command`, `lib.rs`).

use crate::deadline::Expired;
use crate::instance::control::ControlError;
use crate::instance::sql::SqlError;
use crate::instance::Error as InstanceError;
use crate::ocf::params::ParamError;
use crate::ocf::status::OcfStatus;
use crate::pacemaker::ClusterError;
use crate::rewind::RewindError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is wrong on every node.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The resource is configured wrongly for every node (meta attributes, clone setup).
    #[error("{0}")]
    Misconfigured(String),
    /// Something on this node does not fit the configuration (a setting of this instance):
    /// Pacemaker bans the resource from this node only.
    #[error("{0}")]
    LocalSetup(String),
    /// The local instance (its setup, pg_control, SQL, `pg_ctl`): [`ocf_status`] reads
    /// its kind.
    ///
    /// [`ocf_status`]: Error::ocf_status
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Bringing a diverged node back failed or was refused (`RewindError::target_modified`
    /// tells whether the data directory may be half rewound).
    #[error(transparent)]
    Rewind(Box<RewindError>),
    #[error(transparent)]
    Expired(#[from] Expired),
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

/// What the actions get from `Instance` methods that answer with a part's own error
/// (`control()`, `connect()`, a session's query) is an instance error like the others, so
/// that [`Error::ocf_status`] reads it in one place.
impl From<ControlError> for Error {
    fn from(e: ControlError) -> Error {
        Error::Instance(e.into())
    }
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Error {
        Error::Instance(e.into())
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
            Error::Rewind(e) if e.is_unsupported_setting() => OcfStatus::ErrConfigured,
            Error::LocalSetup(_) => OcfStatus::ErrArgs,
            Error::Instance(e) => instance_status(e),
            Error::Cluster(_)
            | Error::Rewind(_)
            | Error::Expired(_)
            | Error::State(_)
            | Error::Io { .. }
            | Error::Internal(_) => OcfStatus::ErrGeneric,
        }
    }
}

/// A problem of this node's setup bans the resource from it (a missing pg_control too: the
/// data directory is not one), missing software says so, and the rest is generic.
fn instance_status(e: &InstanceError) -> OcfStatus {
    match e {
        InstanceError::LocalSetup(_) | InstanceError::User(_) => OcfStatus::ErrArgs,
        InstanceError::NotInstalled(_) => OcfStatus::ErrInstalled,
        InstanceError::Control(c) if c.is_missing() => OcfStatus::ErrArgs,
        // Another major's data directory: "not installed" bans the resource from this node
        // (a probe says it cannot run here) instead of a failure Pacemaker would recover by
        // stopping it, and fencing the node when that stop fails too.
        InstanceError::Control(c) if c.is_unknown_version() => OcfStatus::ErrInstalled,
        InstanceError::Control(_)
        | InstanceError::Tool(_)
        | InstanceError::Sql(_)
        | InstanceError::Expired(_)
        | InstanceError::State(_)
        | InstanceError::Io { .. }
        | InstanceError::Internal(_) => OcfStatus::ErrGeneric,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::process::UserError;

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
            Error::from(InstanceError::LocalSetup(String::new())).ocf_status(),
            OcfStatus::ErrArgs
        );
        assert_eq!(
            Error::from(InstanceError::NotInstalled(String::new())).ocf_status(),
            OcfStatus::ErrInstalled
        );
        assert_eq!(
            Error::from(InstanceError::from(UserError::Unknown("nobody2".into()))).ocf_status(),
            OcfStatus::ErrArgs
        );
        // A pg_rewind option the cluster's major lacks is the resource's configuration; a
        // refused rewind otherwise fails this attempt only.
        let unsupported = RewindError::Unsupported {
            option: "--sync-method=syncfs".into(),
            major: 15,
            since: 17,
        };
        assert_eq!(
            Error::from(unsupported).ocf_status(),
            OcfStatus::ErrConfigured
        );
        let refused = RewindError::Refused {
            datadir: PathBuf::from("/d"),
            why: String::new(),
        };
        assert_eq!(Error::from(refused).ocf_status(), OcfStatus::ErrGeneric);
    }

    #[test]
    fn a_missing_pg_control_bans_the_node_and_an_unreadable_one_is_generic() {
        let path = PathBuf::from("/nowhere/global/pg_control");
        let missing = ControlError::Missing { path: path.clone() };
        assert_eq!(Error::from(missing).ocf_status(), OcfStatus::ErrArgs);
        let unreadable = ControlError::Io {
            path,
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(Error::from(unreadable).ocf_status(), OcfStatus::ErrGeneric);
    }

    #[test]
    fn runtime_failures_are_generic() {
        let timeout = Expired {
            what: "x".into(),
            waited: Duration::ZERO,
        };
        assert_eq!(
            Error::from(timeout.clone()).ocf_status(),
            OcfStatus::ErrGeneric
        );
        assert_eq!(
            Error::from(InstanceError::from(timeout)).ocf_status(),
            OcfStatus::ErrGeneric
        );
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
