//! The primary's monitor keeps the promotion scores (`paf.md` §4.3), writing only changes.
//!
//! Reading every node's score costs one `crm_attribute` per node, on every monitor. pgha
//! remembers what it wrote in a small file under `HA_RSCTMP` (a tmpfs, emptied at boot) and
//! talks to Pacemaker only when what it sees of replication differs from what it wrote, or
//! when that memory is older than [`CACHE_TTL`] (someone else may have changed a score). So a
//! monitor whose scores did not change starts no process.
//!
//! A partition node that does not replicate gets −1000 only when the previous look found it
//! missing too: right after a promotion the standbys are still reconnecting, and marking them
//! all unpromotable then would leave a second failure within the next monitor interval with
//! no candidate at all (PAF has that gap).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::Result;
use super::Ctx;
use crate::election::{desired_scores, Replica, DISCONNECTED_SCORE, SCORE_NEVER};
use crate::instance::Instance;

/// How long remembered scores are trusted without asking Pacemaker.
const CACHE_TTL: Duration = Duration::from_secs(300);

/// `pg_stat_replication`, from the functions behind the view: a monitor runs on a fresh
/// backend, where expanding the view costs more than the query. The last column is when the
/// walsender's connection started (microseconds since the epoch).
const REPLICATION_SQL: &str = "SELECT a.application_name, w.state, w.write_lsn, w.sync_state, \
     pg_wal_lsn_diff(pg_current_wal_lsn(), w.write_lsn)::bigint, \
     (extract(epoch FROM a.backend_start) * 1000000)::bigint \
     FROM pg_stat_get_wal_senders() w, pg_stat_get_activity(w.pid) a";

/// What the primary last wrote.
#[derive(Debug, Default, PartialEq, Eq)]
struct Remembered {
    written_at: u64,
    partition: Vec<String>,
    scores: Vec<(String, i64)>,
    /// Nodes found not replicating once, whose −1000 waits for a second look.
    deferred: Vec<String>,
    /// The standbys' connections then (`<application_name>@<start>`).
    connections: Vec<String>,
}

pub fn maintain(ctx: &Ctx, instance: &Instance) -> Result<()> {
    let (replicas, connections) = replicas(ctx, instance)?;
    let node = ctx.node()?.to_owned();
    let cache = cache_path(&ctx.env.instance);
    let now = unix_now();
    let memory = load(&cache);
    if let Some(memory) = &memory {
        let fresh = now.saturating_sub(memory.written_at) < CACHE_TTL.as_secs();
        // A standby that (re)connected since the scores were written may have left the
        // cluster and come back meanwhile: Pacemaker dropped its score then, and the
        // partition remembered may not even name it.
        let reconnected = connections.iter().any(|c| !memory.connections.contains(c));
        let wanted = desired_scores(&node, &memory.partition, &replicas, instance.params.maxlag);
        if fresh && !reconnected && memory.deferred.is_empty() && wanted == memory.scores {
            return Ok(());
        }
    }
    let previously_deferred = memory.map(|m| m.deferred).unwrap_or_default();
    let mut deferred = Vec::new();
    let partition = ctx.cluster.partition_nodes()?;
    let wanted = desired_scores(&node, &partition, &replicas, instance.params.maxlag);
    for (target, score) in &wanted {
        let current = ctx.cluster.promotion_score(target)?;
        // A canceled switchover left -INFINITY on its target (it outweighs the move
        // constraint); it stays until that node replicates again, or the switchover would be
        // retried, and refused, on every monitor.
        if current == Some(SCORE_NEVER) && *score == DISCONNECTED_SCORE {
            continue;
        }
        let first_miss = *score == DISCONNECTED_SCORE && !previously_deferred.contains(target);
        if current != Some(*score) && first_miss && current.is_some_and(|c| c > 0) {
            log::info!(
                "{target} does not replicate yet; its score {current:?} waits for the next look"
            );
            deferred.push(target.clone());
            continue;
        }
        if current != Some(*score) {
            log::info!(
                "promotion score of {target}: {} -> {score} ({})",
                current.map_or_else(|| "unset".to_owned(), |s| s.to_string()),
                why(&node, target, &replicas)
            );
            ctx.cluster.set_promotion_score(target, *score)?;
        }
    }
    let memory = Remembered {
        written_at: now,
        partition,
        scores: wanted,
        deferred,
        connections,
    };
    if let Err(e) = save(&cache, &memory) {
        log::warn!(
            "could not remember promotion scores in {}: {e}",
            cache.display()
        );
    }
    Ok(())
}

/// Forgets what was written: after a role change on this node the scores in the cluster may
/// have been rewritten by another primary.
pub fn forget(ctx: &Ctx) {
    let cache = cache_path(&ctx.env.instance);
    match std::fs::remove_file(&cache) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("could not remove {}: {e}", cache.display()),
    }
}

fn why(local: &str, target: &str, replicas: &[Replica]) -> String {
    if target == local {
        return "primary".into();
    }
    match replicas.iter().find(|r| r.application_name == target) {
        Some(r) => format!(
            "{} {}, wrote up to {}, lag {} bytes",
            r.sync_state,
            r.state,
            r.write_lsn.map_or_else(|| "?".into(), |l| l.to_string()),
            r.lag
        ),
        None => "not connected to the primary".into(),
    }
}

/// The standbys connected to this primary, and their connections
/// (`<application_name>@<start>`), each new one a sign the standby may have been away.
fn replicas(ctx: &Ctx, instance: &Instance) -> Result<(Vec<Replica>, Vec<String>)> {
    let session = instance.connect(&ctx.deadline)?;
    let rows = session.text_rows(REPLICATION_SQL, &ctx.deadline)?;
    let connections = rows
        .iter()
        .map(|row| {
            let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            format!("{}@{}", text(0), text(5))
        })
        .filter(|c| !c.contains(char::is_whitespace))
        .collect();
    let replicas = rows.iter().map(|row| replica_from_text(row)).collect();
    Ok((replicas, connections))
}

/// One `pg_stat_replication` row as text; NULLs (a walsender still starting) read as
/// nothing written and no lag.
fn replica_from_text(row: &[Option<String>]) -> Replica {
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Replica {
        application_name: text(0),
        state: text(1),
        write_lsn: text(2).parse().ok(),
        sync_state: text(3),
        lag: text(4)
            .parse::<i64>()
            .ok()
            .and_then(|l| u64::try_from(l).ok())
            .unwrap_or(0),
    }
}

fn cache_path(instance: &str) -> PathBuf {
    let dir = std::env::var("HA_RSCTMP").unwrap_or_else(|_| "/run/resource-agents".into());
    Path::new(&dir).join(format!("pgha-{instance}.scores"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn load(path: &Path) -> Option<Remembered> {
    parse(&std::fs::read_to_string(path).ok()?)
}

fn save(path: &Path, memory: &Remembered) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(memory))?;
    std::fs::rename(tmp, path)
}

fn render(memory: &Remembered) -> String {
    let mut text = format!(
        "written_at {}\npartition {}\n",
        memory.written_at,
        memory.partition.join(" ")
    );
    for (node, score) in &memory.scores {
        text.push_str(&format!("score {node} {score}\n"));
    }
    if !memory.deferred.is_empty() {
        text.push_str(&format!("deferred {}\n", memory.deferred.join(" ")));
    }
    if !memory.connections.is_empty() {
        text.push_str(&format!("connections {}\n", memory.connections.join(" ")));
    }
    text
}

fn parse(text: &str) -> Option<Remembered> {
    let mut memory = Remembered::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next()? {
            "written_at" => memory.written_at = words.next()?.parse().ok()?,
            "partition" => memory.partition = words.map(str::to_owned).collect(),
            "deferred" => memory.deferred = words.map(str::to_owned).collect(),
            "connections" => memory.connections = words.map(str::to_owned).collect(),
            "score" => {
                let node = words.next()?.to_owned();
                memory.scores.push((node, words.next()?.parse().ok()?));
            }
            _ => return None,
        }
    }
    (memory.written_at > 0).then_some(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_round_trips() {
        let memory = Remembered {
            written_at: 1_700_000_000,
            partition: vec!["n1".into(), "n2".into()],
            scores: vec![("n1".into(), 1001), ("n2".into(), -1000)],
            deferred: vec!["n3".into()],
            connections: vec!["n2@1700000000123456".into()],
        };
        assert_eq!(parse(&render(&memory)), Some(memory));
    }

    #[test]
    fn replication_rows_as_text() {
        let row = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_owned)).collect::<Vec<_>>();
        let r = replica_from_text(&row(&[
            Some("n2"),
            Some("streaming"),
            Some("0/3000060"),
            Some("sync"),
            Some("96"),
        ]));
        assert_eq!(r.application_name, "n2");
        assert_eq!(r.write_lsn, Some(crate::lsn::Lsn(0x300_0060)));
        assert_eq!(r.lag, 96);
        let r = replica_from_text(&row(&[
            Some("n3"),
            Some("startup"),
            None,
            Some("async"),
            None,
        ]));
        assert_eq!(r.write_lsn, None);
        assert_eq!(r.lag, 0);
    }

    #[test]
    fn damaged_memory_is_ignored() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("written_at x\n"), None);
        assert_eq!(parse("written_at 5\nscore n1\n"), None);
        assert_eq!(parse("garbage\n"), None);
    }
}
