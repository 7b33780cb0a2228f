//! The I/O of `pgha status`: crm_mon and the CIB's resources through Pacemaker's tools, the
//! local instance over SQL (the agent's own connection: its Unix socket, as the system user,
//! peer authentication, no password), the rewind marker and kept folders on disk. Each
//! source has `--timeout` to answer; one that does not is named in `unavailable` and the
//! others are still shown.

use std::path::Path;
use std::time::Duration;

use super::crm::{self, Primitive};
use super::model::{Inputs, LocalFiles, LocalSql, Marker, Replica, Unavailable};
use crate::deadline::Deadline;
use crate::instance::sql::{Session, SqlError};
use crate::instance::Instance;
use crate::lsn::Lsn;
use crate::ocf::params::Params;
use crate::pacemaker::{self, Tools};
use crate::process::Cmd;
use crate::rewind::{forensics, kept, marker};

/// Where Pacemaker's tools are (`HA_SBIN_DIR` as the agent reads it, for tests).
fn sbin() -> String {
    std::env::var("HA_SBIN_DIR").unwrap_or_else(|_| "/usr/sbin".into())
}

/// What the command line asked for.
pub struct Request<'a> {
    pub resource: Option<&'a str>,
    pub vip: Option<&'a str>,
    pub timeout: Duration,
}

pub fn collect(req: &Request) -> Inputs {
    let mut inputs = Inputs {
        now: crate::clock::utc_now().0,
        vip_asked: req.vip.map(str::to_owned),
        ..Inputs::default()
    };
    let mut missing = |source: &str, error: String| {
        inputs.unavailable.push(Unavailable {
            source: source.into(),
            error,
        })
    };
    // Both at once: each has the whole timeout, and the command waits for one only.
    let (mon, cib) = std::thread::scope(|scope| {
        let mon = scope.spawn(|| {
            tool_xml(&["crm_mon", "--one-shot", "--output-as=xml"], req.timeout)
                .and_then(|xml| crm::parse_crm_mon(&xml).map_err(|e| e.to_string()))
        });
        let cib = tool_xml(
            &["cibadmin", "--query", "--scope", "resources"],
            req.timeout,
        )
        .and_then(|xml| crm::parse_primitives(&xml).map_err(|e| e.to_string()));
        let mon = mon
            .join()
            .unwrap_or_else(|_| Err("its thread panicked".into()));
        (mon, cib)
    });
    let deadline = Deadline::after(req.timeout);
    let tools = Tools::new(sbin(), req.resource.unwrap_or(""), &deadline);
    let local = pacemaker::local_node_name(None, &tools).map_err(|e| e.to_string());
    match mon {
        Ok(m) => inputs.mon = Some(m),
        Err(e) => missing("crm_mon", e),
    }
    let cib_answered = cib.is_ok();
    let primitives = cib.unwrap_or_else(|e| {
        missing("the CIB's resources (cibadmin)", e);
        Vec::new()
    });
    match local {
        Ok(n) => inputs.local_node = Some(n),
        Err(e) => missing("this node's name (crm_node -n)", e),
    }
    let chosen = crm::choose_resource(&primitives, req.resource);
    let primitive = chosen
        .as_ref()
        .ok()
        .and_then(|rsc| primitives.iter().find(|p| &p.id == rsc));
    match &chosen {
        Err(e) if cib_answered => missing("the resource", e.clone()),
        _ => {}
    }
    inputs.resource = chosen.ok().or(req.resource.map(str::to_owned));
    if let Some(primitive) = primitive {
        local_instance(&mut inputs, primitive, req.timeout);
    }
    inputs.primitives = primitives;
    inputs
}

/// A Pacemaker tool's XML, run with `TZ=UTC` (its local times are then UTC), within `timeout`.
fn tool_xml(argv: &[&str], timeout: Duration) -> Result<String, String> {
    let deadline = Deadline::after(timeout);
    let (program, args) = argv.split_first().ok_or("no program")?;
    let out = Cmd::new(Path::new(&sbin()).join(program))
        .args(args)
        .env("TZ", "UTC")
        .run_status(&deadline)
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        // crm_mon says why in its XML (`<error>` lines): its words, without the tags.
        return Err(format!(
            "{program} failed ({}): {}",
            out.status,
            without_tags(&out.text)
        ));
    }
    // stdout and stderr come interleaved: the document is from its first `<` to its last `>`.
    let start = out.text.find('<').ok_or("no XML in its output")?;
    let end = out.text.rfind('>').map_or(out.text.len(), |e| e + 1);
    Ok(out.text.get(start..end).unwrap_or_default().to_owned())
}

/// A tool's output as one line: the text between tags, trimmed, joined by "; ".
fn without_tags(text: &str) -> String {
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push('\n');
            }
            '>' => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let lines: Vec<&str> = plain
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

/// The local instance over SQL, and the local files, as the resource's parameters say.
fn local_instance(inputs: &mut Inputs, primitive: &Primitive, timeout: Duration) {
    let params = match Params::from_lookup(|name| primitive.params.get(name).cloned()) {
        Ok(p) => p,
        Err(e) => {
            inputs.unavailable.push(Unavailable {
                source: format!("the parameters of {}", primitive.id),
                error: e.to_string(),
            });
            return;
        }
    };
    inputs.files = match local_files(&params) {
        Ok(files) => Some(files),
        Err(e) => {
            inputs.unavailable.push(Unavailable {
                source: "this node's rewind marker and kept folders".into(),
                error: e,
            });
            None
        }
    };
    let instance = Instance::resolve(&params).map_err(|(_, e)| e.to_string());
    let deadline = Deadline::after(timeout);
    let sql = instance.and_then(|i| {
        let session = i.connect(&deadline).map_err(|e| e.to_string())?;
        local_sql(&session, &deadline).map_err(|e| e.to_string())
    });
    match sql {
        Ok(sql) => inputs.sql = Some(sql),
        Err(e) => inputs.unavailable.push(Unavailable {
            source: "the local instance (SQL)".into(),
            error: e,
        }),
    }
}

fn local_files(params: &Params) -> Result<LocalFiles, String> {
    let datadir = &params.datadir;
    // A marker whose content is not pgha's still marks the directory.
    let marker = marker::is_marked(datadir).then(|| match marker::read(datadir) {
        Some(m) if !m.operation.is_empty() => Marker {
            operation: m.operation,
            started: m.started,
        },
        _ => Marker {
            operation: "rewind".into(),
            started: String::new(),
        },
    });
    let keep_dir = forensics::keep_dir(params.rewind_keep_dir.as_deref(), datadir);
    let kept = match kept::open_existing_keep_dir(&keep_dir) {
        Ok(dir) => kept::list(&dir)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|run| (run.name, crate::clock::utc(run.modified).0))
            .collect(),
        Err(_) if !keep_dir.exists() => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    Ok(LocalFiles { marker, kept })
}

/// The instance's own positions (one round trip), and on a primary its standbys.
const POSITIONS: &str = "SELECT pg_is_in_recovery(), \
    CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() END, \
    CASE WHEN NOT pg_is_in_recovery() \
      THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int \
      ELSE coalesce((SELECT received_tli FROM pg_stat_wal_receiver), \
                    (SELECT timeline_id FROM pg_control_checkpoint())) END, \
    pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), \
    extract(epoch FROM now() - pg_last_xact_replay_timestamp()), \
    CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END, \
    (SELECT status FROM pg_stat_wal_receiver)";

const REPLICATION: &str = "SELECT application_name, state, coalesce(sync_state, ''), \
    replay_lsn, extract(epoch FROM replay_lag) FROM pg_stat_replication";

fn local_sql(session: &Session, deadline: &Deadline) -> Result<LocalSql, SqlError> {
    let rows = session.text_rows(POSITIONS, deadline)?;
    let row = rows.first().cloned().unwrap_or_default();
    let field = |i: usize| row.get(i).cloned().flatten();
    let lsn = |i: usize| field(i).and_then(|t| t.parse::<Lsn>().ok());
    let mut sql = LocalSql {
        in_recovery: field(0).as_deref() == Some("t"),
        current_lsn: lsn(1),
        timeline: field(2).and_then(|t| t.parse().ok()),
        received_lsn: lsn(3),
        replayed_lsn: lsn(4),
        replay_age: field(5).and_then(|t| t.parse().ok()),
        replay_paused: field(6).as_deref() == Some("t"),
        receiver: field(7),
        replication: Vec::new(),
    };
    if !sql.in_recovery {
        sql.replication = session
            .text_rows(REPLICATION, deadline)?
            .into_iter()
            .map(|r| {
                let f = |i: usize| r.get(i).cloned().flatten();
                Replica {
                    application_name: f(0).unwrap_or_default(),
                    state: f(1).unwrap_or_default(),
                    sync_state: f(2).unwrap_or_default(),
                    replay_lsn: f(3).and_then(|t| t.parse().ok()),
                    replay_lag: f(4).and_then(|t| t.parse().ok()),
                }
            })
            .collect();
    }
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_crm_mon_says_why_without_its_tags() {
        let out = "<pacemaker-result api-version=\"2.25\">\n  <status code=\"102\" message=\"Not connected\">\n    <errors>\n      <error>crm_mon: Error: cluster is not available on this node</error>\n    </errors>\n  </status>\n</pacemaker-result>\n";
        assert_eq!(
            without_tags(out),
            "crm_mon: Error: cluster is not available on this node"
        );
        assert_eq!(without_tags("plain words\n"), "plain words");
    }
}
