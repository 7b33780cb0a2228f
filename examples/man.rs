//! The man pages of the Debian package (debian/build.sh runs it; not a user-facing tool):
//!
//!   cargo run --release --locked --example man -- OUTDIR VERSION METADATA_XML
//!
//! writes `pgha.8` and one page per subcommand (`pgha-rewind.8`, ...) from the clap
//! definitions (clap_mangen), and `ocf_pgha_pgsqlms.7` from the agent's meta-data (the output
//! of `pgha meta-data`), the way resource-agents makes its `ocf_heartbeat_*.7` pages from
//! theirs: name, description, parameters with their types and defaults, actions with their
//! timeouts. VERSION is the packaged binary's version (`pgha --version`), so a package of an
//! older binary gets pages that name its version.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Roff};
use quick_xml::events::Event;
use quick_xml::Reader;

const SECTION_TOOL: &str = "8";
const SECTION_AGENT: &str = "7";
const MANUAL: &str = "pgha manual";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, version, metadata] = args.as_slice() else {
        eprintln!("usage: man OUTDIR VERSION METADATA_XML");
        return ExitCode::from(2);
    };
    match write_pages(Path::new(out), version, Path::new(metadata)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("man: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_pages(out: &Path, version: &str, metadata: &Path) -> Result<Vec<PathBuf>, String> {
    let source = format!("pgha {version}");
    let mut files = Vec::new();
    // clap keeps &'static str (without its "string" feature); this process ends soon
    let static_version: &'static str = Box::leak(version.to_owned().into_boxed_str());
    let mut cmd = pgha::cli::Cli::command()
        .version(static_version)
        .disable_help_subcommand(true);
    cmd.build();
    for sub in cmd.get_subcommands() {
        // pgha-rewind(8) and so on; pgha(8) lists them under SUBCOMMANDS
        let name = format!("pgha-{}", sub.get_name());
        let page = clap_mangen::Man::new(sub.clone().display_name(name.clone()).bin_name(name))
            .section(SECTION_TOOL)
            .source(source.clone())
            .manual(MANUAL);
        files.push(page.generate_to(out).map_err(|e| e.to_string())?);
    }
    let page = clap_mangen::Man::new(cmd)
        .section(SECTION_TOOL)
        .source(source.clone())
        .manual(MANUAL);
    files.push(page.generate_to(out).map_err(|e| e.to_string())?);

    let xml =
        std::fs::read_to_string(metadata).map_err(|e| format!("{}: {e}", metadata.display()))?;
    let agent = parse_metadata(&xml)?;
    if agent.version != version {
        return Err(format!(
            "the meta-data says version {}, the binary {version}",
            agent.version
        ));
    }
    let path = out.join(format!("ocf_pgha_{}.{SECTION_AGENT}", agent.name));
    std::fs::write(&path, agent_page(&agent, &source)).map_err(|e| e.to_string())?;
    files.push(path);
    Ok(files)
}

/// What the page shows of the meta-data.
#[derive(Default)]
struct Agent {
    name: String,
    version: String,
    longdesc: String,
    shortdesc: String,
    params: Vec<Param>,
    actions: Vec<Vec<(String, String)>>,
}

#[derive(Default)]
struct Param {
    name: String,
    longdesc: String,
    shortdesc: String,
    kind: String,
    default: Option<String>,
    unique: bool,
    reloadable: bool,
}

fn parse_metadata(xml: &str) -> Result<Agent, String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut agent = Agent::default();
    let mut path: Vec<String> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| format!("meta-data: {e}"))?;
        let (element, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = element {
            let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let attrs = attributes(e)?;
            let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            match tag.as_str() {
                "resource-agent" => {
                    agent.name = get("name").unwrap_or_default();
                    agent.version = get("version").unwrap_or_default();
                }
                "parameter" => agent.params.push(Param {
                    name: get("name").unwrap_or_default(),
                    unique: get("unique-group").is_some() || get("unique").as_deref() == Some("1"),
                    reloadable: get("reloadable").as_deref() == Some("1"),
                    ..Param::default()
                }),
                "content" => {
                    if let Some(p) = agent.params.last_mut() {
                        p.kind = get("type").unwrap_or_default();
                        p.default = get("default");
                    }
                }
                "action" => agent.actions.push(attrs),
                _ => {}
            }
            if !empty {
                path.push(tag);
            }
            continue;
        }
        match event {
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| format!("meta-data: {e}"))?
                    .into_owned();
                let in_param = path.iter().any(|t| t == "parameter");
                let slot = match (path.last().map(String::as_str), in_param) {
                    (Some("longdesc"), false) => Some(&mut agent.longdesc),
                    (Some("shortdesc"), false) => Some(&mut agent.shortdesc),
                    (Some("longdesc"), true) => agent.params.last_mut().map(|p| &mut p.longdesc),
                    (Some("shortdesc"), true) => agent.params.last_mut().map(|p| &mut p.shortdesc),
                    _ => None,
                };
                if let Some(slot) = slot {
                    *slot = text;
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if agent.name.is_empty() || agent.version.is_empty() {
        return Err("meta-data: no <resource-agent name=... version=...>".into());
    }
    Ok(agent)
}

fn attributes(e: &quick_xml::events::BytesStart) -> Result<Vec<(String, String)>, String> {
    e.attributes()
        .map(|a| {
            let a = a.map_err(|e| format!("meta-data: {e}"))?;
            let value = a.unescape_value().map_err(|e| format!("meta-data: {e}"))?;
            Ok((
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                value.into_owned(),
            ))
        })
        .collect()
}

fn agent_page(agent: &Agent, source: &str) -> String {
    let title = format!("OCF_PGHA_{}", agent.name.to_uppercase());
    let page = format!("ocf_pgha_{}", agent.name);
    let mut names: Vec<&str> = Vec::new();
    for a in &agent.actions {
        if let Some((_, n)) = a.iter().find(|(k, _)| k == "name") {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let mut r = Roff::new();
    r.control("TH", [title.as_str(), SECTION_AGENT, "", source, MANUAL]);
    r.control("SH", ["NAME"]);
    r.text([roman(format!("{page} - {}", agent.shortdesc))]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        bold(agent.name.clone()),
        roman(format!(" [{}]", names.join(" | "))),
    ]);
    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(agent.longdesc.clone())]);
    parameters_section(&mut r, &agent.params);
    actions_section(&mut r, &agent.actions);
    r.control("SH", ["EXAMPLE"]);
    r.text([roman(
        "A promotable clone with notifications (see crm-examples/ in the pgha sources for \
         the complete configuration with a virtual IP):",
    )]);
    r.control("nf", []);
    r.text([roman(format!(
        "pcs resource create pgsqld ocf:pgha:{} bindir=/usr/lib/postgresql/15/bin \
         pgdata=/var/lib/postgresql/15/data promotable notify=true",
        agent.name
    ))]);
    r.control("fi", []);
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("pgha"),
        roman("(8), "),
        bold("crm_mon"),
        roman("(8), "),
        bold("pcs"),
        roman("(8)"),
    ]);
    r.render()
}

fn parameters_section(r: &mut Roff, params: &[Param]) {
    r.control("SH", ["SUPPORTED PARAMETERS"]);
    for p in params {
        r.control("TP", []);
        r.text([bold(p.name.clone()), roman(format!(": {}", p.shortdesc))]);
        r.control("br", []);
        r.text([roman(p.longdesc.clone())]);
        r.control("br", []);
        let mut facts = vec![if p.kind.is_empty() {
            "string".to_owned()
        } else {
            p.kind.clone()
        }];
        facts.push(match &p.default {
            Some(d) => format!("default: {d}"),
            None => "no default".to_owned(),
        });
        if p.unique {
            facts.push("unique".to_owned());
        }
        if p.reloadable {
            facts.push("reloadable".to_owned());
        }
        r.text([italic(format!("({})", facts.join(", ")))]);
    }
}

fn actions_section(r: &mut Roff, actions: &[Vec<(String, String)>]) {
    r.control("SH", ["SUPPORTED ACTIONS"]);
    r.text([roman(
        "This resource agent supports the following actions (operations), with the \
         suggested minimum timeouts:",
    )]);
    for a in actions {
        let get = |k: &str| a.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        r.control("TP", []);
        r.text([bold(get("name").unwrap_or_default().to_owned())]);
        let mut facts = vec![format!("timeout {}", get("timeout").unwrap_or("-"))];
        for key in ["interval", "depth", "role"] {
            if let Some(v) = get(key) {
                facts.push(format!("{key} {v}"));
            }
        }
        r.text([roman(facts.join(", "))]);
    }
}
