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

use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::RewindError;
use crate::instance::conninfo;
use crate::safe_fs::{Dir, Owner};

/// The most pgha reads of `postgresql.auto.conf`, which the system user can write.
const AUTO_CONF_LIMIT: u64 = 16 * 1024 * 1024;

/// The default of `rewind_keep_files`.
pub const DEFAULT_KEEP: &[&str] = &[
    "postgresql.conf",
    "postgresql.auto.conf",
    "pg_hba.conf",
    "pg_ident.conf",
];

/// What was saved, and where.
#[derive(Debug)]
pub struct SavedConfig {
    /// The copies (`<run>/config`), held open: never looked up again by a path that postgres
    /// could redirect.
    pub dir: Dir,
    /// Paths relative to the data directory, and whether the node had them.
    pub files: Vec<(PathBuf, bool)>,
}

/// The most pgha copies of one configuration file: far more than any is, far less than a
/// disk.
const CONFIG_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Copies the node-local files of the data directory `data` into `<run>/config`, owned by
/// `owner` (the system user).
pub fn save(
    data: &Dir,
    keep: &[PathBuf],
    run: &Dir,
    owner: Option<Owner>,
) -> Result<SavedConfig, RewindError> {
    let io = |what: &str, e| RewindError::io(format!("could not {what}"), e);
    let into = run
        .create_dir("config", 0o700, owner)
        .map_err(|e| io(&format!("create {}/config", run.path().display()), e))?;
    let mut files = Vec::new();
    for rel in keep {
        let present = copy_entry(data, rel, &into, owner).map_err(|e| {
            io(
                &format!("save {}", data.join(&rel.to_string_lossy()).display()),
                e,
            )
        })?;
        files.push((rel.clone(), present));
    }
    Ok(SavedConfig { dir: into, files })
}

/// What an earlier run saved in `<run>/config` (a repair after an interrupted rewind): each
/// of `keep`, present or not.
pub fn saved_before(run: &Dir, keep: &[PathBuf]) -> Result<SavedConfig, RewindError> {
    let dir = run.open_dir("config").map_err(|e| {
        RewindError::io(format!("could not open {}/config", run.path().display()), e)
    })?;
    let files = keep
        .iter()
        .map(|rel| {
            let present = walk(&dir, rel, None)
                .ok()
                .flatten()
                .is_some_and(|(parent, name)| parent.kind(&name).ok().flatten().is_some());
            (rel.clone(), present)
        })
        .collect();
    Ok(SavedConfig { dir, files })
}

impl SavedConfig {
    /// Puts the saved files back into the data directory `data` (which may be another
    /// directory than the one they came from: a re-clone), owned by `owner`, removes the
    /// ones the node did not have, and syncs what changed.
    pub fn restore(&self, data: &Dir, owner: Option<Owner>) -> Result<(), RewindError> {
        for (rel, present) in &self.files {
            let shown = data.path().join(rel);
            let io =
                |what: &str, e| RewindError::io(format!("could not {what} {}", shown.display()), e);
            remove_entry(data, rel, owner).map_err(|e| io("remove", e))?;
            if *present {
                copy_entry(&self.dir, rel, data, owner).map_err(|e| io("restore", e))?;
                log::info!("kept the node's own {}", rel.display());
            }
        }
        data.sync()
            .map_err(|e| RewindError::io(format!("could not sync {}", data.path().display()), e))
    }
}

/// The folder holding `rel` inside `dir` (its components opened without following links,
/// created with `create`'s owner when missing), and `rel`'s last component; `None` when a
/// folder on the way is missing and `create` is `None`.
fn walk(dir: &Dir, rel: &Path, create: Option<Option<Owner>>) -> io::Result<Option<(Dir, String)>> {
    let names: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => name.to_str().ok_or_else(|| bad_path(rel)),
            _ => Err(bad_path(rel)),
        })
        .collect::<io::Result<_>>()?;
    let Some((last, folders)) = names.split_last() else {
        return Err(bad_path(rel));
    };
    if folders.len() >= crate::safe_fs::MAX_DEPTH {
        return Err(bad_path(rel));
    }
    let mut here = dir.try_clone()?;
    for name in folders {
        here = match (here.kind(name)?, create) {
            (Some(_), _) => here.open_dir(name)?,
            (None, None) => return Ok(None),
            (None, Some(owner)) => here.create_dir(name, 0o700, owner)?,
        };
    }
    Ok(Some((here, (*last).to_owned())))
}

fn bad_path(rel: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is not a relative path inside the data directory",
            rel.display()
        ),
    )
}

/// Copies `rel` from `from` to `to` (files, links as links, folders), keeping permission
/// bits, owned by `owner`; `Ok(false)` when `from` has no such entry.
fn copy_entry(from: &Dir, rel: &Path, to: &Dir, owner: Option<Owner>) -> io::Result<bool> {
    let Some((source, name)) = walk(from, rel, None)? else {
        return Ok(false);
    };
    if source.kind(&name)?.is_none() {
        return Ok(false);
    }
    let Some((target, _)) = walk(to, rel, Some(owner))? else {
        return Ok(false);
    };
    target.remove_tree(&name, owner)?;
    let copied = target.copy_tree(&source, &name, &name, owner, CONFIG_FILE_LIMIT)?;
    target.sync()?;
    Ok(copied)
}

/// Removes `rel` from `dir`, a whole tree if it is a folder; a missing one is fine.
fn remove_entry(dir: &Dir, rel: &Path, owner: Option<Owner>) -> io::Result<()> {
    match walk(dir, rel, None)? {
        Some((parent, name)) => parent.remove_tree(&name, owner),
        None => Ok(()),
    }
}

/// Makes the data directory start as a standby of `primary_conninfo` (when given): removes
/// `recovery.signal`, writes `standby.signal`, and sets `primary_conninfo` with
/// `application_name` = `node` in `postgresql.auto.conf` (where the server reads it last,
/// so it wins over postgresql.conf and its includes).
pub fn write_standby(
    data: &Dir,
    primary_conninfo: Option<&str>,
    node: &str,
    owner: Option<Owner>,
) -> Result<(), RewindError> {
    let io = |what: &str, name: &str, e| {
        RewindError::io(format!("could not {what} {}", data.join(name).display()), e)
    };
    // A setting's quoted value cannot span lines: a line break would end it, and what
    // follows would be read as settings of its own. Refused before anything is written.
    if primary_conninfo.unwrap_or("").contains(char::is_control) || node.contains(char::is_control)
    {
        return Err(io(
            "write the standby settings into",
            "postgresql.auto.conf",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "primary_conninfo or the node name holds a line break or another control \
                 character",
            ),
        ));
    }
    data.remove_tree("recovery.signal", owner)
        .map_err(|e| io("remove", "recovery.signal", e))?;
    data.write_file("standby.signal", b"", 0o600, owner)
        .map_err(|e| io("write", "standby.signal", e))?;
    let Some(conninfo) = primary_conninfo else {
        return Ok(());
    };
    let conninfo = with_application_name(conninfo, node);
    const AUTO: &str = "postgresql.auto.conf";
    let old = match data.read_string(AUTO, AUTO_CONF_LIMIT) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("read", AUTO, e)),
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
    data.write_file(AUTO, text.as_bytes(), 0o600, owner)
        .map_err(|e| io("write", AUTO, e))?;
    log::info!("standby of {} as \"{node}\"", conninfo::redact(&conninfo));
    Ok(())
}

/// Whether a configuration line sets `name` (`name = …` or `name …`).
fn is_setting(line: &str, name: &str) -> bool {
    let line = line.trim_start();
    line.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(|c: char| c == '=' || c.is_whitespace()))
}

/// `conninfo` with `application_name` set to `node` (replacing any other): the name the
/// primary's `pg_stat_replication` shows for this standby.
pub fn with_application_name(conninfo: &str, node: &str) -> String {
    conninfo::with_value(conninfo, "application_name", node)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    use super::*;

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
        let run = Dir::open(dir.path()).unwrap();
        let handle = Dir::open(&data).unwrap();
        let saved = save(&handle, &keep, &run, None).unwrap();
        // What pg_rewind would do: the source's copies replace the node's.
        std::fs::write(
            data.join("pg_hba.conf"),
            "host all all 0/0 trust # source\n",
        )
        .unwrap();
        std::fs::write(data.join("postgresql.auto.conf"), "work_mem = '1GB'\n").unwrap();
        saved.restore(&handle, None).unwrap();
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
        let data = Dir::open(dir.path()).unwrap();
        write_standby(&data, Some("host=10.0.0.2 user=repl"), "pg1", None).unwrap();
        let auto = std::fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert_eq!(
            auto,
            "# Do not edit this file manually!\nwork_mem = '7MB'\n\
             primary_conninfo = 'host=10.0.0.2 user=repl application_name=pg1'\n"
        );
        assert!(dir.path().join("standby.signal").exists());
        assert!(!dir.path().join("recovery.signal").exists());
    }

    /// Finding 1: root wrote, chmodded and chowned through a `standby.signal` or
    /// `postgresql.auto.conf` that postgres had linked to a root-owned file.
    #[test]
    fn finding_1_standby_settings_never_write_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("shadow");
        std::fs::write(&victim, "root:secret\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        symlink(&victim, data.join("standby.signal")).unwrap();
        symlink(&victim, data.join("postgresql.auto.conf")).unwrap();
        let handle = Dir::open(&data).unwrap();
        let err = write_standby(&handle, Some("host=a"), "pg1", None).unwrap_err();
        assert!(err.to_string().contains("postgresql.auto.conf"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o777, 0o640);
        assert!(std::fs::symlink_metadata(data.join("standby.signal"))
            .unwrap()
            .is_file());
    }

    /// Finding 1: the configuration restore copied through links planted in the data
    /// directory (and `rewind_keep_files` could name a path through a linked folder).
    #[test]
    fn finding_1_configuration_restore_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("pg_hba.conf"), "precious\n").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("pg_hba.conf"), "mine\n").unwrap();
        let handle = Dir::open(&data).unwrap();
        let keep = [PathBuf::from("pg_hba.conf"), PathBuf::from("conf.d/x.conf")];
        let saved = save(&handle, &keep, &Dir::open(dir.path()).unwrap(), None).unwrap();
        std::fs::remove_file(data.join("pg_hba.conf")).unwrap();
        symlink(outside.path().join("pg_hba.conf"), data.join("pg_hba.conf")).unwrap();
        symlink(outside.path(), data.join("conf.d")).unwrap();
        let err = saved.restore(&handle, None).unwrap_err();
        assert!(err.to_string().contains("conf.d"), "{err}");
        assert_eq!(
            std::fs::read_to_string(outside.path().join("pg_hba.conf")).unwrap(),
            "precious\n"
        );
        assert_eq!(
            std::fs::read_to_string(data.join("pg_hba.conf")).unwrap(),
            "mine\n"
        );
    }

    /// Fuzzing found it: a line break in `primary_conninfo` was written as is into
    /// `postgresql.auto.conf`, where what followed it read as settings of its own.
    #[test]
    fn a_line_break_in_primary_conninfo_is_refused_not_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postgresql.auto.conf"),
            "work_mem = '7MB'\n",
        )
        .unwrap();
        let data = Dir::open(dir.path()).unwrap();
        for (conninfo, node) in [
            ("host=a\narchive_command = 'touch /tmp/x'", "pg1"),
            ("host=a", "pg1\rx"),
        ] {
            let err = write_standby(&data, Some(conninfo), node, None).unwrap_err();
            assert!(err.to_string().contains("line break"), "{err}");
            assert!(!err.to_string().contains("archive_command"), "{err}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap(),
            "work_mem = '7MB'\n"
        );
        assert!(!dir.path().join("standby.signal").exists());
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
