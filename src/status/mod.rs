//! `pgha status`: the cluster at a glance, from any node, as root or as a member of
//! `haclient`.
//!
//! Split by what each part may do: [`collect`] does the I/O (crm_mon, the CIB's resources,
//! the local instance over SQL, the local rewind marker and kept folders; each within
//! `--timeout`, and named when it does not answer); [`crm`] reads Pacemaker's XML;
//! [`model`] and [`events`] build the view (pure); [`render`] prints it as a screen, JSON
//! (`docs/status.md`) or Prometheus' text format. Nothing but the crate root imports it.

pub mod collect;
pub mod crm;
pub mod events;
pub mod model;
pub mod render;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{StatusArgs, StatusFormat};

/// Prints the status once, or every `--watch` seconds until interrupted. Exit code 0 when
/// crm_mon answered (a source that did not is named in the output), 1 when it did not.
pub fn run(args: &StatusArgs) -> ExitCode {
    let request = collect::Request {
        resource: args.resource.as_deref(),
        vip: args.vip.as_deref(),
        timeout: Duration::from_secs(args.timeout),
    };
    loop {
        let inputs = collect::collect(&request);
        let answered = inputs.mon.is_some();
        let status = model::build(&inputs);
        let text = match args.format() {
            StatusFormat::Text => render::text(&status),
            StatusFormat::Json => render::json(&status),
            StatusFormat::Prometheus => render::prometheus(&status),
        };
        let mut out = std::io::stdout().lock();
        let clear = if args.watch.is_some() && args.format() == StatusFormat::Text {
            "\x1b[H\x1b[2J"
        } else {
            ""
        };
        if write!(out, "{clear}{text}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        match args.watch {
            Some(every) => std::thread::sleep(Duration::from_secs(every)),
            None if answered => return ExitCode::SUCCESS,
            None => return ExitCode::FAILURE,
        }
    }
}

#[cfg(test)]
mod tests;
