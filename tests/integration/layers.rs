//! Imports run downward only: every `crate::…` and `super::…` path in `src/` must lead to a
//! module on a lower floor than the one it is written in, or into its own module.
//!
//! The floors, lowest first (each a top-level module with all its children, except where a
//! child is named on its own):
//!
//! | floor | modules | what they are |
//! |---|---|---|
//! | 0 | `lsn`, `deadline`, `failpoint`, `safe_fs`, `clock` | foundations: import nothing of pgha |
//! | 1 | `ocf`, `process`, `election` | the OCF contract (clock for its log lines); the one spawn gate (deadline, safe_fs); the pure election (lsn) |
//! | 2 | `instance`, `pacemaker` | the local PostgreSQL; Pacemaker's tools. Neither knows the other |
//! | 3 | `rewind` | bringing a node back (instance, pacemaker's node-name check) |
//! | 4 | `actions`, `cli` | the OCF actions, and `actions::error`, the only error -> OCF code mapping; clap's arguments |
//! | 5 | `rewind::command` | `pgha rewind` and `pgha kept`: the rewind module by hand, with cli's arguments |
//! | 5 | `status` | `pgha status`: Pacemaker's XML, the local instance and files, read and shown |
//! | 6 | the crate root (`lib.rs`: `run`, `run_tool`), `main.rs` | the program |
//!
//! Each floor owns its errors (`deadline::Expired`, `instance::Error`, `ClusterError`,
//! `RewindError`…); only the top turns them into OCF codes (`actions::error`) or exit codes
//! (`rewind::command`, `lib.rs`). Modules on one floor do not use each other either: that
//! is what keeps the graph free of circles, so a new dependency between two of them means
//! moving one up a floor here, on purpose.
//!
//! Paths are read from the token stream (proc-macro2's lexer), so comments and string
//! literals never count and macro arguments (`matches!(e, crate::…)`) do; inline modules
//! (`mod tests { use super::*; }`) are followed for `super`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// The floors, lowest first: module paths (`::`-separated; `""` is the crate root).
const FLOORS: &[&[&str]] = &[
    &["lsn", "deadline", "failpoint", "safe_fs", "clock"],
    &["ocf", "process", "election"],
    &["instance", "pacemaker"],
    &["rewind"],
    &["actions", "cli"],
    &["rewind::command", "status"],
    &[""],
];

/// The table entry a module path belongs to (the longest one that is a prefix of it; the
/// root only for the root itself), and its floor.
fn entry(module: &[String]) -> Option<(&'static str, usize)> {
    FLOORS
        .iter()
        .enumerate()
        .flat_map(|(floor, names)| names.iter().map(move |name| (*name, floor)))
        .filter(|(name, _)| {
            let key: Vec<&str> = name.split("::").filter(|s| !s.is_empty()).collect();
            key.len() <= module.len()
                && key.iter().zip(module).all(|(k, m)| k == m)
                && (module.is_empty() || !key.is_empty())
        })
        .max_by_key(|(name, _)| name.len())
}

/// Where a path leads: a module's entry, else an item of the crate root (`crate::AGENT`).
fn target(path: &[String]) -> (&'static str, usize) {
    entry(path).unwrap_or(("", FLOORS.len() - 1))
}

/// A path to another module, where it was written.
#[derive(Debug)]
struct Reference {
    line: usize,
    /// The module whose code holds the path (inline modules included).
    from: Vec<String>,
    /// The path, resolved from the crate root.
    to: Vec<String>,
}

/// The module a file under `src/` defines: `a/b.rs` and `a/b/mod.rs` are `a::b`, `lib.rs`
/// the root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Every `crate::` and `super::` path in `source`, a file of module `module`.
fn references(module: &[String], source: &str) -> Vec<Reference> {
    let tokens = TokenStream::from_str(source).unwrap_or_else(|e| panic!("{module:?}: {e}"));
    let mut found = Vec::new();
    walk(tokens, module, &mut found);
    found
}

fn walk(tokens: TokenStream, module: &[String], found: &mut Vec<Reference>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match token {
            TokenTree::Ident(id) if id == "mod" => {
                if let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(body))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    if body.delimiter() == Delimiter::Brace {
                        let mut inner = module.to_vec();
                        inner.push(name.to_string());
                        walk(body.stream(), &inner, found);
                        i += 3;
                        continue;
                    }
                }
            }
            TokenTree::Ident(id)
                if (id == "crate" || id == "super") && path_sep(&tokens, i + 1) =>
            {
                let line = id.span().start().line;
                let mut base: Vec<String> = if id == "crate" {
                    Vec::new()
                } else {
                    parent(module)
                };
                i += 3;
                while matches!(tokens.get(i), Some(TokenTree::Ident(s)) if s == "super")
                    && path_sep(&tokens, i + 1)
                {
                    base = parent(&base);
                    i += 3;
                }
                let mut paths = Vec::new();
                i = path_from(&tokens, i, (line, base), &mut paths);
                found.extend(paths.into_iter().map(|(line, to)| Reference {
                    line,
                    from: module.to_vec(),
                    to,
                }));
                continue;
            }
            TokenTree::Group(group) => walk(group.stream(), module, found),
            _ => {}
        }
        i += 1;
    }
}

/// `::` at `i`.
fn path_sep(tokens: &[TokenTree], i: usize) -> bool {
    matches!(
        (tokens.get(i), tokens.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

fn parent(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// A path, with the line of its last name.
type Located = (usize, Vec<String>);

/// Reads the rest of a path (`a::b`, or a use tree `{a::b, c::{d, e}}`) from `i`, adding
/// each full path to `paths`; returns the index after it.
fn path_from(
    tokens: &[TokenTree],
    mut i: usize,
    start: Located,
    paths: &mut Vec<Located>,
) -> usize {
    let (mut line, mut path) = start;
    loop {
        match tokens.get(i) {
            Some(TokenTree::Ident(id)) => {
                line = id.span().start().line;
                path.push(id.to_string());
                i += 1;
                if !path_sep(tokens, i) {
                    break;
                }
                i += 2;
            }
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                let mut j = 0;
                while j < inner.len() {
                    j = path_from(&inner, j, (line, path.clone()), paths);
                    // Skip to the next item (past `as name`, `self`, `*` and the comma).
                    while let Some(t) = inner.get(j) {
                        j += 1;
                        if matches!(t, TokenTree::Punct(p) if p.as_char() == ',') {
                            break;
                        }
                    }
                }
                return i + 1;
            }
            _ => break,
        }
    }
    paths.push((line, path));
    i
}

/// Every reference in `files` (path under `src/`, text) that leads up, or sideways on one
/// floor, as "file:line: `from` (floor n) uses `to` (floor m)".
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (file, text) in files {
        let module = module_of(file);
        let Some((from_entry, from_floor)) = entry(&module) else {
            wrong.push(format!(
                "src/{}: module {} is on no floor of the table in tests/integration/layers.rs",
                file.display(),
                module.join("::")
            ));
            continue;
        };
        for r in references(&module, text) {
            let (to_entry, to_floor) = target(&r.to);
            if to_entry != from_entry && to_floor >= from_floor {
                wrong.push(format!(
                    "src/{}:{}: {} (floor {from_floor}, {}) uses {} (floor {to_floor}, {})",
                    file.display(),
                    r.line,
                    r.from.join("::"),
                    show(from_entry),
                    r.to.join("::"),
                    show(to_entry),
                ));
            }
        }
    }
    wrong
}

fn show(entry: &str) -> &str {
    if entry.is_empty() {
        "the crate root"
    } else {
        entry
    }
}

/// Every `.rs` file under `dir`, relative to `root`, with its text.
fn sources(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().to_owned(), text));
        }
    }
}

#[test]
fn imports_run_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    // main.rs is the binary: it reaches the library only through `pgha::`, from the top.
    files.retain(|(f, _)| f != Path::new("main.rs"));
    assert!(
        files.len() > 40 && files.iter().any(|(f, _)| f == Path::new("lib.rs")),
        "read only {} files in {}",
        files.len(),
        src.display()
    );
    let references: usize = files
        .iter()
        .map(|(f, t)| references(&module_of(f), t).len())
        .sum();
    assert!(
        references > 200,
        "found only {references} crate:: and super:: paths"
    );
    let wrong = violations(&files);
    assert!(
        wrong.is_empty(),
        "imports that run up or sideways:\n{}",
        wrong.join("\n")
    );
}

/// The checker itself, on sources made up to break each rule once.
fn check(file: &str, text: &str) -> Vec<String> {
    violations(&[(PathBuf::from(file), text.to_owned())])
}

#[test]
fn an_upward_import_is_named_with_file_line_and_floors() {
    let wrong = check("deadline.rs", "//! x\n\nuse crate::actions::Error;\n");
    assert_eq!(
        wrong,
        ["src/deadline.rs:3: deadline (floor 0, deadline) uses actions::Error (floor 4, actions)"]
    );
}

#[test]
fn a_sideways_import_on_one_floor_is_refused_and_a_downward_one_allowed() {
    let wrong = check(
        "instance/mod.rs",
        "use crate::pacemaker::Cluster;\nuse crate::process::Cmd;\nuse super::lsn::Lsn;\n",
    );
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].starts_with("src/instance/mod.rs:1: instance (floor 2"),
        "{wrong:?}"
    );
}

#[test]
fn use_trees_macros_and_paths_in_code_count_but_comments_and_strings_do_not() {
    let text = "\
use crate::{lsn::Lsn, rewind::{decision, Plan}};
// crate::actions::run in a comment
fn f(e: &E) -> bool {
    let _ = \"crate::cli::Cli\";
    matches!(e, crate::actions::Error::State(_))
}
";
    let wrong = check("instance/sql.rs", text);
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(
        wrong[0].contains("uses rewind::decision (floor 3"),
        "{wrong:?}"
    );
    assert!(wrong[1].contains("uses rewind::Plan (floor 3"), "{wrong:?}");
    assert!(wrong[2].starts_with("src/instance/sql.rs:5:"), "{wrong:?}");
}

#[test]
fn super_is_resolved_through_files_and_inline_modules() {
    // rewind::command may use its parent, and cli below it; rewind may not use command.
    assert!(check(
        "rewind/command.rs",
        "use super::check;\nuse crate::cli::RewindArgs;\n"
    )
    .is_empty());
    let wrong = check("rewind/target.rs", "use super::command::run;\n");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    // In `mod tests` of src/lsn.rs, `super` is lsn itself; `super::super` the crate root.
    assert!(check("lsn.rs", "mod tests { use super::*; use super::Lsn; }").is_empty());
    let wrong = check("lsn.rs", "mod tests { use super::super::AGENT; }");
    assert_eq!(
        wrong,
        ["src/lsn.rs:1: lsn::tests (floor 0, lsn) uses AGENT (floor 6, the crate root)"]
    );
}

#[test]
fn a_module_missing_from_the_table_is_reported() {
    let wrong = check("newthing.rs", "");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].contains("module newthing is on no floor"),
        "{wrong:?}"
    );
}
