//! A re-clone: `pg_basebackup` into a new directory beside the data directory, given the
//! node's configuration, then swapped in for it (`swap.rs`) under the marker. The way back
//! when pg_rewind cannot, did not, or would cost more; one of [`Job`]'s steps.

use std::path::Path;

use super::config::{self, SavedConfig};
use super::error::RewindError;
use super::forensics::io;
use super::job::{open_data, Job};
use super::marker;
use super::runner;
use super::settings::{Source, SourceConninfo};
use super::swap;
use crate::failpoint;
use crate::safe_fs::Dir;

impl Job<'_> {
    /// `pg_basebackup` into `<datadir>.pgha-clone`, the node's configuration and standby
    /// settings put in, synced, then swapped in for the data directory under the marker
    /// (`swap.rs`). Returns the replaced directory, set aside and still whole.
    pub(super) fn reclone(
        &self,
        run: Dir,
        saved: Option<SavedConfig>,
        wal_complete: bool,
    ) -> Result<swap::Replaced, RewindError> {
        let conninfo = self.reclone_source()?;
        let owner = self.owner();
        let data = open_data(self.instance)?;
        let saved = match saved {
            Some(s) => s,
            None => config::save(&data, &self.settings.keep_files, &run, owner)?,
        };
        let (parent, name) = self.clone_parent()?;
        let names = swap::Names::of(&name);
        self.build_clone(&parent, &names, conninfo, &saved)?;
        self.write_marker(&data, "re-clone", run.path())?;
        failpoint::hit("reclone-marked");
        let old = swap::swap_in(&parent, &names, &data, &marker::utc_now().1)?;
        failpoint::hit("reclone-set-aside");
        marker::remove(&open_data(self.instance)?)?;
        log::info!("re-cloned \"{}\" from the source", self.datadir().display());
        Ok(swap::Replaced {
            parent,
            name: old,
            run,
            wal_complete,
            owner,
        })
    }

    /// Where a re-clone copies from, when one can be built here: a source server without
    /// tablespaces (their paths would collide), and a data directory on its parent's file
    /// system (the clone is built next to it and swapped in by rename).
    fn reclone_source(&self) -> Result<&SourceConninfo, RewindError> {
        let (Source::Server(conninfo), Some(session)) = (self.source, self.session) else {
            return Err(self.refused("a re-clone needs a source server".into()));
        };
        if session.tablespaces(self.deadline)? > 0 {
            return Err(self.refused(
                "the source has tablespaces: a re-clone into a new directory would collide \
                 with their paths; re-clone by hand"
                    .into(),
            ));
        }
        let datadir = self.datadir();
        if same_device(datadir.parent().unwrap_or(Path::new("/")), datadir) != Some(true) {
            return Err(self.refused(format!(
                "{} is a mount point: a re-clone is built next to it and swapped in by rename",
                datadir.display()
            )));
        }
        Ok(conninfo)
    }

    /// The data directory's parent, opened, and the directory's name in it: the re-clone is
    /// built there only when root or the system user owns it.
    fn clone_parent(&self) -> Result<(Dir, String), RewindError> {
        let parent_path = self.datadir().parent().unwrap_or(Path::new("/"));
        let (parent, name) =
            Dir::parent_of(self.datadir()).map_err(|e| io("open", parent_path, e))?;
        let parent_owner = parent.owner().map_err(|e| io("look at", parent_path, e))?;
        if !parent_owner.uid.is_root() && Some(parent_owner.uid) != self.owner().map(|o| o.uid) {
            return Err(self.refused(format!(
                "{} belongs to uid {}, neither root nor the system user: no re-clone is built \
                 there",
                parent_path.display(),
                parent_owner.uid
            )));
        }
        Ok((parent, name))
    }

    /// The finished clone, beside the data directory: copied from the source (an unfinished
    /// copy removed on failure), given the node's configuration and, being the copy of a
    /// primary, standby settings whatever `-R` said; synced.
    fn build_clone(
        &self,
        parent: &Dir,
        names: &swap::Names,
        conninfo: &SourceConninfo,
        saved: &SavedConfig,
    ) -> Result<(), RewindError> {
        let owner = self.owner();
        swap::clear_leftovers(parent, names, owner)?;
        let clone = parent
            .create_dir(&names.clone, 0o700, owner)
            .map_err(|e| io("create", &parent.join(&names.clone), e))?;
        match runner::pg_basebackup(
            self.instance,
            &conninfo.replication,
            clone.path(),
            self.deadline,
        ) {
            Ok(elapsed) => {
                log::info!("pg_basebackup done in {elapsed:.1?}");
                failpoint::hit("reclone-copied");
            }
            Err(e) => {
                let _ = parent.remove_tree(&names.clone, owner);
                return Err(e.into());
            }
        }
        saved.restore(&clone, owner)?;
        config::write_standby(
            &clone,
            self.settings.primary_conninfo.as_deref(),
            self.node,
            owner,
        )?;
        clone.sync().map_err(|e| io("sync", clone.path(), e))?;
        failpoint::hit("reclone-configured");
        Ok(())
    }
}

/// Whether `a` and `b` are on one file system (`None`: either cannot be looked at).
fn same_device(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    Some(std::fs::metadata(a).ok()?.dev() == std::fs::metadata(b).ok()?.dev())
}
