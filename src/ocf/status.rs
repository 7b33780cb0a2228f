//! OCF exit codes (OCF 1.1 "Exit Status Codes", Pacemaker's `results.h`), with their 1.1
//! names and the legacy names PAF and the shell library use.

use std::fmt;
use std::process::ExitCode;

/// What an agent run ends with. The numeric values are the contract with Pacemaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcfStatus {
    Success,
    ErrGeneric,
    ErrArgs,
    ErrUnimplemented,
    ErrPerm,
    ErrInstalled,
    ErrConfigured,
    NotRunning,
    RunningPromoted,
    FailedPromoted,
    Degraded,
    DegradedPromoted,
}

impl OcfStatus {
    pub const ALL: [OcfStatus; 12] = [
        OcfStatus::Success,
        OcfStatus::ErrGeneric,
        OcfStatus::ErrArgs,
        OcfStatus::ErrUnimplemented,
        OcfStatus::ErrPerm,
        OcfStatus::ErrInstalled,
        OcfStatus::ErrConfigured,
        OcfStatus::NotRunning,
        OcfStatus::RunningPromoted,
        OcfStatus::FailedPromoted,
        OcfStatus::Degraded,
        OcfStatus::DegradedPromoted,
    ];

    pub fn code(self) -> u8 {
        match self {
            OcfStatus::Success => 0,
            OcfStatus::ErrGeneric => 1,
            OcfStatus::ErrArgs => 2,
            OcfStatus::ErrUnimplemented => 3,
            OcfStatus::ErrPerm => 4,
            OcfStatus::ErrInstalled => 5,
            OcfStatus::ErrConfigured => 6,
            OcfStatus::NotRunning => 7,
            OcfStatus::RunningPromoted => 8,
            OcfStatus::FailedPromoted => 9,
            OcfStatus::Degraded => 190,
            OcfStatus::DegradedPromoted => 191,
        }
    }

    /// The OCF 1.1 name.
    pub fn name(self) -> &'static str {
        match self {
            OcfStatus::Success => "OCF_SUCCESS",
            OcfStatus::ErrGeneric => "OCF_ERR_GENERIC",
            OcfStatus::ErrArgs => "OCF_ERR_ARGS",
            OcfStatus::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfStatus::ErrPerm => "OCF_ERR_PERM",
            OcfStatus::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfStatus::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfStatus::NotRunning => "OCF_NOT_RUNNING",
            OcfStatus::RunningPromoted => "OCF_RUNNING_PROMOTED",
            OcfStatus::FailedPromoted => "OCF_FAILED_PROMOTED",
            OcfStatus::Degraded => "OCF_DEGRADED",
            OcfStatus::DegradedPromoted => "OCF_DEGRADED_PROMOTED",
        }
    }

    /// The pre-1.1 name where it differs (PAF's `OCF_ReturnCodes.pm`, `ocf-returncodes`).
    pub fn legacy_name(self) -> &'static str {
        match self {
            OcfStatus::RunningPromoted => "OCF_RUNNING_MASTER",
            OcfStatus::FailedPromoted => "OCF_FAILED_MASTER",
            OcfStatus::DegradedPromoted => "OCF_DEGRADED_MASTER",
            other => other.name(),
        }
    }
}

impl fmt::Display for OcfStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl From<OcfStatus> for ExitCode {
    fn from(status: OcfStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_ocf_contract() {
        let codes: Vec<u8> = OcfStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191]);
    }

    #[test]
    fn legacy_names_for_promoted_codes() {
        assert_eq!(
            OcfStatus::RunningPromoted.legacy_name(),
            "OCF_RUNNING_MASTER"
        );
        assert_eq!(OcfStatus::FailedPromoted.legacy_name(), "OCF_FAILED_MASTER");
        assert_eq!(OcfStatus::NotRunning.legacy_name(), "OCF_NOT_RUNNING");
        assert_eq!(OcfStatus::RunningPromoted.name(), "OCF_RUNNING_PROMOTED");
    }

    #[test]
    fn display_shows_name_and_code() {
        assert_eq!(OcfStatus::NotRunning.to_string(), "OCF_NOT_RUNNING (7)");
    }
}
