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
//! - deciding, pure: [`decision`] (facts in, verdict out), [`engine`] (which engine
//!   rewinds: pg_rewind, or the native one where it is proven, runs and is cheaper) and
//!   `plan.rs` (verdict, marker and settings in, [`Plan`] out);
//! - reading: `facts.rs` gathers both sides and the costs, through [`target`] and
//!   [`source`], and [`changes`]: the blocks the target changed past the last common
//!   checkpoint, from its WAL by pg_rewind's rules, and [`filemap`] / [`listing`]: what
//!   the native engine moves;
//! - executing: `job.rs` (a rejoin's steps: crash recovery, the kept WAL, the marker,
//!   pg_rewind or `native.rs`, the standby settings) and `reclone.rs` (a re-clone, swapped
//!   in by [`swap`]); [`runner`] runs the tools that change the data directory (pg_rewind,
//!   pg_basebackup, single-user crash recovery), `native.rs` is pgha's own rewind engine
//!   (`rewind_engine`), [`marker`] guards both,
//!   [`forensics`] and [`kept`] keep the discarded WAL, and [`config`] the node's
//!   configuration;
//! - [`command`]: `pgha rewind` and `pgha kept`, on top.
//!
//! Facts and traps come from pgha's pg_rewind notes (`rewind.md`), and the design decision
//! there (§12): call the binary by default; the native engine (issue 14) is asked for by
//! `rewind_engine` and hands over to pg_rewind wherever it is not proven.

pub mod changes;
pub mod command;
pub mod config;
pub mod decision;
pub mod engine;
mod error;
mod facts;
pub mod filemap;
pub mod forensics;
mod job;
pub mod kept;
pub mod listing;
pub mod major;
pub mod marker;
mod native;
mod plan;
mod preflight;
mod reclone;
mod rejoin;
pub mod replay;
pub mod runner;
mod settings;
pub mod source;
pub mod swap;
pub mod target;
mod view;

pub use decision::{CostEstimate, Decision, Refusal};
pub use engine::EngineChoice;
pub use error::RewindError;
pub use marker::is_marked;
pub use plan::{plan, Check, Plan};
pub use preflight::{ensure_startable, ensure_supported, preflight};
pub use rejoin::{check, check_in_full, rejoin, Outcome, RejoinReport};
pub use settings::{Engine, Fallback, RewindSettings, Source, SourceConninfo};
pub use view::NativeView;
