//! [`RewindError`]: everything that can stop a rewind, in the rewind's own terms.
//!
//! The rewind's floor owns it; the actions turn it into an OCF code (`actions::error`) and
//! `pgha rewind` into an exit code (`rewind::command`). The parts below it (`ControlError`,
//! `ToolError`, a deadline's [`Expired`]) come in whole, so their messages stay theirs.

use std::path::PathBuf;

use super::decision::HistoryError;
use super::runner::RewindFailure;
use crate::deadline::Expired;
use crate::instance::control::{ControlError, DbState};
use crate::process::ToolError;

/// Everything that can stop a rewind.
#[derive(Debug, thiserror::Error)]
pub enum RewindError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("rewind source {source_conninfo}: {what}")]
    Source {
        source_conninfo: String,
        what: String,
    },
    #[error("query {query:?} on the rewind source failed: {message}")]
    SourceQuery {
        query: String,
        code: Option<String>,
        message: String,
    },
    /// A wait ran out (a checkpoint on the source, the copy of the discarded WAL).
    #[error(transparent)]
    Expired(#[from] Expired),
    #[error("a postmaster runs for \"{0}\": a rewind needs it stopped")]
    Running(PathBuf),
    #[error("\"{datadir}\" stopped uncleanly (pg_control: \"{state}\") and crash recovery is off")]
    Unclean { datadir: PathBuf, state: DbState },
    #[error("cannot bring \"{datadir}\" back: {why}")]
    Refused { datadir: PathBuf, why: String },
    #[error(
        "\"{datadir}\" must not be started: a {operation} started at {started} did not finish \
         (marker {marker}); the next rejoin repairs it"
    )]
    Marked {
        datadir: PathBuf,
        marker: PathBuf,
        operation: String,
        started: String,
    },
    #[error(transparent)]
    RewindFailed(Box<RewindFailure>),
    /// The native engine stopped after the marker was written: the data directory may be
    /// half rewound.
    #[error(
        "the native rewind engine failed (the target may have been modified; it stays \
         marked until repaired): {0}"
    )]
    NativeFailed(Box<RewindError>),
    /// A setting the pg_rewind of this major does not take: refused before anything
    /// changes.
    #[error(
        "pg_rewind of PostgreSQL {major} has no {option} (PostgreSQL {since} and later): \
         nothing was changed"
    )]
    Unsupported {
        option: String,
        major: u32,
        since: u32,
    },
}

impl From<Box<RewindFailure>> for RewindError {
    fn from(f: Box<RewindFailure>) -> RewindError {
        RewindError::RewindFailed(f)
    }
}

impl RewindError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> RewindError {
        RewindError::Io {
            context: context.into(),
            source,
        }
    }

    /// A setting this major's pg_rewind does not take: wrong for the whole cluster, not
    /// for this attempt.
    pub fn is_unsupported_setting(&self) -> bool {
        matches!(self, RewindError::Unsupported { .. })
    }

    /// The data directory may be half rewound: it must not be started until repaired.
    pub fn target_modified(&self) -> bool {
        matches!(
            self,
            RewindError::Marked { .. } | RewindError::NativeFailed(_)
        ) || matches!(self, RewindError::RewindFailed(f) if f.touched)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A deadline's expiry reads as `Timeout { what, waited }` did before it became
    /// [`Expired`]: the same words in the log and in `ocf-exit-reason`.
    #[test]
    fn an_expired_wait_keeps_its_message() {
        let e = RewindError::from(Expired {
            what: "a checkpoint on the source's timeline 2".into(),
            waited: Duration::from_millis(1500),
        });
        assert_eq!(
            e.to_string(),
            "gave up after 1.5s waiting for a checkpoint on the source's timeline 2"
        );
        assert!(!e.target_modified());
    }

    /// The native engine's failure is its own error, not a made-up tool's exit: its words
    /// stay, and the directory counts as modified.
    #[test]
    fn a_native_engine_failure_keeps_its_error_and_marks_the_target_modified() {
        let inner = RewindError::io(
            "could not write base/5/16384",
            std::io::Error::other("No space left on device"),
        );
        let e = RewindError::NativeFailed(Box::new(inner));
        assert!(e.target_modified());
        assert!(!e.is_unsupported_setting());
        assert_eq!(
            e.to_string(),
            "the native rewind engine failed (the target may have been modified; it stays \
             marked until repaired): could not write base/5/16384: No space left on device"
        );
    }
}
