//! Pacemaker's OCF contract, with no PostgreSQL knowledge: exit codes, the environment,
//! parameters, meta-data and logging.

pub mod env;
pub mod log;
pub mod metadata;
pub mod notify;
pub mod params;
pub mod status;
