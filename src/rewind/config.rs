//! The node's own configuration across a rewind or a re-clone, and its standby settings.
//!
//! pg_rewind copies every file of the source's data directory that is not a relation file,
//! configuration included (pgha's pg_rewind notes §6.4), and a re-clone brings the source's
//! too. So the node-local files (by default `postgresql.conf`, `postgresql.auto.conf`,
//! `pg_hba.conf`, `pg_ident.conf`: the `rewind_keep_files` parameter) are saved before and
//! put back after, with their mode and owner; a file the node did not have is removed again.
//! Then pgha writes its own standby settings (`standby.signal`, and `primary_conninfo` with
//! `application_name` = the node's name when it is given one) instead of pg_rewind's `-R`,
//! which appends the source's whole connection string, password included, after the source's
//! own `postgresql.auto.conf`.

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::RewindError;
use crate::instance::conninfo;
use crate::process::RunAs;

/// The default of `rewind_keep_files`.
pub const DEFAULT_KEEP: &[&str] = &[
    "postgresql.conf",
    "postgresql.auto.conf",
    "pg_hba.conf",
    "pg_ident.conf",
];

/// What was saved, and from where.
#[derive(Debug, Clone)]
pub struct SavedConfig {
    /// Where the copies are (`<saved_in>/config`).
    pub dir: PathBuf,
    /// Paths relative to the data directory, and whether the node had them.
    pub files: Vec<(PathBuf, bool)>,
}

/// Copies the node-local files of `datadir` into `into`.
pub fn save(datadir: &Path, keep: &[PathBuf], into: &Path) -> Result<SavedConfig, RewindError> {
    std::fs::create_dir_all(into)
        .map_err(|e| RewindError::io(format!("could not create {}", into.display()), e))?;
    let mut files = Vec::new();
    for rel in keep {
        let from = datadir.join(rel);
        let present = from.exists();
        if present {
            copy_tree(&from, &into.join(rel))?;
        }
        files.push((rel.clone(), present));
    }
    Ok(SavedConfig {
        dir: into.to_owned(),
        files,
    })
}

impl SavedConfig {
    /// Puts the saved files back into `datadir` (which may be another directory than the one
    /// they came from: a re-clone), and removes the ones the node did not have.
    pub fn restore(&self, datadir: &Path) -> Result<(), RewindError> {
        for (rel, present) in &self.files {
            let to = datadir.join(rel);
            remove_tree(&to)?;
            if *present {
                copy_tree(&self.dir.join(rel), &to)?;
                log::info!("kept the node's own {}", rel.display());
            }
        }
        Ok(())
    }
}

/// Makes the data directory start as a standby of `primary_conninfo` (when given): removes
/// `recovery.signal`, writes `standby.signal`, and sets `primary_conninfo` with
/// `application_name` = `node` in `postgresql.auto.conf` (where the server reads it last,
/// so it wins over postgresql.conf and its includes).
pub fn write_standby(
    datadir: &Path,
    primary_conninfo: Option<&str>,
    node: &str,
    owner: &RunAs,
) -> Result<(), RewindError> {
    remove_tree(&datadir.join("recovery.signal"))?;
    let signal = datadir.join("standby.signal");
    write_owned(&signal, b"", owner)?;
    let Some(conninfo) = primary_conninfo else {
        return Ok(());
    };
    let conninfo = with_application_name(conninfo, node);
    let auto = datadir.join("postgresql.auto.conf");
    let old = match std::fs::read_to_string(&auto) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(RewindError::io(
                format!("could not read {}", auto.display()),
                e,
            ))
        }
    };
    let mut text: String = old
        .lines()
        .filter(|l| !is_setting(l, "primary_conninfo"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!(
        "primary_conninfo = '{}'\n",
        conninfo.replace('\\', "\\\\").replace('\'', "''")
    ));
    write_owned(&auto, text.as_bytes(), owner)?;
    log::info!("standby of {} as \"{node}\"", conninfo::redact(&conninfo));
    Ok(())
}

/// Whether a configuration line sets `name` (`name = …` or `name …`).
fn is_setting(line: &str, name: &str) -> bool {
    let line = line.trim_start();
    line.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(|c: char| c == '=' || c.is_whitespace()))
}

/// `conninfo` with `application_name` set to `node` (replacing any other).
pub fn with_application_name(conninfo: &str, node: &str) -> String {
    let text = conninfo.trim();
    if text.starts_with("postgresql://") || text.starts_with("postgres://") {
        if conninfo::get(text, "application_name").as_deref() == Some(node) {
            return text.to_owned();
        }
        let sep = if text.contains('?') { '&' } else { '?' };
        return format!("{text}{sep}application_name={node}");
    }
    let mut pairs: Vec<String> = raw_pairs(text)
        .into_iter()
        .filter(|(key, _)| key != "application_name")
        .map(|(_, raw)| raw)
        .collect();
    let simple = !node.is_empty()
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    pairs.push(if simple {
        format!("application_name={node}")
    } else {
        format!("application_name={}", conninfo::quote(node))
    });
    pairs.join(" ")
}

/// The `key=value` pairs of a keyword/value connection string, each with its text as written
/// (quotes and escapes kept), in order; libpq's syntax, as `instance::conninfo` reads it.
fn raw_pairs(text: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut pairs = Vec::new();
    let mut i = 0;
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let start = i;
        while at(i).is_some_and(|c| c != '=' && !c.is_whitespace()) {
            i += 1;
        }
        let key: String = chars.get(start..i).unwrap_or_default().iter().collect();
        if key.is_empty() {
            break;
        }
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i) != Some('=') {
            break;
        }
        i += 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let value_start = i;
        if at(i) == Some('\'') {
            i += 1;
            while let Some(c) = at(i) {
                i += 1;
                match c {
                    '\\' => i += 1,
                    '\'' => break,
                    _ => {}
                }
            }
        } else {
            while let Some(c) = at(i) {
                if c.is_whitespace() {
                    break;
                }
                i += if c == '\\' { 2 } else { 1 };
            }
        }
        let end = i.min(chars.len());
        let value: String = chars
            .get(value_start..end)
            .unwrap_or_default()
            .iter()
            .collect();
        pairs.push((key.clone(), format!("{key}={value}")));
    }
    pairs
}

/// Writes a file owned by the system user, mode 0600.
fn write_owned(path: &Path, content: &[u8], owner: &RunAs) -> Result<(), RewindError> {
    let io = |what: &str, e| RewindError::io(format!("could not {what} {}", path.display()), e);
    std::fs::write(path, content).map_err(|e| io("write", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("chmod", e))?;
    if owner.needs_switch() {
        chown(path, Some(owner.uid.as_raw()), Some(owner.gid.as_raw()))
            .map_err(|e| io("chown", e))?;
    }
    Ok(())
}

/// Copies a file or a directory tree, keeping modes and owners.
pub(super) fn copy_tree(from: &Path, to: &Path) -> Result<(), RewindError> {
    let meta = std::fs::symlink_metadata(from)
        .map_err(|e| RewindError::io(format!("could not stat {}", from.display()), e))?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| RewindError::io(format!("could not create {}", parent.display()), e))?;
    }
    if meta.is_dir() {
        std::fs::create_dir_all(to)
            .map_err(|e| RewindError::io(format!("could not create {}", to.display()), e))?;
        let entries = std::fs::read_dir(from)
            .map_err(|e| RewindError::io(format!("could not list {}", from.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| RewindError::io(format!("could not list {}", from.display()), e))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)
            .map_err(|e| RewindError::io(format!("could not read {}", from.display()), e))?;
        std::os::unix::fs::symlink(&target, to)
            .map_err(|e| RewindError::io(format!("could not create {}", to.display()), e))?;
        return Ok(());
    } else {
        std::fs::copy(from, to).map_err(|e| {
            RewindError::io(
                format!("could not copy {} to {}", from.display(), to.display()),
                e,
            )
        })?;
    }
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| RewindError::io(format!("could not chmod {}", to.display()), e))?;
    if nix::unistd::geteuid().is_root() {
        chown(to, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| RewindError::io(format!("could not chown {}", to.display()), e))?;
    }
    Ok(())
}

/// Removes a file or a tree; a missing one is fine.
pub(super) fn remove_tree(path: &Path) -> Result<(), RewindError> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(|e| RewindError::io(format!("could not remove {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> RunAs {
        RunAs::lookup(
            &nix::unistd::User::from_uid(nix::unistd::geteuid())
                .unwrap()
                .unwrap()
                .name,
        )
        .unwrap()
    }

    #[test]
    fn saved_files_come_back_and_foreign_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("pg_hba.conf"), "local all all trust # mine\n").unwrap();
        std::fs::set_permissions(
            data.join("pg_hba.conf"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        let keep: Vec<PathBuf> = ["pg_hba.conf", "postgresql.auto.conf"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let saved = save(&data, &keep, &dir.path().join("saved")).unwrap();
        // What pg_rewind would do: the source's copies replace the node's.
        std::fs::write(
            data.join("pg_hba.conf"),
            "host all all 0/0 trust # source\n",
        )
        .unwrap();
        std::fs::write(data.join("postgresql.auto.conf"), "work_mem = '1GB'\n").unwrap();
        saved.restore(&data).unwrap();
        assert_eq!(
            std::fs::read_to_string(data.join("pg_hba.conf")).unwrap(),
            "local all all trust # mine\n"
        );
        let mode = std::fs::metadata(data.join("pg_hba.conf")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert!(!data.join("postgresql.auto.conf").exists());
    }

    #[test]
    fn standby_settings_replace_older_primary_conninfo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postgresql.auto.conf"),
            "# Do not edit this file manually!\nwork_mem = '7MB'\nprimary_conninfo = 'host=old'\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("recovery.signal"), "").unwrap();
        write_standby(dir.path(), Some("host=10.0.0.2 user=repl"), "pg1", &me()).unwrap();
        let auto = std::fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert_eq!(
            auto,
            "# Do not edit this file manually!\nwork_mem = '7MB'\n\
             primary_conninfo = 'host=10.0.0.2 user=repl application_name=pg1'\n"
        );
        assert!(dir.path().join("standby.signal").exists());
        assert!(!dir.path().join("recovery.signal").exists());
    }

    #[test]
    fn application_name_is_the_node_name() {
        assert_eq!(
            with_application_name("host=a application_name=pg2 port = 5433", "pg1"),
            "host=a port=5433 application_name=pg1"
        );
        assert_eq!(
            conninfo::get(&with_application_name("host=a", "pg 1"), "application_name").as_deref(),
            Some("pg 1")
        );
        assert_eq!(
            with_application_name(r"password='a b\'c' application_name='x y'", "pg1"),
            r"password='a b\'c' application_name=pg1"
        );
        assert_eq!(
            with_application_name("postgresql://h/db", "pg1"),
            "postgresql://h/db?application_name=pg1"
        );
    }

    #[test]
    fn setting_lines() {
        assert!(is_setting("primary_conninfo = 'x'", "primary_conninfo"));
        assert!(is_setting("  primary_conninfo='x'", "primary_conninfo"));
        assert!(!is_setting("primary_conninfo_x = 1", "primary_conninfo"));
        assert!(!is_setting("# primary_conninfo = 'x'", "primary_conninfo"));
    }
}
