//! The source's WAL read ahead of its decoding: the chunks the reader will ask for, in
//! order, fetched by two threads on connections of their own while the records of the
//! chunk before are decoded (one connection reads about 300 MB/s from a PostgreSQL 15
//! server here, which sends a large value 8 kB at a time; the decoding is about as fast).

use std::io;
use std::sync::mpsc::{self, Receiver};
use std::thread;

use crate::deadline::Deadline;
use crate::instance::wal::{self, Segments, FETCH_CHUNK};
use crate::lsn::{Lsn, TimelineId};

use super::super::source::SourceSession;

/// Connections reading ahead.
const READERS: usize = 2;

/// One chunk of a segment file: its name, offset and length, as the reader asks for it.
type Chunk = (String, u64, u64);
type Reply = Result<Option<Vec<u8>>, String>;

/// The chunks of the files of `timeline` that hold the WAL from `from` to `to`.
fn chunks(timeline: TimelineId, from: Lsn, to: Lsn, segment_size: u32) -> Vec<Chunk> {
    let size = FETCH_CHUNK.min(u64::from(segment_size));
    let first = from.0 - from.0 % size;
    (first..=to.0)
        .step_by(usize::try_from(size).unwrap_or(usize::MAX))
        .map(|at| {
            let name = wal::segment_file_name(timeline, Lsn(at), segment_size);
            (name, at % u64::from(segment_size), size)
        })
        .collect()
}

/// Runs `read` over the source's WAL of `timeline` from `from` to `to`, its chunks fetched
/// ahead. A chunk asked past planned ones (after a segment switch) drops their replies; one
/// asked out of the plan, or with no second connection, is fetched then.
pub(super) fn read_ahead<T>(
    session: &SourceSession,
    timeline: TimelineId,
    (from, to): (Lsn, Lsn),
    segment_size: u32,
    deadline: &Deadline,
    read: impl FnOnce(Segments<'_, '_>) -> T,
) -> T {
    let plan = chunks(timeline, from, to, segment_size);
    let readers: Vec<SourceSession> = (0..READERS)
        .map_while(|_| {
            session
                .another(deadline)
                .map_err(|e| log::info!("the source's WAL is read ahead on fewer connections: {e}"))
                .ok()
        })
        .collect();
    thread::scope(|scope| {
        let count = readers.len();
        let mut replies: Vec<Receiver<Reply>> = Vec::new();
        for (i, reader) in readers.into_iter().enumerate() {
            let (send, receive) = mpsc::sync_channel(1);
            let mine: Vec<Chunk> = plan.iter().skip(i).step_by(count).cloned().collect();
            let spawned = thread::Builder::new().spawn_scoped(scope, move || {
                for (name, offset, len) in mine {
                    if send
                        .send(fetch(&reader, &name, offset, len, deadline))
                        .is_err()
                    {
                        break;
                    }
                }
            });
            if spawned.is_err() {
                // Each reader has its share of the plan: without one, none reads ahead.
                replies.clear();
                break;
            }
            replies.push(receive);
        }
        let mut next = 0;
        let mut get = |name: &str, offset: u64, len: u64| {
            let readers = replies.len();
            let ahead = (readers > 0)
                .then(|| plan.get(next..))
                .flatten()
                .and_then(|rest| {
                    rest.iter()
                        .position(|(n, o, l)| (n.as_str(), *o, *l) == (name, offset, len))
                });
            let reply = match ahead {
                Some(skipped) => {
                    let receive = |at: usize| {
                        replies
                            .get(at % readers)
                            .and_then(|r| r.recv().ok())
                            .unwrap_or_else(|| Err("a reader stopped".into()))
                    };
                    for at in next..next + skipped {
                        let _ = receive(at);
                    }
                    next += skipped + 1;
                    receive(next - 1)
                }
                None => fetch(session, name, offset, len, deadline),
            };
            reply.map_err(io::Error::other)
        };
        let shown = std::path::Path::new("the source's pg_wal");
        // `get` (and the receivers) go before the scope waits for the readers, which stop
        // at their next reply.
        read(Segments::Fetched {
            shown,
            fetch: &mut get,
        })
    })
}

fn fetch(session: &SourceSession, name: &str, offset: u64, len: u64, deadline: &Deadline) -> Reply {
    let path = format!("pg_wal/{name}");
    session
        .read_ranges(&[(&path, offset, len)], deadline)
        .map(|mut replies| replies.pop().flatten())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunks_cover_the_wal_from_the_fork_to_the_redo_point_in_order() {
        assert_eq!(FETCH_CHUNK, 4 << 20, "the table below is in 4 MB chunks");
        let mb = 1u64 << 20;
        let found = chunks(2, Lsn(0x3900_0000), Lsn(0x3A80_0010), 16 << 20);
        let names: Vec<(&str, u64)> = found.iter().map(|(n, o, _)| (n.as_str(), o / mb)).collect();
        let (a, b) = ("000000020000000000000039", "00000002000000000000003A");
        assert_eq!(
            names,
            [(a, 0), (a, 4), (a, 8), (a, 12), (b, 0), (b, 4), (b, 8)]
        );
        // 64 MB segments: from the chunk holding the fork (36 MB into segment 16) to the one
        // holding the redo point (the start of segment 17).
        let found = chunks(2, Lsn(1060 * mb + 8), Lsn(1088 * mb + 8), 64 << 20);
        let at: Vec<u64> = found
            .iter()
            .map(|(_, o, l)| o / mb + l / mb * 1000)
            .collect();
        assert_eq!(at, [4036, 4040, 4044, 4048, 4052, 4056, 4060, 4000]);
    }
}
