//! The integration test binary: the real `pgha` executable, run with OCF environments
//! against real PostgreSQL instances in temporary directories (STYLE.md practice 12): the
//! host's 15, or the major whose bindir `PGHA_TEST_BINDIR` names (`make test-majors`).
//!
//! What lives where:
//! - `pg`: the PostgreSQL fixture (instances, crashes, snapshots of a data directory);
//! - `fake`: stand-ins for the Pacemaker tools the agent calls through `HA_SBIN_DIR`;
//! - `agent`: the `#[must_use]` builder that runs the agent and checks how it ended;
//! - one module per area of behaviour, each test named after what it proves
//!   (`paf_NNN_…` where a PAF issue is the reason for it).
//!
//! Prerequisites (root, the `postgres` user, PostgreSQL 15 in `/usr/lib/postgresql/15/bin`
//! or a full bindir in `PGHA_TEST_BINDIR`, xmllint, pcs) are asserted, never skipped: a
//! test that cannot run fails and says why.
//! Every fixture has its own directory and ports, so tests run in parallel threads.

// Tests fail by panicking; the crate-wide lints against it are for the agent's code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod fake;
mod pg;

mod actions;
mod layers;
mod monitor;
mod package;
mod rewind;
mod roles;
mod security;
mod start_stop;
mod status;
mod validate;
mod wal;
