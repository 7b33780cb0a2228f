//! What state the local instance is in: the monitor's decision table, as a pure function.
//!
//! The inputs are what the agent can observe without a child process: the answer of a SQL
//! connection, the postmaster pid probe, the pg_control state and whether `backup_label`
//! exists. The table is PAF's (`paf.md` §2.4, §5.2–5.3) with two changes: transitional
//! situations are waited for within the operation's deadline instead of forever, and a
//! crashed standby is told apart from other failures so that start can recover it.

use super::control::DbState;
use super::postmaster::Postmaster;

/// What a SQL connection to the instance told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlProbe {
    /// Connected; `pg_is_in_recovery()` is false.
    Primary,
    /// Connected; `pg_is_in_recovery()` is true.
    Standby,
    /// The server answered "cannot connect now" (SQLSTATE 57P03).
    Rejecting(String),
    /// Nothing answers on the socket or port.
    NoServer,
    /// Any other failure (authentication, too many connections, a failed query).
    Failed(String),
    /// A process of another user than the server's answers on the socket: whatever it says
    /// is not the instance's state, so the pid file and pg_control decide.
    Impostor(String),
}

/// The monitor's conclusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Primary,
    Standby,
    /// Cleanly stopped (or a base backup never started).
    Stopped {
        /// pg_control said "shut down": a cleanly stopped primary.
        was_primary: bool,
    },
    /// pg_control says the instance ran as a primary, and no postmaster is running.
    CrashedPrimary(DbState),
    /// pg_control says "in archive recovery", and no postmaster is running.
    CrashedStandby,
    /// Starting, stopping or recovering: ask again shortly.
    Transitional(String),
    /// Running but unusable, or in a state the agent cannot explain.
    Broken(String),
}

/// Decides the state once SQL did not give a role. `control` is read by the caller only in
/// that case, so a healthy instance is never judged on its pg_control.
pub fn decide_offline(
    sql: &SqlProbe,
    postmaster: Postmaster,
    control: DbState,
    backup_label: bool,
) -> InstanceState {
    match (sql, postmaster) {
        (SqlProbe::Primary, _) => InstanceState::Primary,
        (SqlProbe::Standby, _) => InstanceState::Standby,
        (SqlProbe::Failed(why), _) => InstanceState::Broken(why.clone()),
        (SqlProbe::Rejecting(why), _) => InstanceState::Transitional(format!(
            "the instance rejects connections ({control}): {why}"
        )),
        (SqlProbe::NoServer, Postmaster::Running(pid)) => InstanceState::Transitional(format!(
            "postmaster {pid} is running but does not answer connections ({control})"
        )),
        (SqlProbe::NoServer | SqlProbe::Impostor(_), Postmaster::NotRunning) => {
            stopped_state(control, backup_label)
        }
        (SqlProbe::Impostor(why), Postmaster::Running(pid)) => {
            InstanceState::Broken(format!("postmaster {pid} is running, but {why}"))
        }
    }
}

/// No server process: what pg_control says happened to it.
fn stopped_state(control: DbState, backup_label: bool) -> InstanceState {
    // A base backup's pg_control still says "in production" until its first start.
    if backup_label {
        return InstanceState::Stopped { was_primary: false };
    }
    match control {
        DbState::ShutDown => InstanceState::Stopped { was_primary: true },
        DbState::ShutDownInRecovery => InstanceState::Stopped { was_primary: false },
        DbState::InProduction | DbState::InCrashRecovery | DbState::ShuttingDown => {
            InstanceState::CrashedPrimary(control)
        }
        DbState::InArchiveRecovery => InstanceState::CrashedStandby,
        DbState::Startup => InstanceState::Broken(format!(
            "pg_control says {control:?} but no postmaster runs"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DbState::*;
    use InstanceState as S;
    use Postmaster::{NotRunning as Down, Running};
    use SqlProbe::*;

    macro_rules! decides {
        ($name:ident, $sql:expr, $pm:expr, $ctl:expr, $label:expr => $want:pat) => {
            #[test]
            fn $name() {
                let got = decide_offline(&$sql, $pm, $ctl, $label);
                assert!(matches!(got, $want), "got {got:?}");
            }
        };
    }

    decides!(running_primary, Primary, Running(1), InProduction, false => S::Primary);
    decides!(running_standby, Standby, Running(1), InArchiveRecovery, false => S::Standby);
    decides!(clean_primary_stop, NoServer, Down, ShutDown, false => S::Stopped { was_primary: true });
    decides!(clean_standby_stop, NoServer, Down, ShutDownInRecovery, false => S::Stopped { was_primary: false });
    decides!(fresh_base_backup, NoServer, Down, InProduction, true => S::Stopped { was_primary: false });
    decides!(crashed_primary, NoServer, Down, InProduction, false => S::CrashedPrimary(InProduction));
    decides!(crash_during_crash_recovery, NoServer, Down, InCrashRecovery, false => S::CrashedPrimary(_));
    decides!(crash_during_shutdown_checkpoint, NoServer, Down, ShuttingDown, false => S::CrashedPrimary(_));
    decides!(crashed_standby, NoServer, Down, InArchiveRecovery, false => S::CrashedStandby);
    decides!(starting_up, Rejecting("starting up".into()), Running(1), InArchiveRecovery, false => S::Transitional(_));
    decides!(shutting_down, Rejecting("shutting down".into()), Running(1), InProduction, false => S::Transitional(_));
    decides!(alive_but_deaf, NoServer, Running(42), InArchiveRecovery, false => S::Transitional(_));
    decides!(auth_failure, Failed("password authentication failed".into()), Running(1), InProduction, false => S::Broken(_));
    decides!(startup_without_postmaster, NoServer, Down, Startup, false => S::Broken(_));
    // Finding 7: a socket served by another user while PostgreSQL is down is not a server.
    decides!(finding_7_impostor_socket_with_postmaster_down_is_stopped, Impostor("uid 65534".into()), Down, ShutDown, false => S::Stopped { was_primary: true });
    decides!(finding_7_impostor_socket_beside_a_postmaster_is_broken, Impostor("uid 65534".into()), Running(1), InProduction, false => S::Broken(_));
}
