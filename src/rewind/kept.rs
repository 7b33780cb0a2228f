//! The folders rewinds kept in `rewind_keep_dir`, one per run (`<node>-<stamp>`, made by
//! [`super::forensics`]): listed and removed by hand (`pgha kept`), and by the retention
//! applied after each successful rewind (`rewind_keep_count`, `rewind_keep_days`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::error::RewindError;
use super::forensics::{io, KEPT_DATADIR};
use crate::safe_fs::{Dir, Kind, Owner};

/// Opens an existing `rewind_keep_dir` (its last component never a link).
pub fn open_existing_keep_dir(keep_dir: &Path) -> Result<Dir, RewindError> {
    Dir::parent_of(keep_dir)
        .and_then(|(parent, name)| parent.open_dir(&name))
        .map_err(|e| io("open", keep_dir, e))
}

/// One kept folder: `<node>-<stamp>` in `rewind_keep_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRun {
    pub name: String,
    pub node: String,
    /// When the folder last changed.
    pub modified: SystemTime,
}

/// The kept folders in `keep`, oldest first (by the stamp in their name).
pub fn list(keep: &Dir) -> Result<Vec<KeptRun>, RewindError> {
    let mut runs: Vec<KeptRun> = keep
        .entries()
        .map_err(|e| io("list", keep.path(), e))?
        .into_iter()
        .filter_map(|name| {
            let node = split_run_name(&name)?.0.to_owned();
            let modified = keep.modified(&name).ok()?;
            (keep.kind(&name).ok()?? == Kind::Dir).then_some(KeptRun {
                name,
                node,
                modified,
            })
        })
        .collect();
    let order = |r: &KeptRun| {
        let stamp = split_run_name(&r.name).map_or("", |(_, s)| s).to_owned();
        (stamp, r.name.len(), r.name.clone())
    };
    runs.sort_by_key(order);
    Ok(runs)
}

/// `pg1-20260102T030405Z-2` → (`pg1`, `20260102T030405Z`): a kept folder's node and stamp,
/// `None` for any other name.
fn split_run_name(name: &str) -> Option<(&str, &str)> {
    let base = match name.rsplit_once('-') {
        Some((head, n))
            if (1..=2).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
                && head
                    .get(head.len().saturating_sub(16)..)
                    .is_some_and(is_stamp) =>
        {
            head
        }
        _ => name,
    };
    let cut = base.len().checked_sub(17)?;
    let node = base.get(..cut)?;
    let stamp = base.get(cut..)?.strip_prefix('-')?;
    (is_stamp(stamp) && !node.is_empty()).then_some((node, stamp))
}

/// `YYYYMMDDTHHMMSSZ`.
fn is_stamp(text: &str) -> bool {
    text.len() == 16
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// One line of `pgha kept`: the folder, its node, when it last changed, what it holds.
pub fn describe(keep: &Dir, run: &KeptRun) -> String {
    let holds: Vec<&str> = keep
        .open_dir(&run.name)
        .map(|dir| {
            ["pg_wal", "pg_control", "config", KEPT_DATADIR]
                .into_iter()
                .filter(|name| dir.kind(name).ok().flatten().is_some())
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}\tnode={}\tchanged={}\tholds={}\n",
        run.name,
        run.node,
        super::marker::utc(run.modified).0,
        holds.join(",")
    )
}

/// Opens the kept folder `run`, which must be a folder of the keep dir `keep_dir` with a
/// kept folder's name (a marker says where its run kept things; it is not believed further).
pub fn open_run(keep_dir: &Path, run: &Path) -> Result<Dir, RewindError> {
    let name = run
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| split_run_name(n).is_some() && run.parent() == Some(keep_dir));
    let Some(name) = name else {
        return Err(io(
            "use",
            run,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a kept folder of {}", keep_dir.display()),
            ),
        ));
    };
    open_existing_keep_dir(keep_dir)?
        .open_dir(name)
        .map_err(|e| io("open", run, e))
}

/// Removes the kept folder `name`, which must be one ([`list`]'s names); with `owner`, only
/// when it is theirs.
pub fn remove_run(keep: &Dir, name: &str, owner: Option<Owner>) -> Result<(), RewindError> {
    let path = keep.join(name);
    let is_run = split_run_name(name).is_some()
        && keep.kind(name).map_err(|e| io("look at", &path, e))? == Some(Kind::Dir);
    if !is_run {
        return Err(io(
            "remove",
            &path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a kept folder"),
        ));
    }
    keep.remove_tree(name, owner)
        .and_then(|()| keep.sync())
        .map_err(|e| io("remove", &path, e))?;
    log::info!("removed the kept folder {}", path.display());
    Ok(())
}

/// Removes `node`'s kept folders beyond the newest `keep_count` and those older than
/// `max_age` (each limit off when zero), never `current`. Returns the names removed.
pub fn apply_retention(
    keep: &Dir,
    node: &str,
    keep_count: usize,
    max_age: Duration,
    current: Option<&str>,
    owner: Option<Owner>,
) -> Result<Vec<String>, RewindError> {
    let runs: Vec<KeptRun> = list(keep)?.into_iter().filter(|r| r.node == node).collect();
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let newer = runs.len() - 1 - i;
        let too_many = keep_count > 0 && newer >= keep_count;
        let too_old = !max_age.is_zero()
            && now
                .duration_since(run.modified)
                .is_ok_and(|age| age > max_age);
        if (too_many || too_old) && Some(run.name.as_str()) != current {
            remove_run(keep, &run.name, owner)?;
            removed.push(run.name.clone());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn run_names() {
        let cases = [
            ("pg1-20260102T030405Z", Some(("pg1", "20260102T030405Z"))),
            ("pg1-20260102T030405Z-2", Some(("pg1", "20260102T030405Z"))),
            (
                "db-node-3-20260102T030405Z-17",
                Some(("db-node-3", "20260102T030405Z")),
            ),
            ("pg1-20260102T030405Z-123", None),
            ("-20260102T030405Z", None),
            ("pg1-20260102X030405Z", None),
            ("pg1", None),
            ("datadir", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(split_run_name(name), want, "{name}");
        }
    }

    fn keep_with(names: &[&str]) -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        for name in names {
            std::fs::create_dir(tmp.path().join(name)).unwrap();
        }
        let dir = Dir::open(tmp.path()).unwrap();
        (tmp, dir)
    }

    fn names(keep: &Dir) -> Vec<String> {
        list(keep).unwrap().into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn retention_keeps_the_newest_of_each_node_and_the_current_run() {
        let (_tmp, keep) = keep_with(&[
            "pg1-20260101T000000Z",
            "pg1-20260102T000000Z",
            "pg1-20260102T000000Z-2",
            "pg1-20260103T000000Z",
            "pg2-20250101T000000Z",
            "not-a-run",
        ]);
        let removed = apply_retention(
            &keep,
            "pg1",
            2,
            Duration::ZERO,
            Some("pg1-20260101T000000Z"),
            None,
        )
        .unwrap();
        assert_eq!(removed, ["pg1-20260102T000000Z"]);
        assert_eq!(
            names(&keep),
            [
                "pg2-20250101T000000Z",
                "pg1-20260101T000000Z",
                "pg1-20260102T000000Z-2",
                "pg1-20260103T000000Z"
            ]
        );
        assert!(keep.kind("not-a-run").unwrap().is_some());
    }

    #[test]
    fn retention_by_age_uses_when_a_folder_last_changed() {
        let (tmp, keep) = keep_with(&["pg1-20200101T000000Z", "pg1-20260103T000000Z"]);
        let old = std::fs::File::open(tmp.path().join("pg1-20200101T000000Z")).unwrap();
        old.set_modified(SystemTime::now() - Duration::from_secs(40 * 86_400))
            .unwrap();
        let removed = apply_retention(
            &keep,
            "pg1",
            0,
            Duration::from_secs(30 * 86_400),
            None,
            None,
        )
        .unwrap();
        assert_eq!(removed, ["pg1-20200101T000000Z"]);
    }

    /// The security review: a forged marker's `saved_in` made root reopen any folder.
    #[test]
    fn only_a_kept_folder_of_the_keep_dir_is_opened_for_a_marker() {
        let (tmp, _keep) = keep_with(&["pg1-20260101T000000Z"]);
        let keep_dir = tmp.path();
        assert!(open_run(keep_dir, &keep_dir.join("pg1-20260101T000000Z")).is_ok());
        for forged in [
            PathBuf::from("/etc"),
            keep_dir.join("pg1-20260101T000000Z/../../etc"),
            keep_dir.join("not-a-run"),
            PathBuf::from("/tmp/pg1-20260101T000000Z"),
        ] {
            assert!(open_run(keep_dir, &forged).is_err(), "{forged:?}");
        }
    }

    #[test]
    fn only_kept_folders_can_be_removed_by_name() {
        let (tmp, keep) = keep_with(&["pg1-20260101T000000Z"]);
        std::fs::write(tmp.path().join("pg1-20260102T000000Z"), "a file").unwrap();
        for name in ["..", "pg1", "pg1-20260102T000000Z", "../etc"] {
            assert!(remove_run(&keep, name, None).is_err(), "{name}");
        }
        remove_run(&keep, "pg1-20260101T000000Z", None).unwrap();
        assert_eq!(names(&keep), Vec::<String>::new());
    }
}
