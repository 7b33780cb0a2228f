//! promote: check the election, then promote, waiting until writes are accepted.
//!
//! The election (`paf.md` §4.5): the designated node compares its WAL position with every
//! candidate's, as published in pre-promote. If another is strictly ahead, it gives that node
//! the best score, lowers its own, and fails, so that Pacemaker promotes the better node.
//! Waiting for a candidate's position is bounded (PAF #131 waited forever).

use std::time::Duration;

use super::error::{Error, Result};
use super::notify::{
    attribute, CANCEL_SWITCHOVER, LSN_LOCATION, NODES, RECOVER_PRIMARY, TIMELINES,
};
use super::{Ctx, Outcome};
use crate::election::{
    ancestors_from_attribute, better_candidate, Line, Position, BEST_STANDBY_SCORE, SCORE_NEVER,
};
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
    ctx.deadline.poll::<_, Error>(
        "the promoted instance to accept writes",
        Duration::from_millis(5),
        || Ok(matches!(instance.observe(&ctx.deadline)?, InstanceState::Primary).then_some(())),
    )?;
    log::info!("instance \"{name}\" promoted");
    Ok(Outcome::new(OcfStatus::Success))
}

/// `Some` when the promotion must not go on here.
fn election(ctx: &Ctx, instance: &Instance) -> Result<Option<Outcome>> {
    let node = ctx.node()?.to_owned();
    let queries = [CANCEL_SWITCHOVER, RECOVER_PRIMARY, NODES];
    let answers: [Option<String>; 3] = read(ctx, &queries.map(|a| (a, node.as_str())))?
        .try_into()
        .map_err(|_| Error::Internal("an attribute query went unanswered".into()))?;
    let [cancel, recover, nodes] = answers;
    if let Some(value) = cancel {
        ctx.cluster.update_private_attributes(
            &node,
            &[(&attribute(ctx, CANCEL_SWITCHOVER), None)],
            None,
        )?;
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
    if recover.as_deref() == Some("1") {
        log::info!("recovering the old primary in place: no election needed");
        return Ok(None);
    }
    let Some(nodes) = nodes else {
        log::warn!("no election data (promotion without notifications, e.g. a debug run)");
        return Ok(None);
    };
    // Read again rather than from the attribute: one SQL query costs less than a tool run,
    // and it can only have moved forward since.
    let own = instance.wal_position(&ctx.deadline)?;
    let others: Vec<&str> = nodes.split_whitespace().filter(|n| *n != node).collect();
    // Leave half of what is left for the promotion itself.
    let wait = ctx.deadline.at_most(ctx.deadline.remaining() / 2);
    // Each node sets its ancestry (when its timeline is not the first) and its position at
    // once, without waiting for them to be read back: wait for both here.
    let queries: Vec<(&str, &str)> = others
        .iter()
        .flat_map(|o| [(LSN_LOCATION, *o), (TIMELINES, *o)])
        .collect();
    let lines = wait.poll::<_, Error>(
        &format!("{} to publish their WAL positions", others.join(", ")),
        Duration::from_millis(20),
        || {
            let answers = read(ctx, &queries)?;
            Ok(answers
                .chunks(2)
                .map(|pair| published_line(pair.first()?.as_deref(), pair.get(1)?.as_deref()))
                .collect::<Option<Vec<Line>>>())
        },
    )?;
    let others: Vec<(String, Line)> = others.iter().map(|o| (*o).to_owned()).zip(lines).collect();
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

/// This resource's private attributes, each `(name, node)`, read at once.
fn read(ctx: &Ctx, queries: &[(&str, &str)]) -> Result<Vec<Option<String>>> {
    let named: Vec<(String, &str)> = queries
        .iter()
        .map(|(name, node)| (attribute(ctx, name), *node))
        .collect();
    let pairs: Vec<(&str, &str)> = named.iter().map(|(n, o)| (n.as_str(), *o)).collect();
    Ok(ctx.cluster.private_attributes(&pairs)?)
}

/// A candidate's line from its attributes, once complete: a position, and the ancestry
/// unless the position is on the first timeline.
fn published_line(position: Option<&str>, ancestry: Option<&str>) -> Option<Line> {
    let position = Position::from_attribute(position?)?;
    let ancestors = match ancestry {
        // Timeline 1 has none; what is there was left by an older election.
        _ if position.timeline <= 1 => Vec::new(),
        // Malformed (never written so by pgha): treated as unknown.
        Some(text) => ancestors_from_attribute(text).unwrap_or_default(),
        None => return None,
    };
    Some(Line {
        position,
        ancestors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_complete_with_its_ancestry_past_the_first_timeline() {
        let first = published_line(Some("1#50331744"), None).unwrap();
        assert_eq!(first.position.timeline, 1);
        assert!(first.ancestors.is_empty());
        // On timeline 1, an ancestry is what an older election left.
        let stale = published_line(Some("1#50331744"), Some("1:0/2000000")).unwrap();
        assert!(stale.ancestors.is_empty());
        // Timeline 2 without its ancestry: not yet all published.
        assert_eq!(published_line(Some("2#50331744"), None), None);
        let second = published_line(Some("2#50331744"), Some("1:0/2000000")).unwrap();
        assert_eq!(second.ancestors.len(), 1);
        assert_eq!(published_line(None, Some("1:0/2000000")), None);
        assert_eq!(published_line(Some("garbage"), None), None);
    }
}
