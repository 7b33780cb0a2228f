//! The cluster as `pgha status` shows it, built from what was collected: pure, so every
//! state is a test on a captured `crm_mon` document. It serialises as the JSON of
//! `docs/status.md` (schema version [`SCHEMA_VERSION`]).

use serde::Serialize;

use super::crm::{CrmMon, Primitive};
use super::events::{self, Events};
pub use super::events::{LocalFiles, Marker};
use crate::lsn::Lsn;
use crate::pacemaker::parse_score;

/// The version of the JSON document; bumped when a field changes meaning or goes away
/// (new fields do not bump it).
pub const SCHEMA_VERSION: u32 = 1;

/// What the local instance said over SQL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalSql {
    pub in_recovery: bool,
    pub timeline: Option<u32>,
    /// The primary's `pg_current_wal_lsn()`.
    pub current_lsn: Option<Lsn>,
    pub received_lsn: Option<Lsn>,
    pub replayed_lsn: Option<Lsn>,
    /// Seconds since the last replayed transaction's commit (a standby).
    pub replay_age: Option<f64>,
    pub replay_paused: bool,
    /// `pg_stat_wal_receiver.status` (a standby; `None` without a receiver).
    pub receiver: Option<String>,
    /// The primary's `pg_stat_replication`.
    pub replication: Vec<Replica>,
}

/// A row of the primary's `pg_stat_replication`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replica {
    pub application_name: String,
    pub state: String,
    pub sync_state: String,
    pub replay_lsn: Option<Lsn>,
    /// `replay_lag`, in seconds (`None` when idle).
    pub replay_lag: Option<f64>,
}

/// Everything collected; a source that did not answer is `None` here and named in
/// `unavailable`.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub now: String,
    pub local_node: Option<String>,
    pub resource: Option<String>,
    pub vip_asked: Option<String>,
    pub mon: Option<CrmMon>,
    pub primitives: Vec<Primitive>,
    pub sql: Option<LocalSql>,
    pub files: Option<LocalFiles>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub source: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema_version: u32,
    pub generated_at: String,
    pub local_node: Option<String>,
    pub resource: Option<String>,
    pub dc: Option<String>,
    pub quorum: Option<bool>,
    pub nodes: Vec<NodeView>,
    pub vip: Option<Vip>,
    pub events: Events,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeView {
    pub name: String,
    /// `online`, `offline`, `standby`, `maintenance`, `unclean`, `pending`.
    pub pacemaker_state: String,
    /// The resource's role there: `Promoted`, `Unpromoted`, `Stopped`, …
    pub role: String,
    /// `primary`, `standby`, or `None` when not known from here.
    pub postgres_role: Option<String>,
    pub timeline: Option<u32>,
    pub current_lsn: Option<String>,
    pub received_lsn: Option<String>,
    pub replayed_lsn: Option<String>,
    pub lag_bytes: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub sync_state: Option<String>,
    pub replication_state: Option<String>,
    pub promotion_score: Option<i64>,
    pub flags: Vec<String>,
    pub failed_actions: Vec<FailedAction>,
    pub rewind_marker: Option<Marker>,
    /// `None`: not known from here (another node's files).
    pub kept_folders: Option<Vec<String>>,
    /// Where the PostgreSQL columns come from: `local instance`, `primary's
    /// pg_stat_replication`, or `none`.
    pub postgres_source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedAction {
    pub operation: String,
    pub status: String,
    pub reason: String,
    pub time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vip {
    pub resource: String,
    pub address: Option<String>,
    pub node: Option<String>,
}

/// The agent that holds a VIP.
const VIP_AGENT: &str = "ocf:heartbeat:IPaddr2";

pub fn build(inputs: &Inputs) -> Status {
    let mon = inputs.mon.clone().unwrap_or_default();
    let rsc = inputs.resource.as_deref().unwrap_or_default();
    // The local node is the primary and said who replicates from it.
    let primary_view = inputs.sql.as_ref().is_some_and(|s| !s.in_recovery);
    let nodes = mon
        .nodes
        .iter()
        .map(|node| {
            let mut view = cluster_side(&mon, rsc, &node.name);
            if inputs.local_node.as_deref() == Some(&node.name) {
                local_side(&mut view, inputs);
            } else {
                seen_by_primary(&mut view, inputs);
            }
            view.flags = flags(&view, node, primary_view);
            let local = inputs.local_node.as_deref() == Some(&node.name);
            if local && inputs.sql.as_ref().is_some_and(|s| s.replay_paused) {
                view.flags.push("replay-paused".into());
            }
            view
        })
        .collect();
    let files = inputs.files.clone().unwrap_or_default();
    Status {
        schema_version: SCHEMA_VERSION,
        generated_at: inputs.now.clone(),
        local_node: inputs.local_node.clone(),
        resource: inputs.resource.clone(),
        dc: mon.dc.clone(),
        quorum: mon.quorum,
        nodes,
        vip: vip(&mon, &inputs.primitives, inputs.vip_asked.as_deref()),
        events: events::find(&mon, rsc, inputs.local_node.as_deref(), &files),
        unavailable: inputs.unavailable.clone(),
    }
}

/// What Pacemaker says of `name`: state, role, score, failed actions.
fn cluster_side(mon: &CrmMon, rsc: &str, name: &str) -> NodeView {
    let node = mon.nodes.iter().find(|n| n.name == name);
    let state = match node {
        Some(n) if n.unclean => "unclean",
        Some(n) if !n.online => "offline",
        Some(n) if n.pending => "pending",
        Some(n) if n.maintenance => "maintenance",
        Some(n) if n.standby => "standby",
        Some(_) => "online",
        None => "unknown",
    };
    let role = mon
        .instances
        .iter()
        .find(|i| i.id == rsc && i.nodes.iter().any(|n| n == name))
        .map_or("Stopped", |i| i.role.as_str());
    let score = mon
        .attributes
        .get(name)
        .and_then(|a| a.get(&format!("master-{rsc}")))
        .and_then(|v| parse_score(v).ok());
    let failed_actions = mon
        .failures
        .iter()
        .filter(|f| f.node == name && f.op_key.starts_with(&format!("{rsc}_")))
        .map(|f| FailedAction {
            operation: f.op_key.clone(),
            status: f.exit_status.clone(),
            reason: f.exit_reason.clone(),
            time: f.last_rc_change.as_deref().and_then(events::iso),
        })
        .collect();
    NodeView {
        name: name.to_owned(),
        pacemaker_state: state.into(),
        role: normal_role(role).into(),
        promotion_score: score,
        failed_actions,
        postgres_source: "none".into(),
        ..NodeView::default()
    }
}

/// Pacemaker 2.0's names for the roles, as 2.1 and 3.0 name them.
fn normal_role(role: &str) -> &str {
    match role {
        "Master" => "Promoted",
        "Slave" => "Unpromoted",
        other => other,
    }
}

/// The local instance's own view, and the local files.
fn local_side(view: &mut NodeView, inputs: &Inputs) {
    if let Some(files) = &inputs.files {
        view.rewind_marker = files.marker.clone();
        view.kept_folders = Some(files.kept.iter().map(|(n, _)| n.clone()).collect());
    }
    let Some(sql) = &inputs.sql else { return };
    view.postgres_source = "local instance".into();
    view.timeline = sql.timeline;
    if !sql.in_recovery {
        view.postgres_role = Some("primary".into());
        view.current_lsn = sql.current_lsn.map(|l| l.to_string());
        return;
    }
    view.postgres_role = Some("standby".into());
    view.received_lsn = sql.received_lsn.map(|l| l.to_string());
    view.replayed_lsn = sql.replayed_lsn.map(|l| l.to_string());
    view.replication_state = sql.receiver.clone();
    if let (Some(received), Some(replayed)) = (sql.received_lsn, sql.replayed_lsn) {
        let behind = received.bytes_after(replayed);
        view.lag_bytes = Some(behind);
        // The age of the last replayed commit is a lag only while WAL waits to be replayed;
        // with no commit replayed since the standby started, it is not known.
        view.lag_seconds = if behind > 0 {
            sql.replay_age
        } else {
            Some(0.0)
        };
    }
}

/// A standby as the local primary's `pg_stat_replication` shows it.
fn seen_by_primary(view: &mut NodeView, inputs: &Inputs) {
    let Some(sql) = inputs.sql.as_ref().filter(|s| !s.in_recovery) else {
        return;
    };
    let Some(row) = sql
        .replication
        .iter()
        .find(|r| r.application_name == view.name)
    else {
        return;
    };
    view.postgres_source = "primary's pg_stat_replication".into();
    view.postgres_role = Some("standby".into());
    view.replayed_lsn = row.replay_lsn.map(|l| l.to_string());
    view.sync_state = Some(row.sync_state.clone());
    view.replication_state = Some(row.state.clone());
    if let (Some(current), Some(replayed)) = (sql.current_lsn, row.replay_lsn) {
        let behind = current.bytes_after(replayed);
        view.lag_bytes = Some(behind);
        view.lag_seconds = row.replay_lag.or((behind == 0).then_some(0.0));
    }
}

/// The flags of a node, from what its view holds.
fn flags(view: &NodeView, node: &super::crm::Node, primary_view: bool) -> Vec<String> {
    let known = primary_view || view.postgres_source != "none";
    let replicates = view.replication_state.as_deref() == Some("streaming");
    let standby_role =
        view.role == "Unpromoted" || view.postgres_role.as_deref() == Some("standby");
    let candidates = [
        (!view.failed_actions.is_empty(), "failed-action"),
        (view.rewind_marker.is_some(), "rewind-marker"),
        (
            view.kept_folders.as_ref().is_some_and(|k| !k.is_empty()),
            "kept-wal",
        ),
        (node.maintenance, "maintenance"),
        (node.standby, "standby-node"),
        (node.unclean, "unclean"),
        (
            standby_role && node.online && known && !replicates,
            "not-replicating",
        ),
    ];
    candidates
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// The VIP: the IPaddr2 primitive with the address asked for, else the only one.
fn vip(mon: &CrmMon, primitives: &[Primitive], asked: Option<&str>) -> Option<Vip> {
    let vips: Vec<&Primitive> = primitives.iter().filter(|p| p.agent == VIP_AGENT).collect();
    let chosen = match asked {
        Some(addr) => vips
            .iter()
            .find(|p| p.params.get("ip").map(String::as_str) == Some(addr))?,
        None if vips.len() == 1 => vips.first()?,
        None => return None,
    };
    let node = mon
        .instances
        .iter()
        .find(|i| i.id == chosen.id && i.role == "Started")
        .and_then(|i| i.nodes.first().cloned());
    Some(Vip {
        resource: chosen.id.clone(),
        address: chosen.params.get("ip").cloned(),
        node,
    })
}
