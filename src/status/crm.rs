//! What Pacemaker says, read from `crm_mon --output-as=xml` and from the resources section of
//! the CIB (`cibadmin --query --scope resources`), with quick-xml.
//!
//! Only what `pgha status` shows is kept; unknown elements and attributes are skipped, so the
//! XML of Pacemaker 2.1 and 3.0 both read. An element may come as `<x ...>...</x>` or as an
//! empty `<x .../>` (a stopped clone instance, a `<primitive/>` with no parameters): both are
//! the same element here ([`elements`]).

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// The most of an XML document read (crm_mon's output of a large cluster is a few hundred kB).
pub const MAX_XML: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} is not well-formed XML: {why}")]
pub struct XmlError {
    pub what: &'static str,
    pub why: String,
}

/// A cluster node as crm_mon shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub maintenance: bool,
    pub unclean: bool,
    pub pending: bool,
    pub shutdown: bool,
}

/// One instance of a resource (a clone instance or a primitive) and where it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// `ocf:pgha:pgsqlms`.
    pub agent: String,
    /// `Promoted`, `Unpromoted`, `Started`, `Stopped`, … (Pacemaker 2.1 may say `Master`).
    pub role: String,
    pub failed: bool,
    pub managed: bool,
    /// Where it runs (none when stopped).
    pub nodes: Vec<String>,
}

/// One operation in a node's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operation {
    pub node: String,
    pub resource: String,
    pub task: String,
    pub rc: Option<i32>,
    /// As crm_mon prints it (`Sat Dec  5 07:30:00 2026` on 2.1, ISO 8601 on 3.0).
    pub last_rc_change: Option<String>,
}

/// A failed action (`<failures>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    pub node: String,
    /// `pgsqld_monitor_16000`.
    pub op_key: String,
    pub task: String,
    pub exit_status: String,
    pub exit_reason: String,
    pub last_rc_change: Option<String>,
}

/// A fencing action (`<fence_history>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fencing {
    pub target: String,
    pub action: String,
    pub status: String,
    pub completed: Option<String>,
}

/// The whole of crm_mon's answer that `pgha status` uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrmMon {
    pub dc: Option<String>,
    pub quorum: Option<bool>,
    pub nodes: Vec<Node>,
    pub instances: Vec<Instance>,
    /// Node → attribute name → value (transient and permanent, as crm_mon merges them).
    pub attributes: BTreeMap<String, BTreeMap<String, String>>,
    pub history: Vec<Operation>,
    pub failures: Vec<Failure>,
    pub fencing: Vec<Fencing>,
}

/// A primitive of the CIB: its agent and its instance attributes (parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Primitive {
    pub id: String,
    /// `ocf:pgha:pgsqlms`.
    pub agent: String,
    pub params: BTreeMap<String, String>,
}

/// The agent pgha is.
pub const PGHA_AGENT: &str = "ocf:pgha:pgsqlms";

/// Every element of `xml` with its attributes and the names of the elements around it,
/// outermost first; `<x/>` and `<x></x>` alike.
fn elements(
    xml: &str,
    what: &'static str,
    mut each: impl FnMut(&[String], &str, &BTreeMap<String, String>),
) -> Result<(), XmlError> {
    let error = |why: String| XmlError { what, why };
    if xml.len() > MAX_XML {
        return Err(error(format!("longer than {MAX_XML} bytes")));
    }
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| error(e.to_string()))? {
            Event::Start(e) => {
                let (name, attrs) = read_element(&e).map_err(error)?;
                each(&stack, &name, &attrs);
                stack.push(name);
            }
            Event::Empty(e) => {
                let (name, attrs) = read_element(&e).map_err(error)?;
                each(&stack, &name, &attrs);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(error(format!("<{}> is not closed", stack.join("><"))))
    }
}

fn read_element(e: &BytesStart) -> Result<(String, BTreeMap<String, String>), String> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = BTreeMap::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr.unescape_value().map_err(|e| e.to_string())?;
        attrs.insert(key, value.into_owned());
    }
    Ok((name, attrs))
}

fn text(attrs: &BTreeMap<String, String>, key: &str) -> String {
    attrs.get(key).cloned().unwrap_or_default()
}

fn flag(attrs: &BTreeMap<String, String>, key: &str) -> bool {
    attrs.get(key).is_some_and(|v| v == "true")
}

/// Reads `crm_mon --output-as=xml`.
pub fn parse_crm_mon(xml: &str) -> Result<CrmMon, XmlError> {
    let mut mon = CrmMon::default();
    // The node (of node_attributes or node_history) and resource (of resource_history)
    // whose children are being read.
    let mut node = String::new();
    let mut resource = String::new();
    elements(xml, "crm_mon's output", |stack, name, a| {
        let parent = stack.last().map(String::as_str);
        let section = stack.get(1).map(String::as_str);
        match (section, parent, name) {
            (_, Some("summary"), "current_dc") => {
                mon.dc = a.get("name").cloned();
                mon.quorum = a.get("with_quorum").map(|q| q == "true");
            }
            (_, Some("nodes"), "node") => mon.nodes.push(Node {
                name: text(a, "name"),
                online: flag(a, "online"),
                standby: flag(a, "standby"),
                maintenance: flag(a, "maintenance"),
                unclean: flag(a, "unclean"),
                pending: flag(a, "pending"),
                shutdown: flag(a, "shutdown"),
            }),
            (Some("resources"), _, "resource") => mon.instances.push(Instance {
                id: text(a, "id"),
                agent: text(a, "resource_agent"),
                role: text(a, "role"),
                failed: flag(a, "failed"),
                managed: a.get("managed").is_none_or(|m| m == "true"),
                nodes: Vec::new(),
            }),
            (Some("resources"), Some("resource"), "node") => {
                if let Some(last) = mon.instances.last_mut() {
                    last.nodes.push(text(a, "name"));
                }
            }
            (Some("node_attributes" | "node_history"), _, "node") => {
                node = text(a, "name");
                if section == Some("node_attributes") {
                    mon.attributes.entry(node.clone()).or_default();
                }
            }
            (Some("node_attributes"), Some("node"), "attribute") => {
                mon.attributes
                    .entry(node.clone())
                    .or_default()
                    .insert(text(a, "name"), text(a, "value"));
            }
            (Some("node_history"), _, "resource_history") => resource = text(a, "id"),
            (Some("node_history"), _, "operation_history") => mon.history.push(Operation {
                node: node.clone(),
                resource: resource.clone(),
                task: text(a, "task"),
                rc: a.get("rc").and_then(|rc| rc.parse().ok()),
                last_rc_change: a.get("last-rc-change").cloned(),
            }),
            (Some("failures"), _, "failure") => mon.failures.push(Failure {
                node: text(a, "node"),
                op_key: text(a, "op_key"),
                task: text(a, "task"),
                exit_status: text(a, "exitstatus"),
                exit_reason: unescaped_twice(&text(a, "exitreason")),
                last_rc_change: a.get("last-rc-change").cloned(),
            }),
            (Some("fence_history"), _, "fence_event") => mon.fencing.push(Fencing {
                target: text(a, "target"),
                action: text(a, "action"),
                status: text(a, "status"),
                completed: a.get("completed").cloned(),
            }),
            _ => {}
        }
    })?;
    Ok(mon)
}

/// Pacemaker 2.1 escapes an exit reason twice (`&amp;quot;` for `"`): a second pass, when
/// one is possible.
fn unescaped_twice(text: &str) -> String {
    quick_xml::escape::unescape(text).map_or_else(|_| text.to_owned(), |t| t.into_owned())
}

/// Reads the resources section of the CIB: every primitive with its agent and parameters
/// (`instance_attributes` directly under it; meta attributes and operations are not
/// parameters).
pub fn parse_primitives(xml: &str) -> Result<Vec<Primitive>, XmlError> {
    let mut primitives: Vec<Primitive> = Vec::new();
    elements(xml, "the CIB's resources", |stack, name, a| {
        let depth = stack.len();
        match name {
            "primitive" => primitives.push(Primitive {
                id: text(a, "id"),
                agent: agent_name(a),
                params: BTreeMap::new(),
            }),
            "nvpair"
                if depth >= 2
                    && stack[depth - 1] == "instance_attributes"
                    && stack[depth - 2] == "primitive" =>
            {
                if let (Some(p), Some(key)) = (primitives.last_mut(), a.get("name")) {
                    p.params.insert(key.clone(), text(a, "value"));
                }
            }
            _ => {}
        }
    })?;
    Ok(primitives)
}

/// `class:provider:type`, or `class:type` without a provider.
fn agent_name(a: &BTreeMap<String, String>) -> String {
    [a.get("class"), a.get("provider"), a.get("type")]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(":")
}

/// Which resource of pgha's agent to show: the one asked for, else the only one.
pub fn choose_resource(primitives: &[Primitive], asked: Option<&str>) -> Result<String, String> {
    let ours: Vec<&str> = primitives
        .iter()
        .filter(|p| p.agent == PGHA_AGENT)
        .map(|p| p.id.as_str())
        .collect();
    match (asked, ours.as_slice()) {
        (Some(rsc), _) if ours.contains(&rsc) => Ok(rsc.to_owned()),
        (Some(rsc), []) => Err(format!(
            "no resource {rsc:?}: the cluster has no resource of agent {PGHA_AGENT}"
        )),
        (Some(rsc), found) => Err(format!(
            "no resource {rsc:?} of agent {PGHA_AGENT} (there is {})",
            found.join(", ")
        )),
        (None, [one]) => Ok((*one).to_owned()),
        (None, []) => Err(format!("the cluster has no resource of agent {PGHA_AGENT}")),
        (None, several) => Err(format!(
            "several resources of agent {PGHA_AGENT} ({}): choose one with --resource",
            several.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_primitive_is_a_primitive_with_no_parameters() {
        let xml = r#"<resources><primitive id="pg" class="ocf" provider="pgha" type="pgsqlms"/>
            <clone id="c"><primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
            <instance_attributes id="i"><nvpair id="n" name="ip" value="10.0.0.1"/></instance_attributes>
            <meta_attributes id="m"><nvpair id="k" name="target-role" value="Started"/></meta_attributes>
            </primitive></clone></resources>"#;
        let found = parse_primitives(xml).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].id.as_str(), found[0].agent.as_str()),
            ("pg", PGHA_AGENT)
        );
        assert!(found[0].params.is_empty());
        assert_eq!(found[1].params.len(), 1, "{:?}", found[1].params);
        assert_eq!(found[1].params["ip"], "10.0.0.1");
        assert_eq!(choose_resource(&found, None).unwrap(), "pg");
    }

    #[test]
    fn the_resource_is_the_only_one_of_pghas_agent_or_the_one_asked() {
        let p = |id: &str, agent: &str| Primitive {
            id: id.into(),
            agent: agent.into(),
            params: BTreeMap::new(),
        };
        let two = [
            p("a", PGHA_AGENT),
            p("b", PGHA_AGENT),
            p("v", "ocf:heartbeat:IPaddr2"),
        ];
        let err = choose_resource(&two, None).unwrap_err();
        assert!(err.contains("several") && err.contains("a, b"), "{err}");
        assert_eq!(choose_resource(&two, Some("b")).unwrap(), "b");
        assert!(choose_resource(&two, Some("v"))
            .unwrap_err()
            .contains("a, b"));
        assert!(choose_resource(&[], None)
            .unwrap_err()
            .contains("no resource"));
        assert!(choose_resource(&[], Some("x"))
            .unwrap_err()
            .contains("\"x\""));
    }

    #[test]
    fn broken_xml_is_an_error_not_a_partial_view() {
        assert!(parse_crm_mon("<pacemaker-result><nodes>").is_err());
        assert!(parse_crm_mon("<a><b></a>").is_err());
        assert!(parse_primitives("<resources><primitive id=\"x></resources>").is_err());
        assert!(parse_crm_mon(&"<a>".repeat(MAX_XML / 3 + 1)).is_err());
    }

    #[test]
    fn exit_reasons_escaped_twice_read_once() {
        assert_eq!(unescaped_twice("is &quot;x&quot;"), "is \"x\"");
        assert_eq!(unescaped_twice("a & b"), "a & b");
    }
}
