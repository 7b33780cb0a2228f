//! What a rejoin is told: where the source is ([`Source`], [`SourceConninfo`]) and how to go
//! about it ([`RewindSettings`], [`Fallback`]), from the agent's parameters or from
//! `pgha rewind`'s command line. Plain data: nothing here reads the system.

use std::path::PathBuf;
use std::time::Duration;

use super::config;
pub use crate::ocf::params::Engine;
use crate::ocf::params::{Params, SyncMethod, DEFAULT_REWIND_ENGINE};

/// How to reach the current primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConninfo {
    /// For pgha's checks and pg_rewind: a normal connection, as a superuser or a role with
    /// pg_rewind's four grants (`rewind_user`).
    pub sql: String,
    /// For a re-clone (`pg_basebackup`) and for `primary_conninfo`: a role with REPLICATION.
    pub replication: String,
}

impl SourceConninfo {
    /// The current primary at `host` (an address, or the VIP), as the agent reaches it:
    /// pgha's checks and pg_rewind as `rewind_user` on `pgport`, a re-clone with the node's
    /// own `primary_conninfo` (a REPLICATION role, normally through the VIP). The checks and
    /// pg_rewind authenticate the primary with the TLS keywords of `rewind_conninfo`, else
    /// as streaming does, with those of `primary_conninfo` (`sslmode=verify-full`, its root,
    /// client certificate and CRL).
    pub fn for_primary(host: &str, params: &Params, primary_conninfo: &str) -> SourceConninfo {
        use crate::instance::conninfo::{get, quote};
        let mut sql = format!(
            "host={} port={} user={} dbname=postgres",
            quote(host),
            params.pgport,
            quote(&params.rewind_user)
        );
        let tls_from = params
            .rewind_conninfo
            .as_deref()
            .unwrap_or(primary_conninfo);
        for key in crate::instance::tls::KEYWORDS {
            if let Some(value) = get(tls_from, key) {
                sql.push_str(&format!(" {key}={}", quote(&value)));
            }
        }
        SourceConninfo {
            sql,
            replication: primary_conninfo.to_owned(),
        }
    }

    /// One connection string for both uses.
    pub fn new(conninfo: impl Into<String>) -> SourceConninfo {
        let conninfo = conninfo.into();
        SourceConninfo {
            sql: conninfo.clone(),
            replication: conninfo,
        }
    }
}

/// The source: a running primary, or (for `pgha rewind --source-pgdata`) a stopped data
/// directory, which pg_rewind reads directly and from which no re-clone is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Server(SourceConninfo),
    Pgdata(PathBuf),
}

/// What to do when pg_rewind cannot, did not, or would cost more than a re-clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// `pg_basebackup` into a new directory, swapped in once complete.
    Reclone,
    /// Fail, and leave the node to the operator.
    None,
}

/// How a rewind is done; [`RewindSettings::from_params`] for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewindSettings {
    /// Rewind (or re-clone) a diverged node without asking (`rewind`).
    pub automatic: bool,
    /// pg_rewind's own time limit, within the operation's deadline (`rewind_timeout`).
    pub time_limit: Option<Duration>,
    pub fallback: Fallback,
    /// Node-local files, relative to the data directory (`rewind_keep_files`).
    pub keep_files: Vec<PathBuf>,
    /// Where each rewind's folder goes (`rewind_keep_dir`); default: next to the data
    /// directory, `<parent>/pgha-rewind`.
    pub keep_dir: Option<PathBuf>,
    /// How many of the node's kept folders stay (`rewind_keep_count`), and for how long
    /// (`rewind_keep_days`); zero: no limit.
    pub keep_count: usize,
    pub keep_age: Duration,
    /// The `primary_conninfo` to write; `None` keeps the node's own setting.
    pub primary_conninfo: Option<String>,
    /// Write `standby.signal` (and `primary_conninfo`) afterwards: always for the agent,
    /// `-R` for `pgha rewind`.
    pub write_standby: bool,
    /// Run single-user crash recovery on an uncleanly stopped primary first.
    pub crash_recovery: bool,
    pub dry_run: bool,
    pub no_sync: bool,
    /// `--sync-method` (pg_rewind ≥ 17; refused before anything changes on an older one):
    /// `None` leaves pg_rewind's default.
    pub sync_method: Option<SyncMethod>,
    pub debug: bool,
    /// `--restore-target-wal`: `None` decides from the server's `restore_command`.
    pub restore_target_wal: Option<bool>,
    /// `--config-file`: `None` derives it (the configuration directory on Debian).
    pub config_file: Option<PathBuf>,
    /// `rewind_engine`, `--engine`.
    pub engine: Engine,
}

impl Default for RewindSettings {
    fn default() -> RewindSettings {
        RewindSettings {
            automatic: true,
            time_limit: None,
            fallback: Fallback::Reclone,
            keep_files: config::DEFAULT_KEEP.iter().map(PathBuf::from).collect(),
            keep_dir: None,
            keep_count: 0,
            keep_age: Duration::ZERO,
            primary_conninfo: None,
            write_standby: true,
            crash_recovery: true,
            dry_run: false,
            no_sync: false,
            sync_method: None,
            debug: false,
            restore_target_wal: None,
            config_file: None,
            engine: DEFAULT_REWIND_ENGINE,
        }
    }
}

impl RewindSettings {
    /// The agent's settings, from its parameters.
    pub fn from_params(params: &Params) -> RewindSettings {
        RewindSettings {
            automatic: params.rewind,
            time_limit: params.rewind_timeout,
            fallback: if params.rewind_fallback {
                Fallback::Reclone
            } else {
                Fallback::None
            },
            sync_method: params.rewind_sync_method,
            engine: params.rewind_engine,
            keep_files: params.rewind_keep_files.clone(),
            keep_dir: params.rewind_keep_dir.clone(),
            keep_count: params.rewind_keep_count,
            keep_age: Duration::from_secs(u64::from(params.rewind_keep_days) * 86_400),
            ..RewindSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pgha's checks and pg_rewind connect with `primary_conninfo`'s TLS keywords; before,
    /// they got host, port and user only, and a host that answered for the primary was
    /// believed in clear text.
    #[test]
    fn finding_4_the_source_conninfo_keeps_the_tls_keywords() {
        let params = Params::from_lookup(|_| None).unwrap();
        let primary = "host=vip user=rep application_name=pg1 password=x sslmode=verify-full \
                       sslrootcert='/etc/pg ca/root.crt' sslcert=/c.crt sslkey=/c.key \
                       sslcrl=/r.crl";
        let c = SourceConninfo::for_primary("pg2", &params, primary);
        let get = |key| crate::instance::conninfo::get(&c.sql, key);
        assert_eq!(get("host").as_deref(), Some("pg2"));
        assert_eq!(get("user").as_deref(), Some("postgres"));
        assert_eq!(get("sslmode").as_deref(), Some("verify-full"));
        assert_eq!(get("sslrootcert").as_deref(), Some("/etc/pg ca/root.crt"));
        assert_eq!(get("sslcert").as_deref(), Some("/c.crt"));
        assert_eq!(get("sslkey").as_deref(), Some("/c.key"));
        assert_eq!(get("sslcrl").as_deref(), Some("/r.crl"));
        // Only TLS is taken over: the replication role's password stays out of it.
        assert_eq!(get("password"), None);
        assert_eq!(c.replication, primary);
        let plain = SourceConninfo::for_primary("pg2", &params, "host=vip user=rep");
        assert!(!plain.sql.contains("ssl"), "{}", plain.sql);
        // rewind_conninfo replaces primary_conninfo's TLS keywords for the checks and
        // pg_rewind; the re-clone keeps primary_conninfo, as streaming.
        let params = Params::from_lookup(|name| {
            (name == "rewind_conninfo").then(|| "sslmode=verify-ca sslrootcert=/r2".to_owned())
        })
        .unwrap();
        let c = SourceConninfo::for_primary("pg2", &params, primary);
        let get = |key| crate::instance::conninfo::get(&c.sql, key);
        assert_eq!(get("sslmode").as_deref(), Some("verify-ca"));
        assert_eq!(get("sslrootcert").as_deref(), Some("/r2"));
        assert_eq!(get("sslcert"), None);
        assert_eq!(c.replication, primary);
    }
}
