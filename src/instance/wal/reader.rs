//! The segment files under the record reader: [`read_record`], and the [`CachedReader`] the
//! scans share. A segment file is opened once for all the pages a reader needs from it,
//! through `safe_fs` (pg_wal is the postgres account's); the last few pages are kept; and
//! whatever is wrong is named by file and offset.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::lsn::{Lsn, TimelineId};

use super::decode::WalRecord;
use super::error::{Failure, WalError};
use super::format::WAL_PAGE_SIZE;
use super::page::{segment_file_name, Page, PageBytes, Seen, Wal};
use super::record;

/// The segment sizes `initdb --wal-segsize` allows: powers of two from 1 MiB to 1 GiB.
const MIN_SEGMENT_SIZE: u32 = 1 << 20;
const MAX_SEGMENT_SIZE: u32 = 1 << 30;

/// Reads the record that starts at `lsn` from the segment files of `timeline` in `pg_wal`.
///
/// `lsn` must be where a record starts (pg_control's `checkPoint` is); the record is followed
/// onto later pages and segments. `timeline` names the files read, for every segment: the
/// caller passes the timeline whose files hold the record, normally the latest one the
/// server knows, since a timeline's first segment also holds its parent's WAL up to the
/// switch. `segment_size` is pg_control's `xlog_seg_size`.
///
/// Each segment touched is opened once; its first page (long header) is checked, then each
/// page the record lies on, then the record header, its CRC and its body, in that order.
pub fn read_record(
    pg_wal: &Path,
    timeline: TimelineId,
    lsn: Lsn,
    segment_size: u32,
) -> Result<WalRecord, WalError> {
    CachedReader::new(pg_wal, timeline, segment_size)?.read(lsn)
}

/// Fetches up to `len` bytes of a segment file from `offset` (`name`, `offset`, `len`): fewer
/// only at the file's end, `None` when there is no such file.
pub type FetchRange<'f> = dyn FnMut(&str, u64, u64) -> io::Result<Option<Vec<u8>>> + 'f;

/// The most bytes of a segment fetched at once: a quarter of a default segment, so that
/// the first arrives soon.
pub const FETCH_CHUNK: u64 = 4 << 20;

/// Where segment files are read from.
pub enum Segments<'a, 'f> {
    /// A `pg_wal` directory, read through `safe_fs` (it is the postgres account's).
    Dir(&'a Path),
    /// Another server's, fetched in chunks of at most [`FETCH_CHUNK`] (over SQL); `shown`
    /// is the directory errors name.
    Fetched {
        shown: &'a Path,
        fetch: &'a mut FetchRange<'f>,
    },
}

/// Reads records from the segment files of one timeline, keeping the last few pages: a
/// record reads its segment's first page and the pages it lies on, and many records share
/// a page.
pub(super) struct CachedReader<'a, 'f> {
    wal: Wal,
    files: SegmentFiles<'a, 'f>,
    recent: Vec<(Lsn, PageBytes)>,
}

impl<'a, 'f> CachedReader<'a, 'f> {
    pub(super) fn new(
        pg_wal: &'a Path,
        timeline: TimelineId,
        segment_size: u32,
    ) -> Result<CachedReader<'a, 'f>, WalError> {
        Self::over(Segments::Dir(pg_wal), timeline, segment_size)
    }

    pub(super) fn over(
        from: Segments<'a, 'f>,
        timeline: TimelineId,
        segment_size: u32,
    ) -> Result<CachedReader<'a, 'f>, WalError> {
        if !segment_size.is_power_of_two()
            || !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size)
        {
            return Err(WalError::SegmentSize(segment_size));
        }
        Ok(CachedReader {
            wal: Wal {
                timeline,
                segment_size: u64::from(segment_size),
            },
            files: SegmentFiles {
                from,
                timeline,
                segment_size: u64::from(segment_size),
                open: None,
                first_page: None,
            },
            recent: Vec::new(),
        })
    }

    /// The record that starts at `lsn`; an invalid one names the file and offset at fault.
    pub(super) fn read(&mut self, lsn: Lsn) -> Result<WalRecord, WalError> {
        let (files, recent) = (&mut self.files, &mut self.recent);
        let mut pages = |page: Lsn| -> Result<Option<PageBytes>, WalError> {
            if let Some((_, bytes)) = recent.iter().find(|(at, _)| *at == page) {
                return Ok(Some(PageBytes::clone(bytes)));
            }
            let bytes = PageBytes::from(files.page(page)?);
            if recent.len() == 4 {
                recent.remove(0);
            }
            recent.push((page, bytes.clone()));
            Ok(Some(bytes))
        };
        match record::read(&self.wal, lsn, &mut pages) {
            Ok(record) => Ok(record),
            Err(Failure::Source(e)) => Err(e),
            Err(Failure::Invalid(source)) => {
                let at = source.at();
                let segment_size = self.wal.segment_size;
                Err(WalError::Invalid {
                    file: files.shown().join(segment_file_name(
                        self.wal.timeline,
                        at,
                        u32::try_from(segment_size).unwrap_or(u32::MAX),
                    )),
                    offset: at.0 % segment_size,
                    source,
                })
            }
        }
    }

    pub(super) fn segment_size(&self) -> u64 {
        self.wal.segment_size
    }

    /// The page starting at `page`, checked as a record's pages are (its segment's first
    /// page too); `None` when it is not a page of this WAL (unwritten, recycled, another
    /// timeline, unreadable).
    pub(super) fn checked_page(&mut self, page: Lsn) -> Option<Page> {
        let files = &mut self.files;
        let mut pages =
            |at: Lsn| -> Result<Option<PageBytes>, WalError> { Ok(Some(files.page(at)?.into())) };
        self.wal.page(page, &mut Seen::default(), &mut pages).ok()
    }
}

/// The segment files of one timeline, opened (or fetched) one at a time.
struct SegmentFiles<'a, 'f> {
    from: Segments<'a, 'f>,
    timeline: TimelineId,
    segment_size: u64,
    open: Option<(u64, PathBuf, Opened)>,
    /// A fetched segment's first page, which every record's read checks, kept apart from
    /// the chunk being read (fetched alone when that chunk is another).
    first_page: Option<(u64, Vec<u8>)>,
}

/// `len` bytes of segment file `name` from `at`, fetched: all of them, or the error that
/// names the file (`path`) for `lsn`.
fn fetched(
    fetch: &mut FetchRange<'_>,
    name: &str,
    lsn: Lsn,
    (at, len): (u64, u64),
    path: &Path,
    segment_size: u64,
) -> Result<Vec<u8>, WalError> {
    match fetch(name, at, len) {
        Ok(Some(bytes)) if bytes.len() as u64 == len => Ok(bytes),
        Ok(Some(bytes)) => Err(WalError::Short {
            file: path.to_owned(),
            len: at + bytes.len() as u64,
            expected: segment_size,
        }),
        Ok(None) => Err(WalError::Missing {
            file: path.to_owned(),
            lsn,
        }),
        Err(source) => Err(WalError::Io {
            file: path.to_owned(),
            source,
        }),
    }
}

/// The segment being read: a local file, or the chunk of it fetched last (from `at`).
enum Opened {
    File(File),
    Chunk { at: u64, bytes: Vec<u8> },
}

impl SegmentFiles<'_, '_> {
    fn shown(&self) -> &Path {
        match &self.from {
            Segments::Dir(dir) => dir,
            Segments::Fetched { shown, .. } => shown,
        }
    }

    fn page(&mut self, page: Lsn) -> Result<Vec<u8>, WalError> {
        let segment = page.0 / self.segment_size;
        let offset = page.0 % self.segment_size;
        let page_len = u64::from(WAL_PAGE_SIZE);
        if offset == 0 && matches!(self.from, Segments::Fetched { .. }) {
            return self.first_page(segment, page);
        }
        let (path, opened) = match self.open.take() {
            Some((open, path, Opened::File(file))) if open == segment => (path, Opened::File(file)),
            Some((open, path, Opened::Chunk { at, bytes }))
                if open == segment
                    && at <= offset
                    && offset + page_len <= at + bytes.len() as u64 =>
            {
                (path, Opened::Chunk { at, bytes })
            }
            _ => self.open_segment(page)?,
        };
        let result = match &opened {
            Opened::File(file) => self.read_page(&path, file, offset),
            Opened::Chunk { at, bytes } => {
                let from = usize::try_from(offset - at).unwrap_or(usize::MAX);
                bytes
                    .get(from..from.saturating_add(WAL_PAGE_SIZE as usize))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| WalError::Short {
                        file: path.clone(),
                        len: at + bytes.len() as u64,
                        expected: self.segment_size,
                    })
            }
        };
        self.open = Some((segment, path, opened));
        result
    }

    fn read_page(&self, path: &Path, file: &File, offset: u64) -> Result<Vec<u8>, WalError> {
        let mut bytes = vec![0; WAL_PAGE_SIZE as usize];
        match file.read_exact_at(&mut bytes, offset) {
            Ok(()) => Ok(bytes),
            // The file was full size when opened: someone shortened it since.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(WalError::Short {
                file: path.to_owned(),
                len: file.metadata().map_or(0, |m| m.len()),
                expected: self.segment_size,
            }),
            Err(source) => Err(WalError::Io {
                file: path.to_owned(),
                source,
            }),
        }
    }

    /// Opens the segment file holding `lsn`, which must be a whole segment; a fetched one's
    /// chunk holding `lsn`'s page.
    fn open_segment(&mut self, lsn: Lsn) -> Result<(PathBuf, Opened), WalError> {
        let name = segment_file_name(
            self.timeline,
            lsn,
            u32::try_from(self.segment_size).unwrap_or(u32::MAX),
        );
        let path = self.shown().join(&name);
        let fetch = match &mut self.from {
            Segments::Dir(_) => return self.open_file(path, lsn),
            Segments::Fetched { fetch, .. } => fetch,
        };
        let offset = lsn.0 % self.segment_size;
        let chunk = FETCH_CHUNK.min(self.segment_size);
        let at = offset - offset % chunk;
        let bytes = fetched(fetch, &name, lsn, (at, chunk), &path, self.segment_size)?;
        if at == 0 {
            self.first_page = bytes
                .get(..WAL_PAGE_SIZE as usize)
                .map(|first| (lsn.0 / self.segment_size, first.to_vec()));
        }
        Ok((path, Opened::Chunk { at, bytes }))
    }

    fn first_page(&mut self, segment: u64, page: Lsn) -> Result<Vec<u8>, WalError> {
        if let Some((_, bytes)) = self.first_page.as_ref().filter(|(s, _)| *s == segment) {
            return Ok(bytes.clone());
        }
        if !matches!(&self.open, Some((open, _, _)) if *open == segment) {
            // A segment not read yet: its first chunk, which holds the page, is read next.
            let opened = self.open_segment(page)?;
            self.open = Some((segment, opened.0, opened.1));
            if let Some((_, bytes)) = self.first_page.as_ref().filter(|(s, _)| *s == segment) {
                return Ok(bytes.clone());
            }
        }
        let name = segment_file_name(
            self.timeline,
            page,
            u32::try_from(self.segment_size).unwrap_or(u32::MAX),
        );
        let path = self.shown().join(&name);
        let Segments::Fetched { fetch, .. } = &mut self.from else {
            return Err(WalError::Missing {
                file: path,
                lsn: page,
            });
        };
        let range = (0, u64::from(WAL_PAGE_SIZE));
        let bytes = fetched(fetch, &name, page, range, &path, self.segment_size)?;
        self.first_page = Some((segment, bytes.clone()));
        Ok(bytes)
    }

    fn open_file(&self, path: PathBuf, lsn: Lsn) -> Result<(PathBuf, Opened), WalError> {
        let file = match crate::safe_fs::open_path(&path) {
            Ok((file, _)) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(WalError::Missing { file: path, lsn })
            }
            Err(source) => return Err(WalError::Io { file: path, source }),
        };
        let len = match file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(source) => return Err(WalError::Io { file: path, source }),
        };
        if len != self.segment_size {
            return Err(WalError::Short {
                file: path,
                len,
                expected: self.segment_size,
            });
        }
        Ok((path, Opened::File(file)))
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;
    use crate::instance::wal::error::DecodeError;
    use crate::instance::wal::fixtures::{
        invalid, listed_lsn, listed_of, patch, pg_wal, read, MIB,
    };

    /// Another server's segment files, as the source's are fetched over SQL: ranges of the
    /// files in `dir`, each request recorded.
    fn fetched_from<'d>(
        dir: &'d Path,
        asked: &'d mut Vec<(String, u64, u64)>,
    ) -> impl FnMut(&str, u64, u64) -> io::Result<Option<Vec<u8>>> + 'd {
        move |name, offset, len| {
            asked.push((name.to_owned(), offset, len));
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => Ok(bytes
                    .get(offset as usize..)
                    .map(|rest| rest.iter().take(len as usize).copied().collect())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    #[test]
    fn fetched_segments_give_the_records_the_files_give() {
        let dir = pg_wal();
        for timeline in [1, 2] {
            let mut asked = Vec::new();
            let mut fetch = fetched_from(dir.path(), &mut asked);
            let from = Segments::Fetched {
                shown: Path::new("the source's pg_wal"),
                fetch: &mut fetch,
            };
            let mut reader = CachedReader::over(from, timeline, MIB).unwrap();
            let listed = listed_of(15);
            let mine: Vec<_> = listed.iter().filter(|l| l.timeline == timeline).collect();
            assert!(!mine.is_empty());
            for record in mine {
                let expected = read(dir.path(), timeline, record.lsn).unwrap();
                assert_eq!(
                    reader.read(record.lsn).unwrap(),
                    expected,
                    "{}",
                    record.name
                );
            }
            drop(reader);
            drop(fetch);
            // A 1 MiB segment is one chunk: each first page comes with its chunk.
            assert!(asked
                .iter()
                .all(|(_, offset, len)| *offset == 0 && *len == 1 << 20));
        }
    }

    #[test]
    fn a_fetched_segment_missing_or_short_is_named() {
        let dir = pg_wal();
        let lsn = listed_lsn("checkpoint-shutdown");
        let mut asked = Vec::new();
        let mut fetch = fetched_from(dir.path(), &mut asked);
        let fails = |fetch: &mut FetchRange<'_>| {
            let from = Segments::Fetched {
                shown: Path::new("src"),
                fetch,
            };
            CachedReader::over(from, 1, MIB)
                .unwrap()
                .read(lsn)
                .unwrap_err()
        };
        let error = fails(&mut |_: &str, _: u64, _: u64| Ok(None));
        assert!(
            matches!(&error, WalError::Missing { file, .. }
                if file == Path::new("src/000000010000000000000009")),
            "{error}"
        );
        let mut short = |name: &str, offset: u64, len: u64| {
            fetch(name, offset, len).map(|b| b.map(|b| b.into_iter().take(4096).collect()))
        };
        let error = fails(&mut short);
        assert!(
            matches!(error, WalError::Short { len: 4096, .. }),
            "{error}"
        );
    }

    #[test]
    fn missing_short_and_unwritten_segments() {
        let lsn = listed_lsn("checkpoint-shutdown");
        let segment = "000000010000000000000009";

        let dir = pg_wal();
        std::fs::remove_file(dir.path().join(segment)).unwrap();
        let error = read(dir.path(), 1, lsn).unwrap_err();
        assert!(
            matches!(&error, WalError::Missing { file, lsn: at }
            if file.ends_with(segment) && *at == Lsn(0x90_0000)),
            "{error}"
        );
        assert!(error.is_not_received());

        let dir = pg_wal();
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(segment))
            .unwrap();
        file.set_len(4096).unwrap();
        let error = read(dir.path(), 1, lsn).unwrap_err();
        assert!(
            matches!(
                error,
                WalError::Short {
                    len: 4096,
                    expected: 0x10_0000,
                    ..
                }
            ),
            "{error}"
        );
        assert!(!error.is_not_received());

        // Not received yet: a preallocated segment still all zeros...
        let dir = pg_wal();
        patch(dir.path(), segment, 0, &[0; 8192]);
        let error = read(dir.path(), 1, lsn).unwrap_err();
        assert!(error.is_not_received(), "{error}");
        // ...or a page written only up to the record.
        let dir = pg_wal();
        patch(dir.path(), segment, 0x1858, &[0; 8192 - 0x1858]);
        let (_, _, error) = invalid(read(dir.path(), 1, lsn));
        assert_eq!(
            error,
            DecodeError::Unwritten {
                at: lsn,
                what: "record"
            }
        );
        // ...or a recycled segment whose pages are an older segment's.
        let dir = pg_wal();
        patch(dir.path(), segment, 8, &0x10_0000u64.to_le_bytes());
        let error = read(dir.path(), 1, lsn).unwrap_err();
        assert!(error.is_not_received(), "{error}");
    }
}
