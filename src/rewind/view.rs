//! What a native rewind would do, as `--check` shows it and the engine runs it: the target's
//! changes, where replay starts after it (and the blocks that adds), and the file map. Above
//! the parts it gathers ([`changes`](super::changes), [`replay`](super::replay),
//! [`filemap`](super::filemap)), which know nothing of one another's.

use super::changes::TargetChanges;
use super::filemap::FileMap;
use super::replay::Replay;
use crate::lsn::Lsn;

/// What a native rewind would do: the target's changes, where replay starts and the file map.
#[derive(Debug, Clone)]
pub struct NativeView {
    /// Where the two sides' WAL parts.
    pub fork: Lsn,
    pub changes: TargetChanges,
    pub map: FileMap,
    /// Where replay starts after the rewind; it may add blocks to fetch.
    pub replay: Replay,
}

impl NativeView {
    /// Why the server must still sync the whole data directory when it starts after this
    /// rewind; `None` where the engine writes, and so syncs, every file the stopped target
    /// may have left unsynced (see `native.rs`). That takes replay from the source's
    /// checkpoint: every block the target's WAL changed from its own checkpoint's redo point
    /// on is then fetched (none left to replay from a full-page image, which
    /// `full_page_writes = off` would leave out). And no record of the target's before the
    /// fork may create, truncate or drop a file: the source did the same, so both sides'
    /// files match and the engine leaves the file as it is, where replay would have redone
    /// it. Past the fork, a file the target made is removed, one it dropped or cut is copied
    /// (the source, replayed from its checkpoint, made no such change).
    pub fn why_the_server_syncs(&self) -> Option<String> {
        if self.replay.from_source.is_none() {
            return Some("replay starts at the last common checkpoint".into());
        }
        let first = [
            self.replay.target_before_file_record,
            self.changes.first_file_record,
        ];
        let first = first.into_iter().flatten().min()?;
        (first < self.fork).then(|| {
            format!("the target's record at {first}, before the fork, creates, truncates or drops files")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewind::replay::{FromSource, ReplayStart};

    #[test]
    fn the_server_syncs_at_start_unless_the_engine_wrote_every_file_the_target_left() {
        let fork = Lsn(0x6E00_0000);
        let view = |from_source: bool, before: Option<u64>, after: Option<u64>| {
            let changes = TargetChanges {
                first_file_record: after.map(Lsn),
                ..TargetChanges::default()
            };
            let mut replay = Replay::from_last_common(&changes);
            if from_source {
                replay.start = ReplayStart::default();
                replay.from_source = Some(FromSource {
                    records: 0,
                    wal_read: 0,
                    blocks: Default::default(),
                    source_end: Lsn(0),
                });
            }
            replay.target_before_file_record = before.map(Lsn);
            NativeView {
                fork,
                changes,
                map: FileMap::default(),
                replay,
            }
        };
        // (replay from the source's checkpoint, first file record before C1's record, first
        // from there on, why the server syncs)
        let table = [
            (true, None, None, None),
            (true, None, Some(0x6E00_0058), None),
            (
                true,
                None,
                Some(0x6D00_0000),
                Some("0/6D000000, before the fork"),
            ),
            (
                true,
                Some(0x6C00_0000),
                Some(0x6E00_0058),
                Some("0/6C000000"),
            ),
            (false, None, None, Some("last common checkpoint")),
        ];
        for (from_source, before, after, why) in table {
            let found = view(from_source, before, after).why_the_server_syncs();
            match (why, &found) {
                (None, None) => {}
                (Some(why), Some(found)) => assert!(found.contains(why), "{found}"),
                _ => panic!("{from_source} {before:?} {after:?}: {found:?}"),
            }
        }
    }
}
