//! The last failover, switchover and rewind, from what the cluster and the agent leave
//! behind; each event says where it was read:
//! - a promotion is a `promote` operation in crm_mon's node history (its `last-rc-change`);
//!   it was a **failover** when a node was fenced in the minutes before it (crm_mon's fence
//!   history), a **switchover** when another node's history holds a `demote` just before it;
//!   other promotions (the first one of a cluster) are neither;
//! - a **rewind** (or re-clone) is the local node's rewind marker while one runs, else its
//!   newest kept folder (`pgha kept`): other nodes' files cannot be read from here.
//!
//! Pacemaker keeps one operation of each kind per resource and node, and forgets a node's
//! history when the node is fenced: an older event is not shown.

use serde::Serialize;

use super::crm::CrmMon;

/// What this node's files say (only the local node's are readable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalFiles {
    /// The rewind marker: its operation and start time, when there is one.
    pub marker: Option<Marker>,
    /// The kept folders (`pgha kept`): name and when each last changed (UTC).
    pub kept: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Marker {
    pub operation: String,
    pub started: String,
}

/// How long before a promotion a fencing or a demote counts as its cause.
const CAUSE_WINDOW: i64 = 600;
/// The fence history's times come from the fencer's clock, an operation's from its node's.
const CLOCK_SKEW: i64 = 5;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Events {
    pub last_failover: Option<Event>,
    pub last_switchover: Option<Event>,
    pub last_rewind: Option<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    /// The node promoted, or rewound.
    pub node: String,
    pub detail: String,
    /// Where it was read.
    pub source: String,
}

pub fn find(mon: &CrmMon, rsc: &str, local: Option<&str>, files: &LocalFiles) -> Events {
    let mut events = Events::default();
    let mut promotions: Vec<(i64, &str)> = mon
        .history
        .iter()
        .filter(|op| op.resource == rsc && op.task == "promote" && op.rc == Some(0))
        .filter_map(|op| Some((epoch(op.last_rc_change.as_deref()?)?, op.node.as_str())))
        .collect();
    promotions.sort();
    for (at, node) in promotions {
        let cause = |t: i64| (at - CAUSE_WINDOW..=at + CLOCK_SKEW).contains(&t);
        let fenced = mon.fencing.iter().find(|f| {
            f.status == "success"
                && f.target != node
                && f.completed.as_deref().and_then(epoch).is_some_and(cause)
        });
        let demoted = mon.history.iter().find(|op| {
            op.resource == rsc
                && op.task == "demote"
                && op.rc == Some(0)
                && op.node != node
                && op
                    .last_rc_change
                    .as_deref()
                    .and_then(epoch)
                    .is_some_and(cause)
        });
        let time = civil_iso(at);
        if let Some(f) = fenced {
            events.last_failover = Some(Event {
                time,
                node: node.to_owned(),
                detail: format!(
                    "{node} promoted after {} was fenced ({})",
                    f.target, f.action
                ),
                source: "crm_mon: promote operation and fence history".into(),
            });
        } else if let Some(d) = demoted {
            events.last_switchover = Some(Event {
                time,
                node: node.to_owned(),
                detail: format!("{node} promoted after {} was demoted", d.node),
                source: "crm_mon: promote and demote operations".into(),
            });
        }
    }
    events.last_rewind = rewind(local, files);
    events
}

fn rewind(local: Option<&str>, files: &LocalFiles) -> Option<Event> {
    let node = local.unwrap_or("this node").to_owned();
    if let Some(marker) = &files.marker {
        return Some(Event {
            time: marker.started.clone(),
            node: node.clone(),
            detail: format!(
                "{} in progress on {node} (or interrupted)",
                marker.operation
            ),
            source: "rewind marker next to this node's data directory".into(),
        });
    }
    let (name, changed) = files.kept.last()?;
    Some(Event {
        time: changed.clone(),
        node,
        detail: format!("discarded WAL and configuration kept in {name}"),
        source: "this node's kept folders (pgha kept)".into(),
    })
}

/// A crm_mon time as UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso(text: &str) -> Option<String> {
    epoch(text).map(civil_iso)
}

fn civil_iso(secs: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0).unsigned_abs());
    crate::clock::utc(at).0
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the epoch of a time as crm_mon prints it: `Sat Dec  5 07:22:35 2026`
/// (Pacemaker 2.1's operation history; pgha runs crm_mon with `TZ=UTC`, so it is UTC) or
/// `2026-12-05 07:22:35Z`, with fractions or an offset `+01:00` (fencing, failures, 3.0).
pub fn epoch(text: &str) -> Option<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (y, mo, d, clock, zone) = match words.as_slice() {
        [_, month, day, clock, year] => {
            let mo = MONTHS.iter().position(|m| m == month)? + 1;
            (year.parse().ok()?, mo as i64, day.parse().ok()?, *clock, "")
        }
        [date, rest] => {
            let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
            let (y, mo, d) = (parts.next()??, parts.next()??, parts.next()??);
            let cut = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
            (y, mo, d, &rest[..cut], &rest[cut..])
        }
        [date, clock, zone] => {
            let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
            (
                parts.next()??,
                parts.next()??,
                parts.next()??,
                *clock,
                *zone,
            )
        }
        _ => return None,
    };
    let mut hms = clock
        .split('.')
        .next()?
        .splitn(3, ':')
        .map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    let valid = (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61;
    valid.then(|| days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset(zone))
}

/// `Z`, ``, `+01:00`, `-0530` → seconds east of UTC.
fn offset(zone: &str) -> i64 {
    let sign = match zone.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return 0,
    };
    let digits: String = zone.chars().filter(char::is_ascii_digit).collect();
    let h: i64 = digits.get(..2).and_then(|d| d.parse().ok()).unwrap_or(0);
    let m: i64 = digits.get(2..4).and_then(|d| d.parse().ok()).unwrap_or(0);
    sign * (h * 3600 + m * 60)
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::super::crm::{Fencing, Operation};
    use super::*;

    fn op(node: &str, task: &str, at: &str) -> Operation {
        Operation {
            node: node.into(),
            resource: "pgsqld".into(),
            task: task.into(),
            rc: Some(0),
            last_rc_change: Some(at.into()),
        }
    }

    #[test]
    fn promotions_are_failovers_switchovers_or_neither() {
        let mut mon = CrmMon {
            history: vec![op("n1", "promote", "Sat Dec  5 07:00:00 2026")],
            ..CrmMon::default()
        };
        let none = LocalFiles::default();
        // The first promotion of a cluster is neither.
        assert_eq!(find(&mon, "pgsqld", None, &none), Events::default());
        // A demote elsewhere just before: a switchover.
        mon.history = vec![
            op("n1", "demote", "Sat Dec  5 08:00:00 2026"),
            op("n2", "promote", "Sat Dec  5 08:00:02 2026"),
        ];
        let e = find(&mon, "pgsqld", None, &none);
        let s = e.last_switchover.unwrap();
        assert_eq!(
            (s.node.as_str(), s.time.as_str()),
            ("n2", "2026-12-05T08:00:02Z")
        );
        assert_eq!(e.last_failover, None);
        // A fencing of another node before it (or a few seconds after, by another clock): a
        // failover; one of an hour before is not its cause.
        for (fenced, failover) in [
            ("2026-12-05 07:59:58Z", true),
            ("2026-12-05 08:00:05Z", true),
            ("2026-12-05 07:00:00Z", false),
        ] {
            mon.history = vec![op("n2", "promote", "Sat Dec  5 08:00:02 2026")];
            mon.fencing = vec![Fencing {
                target: "n1".into(),
                action: "off".into(),
                status: "success".into(),
                completed: Some(fenced.into()),
            }];
            let e = find(&mon, "pgsqld", None, &none);
            assert_eq!(e.last_failover.is_some(), failover, "{fenced}");
        }
        // Another resource's promotion is not this one's.
        mon.history = vec![Operation {
            resource: "other".into(),
            ..op("n2", "promote", "Sat Dec  5 08:00:02 2026")
        }];
        assert_eq!(find(&mon, "pgsqld", None, &none).last_failover, None);
    }

    #[test]
    fn crm_mon_times() {
        let t = 1_796_455_355; // 2026-12-05T07:22:35Z
        assert_eq!(epoch("Sat Dec  5 07:22:35 2026"), Some(t));
        assert_eq!(epoch("2026-12-05 07:22:35Z"), Some(t));
        assert_eq!(epoch("2026-12-05 07:22:35.123Z"), Some(t));
        assert_eq!(epoch("2026-12-05 08:22:35 +01:00"), Some(t));
        assert_eq!(epoch("2026-12-05 08:22:35+01:00"), Some(t));
        assert_eq!(
            iso("Sat Dec  5 07:22:35 2026").as_deref(),
            Some("2026-12-05T07:22:35Z")
        );
        for bad in [
            "",
            "yesterday",
            "Sat Foo  5 07:22:35 2026",
            "2026-13-05 07:22:35Z",
        ] {
            assert_eq!(epoch(bad), None, "{bad}");
        }
    }
}
