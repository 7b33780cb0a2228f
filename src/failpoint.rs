//! Named points where the agent can be made to die at once, as if Pacemaker had SIGKILLed it
//! there: how the tests prove that every step of a rewind or a re-clone can be interrupted
//! and repaired (the idea of PostgreSQL's injection points and FreeBSD's fail points).
//!
//! `PGHA_FAILPOINT=<name>` in the environment makes [`hit`] abort the process (no
//! destructor, no cleanup) at the point of that name; anything else costs one environment
//! lookup. Only root's environment (Pacemaker, or the operator) sets it.

/// Aborts the process when `PGHA_FAILPOINT` names this point.
pub fn hit(name: &str) {
    if std::env::var_os("PGHA_FAILPOINT").is_some_and(|v| v == name) {
        log::warn!("failpoint {name}: dying here, as a kill would");
        std::process::abort();
    }
}
