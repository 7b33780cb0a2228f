//! A re-clone's swap: the new copy built beside the data directory takes its place in one
//! step, and the replaced directory is kept until it is certainly not needed.
//!
//! Names, all in the data directory's parent (`main` stands for its last component):
//!
//! ```text
//! main              the data directory
//! main.pgha-clone   the copy pg_basebackup builds, until the swap
//! main.pgha-old     the replaced directory, after the swap
//! ```
//!
//! The swap is `renameat2(RENAME_EXCHANGE)`: at every instant `main` is a whole directory,
//! the old one or the new one. Before it, the old directory is tagged ([`REPLACED_TAG`]), so
//! that an agent killed between the exchange and what follows finds which side is which:
//! `main.pgha-clone` holding the tag is the old data, set aside, never removed; without the
//! tag it is an unfinished copy of the source, safe to remove.

use std::path::PathBuf;

use super::error::RewindError;
use super::forensics::{self, io};
use crate::failpoint;
use crate::safe_fs::{Dir, Kind, Owner};

/// The file that marks a data directory a re-clone is replacing.
pub const REPLACED_TAG: &str = "pgha_replaced";

/// Where the re-clone is built, and where the replaced directory goes.
pub struct Names {
    pub data: String,
    pub clone: String,
    pub old: String,
}

impl Names {
    pub fn of(data: &str) -> Names {
        Names {
            data: data.to_owned(),
            clone: format!("{data}.pgha-clone"),
            old: format!("{data}.pgha-old"),
        }
    }
}

/// Clears what an earlier re-clone left in `parent`: an unfinished copy is removed; a
/// replaced directory whose swap was interrupted is set aside; a tag on the data directory
/// (killed before the exchange) is taken off.
pub fn clear_leftovers(
    parent: &Dir,
    names: &Names,
    owner: Option<Owner>,
) -> Result<(), RewindError> {
    let clone_path = parent.join(&names.clone);
    match parent
        .kind(&names.clone)
        .map_err(|e| io("look at", &clone_path, e))?
    {
        None => {}
        Some(Kind::Dir) if is_tagged(parent, &names.clone)? => {
            log::warn!(
                "{} is the data directory an interrupted re-clone replaced: set aside",
                clone_path.display()
            );
            set_aside(parent, names)?;
        }
        Some(_) => parent
            .remove_tree(&names.clone, owner)
            .map_err(|e| io("remove", &clone_path, e))?,
    }
    if is_tagged(parent, &names.data)? {
        let data = parent
            .open_dir(&names.data)
            .map_err(|e| io("open", &parent.join(&names.data), e))?;
        data.remove_file(REPLACED_TAG)
            .and_then(|()| data.sync())
            .map_err(|e| io("untag", data.path(), e))?;
    }
    Ok(())
}

fn is_tagged(parent: &Dir, name: &str) -> Result<bool, RewindError> {
    let Ok(dir) = parent.open_dir(name) else {
        return Ok(false);
    };
    dir.kind(REPLACED_TAG)
        .map(|k| k.is_some())
        .map_err(|e| io("look into", dir.path(), e))
}

/// Swaps the finished clone in: tags the old directory, exchanges the two names, and sets
/// the old one aside. Returns its name there.
pub fn swap_in(parent: &Dir, names: &Names, old: &Dir, stamp: &str) -> Result<String, RewindError> {
    old.write_file(
        REPLACED_TAG,
        format!("replaced by a re-clone started at {stamp}\n").as_bytes(),
        0o600,
        None,
    )
    .map_err(|e| io("tag", old.path(), e))?;
    failpoint::hit("reclone-tagged");
    parent
        .exchange(&names.data, &names.clone)
        .and_then(|()| parent.sync())
        .map_err(|e| io("swap in", &parent.join(&names.clone), e))?;
    failpoint::hit("reclone-exchanged");
    set_aside(parent, names)
}

/// Renames the replaced directory (under the clone's name after the exchange) to
/// `main.pgha-old`, or `main.pgha-old-2`… when an earlier one is still there.
fn set_aside(parent: &Dir, names: &Names) -> Result<String, RewindError> {
    let from = parent.join(&names.clone);
    for n in 1..100 {
        let to = match n {
            1 => names.old.clone(),
            n => format!("{}-{n}", names.old),
        };
        match parent.move_to(&names.clone, parent, &to) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            other => {
                other
                    .and_then(|()| parent.sync())
                    .map_err(|e| io("set aside", &from, e))?;
                return Ok(to);
            }
        }
    }
    Err(io(
        "set aside",
        &from,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("99 replaced directories {}-N already exist", names.old),
        ),
    ))
}

/// The data directory a re-clone replaced, kept until it is known not to be needed.
#[derive(Debug)]
pub struct Replaced {
    /// The folder it is in (the data directory's parent), and its name there
    /// (`main.pgha-old`).
    pub parent: Dir,
    pub name: String,
    /// The run's folder in `rewind_keep_dir`, where it goes when it is kept.
    pub run: Dir,
    /// Whether the kept WAL holds everything it had past the fork (the fork was known and
    /// its WAL from there was read): only then may it go once the new standby streams.
    pub wal_complete: bool,
    /// The system user: only a tree of theirs is removed.
    pub owner: Option<Owner>,
}

impl Replaced {
    /// Where it is now.
    pub fn path(&self) -> PathBuf {
        self.parent.join(&self.name)
    }

    /// Removes the replaced directory when the new standby streams and the kept WAL is
    /// complete; otherwise moves it into the run's folder as `datadir` (where retention and
    /// `pgha kept` find it), or leaves it in place when that folder is on another file
    /// system. Failures are logged: nothing is lost by leaving it.
    pub fn settle(&self, streaming: bool) {
        let result = if streaming && self.wal_complete {
            self.remove()
        } else {
            self.keep()
        };
        if let Err(e) = result {
            log::warn!("the replaced data directory {}: {e}", self.path().display());
        }
    }

    fn remove(&self) -> Result<(), RewindError> {
        self.parent
            .remove_tree(&self.name, self.owner)
            .and_then(|()| self.parent.sync())
            .map_err(|e| io("remove", &self.path(), e))?;
        log::info!(
            "removed the replaced data directory {}",
            self.path().display()
        );
        Ok(())
    }

    fn keep(&self) -> Result<(), RewindError> {
        match self
            .parent
            .move_to(&self.name, &self.run, forensics::KEPT_DATADIR)
        {
            Ok(()) => {
                let _ = self.parent.sync();
                log::warn!(
                    "kept the replaced data directory in {}: the new standby was not seen \
                     streaming, or the WAL kept may not hold all it had",
                    self.run.join(forensics::KEPT_DATADIR).display()
                );
            }
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => log::warn!(
                "kept the replaced data directory as {} ({} is on another file system)",
                self.path().display(),
                self.run.path().display()
            ),
            Err(e) => return Err(io("keep", &self.path(), e)),
        }
        Ok(())
    }
}
