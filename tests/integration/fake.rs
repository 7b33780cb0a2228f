//! Stand-ins for the Pacemaker tools the agent calls, for `HA_SBIN_DIR`.
//!
//! Shell scripts that answer only the forms the agent uses (Pacemaker 2.1.5 syntax, as in
//! `src/pacemaker/mod.rs`) and keep their state in files, so a test can set the partition and
//! the promotion scores and read back what the agent wrote. Any other invocation exits 64
//! with a message, so a new call shows up as a failure instead of a silent "no". What the
//! real cluster does is tested in `tests/cluster/`.
//!
//! ```text
//! <dir>/sbin/crm_node        -n: this node's name; -p: the partition's members
//! <dir>/sbin/crm_attribute   --promotion=RSC -N NODE -G -q | -v VALUE | -D
//! <dir>/sbin/attrd_updater   -p -n NAME -N NODE -Q | -U VALUE | -D
//! <dir>/sbin/crm_mon         --one-shot --output-as=xml: state/crm_mon.xml, after
//!                            state/crm_mon.delay seconds if set (pgha status)
//! <dir>/sbin/cibadmin        --query --scope resources: state/cib-resources.xml
//! <dir>/state/node, partition, promotion-RSC@NODE, private-NAME@NODE,
//!             calls (one line per invocation)
//! ```
//!
//! Tests of several nodes give every node's agent the same fake (`Agent::cluster`), as
//! they would share one Pacemaker.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const CRM_NODE: &str = r#"
echo "crm_node $*" >> "$STATE/calls"
case "$1" in
  -n|--name) cat "$STATE/node" ;;
  -p|--partition) cat "$STATE/partition" ;;
  *) echo "fake crm_node: unsupported arguments: $*" >&2; exit 64 ;;
esac
"#;

const CRM_ATTRIBUTE: &str = r#"
echo "crm_attribute $*" >> "$STATE/calls"
rsc= node= op= value=
while [ $# -gt 0 ]; do
  case "$1" in
    --promotion=*) rsc=${1#--promotion=} ;;
    -N|--node) shift; node=$1 ;;
    -G|--query) op=get ;;
    -q|--quiet) ;;
    -v|--update) shift; op=set; value=$1 ;;
    -D|--delete) op=delete ;;
    *) echo "fake crm_attribute: unsupported argument: $1" >&2; exit 64 ;;
  esac
  shift
done
if [ -z "$rsc" ] || [ -z "$node" ] || [ -z "$op" ]; then
  echo "fake crm_attribute: need --promotion=RSC, -N NODE and -G, -v or -D" >&2
  exit 64
fi
file="$STATE/promotion-$rsc@$node"
case "$op" in
  get)
    if [ ! -f "$file" ]; then
      echo "crm_attribute: Error performing operation: No such device or address" >&2
      exit 105
    fi
    cat "$file" ;;
  set) printf '%s\n' "$value" > "$file" ;;
  delete) rm -f "$file" ;;
esac
"#;

const ATTRD_UPDATER: &str = r#"
echo "attrd_updater $*" >> "$STATE/calls"
name= node= op= value= private=
while [ $# -gt 0 ]; do
  case "$1" in
    -p|--private) private=1 ;;
    -n|--name) shift; name=$1 ;;
    -N|--node) shift; node=$1 ;;
    -Q|--query) op=query ;;
    -U|--update) shift; op=update; value=$1 ;;
    -D|--delete) op=delete ;;
    *) echo "fake attrd_updater: unsupported argument: $1" >&2; exit 64 ;;
  esac
  shift
done
if [ -z "$private" ] || [ -z "$name" ] || [ -z "$node" ] || [ -z "$op" ]; then
  echo "fake attrd_updater: need -p, -n NAME, -N NODE and -Q, -U or -D" >&2
  exit 64
fi
file="$STATE/private-$name@$node"
case "$op" in
  query)
    if [ ! -f "$file" ]; then
      echo "attrd_updater: Could not query value of $name: attribute does not exist" >&2
      exit 105
    fi
    printf 'name="%s" host="%s" value="%s"\n' "$name" "$node" "$(cat "$file")" ;;
  update) printf '%s' "$value" > "$file" ;;
  delete) rm -f "$file" ;;
esac
"#;

const CRM_MON: &str = r#"
echo "crm_mon $*" >> "$STATE/calls"
[ "$*" = "--one-shot --output-as=xml" ] || { echo "fake crm_mon: unsupported arguments: $*" >&2; exit 64; }
[ ! -f "$STATE/crm_mon.delay" ] || sleep "$(cat "$STATE/crm_mon.delay")"
cat "$STATE/crm_mon.xml"
"#;

const CIBADMIN: &str = r#"
echo "cibadmin $*" >> "$STATE/calls"
[ "$*" = "--query --scope resources" ] || { echo "fake cibadmin: unsupported arguments: $*" >&2; exit 64; }
cat "$STATE/cib-resources.xml"
"#;

pub struct FakePacemaker {
    dir: PathBuf,
}

impl FakePacemaker {
    /// Installs the tools in `dir` for a cluster of one node, `node`, with no scores.
    pub fn install(dir: &Path, node: &str) -> FakePacemaker {
        let fake = FakePacemaker {
            dir: dir.to_owned(),
        };
        fs::create_dir_all(fake.sbin()).unwrap();
        fs::create_dir_all(fake.state()).unwrap();
        fs::write(fake.state().join("node"), format!("{node}\n")).unwrap();
        fake.set_partition(&[node]);
        for (name, body) in [
            ("crm_node", CRM_NODE),
            ("crm_attribute", CRM_ATTRIBUTE),
            ("attrd_updater", ATTRD_UPDATER),
            ("crm_mon", CRM_MON),
            ("cibadmin", CIBADMIN),
        ] {
            let path = fake.sbin().join(name);
            let script = format!(
                "#!/bin/sh\n# Fake {name} for pgha's integration tests (tests/integration/fake.rs).\n\
                 STATE='{}'\n{body}",
                fake.state().display()
            );
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fake
    }

    /// For `HA_SBIN_DIR`.
    pub fn sbin(&self) -> PathBuf {
        self.dir.join("sbin")
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// What `crm_node -p` prints.
    pub fn set_partition(&self, nodes: &[&str]) {
        fs::write(
            self.state().join("partition"),
            format!("{}\n", nodes.join(" ")),
        )
        .unwrap();
    }

    fn score_file(&self, rsc: &str, node: &str) -> PathBuf {
        self.state().join(format!("promotion-{rsc}@{node}"))
    }

    pub fn set_promotion_score(&self, rsc: &str, node: &str, score: &str) {
        fs::write(self.score_file(rsc, node), format!("{score}\n")).unwrap();
    }

    /// Removes `node`'s promotion score, as Pacemaker does when the node leaves.
    pub fn remove_promotion_score(&self, rsc: &str, node: &str) {
        let _ = fs::remove_file(self.score_file(rsc, node));
    }

    /// The promotion score the agent left for `node`, if any.
    pub fn promotion_score(&self, rsc: &str, node: &str) -> Option<String> {
        fs::read_to_string(self.score_file(rsc, node))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    fn private_file(&self, name: &str, node: &str) -> PathBuf {
        self.state().join(format!("private-{name}@{node}"))
    }

    /// A private node attribute (`attrd_updater -p`), e.g. `lsn_location-pgsqld`.
    pub fn private_attribute(&self, name: &str, node: &str) -> Option<String> {
        fs::read_to_string(self.private_file(name, node)).ok()
    }

    /// Sets a private node attribute, as an earlier run of the agent would have.
    pub fn set_private_attribute(&self, name: &str, node: &str, value: &str) {
        fs::write(self.private_file(name, node), value).unwrap();
    }

    /// What `crm_mon --output-as=xml` prints, after `delay` seconds.
    pub fn set_crm_mon(&self, xml: &str, delay: u64) {
        fs::write(self.state().join("crm_mon.xml"), xml).unwrap();
        fs::write(self.state().join("crm_mon.delay"), delay.to_string()).unwrap();
    }

    /// What `cibadmin --query --scope resources` prints.
    pub fn set_cib_resources(&self, xml: &str) {
        fs::write(self.state().join("cib-resources.xml"), xml).unwrap();
    }

    /// Every invocation so far, one per line.
    pub fn calls(&self) -> String {
        fs::read_to_string(self.state().join("calls")).unwrap_or_default()
    }
}
