//! promote: check the election, then promote, waiting until writes are accepted.
//!
//! The election (`paf.md` §4.5): the designated node compares its WAL position with every
//! candidate's, as published in pre-promote. If another is strictly ahead, it gives that node
//! the best score, lowers its own, and fails, so that Pacemaker promotes the better node.
//! Waiting for a candidate's position is bounded (PAF #131 waited forever).

use std::time::Duration;

use super::notify::{
    attribute, CANCEL_SWITCHOVER, LSN_LOCATION, NODES, RECOVER_PRIMARY, TIMELINES,
};
use super::{Ctx, Outcome};
use crate::election::{
    ancestors_from_attribute, better_candidate, Line, Position, BEST_STANDBY_SCORE, SCORE_NEVER,
};
use crate::error::{Error, Result};
use crate::instance::state::InstanceState;
use crate::instance::Instance;
use crate::ocf::status::OcfStatus;

pub fn promote(ctx: &Ctx, instance: &Instance) -> Result<Outcome> {
    let name = instance.datadir().display().to_string();
    match instance.settled_state(&ctx.deadline)? {
        InstanceState::Primary => {
            log::info!("instance \"{name}\" is already a primary");
            return Ok(Outcome::new(OcfStatus::Success));
        }
        InstanceState::Standby => {}
        other => {
            return Err(Error::State(format!(
                "instance \"{name}\" is not a running standby, cannot promote it: {other:?}"
            )))
        }
    }
    if let Some(outcome) = election(ctx, instance)? {
        return Ok(outcome);
    }
    log::info!("promoting instance \"{name}\"");
    instance.request_promotion(&ctx.deadline)?;
    // One query on the open connection per look: cheap enough to look often.
    ctx.deadline.poll(
        "the promoted instance to accept writes",
        Duration::from_millis(20),
        || Ok(matches!(instance.observe(&ctx.deadline)?, InstanceState::Primary).then_some(())),
    )?;
    log::info!("instance \"{name}\" promoted");
    Ok(Outcome::new(OcfStatus::Success))
}

/// `Some` when the promotion must not go on here.
fn election(ctx: &Ctx, instance: &Instance) -> Result<Option<Outcome>> {
    let node = ctx.node().to_owned();
    let private = |name: &str, of: &str| ctx.cluster.private_attribute(&attribute(ctx, name), of);
    if let Some(value) = private(CANCEL_SWITCHOVER, &node)? {
        ctx.cluster
            .delete_private_attribute(&attribute(ctx, CANCEL_SWITCHOVER), &node)?;
        // -INFINITY outweighs the INFINITY of a move constraint, so Pacemaker promotes the
        // old primary again; its monitor restores this node's score, and the switchover is
        // tried again once it is safe.
        ctx.cluster.set_promotion_score(&node, SCORE_NEVER)?;
        return Ok(Some(Outcome::because(
            OcfStatus::ErrGeneric,
            format!(
                "switchover to {node} canceled ({value}): this standby did not receive the old \
                 primary's shutdown checkpoint, promoting it would lose transactions"
            ),
        )));
    }
    if private(RECOVER_PRIMARY, &node)?.as_deref() == Some("1") {
        log::info!("recovering the old primary in place: no election needed");
        return Ok(None);
    }
    let Some(nodes) = private(NODES, &node)? else {
        log::warn!("no election data (promotion without notifications, e.g. a debug run)");
        return Ok(None);
    };
    let own = match private(LSN_LOCATION, &node)?
        .as_deref()
        .and_then(Position::from_attribute)
    {
        Some(position) => position,
        None => instance.wal_position(&ctx.deadline)?,
    };
    // Leave half of what is left for the promotion itself.
    let wait = ctx.deadline.at_most(ctx.deadline.remaining() / 2);
    let mut others = Vec::new();
    for other in nodes.split_whitespace().filter(|n| *n != node) {
        let position = wait.poll(
            &format!("{other} to publish its WAL position"),
            Duration::from_millis(20),
            || {
                Ok(private(LSN_LOCATION, other)?
                    .as_deref()
                    .and_then(Position::from_attribute))
            },
        )?;
        // Published with the position; a node without it (timeline 1) has no ancestors.
        let ancestors = private(TIMELINES, other)?
            .as_deref()
            .and_then(ancestors_from_attribute)
            .unwrap_or_default();
        others.push((
            other.to_owned(),
            Line {
                position,
                ancestors,
            },
        ));
    }
    let report: Vec<String> = others
        .iter()
        .map(|(n, l)| format!("{n} {}#{}", l.position.timeline, l.position.lsn))
        .collect();
    match better_candidate(own, &others) {
        None => {
            log::info!(
                "elected {node}: TL {} LSN {}; others: {}",
                own.timeline,
                own.lsn,
                report.join(", ")
            );
            Ok(None)
        }
        Some((best, Line { position, .. })) => {
            ctx.cluster.set_promotion_score(&node, 1)?;
            ctx.cluster.set_promotion_score(best, BEST_STANDBY_SCORE)?;
            Ok(Some(Outcome::because(
                OcfStatus::ErrGeneric,
                format!(
                    "{best} is the best candidate to promote (TL {} LSN {} ahead of ours, TL {} LSN {}), \
                     aborting current promotion",
                    position.timeline, position.lsn, own.timeline, own.lsn
                ),
            )))
        }
    }
}
