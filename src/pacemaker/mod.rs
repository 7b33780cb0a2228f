//! Pacemaker's side: node names, membership and node attributes, through its command-line
//! tools (`crm_node`, `crm_attribute`, `attrd_updater`) found in `HA_SBIN_DIR`.
//!
//! Actions talk to the small [`Cluster`] trait; [`Tools`] is the real implementation. Tests of
//! the actions may point `HA_SBIN_DIR` at scripts; what the cluster really does is proven on
//! the cluster harness (`tests/cluster/`). Interfaces as on Pacemaker 2.1.5
//! (`ocf-pacemaker.md` §2): `crm_attribute --promotion` (lifetime reboot), exit 105 when an
//! attribute does not exist.

use std::path::PathBuf;

use crate::deadline::{Deadline, Expired};
use crate::process::{Cmd, ToolError};

/// How often an asynchronous attribute update is read back: attrd applies it after one
/// round trip through Corosync, usually a few milliseconds, and the election waits on it.
const POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Pacemaker's "no such attribute" (`CRM_EX_NOSUCH`).
const EXIT_NO_SUCH: i32 = 105;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{0}")]
    Unconfirmed(String),
    #[error("{tool} printed {output:?}, which is not {expected}")]
    Parse {
        tool: &'static str,
        output: String,
        expected: &'static str,
    },
    /// This node's name, as `from` gave it, cannot be used (see [`check_node_name`]).
    #[error("the node name from {from} is refused: {why}")]
    NodeName { from: &'static str, why: String },
}

/// What the actions need from the cluster.
pub trait Cluster {
    /// This node's name as Pacemaker knows it.
    fn local_node(&self) -> Result<String, ClusterError>;
    /// Members of this node's partition.
    fn partition_nodes(&self) -> Result<Vec<String>, ClusterError>;
    /// The promotion score (`master-<rsc>`) of a node, if set.
    fn promotion_score(&self, node: &str) -> Result<Option<i64>, ClusterError>;
    fn set_promotion_score(&self, node: &str, score: i64) -> Result<(), ClusterError>;
    /// Private attrd attributes (`attrd_updater -p`, never written to the CIB), several at
    /// once, each `(name, node)`; the answers in that order.
    fn private_attributes(
        &self,
        queries: &[(&str, &str)],
    ) -> Result<Vec<Option<String>>, ClusterError>;
    /// Sets (`Some`) or deletes (`None`) private attributes of `node`, all at once; returns
    /// once the value of `confirm`, if named, can be read back (attrd applies updates
    /// asynchronously: `--wait` came in 2.1.6).
    fn update_private_attributes(
        &self,
        node: &str,
        changes: &[(&str, Option<&str>)],
        confirm: Option<&str>,
    ) -> Result<(), ClusterError>;
}

/// The real cluster, through Pacemaker's tools.
pub struct Tools<'a> {
    sbin: PathBuf,
    resource: String,
    deadline: &'a Deadline,
}

impl<'a> Tools<'a> {
    pub fn new(sbin: impl Into<PathBuf>, resource: &str, deadline: &'a Deadline) -> Tools<'a> {
        Tools {
            sbin: sbin.into(),
            resource: resource.to_owned(),
            deadline,
        }
    }

    fn tool(&self, name: &str) -> Cmd {
        Cmd::new(self.sbin.join(name))
    }

    fn promotion_arg(&self) -> String {
        format!("--promotion={}", self.resource)
    }
}

impl Tools<'_> {
    fn attrd(&self, name: &str, node: &str) -> Cmd {
        // -N always: on 2.1.5 a query without it answers for every node.
        self.tool("attrd_updater")
            .args(["-p", "-n", name, "-N", node])
    }

    /// One private attribute, `None` when it is not set.
    fn private_attribute(&self, name: &str, node: &str) -> Result<Option<String>, ClusterError> {
        let out = self.attrd(name, node).arg("-Q").run_status(self.deadline)?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(parse_attrd_value(&out.text).filter(|v| !v.is_empty()))
    }

    fn update_private(
        &self,
        name: &str,
        node: &str,
        value: Option<&str>,
        confirm: bool,
    ) -> Result<(), ClusterError> {
        let Some(value) = value else {
            self.attrd(name, node).arg("-D").run(self.deadline)?;
            return Ok(());
        };
        self.attrd(name, node)
            .args(["-U", value])
            .run(self.deadline)?;
        if !confirm {
            return Ok(());
        }
        self.deadline
            .poll::<_, Expired>(
                &format!("attribute {name} of {node} to read back"),
                POLL,
                || {
                    Ok(self
                        .private_attribute(name, node)
                        .ok()
                        .flatten()
                        .filter(|v| v == value)
                        .map(|_| ()))
                },
            )
            .map_err(|e| ClusterError::Unconfirmed(e.to_string()))
    }
}

impl Cluster for Tools<'_> {
    fn local_node(&self) -> Result<String, ClusterError> {
        let out = self.tool("crm_node").arg("-n").run(self.deadline)?;
        parse_node_name(&out.text)
    }

    fn partition_nodes(&self) -> Result<Vec<String>, ClusterError> {
        let out = self.tool("crm_node").arg("-p").run(self.deadline)?;
        Ok(parse_partition(&out.text))
    }

    fn promotion_score(&self, node: &str) -> Result<Option<i64>, ClusterError> {
        let result = self
            .tool("crm_attribute")
            .args([self.promotion_arg().as_str(), "-N", node, "-G", "-q"])
            .run(self.deadline);
        match result {
            Ok(out) => parse_score(&out.text).map(Some),
            Err(e) if e.exit_code() == Some(EXIT_NO_SUCH) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn set_promotion_score(&self, node: &str, score: i64) -> Result<(), ClusterError> {
        let value = match score {
            s if s <= -1_000_000 => "-INFINITY".to_owned(),
            s if s >= 1_000_000 => "INFINITY".to_owned(),
            s => s.to_string(),
        };
        self.tool("crm_attribute")
            .args([self.promotion_arg().as_str(), "-N", node, "-v", &value])
            .run(self.deadline)?;
        Ok(())
    }

    fn private_attributes(
        &self,
        queries: &[(&str, &str)],
    ) -> Result<Vec<Option<String>>, ClusterError> {
        // One attrd_updater per query, all at once: each costs a process start and a round
        // trip to attrd, and the election waits on them.
        std::thread::scope(|scope| {
            let running: Vec<_> = queries
                .iter()
                .map(|(name, node)| scope.spawn(move || self.private_attribute(name, node)))
                .collect();
            running.into_iter().map(joined).collect()
        })
    }

    fn update_private_attributes(
        &self,
        node: &str,
        changes: &[(&str, Option<&str>)],
        confirm: Option<&str>,
    ) -> Result<(), ClusterError> {
        std::thread::scope(|scope| {
            let running: Vec<_> = changes
                .iter()
                .map(|(name, value)| {
                    let confirm = confirm == Some(*name);
                    scope.spawn(move || self.update_private(name, node, *value, confirm))
                })
                .collect();
            running.into_iter().try_for_each(joined)
        })
    }
}

/// A scoped thread's result; a panic in it is an error like the others.
fn joined<T>(
    thread: std::thread::ScopedJoinHandle<'_, Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    thread
        .join()
        .unwrap_or_else(|_| Err(ClusterError::Unconfirmed("a tool's thread panicked".into())))
}

/// The name of the node this agent runs on: what Pacemaker passed, else `crm_node -n`, else
/// the kernel's host name (a hand run on a node with no cluster); checked by
/// [`check_node_name`], since it names folders and goes into `primary_conninfo`.
pub fn local_node_name(
    on_node: Option<&str>,
    cluster: &dyn Cluster,
) -> Result<String, ClusterError> {
    let checked = |from: &'static str, name: String| match check_node_name(&name) {
        Ok(()) => Ok(name),
        Err(why) => Err(ClusterError::NodeName { from, why }),
    };
    if let Some(name) = on_node {
        return checked("OCF_RESKEY_CRM_meta_on_node", name.to_owned());
    }
    match cluster.local_node() {
        Ok(name) => Ok(name),
        Err(e) => {
            log::debug!("crm_node -n failed ({e}); using the host name");
            let host = nix::sys::utsname::uname()
                .map(|u| u.nodename().to_string_lossy().into_owned())
                .unwrap_or_default();
            checked("the host name", host)
        }
    }
}

/// Refuses a node name that could not safely name a folder (`<keep_dir>/<node>-<stamp>`) or
/// sit unquoted in a connection string: Pacemaker's node names are host names, so only
/// ASCII letters, digits, `.`, `_` and `-`, at most 255 bytes, and never `.` or `..`. The
/// error says why, for the exit reason.
pub fn check_node_name(name: &str) -> Result<(), String> {
    const MAX: usize = 255;
    if name.is_empty() {
        return Err("a node name cannot be empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a node name"));
    }
    if name.len() > MAX {
        return Err(format!(
            "a node name has at most {MAX} characters, not {}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "node name {name:?} holds {c:?}: only letters, digits, '.', '_' and '-' are allowed"
        )),
        None => Ok(()),
    }
}

#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_node_name(text: &str) -> Result<String, ClusterError> {
    let name = text.trim();
    check_node_name(name).map_err(|why| ClusterError::NodeName {
        from: "crm_node -n",
        why,
    })?;
    Ok(name.to_owned())
}

/// `attrd_updater -Q` prints `name="…" host="…" value="…"`.
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_attrd_value(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("value=\""))?;
    let start = line.find("value=\"")? + "value=\"".len();
    let rest = line.get(start..)?;
    Some(rest.get(..rest.rfind('"')?)?.to_owned())
}

#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_partition(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// `crm_attribute -G -q` prints the bare value; INFINITY scores print as words.
#[doc(hidden)] // pub for the fuzz targets (fuzz/); not an API
pub fn parse_score(text: &str) -> Result<i64, ClusterError> {
    let value = text.trim();
    match value.to_ascii_uppercase().as_str() {
        "INFINITY" | "+INFINITY" => Ok(1_000_000),
        "-INFINITY" => Ok(-1_000_000),
        _ => value.parse().map_err(|_| ClusterError::Parse {
            tool: "crm_attribute -G -q",
            output: text.into(),
            expected: "a score",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        assert_eq!(parse_score("1001\n").unwrap(), 1001);
        assert_eq!(parse_score("-1000").unwrap(), -1000);
        assert_eq!(parse_score("INFINITY").unwrap(), 1_000_000);
        assert_eq!(parse_score("-INFINITY").unwrap(), -1_000_000);
        assert!(parse_score("scope=status  name=master-pgsqld value=1000").is_err());
    }

    #[test]
    fn attrd_query_output() {
        let line = "name=\"lsn_location-pgsqld\" host=\"srv1\" value=\"1#123\"\n";
        assert_eq!(parse_attrd_value(line).as_deref(), Some("1#123"));
        assert_eq!(
            parse_attrd_value("name=\"x\" host=\"h\" value=\"\"").as_deref(),
            Some("")
        );
        assert_eq!(parse_attrd_value("error"), None);
    }

    #[test]
    fn partition_is_whitespace_separated() {
        assert_eq!(
            parse_partition("srv1 srv2 srv3\n"),
            ["srv1", "srv2", "srv3"]
        );
        assert!(parse_partition("\n").is_empty());
    }

    #[test]
    fn node_name_is_one_word() {
        assert_eq!(parse_node_name("node1\n").unwrap(), "node1");
        assert!(parse_node_name("").is_err());
        assert!(parse_node_name("error: not connected").is_err());
    }

    #[test]
    fn finding_9_host_names_are_node_names() {
        for name in [
            "pg1",
            "node-2.example.com",
            "db_3",
            "A",
            "x".repeat(255).as_str(),
        ] {
            assert_eq!(check_node_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn finding_9_node_names_that_could_escape_a_folder_are_refused() {
        let long = "x".repeat(256);
        for name in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "/abs",
            "a\0b",
            "a\nb",
            "a\u{1b}[2Jb",
            "a b",
            "pg1' host=evil",
            "naïve",
            long.as_str(),
        ] {
            let err = check_node_name(name).unwrap_err();
            assert!(!err.is_empty(), "{name:?}");
        }
        let err = check_node_name("a/b").unwrap_err();
        assert!(err.contains("'/'"), "{err}");
    }

    #[test]
    fn finding_9_node_name_from_pacemaker_is_checked() {
        // Pacemaker's value is used as given: no tool is run (there is none here).
        let deadline = Deadline::after(std::time::Duration::from_secs(5));
        let cluster = Tools::new("/nonexistent", "pgsqld", &deadline);
        let err = local_node_name(Some("../../etc"), &cluster).unwrap_err();
        assert!(
            err.to_string().contains("OCF_RESKEY_CRM_meta_on_node"),
            "{err}"
        );
        assert_eq!(local_node_name(Some("pg1"), &cluster).unwrap(), "pg1");
        assert!(parse_node_name("pg/1\n").is_err());
    }
}
