//! Ranges of the source's files asked for in pieces of at most [`PIECE`] bytes, one row
//! each, and put back together here.
//!
//! A server holds each row of `pg_read_binary_file` in memory several times over (the
//! bytes read, the value sent, the message). Rows under glibc's default mmap threshold
//! (128 kB) reuse that memory from one row to the next; rows of 1 MB had it mapped afresh
//! and faulted in, page by page (page faults were about a third of a PostgreSQL 15
//! server's time sending its WAL). In the rewind benchmark, 64 kB pieces brought the read
//! of the source's 64 MB of WAL from 0.22 to 0.18 s.

/// The most bytes one row asks for.
pub(super) const PIECE: u64 = 64 << 10;

/// The pieces of some ranges, as the query's three arrays, and how many belong to each
/// range (at least one: an empty range still asks whether its file exists).
#[derive(Debug, Default)]
pub(super) struct Pieces<'a> {
    pub paths: Vec<&'a str>,
    pub offsets: Vec<i64>,
    pub lens: Vec<i64>,
    per_range: Vec<usize>,
}

impl<'a> Pieces<'a> {
    /// `ranges` (`(path, offset, len)`) cut into pieces, in order.
    pub(super) fn of(ranges: &[(&'a str, u64, u64)]) -> Pieces<'a> {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut pieces = Pieces::default();
        for &(path, offset, len) in ranges {
            let count = len.div_ceil(PIECE).max(1);
            for i in 0..count {
                let at = i * PIECE;
                pieces.paths.push(path);
                pieces.offsets.push(int(offset.saturating_add(at)));
                pieces.lens.push(int(PIECE.min(len - at)));
            }
            pieces
                .per_range
                .push(usize::try_from(count).unwrap_or(usize::MAX));
        }
        pieces
    }

    pub(super) fn len(&self) -> usize {
        self.paths.len()
    }

    /// The ranges' replies from their pieces' (`None`: no such file), in the same order:
    /// a range is `None` when its first piece is, and ends at its first piece that is
    /// short or missing (the file's end, or a file cut or removed while it was read: the
    /// bytes after such a piece are not the ones that followed). `Err` names a piece longer
    /// than asked.
    pub(super) fn join(&self, replies: &[Option<&[u8]>]) -> Result<Vec<Option<Vec<u8>>>, String> {
        let asked = |i: usize| usize::try_from(self.lens.get(i).copied().unwrap_or(0)).unwrap_or(0);
        let reply = |i: usize| replies.get(i).copied().flatten();
        if let Some(i) = (0..self.len()).find(|&i| reply(i).is_some_and(|b| b.len() > asked(i))) {
            let (got, path) = (reply(i).map_or(0, <[u8]>::len), self.paths.get(i).copied());
            return Err(format!(
                "{got} bytes of {} where {} were asked",
                path.unwrap_or_default(),
                asked(i)
            ));
        }
        let mut joined = Vec::with_capacity(self.per_range.len());
        let mut next = 0;
        for &count in &self.per_range {
            let mut range: Option<Vec<u8>> = None;
            for i in next..next + count {
                let Some(bytes) = reply(i) else { break };
                range
                    .get_or_insert_with(|| Vec::with_capacity(asked(i) * count))
                    .extend_from_slice(bytes);
                if bytes.len() < asked(i) {
                    break;
                }
            }
            next += count;
            joined.push(range);
        }
        Ok(joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PIECE;

    #[test]
    fn ranges_are_cut_into_pieces_of_at_most_64_kb() {
        let pieces = Pieces::of(&[("a", 0, 0), ("b", 10, 2 * P + 1), ("c", 5, P)]);
        assert_eq!(pieces.paths, ["a", "b", "b", "b", "c"]);
        let p = P as i64;
        assert_eq!(pieces.offsets, [0, 10, 10 + p, 10 + 2 * p, 5]);
        assert_eq!(pieces.lens, [0, p, p, 1, p]);
        assert_eq!(pieces.per_range, [1, 3, 1]);
        assert_eq!(pieces.len(), 5);
    }

    #[test]
    fn replies_are_put_back_together_up_to_the_first_short_or_missing_piece() {
        let full = vec![7u8; P as usize];
        let short = vec![8u8; 100];
        let ranges = [("f", 0, 3 * P)];
        let pieces = Pieces::of(&ranges);
        let joined = |replies: &[Option<&[u8]>]| pieces.join(replies).map(|mut r| r.remove(0));
        let long = |n: usize| -> Vec<u8> {
            let mut v = vec![7u8; n * P as usize];
            v.extend_from_slice(&short);
            v
        };
        // (replies, the range's reply)
        type Row<'a> = (Vec<Option<&'a [u8]>>, Option<Vec<u8>>);
        let table: [Row; 6] = [
            (
                vec![Some(&full), Some(&full), Some(&full)],
                Some(vec![7; 3 * P as usize]),
            ),
            (vec![Some(&full), Some(&short), Some(&[])], Some(long(1))),
            // The file is gone: its first piece says so.
            (vec![None, None, None], None),
            (vec![Some(&[]), Some(&[]), Some(&[])], Some(Vec::new())),
            // Removed after its first piece: what was read, no more.
            (vec![Some(&full), None, None], Some(vec![7; P as usize])),
            // Cut, then written again while read: nothing after the short piece is kept.
            (
                vec![Some(&short), Some(&full), Some(&full)],
                Some(short.clone()),
            ),
        ];
        for (replies, expected) in table {
            assert_eq!(joined(&replies), Ok(expected));
        }
        let too_long = vec![0u8; P as usize + 1];
        let refused = pieces.join(&[Some(&full), Some(&too_long), Some(&full)]);
        assert_eq!(
            refused,
            Err(format!("{} bytes of f where {P} were asked", P + 1))
        );
    }

    #[test]
    fn each_range_gets_its_own_reply_in_order() {
        let pieces = Pieces::of(&[("gone", 0, 10), ("a", 0, P + 2), ("empty", 0, 0)]);
        let (a1, a2) = (vec![1u8; P as usize], vec![2u8; 2]);
        let replies: [Option<&[u8]>; 4] = [None, Some(&a1), Some(&a2), Some(&[])];
        let mut expected_a = a1.clone();
        expected_a.extend_from_slice(&a2);
        assert_eq!(
            pieces.join(&replies),
            Ok(vec![None, Some(expected_a), Some(Vec::new())])
        );
    }
}
