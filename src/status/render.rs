//! The three forms of a [`Status`]: the text screen, the JSON document (`docs/status.md`),
//! and Prometheus' text exposition (for node_exporter's textfile collector).

use std::fmt::Write;

use super::events::Event;
use super::model::{NodeView, Status};

const HEADER: [&str; 13] = [
    "NODE",
    "PACEMAKER",
    "ROLE",
    "POSTGRES",
    "TL",
    "CURRENT",
    "RECEIVED",
    "REPLAYED",
    "LAG",
    "LAG(s)",
    "SYNC",
    "SCORE",
    "FLAGS",
];

/// The screen: a title, one line a node, then the VIP, the last events and what did not
/// answer.
pub fn text(status: &Status) -> String {
    let mut out = format!(
        "pgha status: resource {}, seen from {} at {}; DC {}{}\n\n",
        status.resource.as_deref().unwrap_or("?"),
        status.local_node.as_deref().unwrap_or("?"),
        status.generated_at,
        status.dc.as_deref().unwrap_or("none"),
        match status.quorum {
            Some(true) => ", quorum",
            Some(false) => ", NO QUORUM",
            None => "",
        }
    );
    let mut rows: Vec<Vec<String>> = vec![HEADER.iter().map(|h| (*h).to_owned()).collect()];
    rows.extend(status.nodes.iter().map(row));
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out.push('\n');
    let _ = match &status.vip {
        Some(v) => writeln!(
            out,
            "VIP             {} ({}) on {}",
            v.address.as_deref().unwrap_or("?"),
            v.resource,
            v.node.as_deref().unwrap_or("no node")
        ),
        None => writeln!(out, "VIP             none found (--vip ADDR)"),
    };
    event_line(
        &mut out,
        "last failover",
        status.events.last_failover.as_ref(),
    );
    event_line(
        &mut out,
        "last switchover",
        status.events.last_switchover.as_ref(),
    );
    event_line(&mut out, "last rewind", status.events.last_rewind.as_ref());
    for n in status.nodes.iter().filter(|n| !n.failed_actions.is_empty()) {
        for f in &n.failed_actions {
            let _ = writeln!(
                out,
                "failed action   {} on {}: {} {} {}",
                printable(&f.operation),
                n.name,
                printable(&f.status),
                f.time.as_deref().unwrap_or(""),
                printable(&f.reason)
            );
        }
    }
    for u in &status.unavailable {
        let _ = writeln!(out, "UNAVAILABLE     {}: {}", u.source, printable(&u.error));
    }
    out
}

fn row(n: &NodeView) -> Vec<String> {
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), printable);
    vec![
        n.name.clone(),
        n.pacemaker_state.clone(),
        n.role.clone(),
        opt(&n.postgres_role),
        n.timeline.map_or("-".into(), |t| t.to_string()),
        opt(&n.current_lsn),
        opt(&n.received_lsn),
        opt(&n.replayed_lsn),
        n.lag_bytes.map_or("-".into(), bytes),
        n.lag_seconds.map_or("-".into(), |s| format!("{s:.1}")),
        opt(&n.sync_state),
        n.promotion_score.map_or("-".into(), |s| s.to_string()),
        if n.flags.is_empty() {
            "-".into()
        } else {
            n.flags.join(",")
        },
    ]
}

/// Text from elsewhere (an exit reason, a tool's error) with its control characters shown
/// as `?`: a terminal must not take them as commands.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Bytes as people read them: `0`, `812`, `16.0k`, `3.2M`, `1.5G`.
fn bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "k")];
    UNITS.iter().find(|(size, _)| b >= *size).map_or_else(
        || b.to_string(),
        |(size, u)| format!("{:.1}{u}", b as f64 / *size as f64),
    )
}

fn event_line(out: &mut String, what: &str, event: Option<&Event>) {
    let _ = match event {
        Some(e) => writeln!(out, "{what:<15} {}  {} [{}]", e.time, e.detail, e.source),
        None => writeln!(out, "{what:<15} none seen"),
    };
}

pub fn json(status: &Status) -> String {
    // A Status holds strings, numbers and options only: it always serialises.
    serde_json::to_string_pretty(status).unwrap_or_default() + "\n"
}

/// Prometheus' text exposition format, version 0.0.4.
pub fn prometheus(status: &Status) -> String {
    let mut out = String::new();
    let rsc = status.resource.as_deref().unwrap_or("");
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP pgha_{name} {help}\n# TYPE pgha_{name} gauge");
    };
    gauge(
        &mut out,
        "status_info",
        "pgha status ran; its schema version and local node.",
    );
    let _ = writeln!(
        out,
        "pgha_status_info{{schema_version=\"{}\",local_node=\"{}\",resource=\"{}\"}} 1",
        status.schema_version,
        label(status.local_node.as_deref().unwrap_or("")),
        label(rsc)
    );
    type Metric = (&'static str, &'static str, fn(&NodeView) -> Option<f64>);
    let metrics: [Metric; 7] = [
        (
            "node_online",
            "1 when Pacemaker sees the node online.",
            |n| {
                Some(f64::from(u8::from(
                    n.pacemaker_state != "offline" && n.pacemaker_state != "unclean",
                )))
            },
        ),
        ("promoted", "1 where the resource is Promoted.", |n| {
            Some(f64::from(u8::from(n.role == "Promoted")))
        }),
        (
            "promotion_score",
            "The node's promotion score (master-<rsc>).",
            |n| n.promotion_score.map(|s| s as f64),
        ),
        ("timeline", "The instance's timeline.", |n| {
            n.timeline.map(f64::from)
        }),
        (
            "replication_lag_bytes",
            "WAL bytes the standby has not replayed.",
            |n| n.lag_bytes.map(|b| b as f64),
        ),
        (
            "replication_lag_seconds",
            "Replay lag of the standby, in seconds.",
            |n| n.lag_seconds,
        ),
        (
            "failed_actions",
            "Failed actions of the resource on the node.",
            |n| Some(n.failed_actions.len() as f64),
        ),
    ];
    for (name, help, value) in metrics {
        gauge(&mut out, name, help);
        for n in &status.nodes {
            if let Some(v) = value(n) {
                let _ = writeln!(
                    out,
                    "pgha_{name}{{resource=\"{}\",node=\"{}\"}} {v}",
                    label(rsc),
                    label(&n.name)
                );
            }
        }
    }
    gauge(
        &mut out,
        "source_up",
        "0 when a source did not answer within --timeout.",
    );
    for u in &status.unavailable {
        let _ = writeln!(out, "pgha_source_up{{source=\"{}\"}} 0", label(&u.source));
    }
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_control_characters() {
        assert_eq!(bytes(812), "812");
        assert_eq!(bytes(16 * 1024), "16.0k");
        assert_eq!(bytes(3 << 29), "1.5G");
        assert_eq!(printable("a\x1b[2Jb\nc"), "a?[2Jb?c");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
