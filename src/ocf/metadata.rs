//! The meta-data XML (OCF 1.1, `ra-api-1.1.rng`), written from the parameter table.
//!
//! Timeouts are PAF's recommended minimums; the two monitors differ in interval because
//! Pacemaker tells recurring operations apart by interval only.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::params::{ParamType, PARAMS};

/// An action as advertised to Pacemaker, pcs and crmsh.
struct AdvertisedAction {
    name: &'static str,
    timeout: &'static str,
    interval: Option<&'static str>,
    depth: Option<&'static str>,
    role: Option<&'static str>,
}

const fn action(name: &'static str, timeout: &'static str) -> AdvertisedAction {
    AdvertisedAction {
        name,
        timeout,
        interval: None,
        depth: None,
        role: None,
    }
}

const ACTIONS: &[AdvertisedAction] = &[
    action("start", "60s"),
    action("stop", "60s"),
    action("reload", "20s"),
    action("reload-agent", "20s"),
    action("promote", "30s"),
    action("demote", "120s"),
    AdvertisedAction {
        name: "monitor",
        timeout: "10s",
        interval: Some("15s"),
        depth: Some("0"),
        role: Some("Promoted"),
    },
    AdvertisedAction {
        name: "monitor",
        timeout: "10s",
        interval: Some("16s"),
        depth: Some("0"),
        role: Some("Unpromoted"),
    },
    action("notify", "60s"),
    action("meta-data", "5s"),
    action("validate-all", "5s"),
    action("methods", "5s"),
];

/// The action names `methods` lists.
pub fn action_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for a in ACTIONS {
        if !names.contains(&a.name) {
            names.push(a.name);
        }
    }
    names
}

const LONGDESC: &str = "Resource agent for PostgreSQL in streaming replication, managed as a \
promotable clone. It starts every instance as a standby, promotes the most advanced standby \
(elected by timeline and WAL position through Pacemaker notifications), sets promotion scores \
from the primary's view of replication, and brings a diverged former primary back as a \
standby with pg_rewind. Parameters and node attributes are those of PAF (ocf:heartbeat:pgsqlms).";

const SHORTDESC: &str = "Manages PostgreSQL servers in replication";

/// The OCF 1.0 DTD that resource-agents ships, and `ocf-tester` validates against
/// (`xmllint --valid`), knows neither OCF 1.1's `reloadable` and `unique-group` nor the
/// `reload-agent` action. The internal subset, read before the external DTD, declares them,
/// so the document is valid for that DTD and for OCF 1.1's schema (which Pacemaker and pcs
/// use, and which ignores the DOCTYPE), as resource-agents' own agents declare the DTD.
const DOCTYPE: &str = "resource-agent SYSTEM \"ra-api-1.dtd\" [
<!ATTLIST action name CDATA #REQUIRED>
<!ATTLIST parameter reloadable (0|1) \"0\" unique-group CDATA #IMPLIED>
]";

/// Renders the meta-data document.
pub fn render() -> std::io::Result<String> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_all(&mut w)?;
    let mut xml = String::from_utf8(w.into_inner())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    xml.push('\n');
    Ok(xml)
}

fn write_all(w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    w.write_event(Event::DocType(BytesText::from_escaped(DOCTYPE)))?;
    w.create_element("resource-agent")
        .with_attribute(("name", "pgsqlms"))
        .with_attribute(("version", env!("CARGO_PKG_VERSION")))
        .write_inner_content(|w| {
            w.create_element("version")
                .write_text_content(BytesText::new("1.1"))?;
            desc(w, "longdesc", LONGDESC)?;
            desc(w, "shortdesc", SHORTDESC)?;
            w.create_element("parameters").write_inner_content(|w| {
                for p in PARAMS {
                    let mut el = w
                        .create_element("parameter")
                        .with_attribute(("name", p.name));
                    if p.unique {
                        el = el.with_attribute(("unique-group", p.name));
                    }
                    el = el
                        .with_attribute(("required", "0"))
                        .with_attribute(("reloadable", if p.reloadable { "1" } else { "0" }));
                    el.write_inner_content(|w| {
                        desc(w, "longdesc", p.longdesc)?;
                        desc(w, "shortdesc", p.shortdesc)?;
                        let kind = match p.kind {
                            ParamType::String => "string",
                            ParamType::Integer => "integer",
                            ParamType::Boolean => "boolean",
                        };
                        let mut content =
                            w.create_element("content").with_attribute(("type", kind));
                        if let Some(default) = p.default {
                            content = content.with_attribute(("default", default));
                        }
                        content.write_empty()?;
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            w.create_element("actions").write_inner_content(|w| {
                for a in ACTIONS {
                    let mut el = w
                        .create_element("action")
                        .with_attribute(("name", a.name))
                        .with_attribute(("timeout", a.timeout));
                    for (key, value) in [
                        ("interval", a.interval),
                        ("depth", a.depth),
                        ("role", a.role),
                    ] {
                        if let Some(value) = value {
                            el = el.with_attribute((key, value));
                        }
                    }
                    el.write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

fn desc(w: &mut Writer<Vec<u8>>, tag: &str, text: &str) -> std::io::Result<()> {
    w.create_element(tag)
        .with_attribute(("lang", "en"))
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_ocf_1_1_and_the_agent_version() {
        let xml = render().unwrap();
        assert!(xml.contains("<version>1.1</version>"));
        assert!(xml.contains(&format!(
            "<resource-agent name=\"pgsqlms\" version=\"{}\">",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn every_parameter_is_described() {
        let xml = render().unwrap();
        for p in PARAMS {
            assert!(
                xml.contains(&format!("<parameter name=\"{}\"", p.name)),
                "{}",
                p.name
            );
        }
        assert!(
            !xml.contains("private="),
            "pcs and the OCF RNG reject private="
        );
    }

    #[test]
    fn monitors_per_role_with_distinct_intervals() {
        let xml = render().unwrap();
        assert!(xml.contains("interval=\"15s\" depth=\"0\" role=\"Promoted\""));
        assert!(xml.contains("interval=\"16s\" depth=\"0\" role=\"Unpromoted\""));
        assert!(!xml.contains("Master") && !xml.contains("\"Slave\""));
    }

    #[test]
    fn methods_lists_each_action_once() {
        let names = action_names();
        assert_eq!(names.iter().filter(|n| **n == "monitor").count(), 1);
        for n in [
            "start",
            "stop",
            "promote",
            "demote",
            "notify",
            "meta-data",
            "validate-all",
        ] {
            assert!(names.contains(&n), "{n}");
        }
    }
}
