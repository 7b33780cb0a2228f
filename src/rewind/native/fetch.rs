//! The native engine's reads from the source, queued and sent together: a batch of ranges of
//! the files being written costs one round trip to a running source (pg_rewind's libpq mode
//! batches its chunks the same way), where one request per 8 kB block cost thousands.

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::super::error::RewindError;
use super::super::forensics::io;
use super::super::listing::Tree;
use super::super::source::SourceSession;
use crate::deadline::{Deadline, Expired};

/// The most bytes asked of the source in one range (pg_rewind's chunk too).
pub(super) const CHUNK: u64 = 1 << 20;
/// A batch is sent when it holds this many ranges…
const BATCH_RANGES: usize = 512;
/// …or this many bytes. Small batches keep both connections and the writer busy from the
/// first batch to the last: in the benchmark (66 MB), 2 MB batches took the engine from
/// 0.20 to 0.15 s, where 16 MB ones left the writer waiting for the first and the last
/// reply alone.
const BATCH_BYTES: u64 = 2 << 20;

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
pub(super) type Target = Arc<(String, std::fs::File)>;

/// The replies to one batch, each with the file and offset it goes to.
type Batch = Vec<(Target, u64, Option<Vec<u8>>)>;

/// Batches fetched but not written yet: the source is read while the previous batch is
/// written (a batch holds less than [`BATCH_BYTES`] plus one [`CHUNK`]).
const BATCHES_IN_FLIGHT: usize = 1;

/// Ranges to fetch: the file each goes to, its offset and length.
type Asks = Vec<(Target, u64, u64)>;

/// Ranges waiting to be fetched, sent to the source in batches, every other one on a second
/// connection when the source is a server (two reads at once took 0.27 s where one took
/// 0.36 s for 256 MB here); the replies go to a writer thread, so that the source's reads
/// and the target's writes overlap (each took about 40 % of the engine's time in the
/// benchmark, one after the other).
pub(super) struct Fetcher<'a> {
    source: &'a SourceFiles<'a>,
    queued: Asks,
    bytes: u64,
    to_writer: Option<SyncSender<Batch>>,
    writer: Option<ScopedJoinHandle<'a, Result<Written, RewindError>>>,
    second: Option<SecondReader<'a>>,
    /// Whether the next batch goes to the second reader.
    its_turn: bool,
    /// Files the engine wrote itself (truncated, or emptied for a copy).
    pub touched: BTreeSet<String>,
    /// Time spent waiting for the source's replies, summed over the connections.
    reading: Duration,
}

/// A thread reading batches on its own connection to the source.
struct SecondReader<'a> {
    asks: SyncSender<Asks>,
    thread: ScopedJoinHandle<'a, Result<Duration, RewindError>>,
}

/// What the writer thread did.
#[derive(Default)]
pub(super) struct Written {
    /// Bytes written into the target.
    pub fetched: u64,
    /// The files written into.
    pub files: BTreeSet<String>,
    /// Files the source no longer has (removed from the target too).
    pub gone: BTreeSet<String>,
    /// Time spent writing.
    pub writing: Duration,
}

impl<'a> Fetcher<'a> {
    /// Starts the writer thread in `scope`, writing into `tree`, and a second reader when
    /// the source is a server that takes a second connection (else one connection does).
    pub fn start(
        scope: &'a Scope<'a, '_>,
        tree: &'a Tree,
        source: &'a SourceFiles<'a>,
        deadline: &Deadline,
    ) -> Result<Self, RewindError> {
        let (to_writer, batches) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let second = match source {
            SourceFiles::Server(session) => session
                .another(deadline)
                .map_err(|e| log::info!("the native rewind reads on one connection: {e}"))
                .ok(),
            SourceFiles::Pgdata(_) => None,
        }
        .and_then(|session| {
            let (asks, asked) = mpsc::sync_channel(0);
            let to_writer = to_writer.clone();
            let deadline = *deadline;
            thread::Builder::new()
                .spawn_scoped(scope, move || {
                    read_batches(&session, &asked, &to_writer, &deadline)
                })
                .map_err(|e| log::info!("the native rewind reads on one connection: {e}"))
                .ok()
                .map(|thread| SecondReader { asks, thread })
        });
        let writer = thread::Builder::new()
            .spawn_scoped(scope, move || write_batches(tree, batches))
            .map_err(|e| RewindError::io("could not start the native rewind's writer", e))?;
        Ok(Fetcher {
            source,
            queued: Vec::new(),
            bytes: 0,
            to_writer: Some(to_writer),
            writer: Some(writer),
            second,
            its_turn: false,
            touched: BTreeSet::new(),
            reading: Duration::ZERO,
        })
    }

    /// How many connections read from the source.
    pub fn connections(&self) -> usize {
        1 + usize::from(self.second.is_some())
    }

    /// Queues `[from, to)` of `file`'s path, in chunks; sends the batch when it is full.
    pub fn queue(
        &mut self,
        file: &Target,
        from: u64,
        to: u64,
        deadline: &Deadline,
    ) -> Result<(), RewindError> {
        let mut at = from;
        while at < to {
            let len = (to - at).min(CHUNK);
            self.queued.push((Arc::clone(file), at, len));
            self.bytes += len;
            at += len;
            if self.queued.len() >= BATCH_RANGES || self.bytes >= BATCH_BYTES {
                self.flush(deadline)?;
            }
        }
        Ok(())
    }

    /// Fetches what is queued, here or on the second reader, for the writer.
    pub fn flush(&mut self, deadline: &Deadline) -> Result<(), RewindError> {
        if self.queued.is_empty() {
            return Ok(());
        }
        if deadline.expired() {
            return Err(RewindError::Expired(Expired {
                what: "the native rewind, fetching from the source".into(),
                waited: deadline.elapsed(),
            }));
        }
        let asks = std::mem::take(&mut self.queued);
        self.bytes = 0;
        self.its_turn = !self.its_turn;
        let sent = match (&self.second, self.its_turn) {
            (Some(second), true) => second.asks.send(asks).is_ok(),
            _ => {
                let asked = Instant::now();
                let batch = fetch(self.source, asks, deadline)?;
                self.reading += asked.elapsed();
                self.to_writer
                    .as_ref()
                    .is_some_and(|w| w.send(batch).is_ok())
            }
        };
        match sent {
            true => Ok(()),
            // A thread stopped on an error: it says why.
            false => Err(self
                .stop()
                .err()
                .unwrap_or_else(|| gone("a reader or the writer"))),
        }
    }

    /// Fetches what is left and waits for the writer to write it all: what it wrote, and
    /// the time spent reading.
    pub fn finish(mut self, deadline: &Deadline) -> Result<(Written, Duration), RewindError> {
        self.flush(deadline)?;
        let written = self.stop()?;
        Ok((written, self.reading))
    }

    /// Closes the queues and waits for the threads; the writer's error first, as a reader
    /// fails when the writer is gone.
    fn stop(&mut self) -> Result<Written, RewindError> {
        let second = self.second.take().map(|SecondReader { asks, thread }| {
            drop(asks);
            joined(thread)
        });
        self.to_writer = None;
        let written = match self.writer.take() {
            Some(writer) => joined(writer)?,
            None => return Err(gone("the writer")),
        };
        if let Some(reading) = second {
            self.reading += reading?;
        }
        Ok(written)
    }
}

/// What a scoped thread returned; its panic goes on in the caller.
pub(super) fn joined<T>(thread: ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn gone(what: &str) -> RewindError {
    RewindError::io(
        format!("the native rewind's {what}"),
        std::io::Error::other("stopped"),
    )
}

/// Reads the ranges of `asks` from `source`, each reply with the file and offset it goes to.
fn fetch(source: &SourceFiles, asks: Asks, deadline: &Deadline) -> Result<Batch, RewindError> {
    let ranges: Vec<(&str, u64, u64)> = asks
        .iter()
        .map(|(t, offset, len)| (t.0.as_str(), *offset, *len))
        .collect();
    let replies = source.read(&ranges, deadline)?;
    Ok(asks
        .into_iter()
        .zip(replies)
        .map(|((target, offset, _), reply)| (target, offset, reply))
        .collect())
}

/// The second reader's thread: each batch asked, read on its own connection, for the writer.
fn read_batches(
    session: &SourceSession,
    asked: &Receiver<Asks>,
    to_writer: &SyncSender<Batch>,
    deadline: &Deadline,
) -> Result<Duration, RewindError> {
    let source = SourceFiles::Server(session);
    let mut reading = Duration::ZERO;
    for asks in asked {
        let started = Instant::now();
        let batch = fetch(&source, asks, deadline)?;
        reading += started.elapsed();
        to_writer.send(batch).map_err(|_| gone("writer"))?;
    }
    Ok(reading)
}

/// The writer thread: each reply at its offset, in the order fetched. A file the source no
/// longer has is removed from the target, as pg_rewind does: it was dropped after the
/// listing, and replay drops it again.
fn write_batches(tree: &Tree, batches: Receiver<Batch>) -> Result<Written, RewindError> {
    let mut written = Written::default();
    for batch in batches {
        let started = Instant::now();
        for (target, offset, reply) in batch {
            let path = &target.0;
            match reply {
                _ if written.gone.contains(path) => {}
                None => written.vanished(tree, path)?,
                Some(bytes) => {
                    target
                        .1
                        .write_all_at(&bytes, offset)
                        .map_err(|e| RewindError::io(format!("could not write {path}"), e))?;
                    written.fetched += bytes.len() as u64;
                    written.files.insert(path.clone());
                }
            }
        }
        written.writing += started.elapsed();
    }
    Ok(written)
}

impl Written {
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
        self.files.remove(path);
        self.gone.insert(path.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safe_fs::Dir;

    /// The writer thread's failure ends the fetch with its error: neither a hang on a full
    /// queue nor a success with bytes left unwritten.
    #[test]
    fn a_write_that_fails_in_the_writer_thread_fails_the_fetch() {
        let (source, target) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for root in [source.path(), target.path()] {
            std::fs::create_dir_all(root.join("pg_wal")).unwrap();
        }
        std::fs::write(source.path().join("f"), vec![7u8; 5 << 20]).unwrap();
        std::fs::write(target.path().join("f"), b"").unwrap();
        // Open read-only: every write into it fails.
        let file = std::fs::File::open(target.path().join("f")).unwrap();
        let file: Target = Arc::new(("f".into(), file));
        let tree = Tree::open(Dir::open(target.path()).unwrap(), None).unwrap();
        let from =
            SourceFiles::Pgdata(Tree::open(Dir::open(source.path()).unwrap(), None).unwrap());
        let deadline = Deadline::after(Duration::from_secs(30));
        std::thread::scope(|scope| {
            let mut fetcher = Fetcher::start(scope, &tree, &from, &deadline).unwrap();
            let fetched = (0..10)
                .try_for_each(|_| fetcher.queue(&file, 0, 5 << 20, &deadline))
                .and_then(|()| fetcher.finish(&deadline).map(|_| ()));
            let error = fetched.expect_err("the fetch fails").to_string();
            assert!(error.contains("could not write f"), "{error}");
        });
    }
}
