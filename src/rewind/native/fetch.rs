//! The native engine's reads from the source, queued and sent together: a batch of ranges of
//! the files being written costs one round trip to a running source (pg_rewind's libpq mode
//! batches its chunks the same way), where one request per 8 kB block cost thousands.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use super::super::error::RewindError;
use super::super::forensics::io;
use super::super::listing::Tree;
use super::super::source::SourceSession;
use crate::deadline::{Deadline, Expired};

/// The most bytes asked of the source in one range (pg_rewind's chunk too).
pub(super) const CHUNK: u64 = 1 << 20;
/// A batch is sent when it holds this many ranges…
const BATCH_RANGES: usize = 512;
/// …or this many bytes: what one reply may hold in memory.
const BATCH_BYTES: u64 = 16 << 20;

/// Where the source's files are read from.
pub(in crate::rewind) enum SourceFiles<'a> {
    /// The running source, over SQL (`pg_read_binary_file`).
    Server(&'a SourceSession),
    /// A stopped source's data directory.
    Pgdata(Tree),
}

impl SourceFiles<'_> {
    /// Each `(path, offset, len)`: up to `len` bytes of `path` from `offset`, fewer at its
    /// end, `None` when the file is gone.
    fn read(
        &self,
        ranges: &[(&str, u64, u64)],
        deadline: &Deadline,
    ) -> Result<Vec<Option<Vec<u8>>>, RewindError> {
        match self {
            SourceFiles::Server(session) => session.read_ranges(ranges, deadline),
            SourceFiles::Pgdata(tree) => ranges
                .iter()
                .map(|&(path, offset, len)| read_local(tree, path, offset, len))
                .collect(),
        }
    }
}

fn read_local(
    tree: &Tree,
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Option<Vec<u8>>, RewindError> {
    let shown = tree.root().join(path);
    let (dir, name) = tree
        .parent_of(path)
        .map_err(|e| io("open the source's", &shown, e))?;
    let (file, _) = match dir.open_file(name) {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open the source's", &shown, e)),
    };
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(0)];
    let mut filled = 0;
    while filled < bytes.len() {
        let at = offset + filled as u64;
        match file.read_at(bytes.get_mut(filled..).unwrap_or_default(), at) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(io("read the source's", &shown, e)),
        }
    }
    bytes.truncate(filled);
    Ok(Some(bytes))
}

/// A target file open for writing, shared by its queued ranges.
pub(super) type Target = Rc<(String, std::fs::File)>;

/// Ranges waiting to be fetched and written, and what was written so far.
pub(super) struct Fetcher<'s> {
    source: &'s SourceFiles<'s>,
    queued: Vec<(Target, u64, u64)>,
    bytes: u64,
    /// Bytes written into the target.
    pub fetched: u64,
    /// The files written into, to sync before pg_control changes.
    pub written: BTreeSet<String>,
    /// Files the source no longer has (removed from the target too).
    pub gone: BTreeSet<String>,
}

impl<'s> Fetcher<'s> {
    pub fn new(source: &'s SourceFiles<'s>) -> Self {
        Fetcher {
            source,
            queued: Vec::new(),
            bytes: 0,
            fetched: 0,
            written: BTreeSet::new(),
            gone: BTreeSet::new(),
        }
    }

    /// Queues `[from, to)` of `file`'s path, in chunks; sends the batch when it is full.
    pub fn queue(
        &mut self,
        tree: &Tree,
        file: &Target,
        from: u64,
        to: u64,
        deadline: &Deadline,
    ) -> Result<(), RewindError> {
        let mut at = from;
        while at < to {
            let len = (to - at).min(CHUNK);
            self.queued.push((Rc::clone(file), at, len));
            self.bytes += len;
            at += len;
            if self.queued.len() >= BATCH_RANGES || self.bytes >= BATCH_BYTES {
                self.flush(tree, deadline)?;
            }
        }
        Ok(())
    }

    /// Fetches what is queued and writes each reply at its offset. A file the source no
    /// longer has is removed from the target, as pg_rewind does: it was dropped after the
    /// listing, and replay drops it again.
    pub fn flush(&mut self, tree: &Tree, deadline: &Deadline) -> Result<(), RewindError> {
        if self.queued.is_empty() {
            return Ok(());
        }
        if deadline.expired() {
            return Err(RewindError::Expired(Expired {
                what: "the native rewind, fetching from the source".into(),
                waited: deadline.elapsed(),
            }));
        }
        let queued = std::mem::take(&mut self.queued);
        self.bytes = 0;
        let asks: Vec<(&str, u64, u64)> = queued
            .iter()
            .map(|(t, offset, len)| (t.0.as_str(), *offset, *len))
            .collect();
        let replies = self.source.read(&asks, deadline)?;
        for ((target, offset, _), reply) in queued.iter().zip(replies) {
            let path = &target.0;
            match reply {
                _ if self.gone.contains(path) => {}
                None => self.vanished(tree, path)?,
                Some(bytes) => {
                    target
                        .1
                        .write_all_at(&bytes, *offset)
                        .map_err(|e| RewindError::io(format!("could not write {path}"), e))?;
                    self.fetched += bytes.len() as u64;
                    self.written.insert(path.clone());
                }
            }
        }
        Ok(())
    }

    fn vanished(&mut self, tree: &Tree, path: &str) -> Result<(), RewindError> {
        let shown = tree.root().join(path);
        log::info!("{path} is gone from the source: removed from the target, as pg_rewind does");
        let (dir, name) = tree.parent_of(path).map_err(|e| io("open", &shown, e))?;
        match dir.remove_file(name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("remove", &shown, e))
            }
            _ => {}
        }
        self.written.remove(path);
        self.gone.insert(path.to_owned());
        Ok(())
    }
}
