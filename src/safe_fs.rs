//! Files in places the `postgres` account can write, handled by root without following its
//! links.
//!
//! pgha runs as root. PGDATA, its parent and the kept-WAL folders belong to the system user,
//! who can plant a symbolic link, a FIFO or a huge file under any name pgha uses there. So
//! every access here is relative to an open directory handle, one name at a time, with
//! `O_NOFOLLOW`; what is opened is checked to be the kind of file expected; modes and owners
//! are set on the open handle (`fchmod`, `fchown`), never by path; reads are bounded and
//! non-blocking. A file is replaced by writing a new one under a temporary name (`O_EXCL`)
//! and renaming it over the old name: the rename replaces a planted link, never what it
//! points to.
//!
//! Only the directory a handle is opened from ([`Dir::open`]) is a path: it is one the
//! administrator configured (the data directory, `rewind_keep_dir`), and may go through links
//! the administrator made.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

/// The permission bits pgha gives what it creates: never set-user-ID, set-group-ID or
/// sticky, whatever the source had.
const PERMISSIONS: u32 = 0o777;

/// How deep pgha goes into a tree it copies or removes: configuration and kept folders are
/// shallow, and a tree thousands of levels deep would exhaust descriptors or the stack.
pub const MAX_DEPTH: usize = 64;

fn too_deep(path: &Path) -> io::Error {
    invalid(format!(
        "{} is more than {MAX_DEPTH} levels deep",
        path.display()
    ))
}

/// Who a created file or folder belongs to; `None` where it is: keep the creator (root, or
/// the user running the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: Uid,
    pub gid: Gid,
}

/// An open directory, and the path it was reached by (for messages only).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// The kind of a directory entry, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// `name` must be one path component: a name in the directory, never a way out of it.
fn component(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    Ok(name)
}

fn kind_of(stat: &FileStat) -> Kind {
    match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

impl Dir {
    /// Opens the directory at `path`, as configured.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = openat(None, path, flags, Mode::empty()).map_err(errno)?;
        Ok(Dir {
            // SAFETY: `openat` returned a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_owned(),
        })
    }

    /// Opens the directory at `path` and checks that `owner` (when given) owns it: a data
    /// directory swapped for a link to some other user's folder is refused.
    pub fn open_owned(path: &Path, owner: Option<Owner>) -> io::Result<Dir> {
        let dir = Dir::open(path)?;
        if let Some(owner) = owner {
            let found = dir.owner()?;
            if found.uid != owner.uid {
                return Err(invalid(format!(
                    "{} belongs to uid {}, not to uid {}",
                    path.display(),
                    found.uid,
                    owner.uid
                )));
            }
        }
        Ok(dir)
    }

    /// The directory holding `path`, and `path`'s last component.
    pub fn parent_of(path: &Path) -> io::Result<(Dir, String)> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| invalid(format!("{} has no usable last component", path.display())))?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        Ok((
            Dir::open(parent.unwrap_or(Path::new(".")))?,
            name.to_owned(),
        ))
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of an entry, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> Option<i32> {
        Some(self.fd.as_raw_fd())
    }

    fn open_at(&self, name: &str, flags: OFlag, mode: u32) -> io::Result<File> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(mode);
        let fd = openat(self.raw(), component(name)?, flags, mode).map_err(errno)?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// The kind of the entry `name`, `None` when there is none.
    pub fn kind(&self, name: &str) -> io::Result<Option<Kind>> {
        Ok(self.kind_and_size(name)?.map(|(kind, _)| kind))
    }

    /// The kind and size of the entry `name` (not followed), `None` when there is none.
    pub fn kind_and_size(&self, name: &str) -> io::Result<Option<(Kind, u64)>> {
        match fstatat(self.raw(), component(name)?, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some((
                kind_of(&stat),
                u64::try_from(stat.st_size).unwrap_or(0),
            ))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    /// When the entry `name` (not followed) last changed.
    pub fn modified(&self, name: &str) -> io::Result<std::time::SystemTime> {
        let stat =
            fstatat(self.raw(), component(name)?, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)?;
        let secs = u64::try_from(stat.st_mtime).unwrap_or(0);
        Ok(std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(secs))
            .unwrap_or(std::time::UNIX_EPOCH))
    }

    /// Opens the subdirectory `name`; a link there is refused.
    pub fn open_dir(&self, name: &str) -> io::Result<Dir> {
        let file = self.open_at(name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
        Ok(Dir {
            fd: OwnedFd::from(file),
            path: self.join(name),
        })
    }

    /// Creates the subdirectory `name` (it must not exist), with `mode` and `owner` set on
    /// the open handle.
    pub fn create_dir(&self, name: &str, mode: u32, owner: Option<Owner>) -> io::Result<Dir> {
        mkdirat(self.raw(), component(name)?, Mode::S_IRWXU).map_err(errno)?;
        let dir = self.open_dir(name)?;
        // Between the two calls, a user who can write here may have put another folder under
        // that name: only the empty one just made, ours, gets an owner and a mode.
        let made = dir.owner()?.uid == Uid::effective() && dir.entries()?.is_empty();
        if !made {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} was replaced while it was created", dir.path().display()),
            ));
        }
        dir.set_owner_and_mode(mode, owner)?;
        Ok(dir)
    }

    /// The subdirectory `name`, created as [`Dir::create_dir`] does when missing; one that
    /// already exists keeps its owner and mode.
    pub fn ensure_dir(&self, name: &str, mode: u32, owner: Option<Owner>) -> io::Result<Dir> {
        match self.create_dir(name, mode, owner) {
            Err(e) if e.raw_os_error() == Some(Errno::EEXIST as i32) => self.open_dir(name),
            other => other,
        }
    }

    /// Sets this directory's own mode and owner (on the handle).
    pub fn set_owner_and_mode(&self, mode: u32, owner: Option<Owner>) -> io::Result<()> {
        set_owner_and_mode(self.fd.as_raw_fd(), mode, owner)
    }

    /// This directory's permission bits.
    pub fn mode(&self) -> io::Result<u32> {
        Ok(fstat(self.fd.as_raw_fd()).map_err(errno)?.st_mode & 0o7777)
    }

    /// This directory's owner.
    pub fn owner(&self) -> io::Result<Owner> {
        let stat = fstat(self.fd.as_raw_fd()).map_err(errno)?;
        Ok(Owner {
            uid: Uid::from_raw(stat.st_uid),
            gid: Gid::from_raw(stat.st_gid),
        })
    }

    /// Opens the regular file `name` for reading: a link, a FIFO or a device is refused, and
    /// the open never blocks.
    pub fn open_file(&self, name: &str) -> io::Result<(File, FileStat)> {
        let file = self.open_at(name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)?;
        let stat = fstat(file.as_raw_fd()).map_err(errno)?;
        if kind_of(&stat) != Kind::File {
            return Err(invalid(format!(
                "{} is not a regular file",
                self.join(name).display()
            )));
        }
        Ok((file, stat))
    }

    /// The content of the regular file `name`, refused when larger than `limit` bytes.
    pub fn read(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
        let (file, _) = self.open_file(name)?;
        read_limited(file, limit, &self.join(name))
    }

    /// [`Dir::read`] as text.
    pub fn read_string(&self, name: &str, limit: u64) -> io::Result<String> {
        String::from_utf8(self.read(name, limit)?)
            .map_err(|_| invalid(format!("{} is not UTF-8 text", self.join(name).display())))
    }

    /// Creates the file `name`, which must not exist, with `mode` and `owner` set on the
    /// handle before anything is written.
    pub fn create_file(&self, name: &str, mode: u32, owner: Option<Owner>) -> io::Result<File> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let file = self.open_at(name, flags, 0o600)?;
        set_owner_and_mode(file.as_raw_fd(), mode, owner)?;
        Ok(file)
    }

    /// Opens the regular file `name` for writing (created when `create` and missing), never
    /// through a link, never blocking on a FIFO; `mode` and `owner` are set on the handle. A
    /// file that was there must already belong to `owner`: a hard link to another user's
    /// file (where the kernel allows those) is refused, not given away.
    pub fn open_writable(
        &self,
        name: &str,
        create: bool,
        mode: u32,
        owner: Option<Owner>,
    ) -> io::Result<File> {
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK;
        let (file, created) = match self.open_at(name, flags, 0o600) {
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                let exclusive = flags | OFlag::O_CREAT | OFlag::O_EXCL;
                (self.open_at(name, exclusive, 0o600)?, true)
            }
            opened => (opened?, false),
        };
        let stat = fstat(file.as_raw_fd()).map_err(errno)?;
        if kind_of(&stat) != Kind::File {
            return Err(invalid(format!(
                "{} is not a regular file",
                self.join(name).display()
            )));
        }
        if let Some(owner) = owner.filter(|o| !created && o.uid.as_raw() != stat.st_uid) {
            return Err(invalid(format!(
                "{} belongs to uid {}, not to uid {}: not written",
                self.join(name).display(),
                stat.st_uid,
                owner.uid
            )));
        }
        set_owner_and_mode(file.as_raw_fd(), mode, owner)?;
        Ok(file)
    }

    /// Writes `name` durably as a new file (a temporary one renamed over it, then the
    /// directory synced): whatever was there before, a link included, is replaced.
    pub fn write_file(
        &self,
        name: &str,
        content: &[u8],
        mode: u32,
        owner: Option<Owner>,
    ) -> io::Result<()> {
        let tmp = format!(".{}.pgha-tmp", component(name)?);
        self.remove_file(&tmp)?;
        let mut file = self.create_file(&tmp, mode, owner)?;
        let written = file.write_all(content).and_then(|()| file.sync_all());
        if let Err(e) = written.and_then(|()| self.rename(&tmp, name)) {
            let _ = self.remove_file(&tmp);
            return Err(e);
        }
        self.sync()
    }

    /// Copies the regular file `name` of `from` to a new file `to` here, synced, with the
    /// source's permission bits (never set-user-ID, set-group-ID nor sticky) and owned by
    /// `owner` (the creator when `None`): never by the source's owner, which a file postgres
    /// planted beside root's would make root's. A source larger than `limit` is refused.
    /// Returns the size copied.
    pub fn copy_file(
        &self,
        from: &Dir,
        name: &str,
        to: &str,
        owner: Option<Owner>,
        limit: u64,
    ) -> io::Result<u64> {
        let (source, stat) = from.open_file(name)?;
        let too_big = || {
            invalid(format!(
                "{} is larger than {limit} bytes",
                from.join(name).display()
            ))
        };
        if stat.st_size as u64 > limit {
            return Err(too_big());
        }
        let mut copy = self.create_file(to, stat.st_mode & PERMISSIONS, owner)?;
        let size = io::copy(&mut source.take(limit.saturating_add(1)), &mut copy)?;
        if size > limit {
            drop(copy);
            let _ = self.remove_file(to);
            return Err(too_big());
        }
        copy.sync_all()?;
        Ok(size)
    }

    /// Copies the entry `name` of `from` to a new entry `to` here: a regular file (at most
    /// `limit` bytes), a link (as a link, never followed) or a folder, at most [`MAX_DEPTH`]
    /// levels deep, as [`Dir::copy_file`] does. `Ok(false)` when `from` has no such entry.
    pub fn copy_tree(
        &self,
        from: &Dir,
        name: &str,
        to: &str,
        owner: Option<Owner>,
        limit: u64,
    ) -> io::Result<bool> {
        self.copy_tree_at(from, name, to, owner, limit, 0)
    }

    fn copy_tree_at(
        &self,
        from: &Dir,
        name: &str,
        to: &str,
        owner: Option<Owner>,
        limit: u64,
        depth: usize,
    ) -> io::Result<bool> {
        match from.kind(name)? {
            None => Ok(false),
            Some(Kind::File) => self.copy_file(from, name, to, owner, limit).map(|_| true),
            Some(Kind::Symlink) => {
                let target = readlinkat(from.raw(), component(name)?).map_err(errno)?;
                symlinkat(target.as_os_str(), self.raw(), component(to)?).map_err(errno)?;
                if let Some(owner) = owner {
                    fchownat(
                        self.raw(),
                        component(to)?,
                        Some(owner.uid),
                        Some(owner.gid),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(errno)?;
                }
                Ok(true)
            }
            Some(Kind::Dir) if depth >= MAX_DEPTH => Err(too_deep(&from.join(name))),
            Some(Kind::Dir) => {
                let source = from.open_dir(name)?;
                let copy = self.create_dir(to, source.mode()? & PERMISSIONS, owner)?;
                for entry in source.entries()? {
                    copy.copy_tree_at(&source, &entry, &entry, owner, limit, depth + 1)?;
                }
                copy.sync()?;
                Ok(true)
            }
            Some(Kind::Other) => Err(invalid(format!(
                "{} is neither a file, a folder nor a link",
                from.join(name).display()
            ))),
        }
    }

    /// A hard link `to` here to the regular file `name` of `from` (never to a link).
    pub fn hard_link(&self, from: &Dir, name: &str, to: &str) -> io::Result<()> {
        if from.kind(name)? != Some(Kind::File) {
            return Err(invalid(format!(
                "{} is not a regular file",
                from.join(name).display()
            )));
        }
        linkat(
            from.raw(),
            component(name)?,
            self.raw(),
            component(to)?,
            AtFlags::empty(),
        )
        .map_err(errno)
    }

    /// Removes the entry `name` if it is not a directory; a missing one is fine.
    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        match unlinkat(self.raw(), component(name)?, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Removes the entry `name`, a whole tree if it is a directory (links inside are removed,
    /// never followed); a missing one is fine. With `owner`, every folder of the tree must be
    /// that user's: root then removes only what that user could remove itself, never a
    /// folder of root's that the user renamed into the way.
    pub fn remove_tree(&self, name: &str, owner: Option<Owner>) -> io::Result<()> {
        self.remove_tree_at(name, owner, 0)
    }

    fn remove_tree_at(&self, name: &str, owner: Option<Owner>, depth: usize) -> io::Result<()> {
        if self.kind(name)? != Some(Kind::Dir) {
            return self.remove_file(name);
        }
        if depth >= MAX_DEPTH {
            return Err(too_deep(&self.join(name)));
        }
        let dir = self.open_dir(name)?;
        if let Some(owner) = owner {
            let found = dir.owner()?;
            if found.uid != owner.uid {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} belongs to uid {}, not to uid {}: not removed",
                        dir.path().display(),
                        found.uid,
                        owner.uid
                    ),
                ));
            }
        }
        for entry in dir.entries()? {
            dir.remove_tree_at(&entry, owner, depth + 1)?;
        }
        match unlinkat(self.raw(), component(name)?, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Renames `from` to `to`, both in this directory.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        renameat(self.raw(), component(from)?, self.raw(), component(to)?).map_err(errno)
    }

    /// Renames `from` here to `to` in `into` (same file system), never replacing anything.
    pub fn move_to(&self, from: &str, into: &Dir, to: &str) -> io::Result<()> {
        renameat2(
            self.raw(),
            component(from)?,
            into.raw(),
            component(to)?,
            RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(errno)
    }

    /// Swaps the entries `a` and `b` in one step: at every instant both names exist.
    pub fn exchange(&self, a: &str, b: &str) -> io::Result<()> {
        renameat2(
            self.raw(),
            component(a)?,
            self.raw(),
            component(b)?,
            RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(errno)
    }

    /// The names in this directory, `.` and `..` left out.
    pub fn entries(&self) -> io::Result<Vec<String>> {
        let fd = nix::unistd::dup(self.fd.as_raw_fd()).map_err(errno)?;
        let mut listing = nix::dir::Dir::from_fd(fd).map_err(errno)?;
        let mut names = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(errno)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// fsync of the directory, so the creations, renames and removals in it survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        nix::unistd::fsync(self.fd.as_raw_fd()).map_err(errno)
    }

    /// `syncfs` of the file system that holds the directory: everything written there.
    pub fn sync_file_system(&self) -> io::Result<()> {
        nix::unistd::syncfs(self.fd.as_raw_fd()).map_err(errno)
    }
}

fn set_owner_and_mode(fd: i32, mode: u32, owner: Option<Owner>) -> io::Result<()> {
    if let Some(owner) = owner {
        fchown(fd, Some(owner.uid), Some(owner.gid)).map_err(errno)?;
    }
    fchmod(fd, Mode::from_bits_truncate(mode)).map_err(errno)
}

/// The content of an open file, refused when larger than `limit` bytes (`shown` names it).
pub fn read_limited(file: File, limit: u64, shown: &Path) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut content)?;
    if content.len() as u64 > limit {
        return Err(invalid(format!(
            "{} is larger than {limit} bytes",
            shown.display()
        )));
    }
    Ok(content)
}

/// Opens the regular file at `path` following links, without blocking: for files that
/// configuration names and that are links by design (certificates under /etc/ssl). The path
/// is first resolved with `O_PATH`, which opens nothing, and only a regular file found so is
/// then opened, through that very descriptor: a path postgres points at a device (a
/// watchdog) never gets the device opened.
pub fn open_followed(path: &Path) -> io::Result<(File, FileStat)> {
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    let fd = openat(None, path, flags, Mode::empty()).map_err(errno)?;
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    let located = unsafe { OwnedFd::from_raw_fd(fd) };
    let stat = fstat(located.as_raw_fd()).map_err(errno)?;
    if kind_of(&stat) != Kind::File {
        return Err(invalid(format!("{} is not a regular file", path.display())));
    }
    let reopen = format!("/proc/self/fd/{}", located.as_raw_fd());
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = openat(None, reopen.as_str(), flags, Mode::empty()).map_err(errno)?;
    // SAFETY: as above.
    Ok((unsafe { File::from_raw_fd(fd) }, stat))
}

/// Reads the regular file at `path` as [`Dir::read`] does: its folder is opened as given,
/// its last component is never followed.
pub fn read_path(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let (dir, name) = Dir::parent_of(path)?;
    dir.read(&name, limit)
}

/// Opens the regular file at `path` as [`Dir::open_file`] does.
pub fn open_path(path: &Path) -> io::Result<(File, FileStat)> {
    let (dir, name) = Dir::parent_of(path)?;
    dir.open_file(&name)
}

/// [`read_path`] as text.
pub fn read_path_string(path: &Path, limit: u64) -> io::Result<String> {
    let (dir, name) = Dir::parent_of(path)?;
    dir.read_string(&name, limit)
}

#[cfg(test)]
mod tests;
