//! `postgresql.auto.conf` editing (the file is the postgres account's; `primary_conninfo`
//! comes from the node's configuration): `rewind::config::write_standby`, which keeps every
//! other line, drops the old `primary_conninfo` settings and appends the new one, and
//! `with_application_name` under it. Written on tmpfs.
#![no_main]

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pgha::instance::conninfo::get;
use pgha::pacemaker::check_node_name;
use pgha::rewind::config::{with_application_name, write_standby};
use pgha::safe_fs::Dir;
use pgha_fuzz::parts;

fn datadir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(pgha_fuzz::scratch).path()
}

/// Whether `line` sets `primary_conninfo`, as the server's configuration parser reads a
/// line (names are case-insensitive; `name = value` or `name value`).
fn sets_primary_conninfo(line: &str) -> bool {
    let line = line.trim_start();
    let name_len = line
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(line.len());
    line[..name_len].eq_ignore_ascii_case("primary_conninfo")
}

/// A configuration file's quoted value read back: `''` is a quote, `\` escapes.
fn unquote(value: &str) -> Option<String> {
    let inner = value.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '\'' => {
                if chars.next()? != '\'' {
                    return None;
                }
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// The lines of a file, without the `\r`s that end them (`str::lines` keeps all but one
/// before a `\n`, and a lone one at the end, which the rewrite follows with `\n`).
fn lines_of(text: &str) -> Vec<&str> {
    text.lines().map(|l| l.trim_end_matches('\r')).collect()
}

fn is_subsequence(part: &[&str], whole: &[&str]) -> bool {
    let mut whole = whole.iter();
    part.iter().all(|p| whole.any(|w| w == p))
}

// The input: the old file, the connection string and the node name, `\0`-separated.
fuzz_target!(|text: &str| {
    let [old, conninfo, node] = parts(text);
    // A line break in the connection string or the node name is refused (it was written
    // unescaped: `corpus/standby_conf/finding-line-break`, fixed in `rewind/config.rs`).
    let dir = datadir();
    let auto = dir.join("postgresql.auto.conf");
    fs::write(&auto, old).unwrap();
    let data = Dir::open(dir).unwrap();
    if write_standby(&data, Some(conninfo), node, None).is_err() {
        return;
    }
    assert!(dir.join("standby.signal").is_file());
    let written = fs::read_to_string(&auto).unwrap();
    let lines = lines_of(&written);
    let (last, before) = lines.split_last().expect("the new setting");

    // Every other line kept, in order (a line is dropped only if it set primary_conninfo);
    // the new setting last, on one line, so that it is the one the server uses.
    let old = lines_of(old);
    let others: Vec<&str> = old
        .iter()
        .copied()
        .filter(|l| !sets_primary_conninfo(l))
        .collect();
    assert!(is_subsequence(before, &old), "{written:?}");
    assert!(is_subsequence(&others, before), "{written:?}");
    let expected = with_application_name(conninfo, node);
    let value = last.strip_prefix("primary_conninfo = ").and_then(unquote);
    assert_eq!(value.as_deref(), Some(expected.as_str()), "{written:?}");

    // A node name Pacemaker would use is the application name the server reports, also
    // after an empty last value, a dangling backslash or a `?` in a URI's password
    // (`corpus/standby_conf/finding-*`, fixed in `instance::conninfo::with_value`), and when
    // the string holds text libpq cannot read (dropped).
    if check_node_name(node).is_ok() {
        assert_eq!(
            get(&expected, "application_name").as_deref(),
            Some(node),
            "{expected:?}"
        );
    }
});
