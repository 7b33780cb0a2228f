//! What a rewind does to each file: pg_rewind's file map, decided natively from the two
//! listings and the changed blocks (the target's, and those the start of replay adds).
//! Pure: listings in, map out. The second part of a native rewind (issue 14); `pgha rewind
//! --check` reports the bytes it would move, and the integration tests prove the map equal
//! to pg_rewind's own (`--dry-run --debug`) on every major.
//!
//! The rules are pg_rewind's (`rewind.md` §2): some paths are never copied (excluded: the
//! target's copies are removed); a file only the source has is copied; one only the target
//! has is removed (but WAL recovery needs stays); a relation's main-fork segment file on
//! both sides gets its missing tail copied or its extra tail cut, plus the blocks the target
//! changed; every other file on both sides is copied whole (19's pg_rewind spares the WAL
//! segments before the fork's, when both sides' are the same size).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::changes::{Blocks, Relation};

/// `BLCKSZ` and `RELSEG_SIZE` (blocks per segment file) of a default build.
pub const BLOCK_SIZE: u64 = 8192;
const SEGMENT_BLOCKS: u32 = 131_072;
/// The default and global tablespaces' OIDs.
const DEFAULT_TABLESPACE: u32 = 1663;
const GLOBAL_TABLESPACE: u32 = 1664;

/// Directories whose contents are never copied (the directories themselves are).
const EXCLUDED_CONTENTS: [&str; 7] = [
    "pg_stat_tmp",
    "pg_replslot",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_subtrans",
];
/// File names never copied, wherever they are.
const EXCLUDED_NAMES: [&str; 7] = [
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "backup_label",
    "tablespace_map",
    "backup_manifest",
    "postmaster.pid",
    "postmaster.opts",
];
/// File name prefixes never copied (`pg_internal.init.<pid>` temporary files too).
const EXCLUDED_PREFIXES: [&str; 1] = ["pg_internal.init"];

/// What a listing says an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
}

/// One entry of a data directory's listing: its path relative to the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub file_type: FileType,
    pub size: u64,
}

/// What the rewind does to one path, in the order pg_rewind runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Copy,
    CopyTail,
    None,
    Truncate,
    Remove,
}

/// One path of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub path: String,
    pub action: Action,
    pub source: Option<FileEntry>,
    pub target: Option<FileEntry>,
    /// Blocks (numbers within this file) to fetch from the source, for relation files.
    pub blocks: BTreeSet<u32>,
    /// For a file copied whole: the bytes fetched, zeros after them to the source's size
    /// (the source's last WAL segment, [`Rules::wal_copy_end`]); `None`: all of it.
    pub copy_len: Option<u64>,
}

/// The facts of the pair the rules depend on.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `PG_<major>_<catalog version>`: the directory of a tablespace that holds this
    /// cluster's files.
    pub tablespace_dir: String,
    /// WAL files the target needs for recovery (those read from the last common checkpoint
    /// back to the fork): never removed.
    pub keep_wal: BTreeSet<String>,
    /// WAL segments whose name (past the timeline) is below this one, the fork's, are not
    /// copied when both sides' are the same size: 19's pg_rewind rule, which the native
    /// engine applies on every major.
    pub skip_wal_before: Option<String>,
    /// WAL segments whose name (past the timeline) is above this one, the segment of the
    /// source's end of WAL, are files the source recycled ahead of its end: taken as absent
    /// from the source (not copied; the target's own file of that name removed). pg_rewind
    /// copies them whole. WAL the source writes into them after its end was read (during
    /// the rewind) comes to the rewound node by streaming, as the WAL pg_rewind's copy of
    /// the last segment misses does.
    pub skip_wal_after: Option<String>,
    /// A source's WAL segment whose name (past the timeline) is below this one, where
    /// replay starts after the rewind, is not copied when the target has no file of that
    /// name (the source's timeline's older segments). `None` where replay starts at the
    /// last common checkpoint: the source's WAL from the fork on is copied.
    pub skip_source_wal_before: Option<String>,
    /// A running source's WAL segment that holds its end of WAL (its name past the
    /// timeline), and the bytes of it to the end of the page after that end's: copied only
    /// that far, zeros after. pg_rewind copies it whole, but past its end of WAL a segment
    /// holds zeros, or old WAL of the segment it was recycled from, which recovery reads none
    /// of; WAL the source writes there meanwhile comes by streaming, as what pg_rewind's copy
    /// misses does. 16 MB less to fetch for a few kB of WAL, in the benchmark.
    pub wal_copy_end: Option<(String, u64)>,
}

/// Why no map can be made (pg_rewind stops on these too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileMapError {
    #[error("{0:?} is not a relative path inside the data directory")]
    UnsafePath(String),
    #[error("{0:?} is listed twice by the {1}")]
    Duplicate(String, &'static str),
    #[error("{0:?} is of a different type on the source and on the target")]
    DifferentType(String),
    #[error("the source's {0:?} is a relation data file, but not a regular file")]
    NotRegular(String),
}

/// The map: every path either side has, with what the rewind does to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMap {
    pub entries: Vec<MapEntry>,
}

/// Whether the native engine can address this build's relation files: it counts blocks of
/// [`BLOCK_SIZE`] bytes in segment files of [`SEGMENT_BLOCKS`] blocks (PostgreSQL's
/// defaults); another build (`--with-blocksize`, `--with-segsize`) goes to pg_rewind.
pub fn native_geometry(block_size: u32, relseg_size: u32) -> Result<(), String> {
    if u64::from(block_size) == BLOCK_SIZE && relseg_size == SEGMENT_BLOCKS {
        return Ok(());
    }
    Err(format!(
        "relation files of {relseg_size} blocks of {block_size} bytes (pg_control): the native \
         engine reads only {SEGMENT_BLOCKS} blocks of {BLOCK_SIZE} bytes"
    ))
}

/// A relation's main-fork segment file, from its path: the relation, and the segment
/// number (`.N`); `None` for any other file.
pub fn relation_file(path: &str, tablespace_dir: &str) -> Option<(Relation, u32)> {
    let parts: Vec<&str> = path.split('/').collect();
    let (tablespace, database, file) = match parts.as_slice() {
        ["global", file] => (GLOBAL_TABLESPACE, 0, *file),
        ["base", db, file] => (DEFAULT_TABLESPACE, number(db)?, *file),
        ["pg_tblspc", spc, dir, db, file] if *dir == tablespace_dir => {
            (number(spc)?, number(db)?, *file)
        }
        _ => return None,
    };
    let (name, segno) = match file.split_once('.') {
        Some((name, seg)) => (name, number(seg)?),
        None => (file, 0),
    };
    let relation = Relation {
        tablespace,
        database,
        number: number(name)?,
    };
    Some((relation, segno))
}

/// A decimal OID as PostgreSQL prints it: digits only, no leading zero, fits in 32 bits.
fn number(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// Whether pg_rewind never copies `path`.
pub fn is_excluded(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    EXCLUDED_CONTENTS
        .iter()
        .any(|dir| path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
        || EXCLUDED_NAMES.contains(&name)
        || EXCLUDED_PREFIXES.iter().any(|p| name.starts_with(p))
        || path.contains("/pgsql_tmp")
}

/// A path a listing may name: relative, no `.` or `..` component, no empty one.
fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

fn index(
    listing: Vec<FileEntry>,
    side: &'static str,
) -> Result<BTreeMap<String, FileEntry>, FileMapError> {
    let mut map = BTreeMap::new();
    for entry in listing {
        if !is_safe(&entry.path) {
            return Err(FileMapError::UnsafePath(entry.path));
        }
        if let Some(twice) = map.insert(entry.path.clone(), entry) {
            return Err(FileMapError::Duplicate(twice.path, side));
        }
    }
    Ok(map)
}

/// The map of a rewind from `source` to `target` (their listings), with the changed blocks
/// to fetch (the target's, and those the start of replay adds).
pub fn build(
    source: Vec<FileEntry>,
    target: Vec<FileEntry>,
    changes: &Blocks,
    rules: &Rules,
) -> Result<FileMap, FileMapError> {
    let mut source = index(source, "source")?;
    let mut target = index(target, "target")?;
    let paths: BTreeSet<String> = source.keys().chain(target.keys()).cloned().collect();
    let mut entries = Vec::with_capacity(paths.len());
    for path in paths {
        let (s, t) = (source.remove(&path), target.remove(&path));
        let relation = relation_file(&path, &rules.tablespace_dir);
        if relation.is_some() && s.as_ref().is_some_and(|s| s.file_type != FileType::Regular) {
            return Err(FileMapError::NotRegular(path));
        }
        let action = decide(&path, s.as_ref(), t.as_ref(), relation.is_some(), rules)?;
        let blocks = match (relation, &s, &t) {
            (Some((rel, segno)), Some(s), Some(t)) => {
                changed_blocks(changes, &rel, segno, s.size.min(t.size))
            }
            _ => BTreeSet::new(),
        };
        let copy_len = rules
            .wal_copy_end
            .as_ref()
            .filter(|(segment, _)| action == Action::Copy && wal_segment(&path) == Some(segment))
            .and_then(|(_, len)| s.as_ref().filter(|s| s.size > *len).map(|_| *len));
        entries.push(MapEntry {
            path,
            action,
            source: s,
            target: t,
            blocks,
            copy_len,
        });
    }
    Ok(FileMap { entries })
}

/// The changed blocks of segment file `segno` of `relation`, numbered within the file, that
/// lie inside both sides' copies (`shorter` bytes): a truncation or a tail copy covers the
/// rest.
fn changed_blocks(
    changes: &Blocks,
    relation: &Relation,
    segno: u32,
    shorter: u64,
) -> BTreeSet<u32> {
    let Some(blocks) = changes.get(relation) else {
        return BTreeSet::new();
    };
    let first = u64::from(segno) * u64::from(SEGMENT_BLOCKS);
    let end = first + u64::from(SEGMENT_BLOCKS);
    blocks
        .iter()
        .map(|&b| u64::from(b))
        .filter(|b| (first..end).contains(b))
        .map(|b| b - first)
        .filter(|in_file| (in_file + 1) * BLOCK_SIZE <= shorter)
        .filter_map(|in_file| u32::try_from(in_file).ok())
        .collect()
}

/// pg_rewind's decision table for one path.
fn decide(
    path: &str,
    source: Option<&FileEntry>,
    target: Option<&FileEntry>,
    is_relation: bool,
    rules: &Rules,
) -> Result<Action, FileMapError> {
    if path == "global/pg_control" || path.contains(".DS_Store") {
        return Ok(Action::None);
    }
    if is_excluded(path) {
        return Ok(if target.is_some() {
            Action::Remove
        } else {
            Action::None
        });
    }
    let source = source.filter(|s| !recycled_wal(path, s, rules));
    let (s, t) = match (source, target) {
        (Some(s), None) if before_replay(path, s, rules) => return Ok(Action::None),
        (Some(s), None) if s.file_type == FileType::Regular => return Ok(Action::Copy),
        (Some(_), None) => return Ok(Action::Create),
        (None, Some(_)) if rules.keep_wal.contains(path) => return Ok(Action::None),
        (None, Some(_)) => return Ok(Action::Remove),
        (None, None) => return Ok(Action::None),
        (Some(s), Some(t)) => (s, t),
    };
    if s.file_type != t.file_type {
        return Err(FileMapError::DifferentType(path.to_owned()));
    }
    Ok(
        if path.ends_with("PG_VERSION") || s.file_type != FileType::Regular {
            Action::None
        } else if is_relation {
            match t.size.cmp(&s.size) {
                std::cmp::Ordering::Less => Action::CopyTail,
                std::cmp::Ordering::Greater => Action::Truncate,
                std::cmp::Ordering::Equal => Action::None,
            }
        } else if spared_wal(path, s, t, rules) {
            Action::None
        } else {
            Action::Copy
        },
    )
}

/// 19's pg_rewind: a WAL segment older than the fork's, the same size on both sides.
fn spared_wal(path: &str, source: &FileEntry, target: &FileEntry, rules: &Rules) -> bool {
    let Some(fork) = &rules.skip_wal_before else {
        return false;
    };
    source.size == target.size && wal_segment(path).is_some_and(|n| n < fork.as_str())
}

/// A source's WAL segment older than the one replay starts in
/// ([`Rules::skip_source_wal_before`]).
fn before_replay(path: &str, source: &FileEntry, rules: &Rules) -> bool {
    let Some(replay) = &rules.skip_source_wal_before else {
        return false;
    };
    source.file_type == FileType::Regular && wal_segment(path).is_some_and(|n| n < replay.as_str())
}

/// A source's WAL segment past the segment of its end of WAL ([`Rules::skip_wal_after`]).
fn recycled_wal(path: &str, source: &FileEntry, rules: &Rules) -> bool {
    let Some(end) = &rules.skip_wal_after else {
        return false;
    };
    source.file_type == FileType::Regular && wal_segment(path).is_some_and(|n| n > end.as_str())
}

/// The log and segment part of a WAL segment's name (its 16 last hex digits), for a path
/// `pg_wal/<24 hex digits>`.
fn wal_segment(path: &str) -> Option<&str> {
    let name = path.strip_prefix("pg_wal/")?;
    let is_segment = name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit());
    is_segment.then(|| name.get(8..)).flatten()
}

impl FileMap {
    /// The entries that change something, in the order pg_rewind runs them: by action,
    /// then by path (removals deepest first, so children go before their directory).
    pub fn plan(&self) -> Vec<&MapEntry> {
        let mut work: Vec<&MapEntry> = self
            .entries
            .iter()
            .filter(|e| e.action != Action::None || !e.blocks.is_empty())
            .collect();
        work.sort_by(|a, b| {
            a.action.cmp(&b.action).then_with(|| match a.action {
                Action::Remove => b.path.cmp(&a.path),
                _ => a.path.cmp(&b.path),
            })
        });
        work
    }

    /// Bytes the rewind fetches from the source: whole files, missing tails and changed
    /// blocks.
    pub fn bytes_to_fetch(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| {
                let size = |side: &Option<FileEntry>| side.as_ref().map_or(0, |f| f.size);
                let whole = match e.action {
                    Action::Copy => e.copy_len.unwrap_or(size(&e.source)),
                    Action::CopyTail => size(&e.source).saturating_sub(size(&e.target)),
                    _ => 0,
                };
                whole + e.blocks.len() as u64 * BLOCK_SIZE
            })
            .sum()
    }
}

impl fmt::Display for FileMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |action| self.entries.iter().filter(|e| e.action == action).count();
        let blocks: usize = self.entries.iter().map(|e| e.blocks.len()).sum();
        write!(
            f,
            "{} MB to fetch: {} files whole, {} tails, {} changed blocks; {} files truncated, \
             {} removed, {} created",
            self.bytes_to_fetch() >> 20,
            count(Action::Copy),
            count(Action::CopyTail),
            blocks,
            count(Action::Truncate),
            count(Action::Remove),
            count(Action::Create)
        )
    }
}

#[cfg(test)]
mod tests;
