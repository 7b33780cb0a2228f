//! Bringing a diverged former primary back as a standby, by itself and safely.
//!
//! PAF refuses to start a primary that diverged from the new one (PAF #212, "quite scary"):
//! the operator has to rewind or re-clone it by hand. pgha does it: it decides whether the
//! node diverged, prepares the source, runs PostgreSQL's own `pg_rewind` (of the data
//! directory's major version), keeps the node's own configuration, and leaves the data
//! directory stopped and configured as a standby. It never lets a half-rewound directory
//! start: a marker next to it says a rewind is under way, and the start action refuses a
//! marked directory ([`ensure_startable`]).
//!
//! The API the actions and `pgha rewind` use: [`check`] (read-only) and [`rejoin`](fn@rejoin)
//! (`rejoin.rs`, each a short sequence of the steps below), with [`preflight`](fn@preflight) and
//! [`ensure_startable`] (`preflight.rs`) for validate-all and start. Its inputs are plain
//! data (`settings.rs`); everything that stops it is a [`RewindError`] (`error.rs`).
//!
//! Split by what each part may do (STYLE.md):
//! - deciding, pure: [`decision`] (facts in, verdict out) and `plan.rs` (verdict, marker and
//!   settings in, [`Plan`] out);
//! - reading: `facts.rs` gathers both sides and the costs, through [`target`] and
//!   [`source`];
//! - executing: `job.rs` (a rejoin's steps: crash recovery, the kept WAL, the marker,
//!   pg_rewind, the standby settings) and `reclone.rs` (a re-clone, swapped in by
//!   [`swap`]); [`runner`] is the only code that runs what changes the data directory
//!   (pg_rewind, pg_basebackup, single-user crash recovery), [`marker`] guards it,
//!   [`forensics`] and [`kept`] keep the discarded WAL, and [`config`] the node's
//!   configuration;
//! - [`command`]: `pgha rewind` and `pgha kept`, on top.
//!
//! Facts and traps come from pgha's pg_rewind notes (`rewind.md`), and the design decision
//! there (§12): call the binary; native code only for the read-only parts.

pub mod command;
pub mod config;
pub mod decision;
mod error;
mod facts;
pub mod forensics;
mod job;
pub mod kept;
pub mod marker;
mod plan;
mod preflight;
mod reclone;
mod rejoin;
pub mod runner;
mod settings;
pub mod source;
pub mod swap;
pub mod target;

pub use decision::{CostEstimate, Decision, Refusal};
pub use error::RewindError;
pub use marker::is_marked;
pub use plan::{plan, Check, Plan};
pub use preflight::{ensure_startable, preflight};
pub use rejoin::{check, rejoin, Outcome, RejoinReport};
pub use settings::{Fallback, RewindSettings, Source, SourceConninfo};
