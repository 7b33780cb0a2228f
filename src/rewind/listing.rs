//! A data directory's listing on this host (the target, or a stopped source), as pg_rewind
//! lists a local directory: every entry with its type and size, links not followed except
//! `pg_wal` and the tablespaces' links in `pg_tblspc`, which pg_rewind follows.
//!
//! The directory belongs to the postgres account: entries are read relative to open
//! directory handles without following links (`safe_fs`), a FIFO or a device is refused,
//! and the walk stops at `safe_fs::MAX_DEPTH` levels. Only the two links pg_rewind follows
//! are opened through their path, and only when they lead to a folder of the system user's.
//! The native engine writes and reads through a [`Tree`], which holds `pg_wal` open: pgha
//! runs as root, and postgres could point the link elsewhere between two entries.

use std::io;
use std::path::Path;

use super::filemap::{FileEntry, FileType};
use crate::safe_fs::{Dir, Kind, Owner, MAX_DEPTH};

/// Every entry under `datadir`, paths relative to it, sorted. The directory, and the links
/// the walk follows, must belong to `owner` (when given).
pub fn local_file_list(datadir: &Path, owner: Option<Owner>) -> io::Result<Vec<FileEntry>> {
    let mut entries = Vec::new();
    walk(
        &Dir::open_owned(datadir, owner)?,
        "",
        0,
        owner,
        &mut entries,
    )?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// A data directory as the native engine writes (or, a stopped source, reads) it: its
/// handle and its `pg_wal`'s, each opened once, a linked `pg_wal` only when it belongs to
/// the system user. Every other path is reached from these without following any link:
/// tablespaces are handed over to pg_rewind before the engine runs.
pub struct Tree {
    root: Dir,
    wal: Dir,
}

impl Tree {
    pub fn open(root: Dir, owner: Option<Owner>) -> io::Result<Tree> {
        let wal = match root.kind("pg_wal")? {
            Some(Kind::Symlink) => Dir::open_owned(&root.join("pg_wal"), owner)?,
            _ => root.open_dir("pg_wal")?,
        };
        Ok(Tree { root, wal })
    }

    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The `pg_wal` directory (a link's target, which may be on another file system).
    pub fn wal(&self) -> &Dir {
        &self.wal
    }

    /// The directory `dirs` (relative to the data directory; empty for it).
    pub fn dir_at(&self, dirs: &str) -> io::Result<Dir> {
        let mut parts = dirs.split('/').filter(|c| !c.is_empty()).peekable();
        let mut dir = if parts.next_if_eq(&"pg_wal").is_some() {
            self.wal.try_clone()?
        } else {
            self.root.try_clone()?
        };
        for component in parts {
            dir = dir.open_dir(component)?;
        }
        Ok(dir)
    }

    /// The directory holding `path` (relative to the data directory) and the entry's name.
    pub fn parent_of<'p>(&self, path: &'p str) -> io::Result<(Dir, &'p str)> {
        let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok((self.dir_at(dirs)?, name))
    }
}

fn walk(
    dir: &Dir,
    prefix: &str,
    depth: usize,
    owner: Option<Owner>,
    out: &mut Vec<FileEntry>,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is more than {MAX_DEPTH} levels deep",
                dir.path().display()
            ),
        ));
    }
    for name in dir.entries()? {
        // An entry removed meanwhile (a server's temporary file) is no longer there to list.
        let Some((kind, size)) = dir.kind_and_size(&name)? else {
            continue;
        };
        let path = format!("{prefix}{name}");
        let followed = path == "pg_wal" || prefix == "pg_tblspc/";
        let (file_type, size) = match kind {
            Kind::File => (FileType::Regular, size),
            Kind::Dir => (FileType::Directory, 0),
            Kind::Symlink if path == "pg_wal" => (FileType::Directory, 0),
            Kind::Symlink => (FileType::Symlink, 0),
            Kind::Other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is neither a file, a directory nor a link",
                        dir.join(&name).display()
                    ),
                ))
            }
        };
        out.push(FileEntry {
            path: path.clone(),
            file_type,
            size,
        });
        let sub = match kind {
            Kind::Dir => Some(dir.open_dir(&name)?),
            Kind::Symlink if followed => Some(Dir::open_owned(&dir.join(&name), owner)?),
            _ => None,
        };
        if let Some(sub) = sub {
            walk(&sub, &format!("{path}/"), depth + 1, owner, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_and_directories_without_following_other_links() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let wal = root.path().join("wal");
        std::fs::create_dir_all(data.join("base/5")).unwrap();
        std::fs::create_dir_all(&wal).unwrap();
        std::fs::write(data.join("base/5/16384"), [0u8; 100]).unwrap();
        std::fs::write(wal.join("000000010000000000000001"), [0u8; 10]).unwrap();
        std::os::unix::fs::symlink(&wal, data.join("pg_wal")).unwrap();
        std::os::unix::fs::symlink("/etc", data.join("planted")).unwrap();
        let listed: Vec<(String, FileType, u64)> = local_file_list(&data, None)
            .unwrap()
            .into_iter()
            .map(|e| (e.path, e.file_type, e.size))
            .collect();
        assert_eq!(
            listed,
            [
                ("base".into(), FileType::Directory, 0),
                ("base/5".into(), FileType::Directory, 0),
                ("base/5/16384".into(), FileType::Regular, 100),
                ("pg_wal".into(), FileType::Directory, 0),
                (
                    "pg_wal/000000010000000000000001".into(),
                    FileType::Regular,
                    10
                ),
                ("planted".into(), FileType::Symlink, 0),
            ]
        );
    }

    #[test]
    fn a_fifo_in_the_data_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&root.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = local_file_list(root.path(), None).unwrap_err();
        assert!(e.to_string().contains("neither a file"), "{e}");
    }

    fn nobody() -> Owner {
        Owner {
            uid: nix::unistd::Uid::from_raw(65534),
            gid: nix::unistd::Gid::from_raw(65534),
        }
    }

    /// The native engine's security review: every entry re-resolved the `pg_wal` link, so
    /// postgres could point it at /etc mid-rewind and have root write and remove there.
    #[test]
    fn finding_native_pg_wal_swapped_mid_rewind_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("base")).unwrap();
        std::fs::create_dir_all(root.path().join("wal")).unwrap();
        std::fs::create_dir_all(root.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(root.path().join("wal"), data.join("pg_wal")).unwrap();
        let tree = Tree::open(Dir::open(&data).unwrap(), None).unwrap();
        std::fs::remove_file(data.join("pg_wal")).unwrap();
        std::os::unix::fs::symlink(root.path().join("elsewhere"), data.join("pg_wal")).unwrap();
        let (dir, name) = tree.parent_of("pg_wal/000000010000000000000001").unwrap();
        dir.write_file(name, b"wal", 0o600, None).unwrap();
        assert!(root.path().join("wal/000000010000000000000001").is_file());
        assert!(!root
            .path()
            .join("elsewhere/000000010000000000000001")
            .exists());
        // No other link is followed.
        std::os::unix::fs::symlink(root.path().join("elsewhere"), data.join("base/1")).unwrap();
        assert!(tree.dir_at("base/1").is_err());
    }

    /// The same review: a `pg_wal` (of the target, or of a stopped source) linked to a folder
    /// that is not the system user's is neither listed nor written: root would otherwise read
    /// root's files into the data directory, or write over them.
    #[test]
    fn finding_native_pg_wal_linked_to_a_folder_not_the_owners_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(root.path().join("secret")).unwrap();
        std::fs::write(root.path().join("secret/id_rsa"), "key").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), data.join("pg_wal")).unwrap();
        let refused = Tree::open(Dir::open(&data).unwrap(), Some(nobody()));
        assert!(refused.is_err());
        let me = Dir::open(&data).unwrap().owner().unwrap();
        assert!(Tree::open(Dir::open(&data).unwrap(), Some(me)).is_ok());
        let listed = local_file_list(&data, Some(me)).unwrap();
        assert!(listed.iter().any(|e| e.path == "pg_wal/id_rsa"));
        // The data directory is the test's own; a pg_wal of someone else's is refused.
        if nix::unistd::Uid::effective().is_root() {
            std::os::unix::fs::chown(root.path().join("secret"), Some(0), Some(0)).unwrap();
            std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
            assert!(local_file_list(&data, Some(nobody())).is_err());
        }
    }
}
