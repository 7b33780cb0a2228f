//! WAL pages: where they are (the segment file of an LSN, the first record position after a
//! page header) and the checks on their headers (`XLogReaderValidatePageHeader`), which also
//! tell which major wrote them. Pages come from a [`PageSource`]: the segment files for
//! [`read_record`](super::read_record), a buffer for [`decode_record`](super::decode_record).

use crate::lsn::{Lsn, TimelineId};

use super::error::{DecodeError, Failure};
use super::format::{xlp, Bytes, PAGE, WAL_PAGE_SIZE};
use super::major::{self, Major};

/// `SizeOfXLogShortPHD` and `SizeOfXLogLongPHD`.
pub(super) const SHORT_PAGE_HEADER: u64 = 24;
const LONG_PAGE_HEADER: u64 = 40;

/// The segment file holding `lsn`, named as PostgreSQL names it: timeline, then the segment
/// number split in two, each as 8 upper-case hex digits.
///
/// `segment_size` is pg_control's `xlog_seg_size` (a power of two, 1 MiB to 1 GiB). This
/// function does not check it ([`read_record`](super::read_record) does); a zero is taken as
/// 1, so that a bug in a caller gives a wrong name rather than a division by zero.
pub fn segment_file_name(timeline: TimelineId, lsn: Lsn, segment_size: u32) -> String {
    let segment_size = u64::from(segment_size.max(1));
    segno_file_name(timeline, lsn.0 / segment_size, segment_size)
}

/// The name of segment number `segno` on `timeline`: `%08X%08X%08X`, the timeline, then the
/// segment number split as the server splits it (segments per 4 GiB "log id").
pub fn segno_file_name(timeline: TimelineId, segno: u64, segment_size: u64) -> String {
    let segments_per_id = 0x1_0000_0000 / segment_size.max(1);
    format!(
        "{timeline:08X}{:08X}{:08X}",
        segno / segments_per_id,
        segno % segments_per_id
    )
}

/// Reads a segment file name back into its timeline and segment number, the inverse of
/// [`segno_file_name`]; `None` for anything else (history, `.partial`, …).
pub fn parse_segment_name(name: &str, segment_size: u64) -> Option<(TimelineId, u64)> {
    if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(name.get(0..8)?, 16).ok()?;
    let hi = u64::from_str_radix(name.get(8..16)?, 16).ok()?;
    let lo = u64::from_str_radix(name.get(16..24)?, 16).ok()?;
    let per_id = 0x1_0000_0000 / segment_size.max(1);
    Some((tli, hi * per_id + lo))
}

/// Where a record that follows position `lsn` starts: `lsn` itself, or past the page header
/// when `lsn` is the start of a page (a timeline's switch point, the end of a record, can
/// be).
pub fn past_page_header(lsn: Lsn, segment_size: u32) -> Lsn {
    match lsn.0 {
        l if !l.is_multiple_of(PAGE) => lsn,
        l if l.is_multiple_of(u64::from(segment_size)) => Lsn(l + LONG_PAGE_HEADER),
        l => Lsn(l + SHORT_PAGE_HEADER),
    }
}

/// The LSN of the header field at `offset` in the page that starts at `page_lsn`: errors
/// name the field at fault. A page start plus an offset within the page cannot overflow.
pub(super) fn field_at(page_lsn: Lsn, offset: u64) -> Lsn {
    Lsn(page_lsn.0 + offset)
}

/// A page's bytes, shared: a reader hands the same page to every record on it without
/// copying it (a copy per record was most of the time a WAL scan took).
pub(super) type PageBytes = std::rc::Rc<[u8]>;

/// Gives the page that starts at an LSN: `None` when the source does not have it.
pub(super) type PageSource<'a, E> = dyn FnMut(Lsn) -> Result<Option<PageBytes>, E> + 'a;

/// The reader's parameters.
pub(super) struct Wal {
    pub(super) timeline: TimelineId,
    pub(super) segment_size: u64,
}

/// What the pages read so far have established, to check the next against.
#[derive(Default)]
pub(super) struct Seen {
    magic: Option<u16>,
    timeline: Option<TimelineId>,
    system_identifier: Option<u64>,
    segment: Option<u64>,
}

/// A validated page header, with its page.
pub(super) struct Page {
    bytes: PageBytes,
    pub(super) info: u16,
    pub(super) rem_len: u32,
    pub(super) header_len: u64,
    /// The major that wrote the page, from its magic.
    pub(super) major: &'static Major,
}

impl Page {
    /// The page's bytes from `from` (an offset in the page), at most `len` of them.
    pub(super) fn data(&self, from: u64, len: u64) -> &[u8] {
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let end = from.saturating_add(len).min(self.bytes.len());
        self.bytes.get(from..end).unwrap_or_default()
    }
}

impl Wal {
    /// Gets and checks the page at `page_lsn`, after the first page of its segment when the
    /// record enters a segment there (as PostgreSQL's reader does on switching segments).
    pub(super) fn page<E>(
        &self,
        page_lsn: Lsn,
        seen: &mut Seen,
        pages: &mut PageSource<'_, E>,
    ) -> Result<Page, Failure<E>> {
        let segment = page_lsn.0 / self.segment_size;
        if seen.segment != Some(segment) {
            seen.segment = Some(segment);
            let head = Lsn(segment * self.segment_size);
            if head != page_lsn {
                if let Some(bytes) = pages(head).map_err(Failure::Source)? {
                    self.check_page(bytes, head, seen)?;
                }
            }
        }
        let bytes = pages(page_lsn)
            .map_err(Failure::Source)?
            .ok_or(DecodeError::Truncated { at: page_lsn })?;
        Ok(self.check_page(bytes, page_lsn, seen)?)
    }

    /// `XLogReaderValidatePageHeader`'s checks, in its order, on a page at `page_lsn`.
    fn check_page(
        &self,
        bytes: PageBytes,
        page_lsn: Lsn,
        seen: &mut Seen,
    ) -> Result<Page, DecodeError> {
        if bytes.len() < WAL_PAGE_SIZE as usize {
            return Err(DecodeError::Truncated { at: page_lsn });
        }
        let truncated = || DecodeError::Truncated { at: page_lsn };
        let raw = Bytes(&bytes);
        if bytes
            .iter()
            .take(SHORT_PAGE_HEADER as usize)
            .all(|b| *b == 0)
        {
            return Err(DecodeError::Unwritten {
                at: page_lsn,
                what: "page header",
            });
        }
        let magic = raw.u16(0).ok_or_else(truncated)?;
        let info = raw.u16(2).ok_or_else(truncated)?;
        let timeline = raw.u32(4).ok_or_else(truncated)?;
        let page_address = Lsn(raw.u64(8).ok_or_else(truncated)?);
        let rem_len = raw.u32(16).ok_or_else(truncated)?;

        let major = check_magic(magic, page_lsn, seen)?;
        let long = self.check_info(info, major, page_lsn)?;
        if long {
            self.check_long_header(&raw, page_lsn, seen)?;
        }
        if page_address != page_lsn {
            return Err(DecodeError::PageAddress {
                at: field_at(page_lsn, 8),
                found: page_address,
                expected: page_lsn,
            });
        }
        self.check_timeline(timeline, page_lsn, seen)?;
        Ok(Page {
            bytes,
            info,
            rem_len,
            header_len: if long {
                LONG_PAGE_HEADER
            } else {
                SHORT_PAGE_HEADER
            },
            major,
        })
    }

    /// `xlp_info`: no bits `major` does not define, and the long header on a segment's first
    /// page and no other. Whether the header is long.
    fn check_info(&self, info: u16, major: &Major, page_lsn: Lsn) -> Result<bool, DecodeError> {
        if info & !major.page_flags != 0 {
            return Err(DecodeError::InfoBits {
                at: field_at(page_lsn, 2),
                found: info,
                known: major.page_flags,
                major: major.version,
            });
        }
        let long = info & xlp::LONG_HEADER != 0;
        let segment_start = page_lsn.0.is_multiple_of(self.segment_size);
        if long != segment_start {
            return Err(DecodeError::LongHeader {
                at: field_at(page_lsn, 2),
                found: info,
            });
        }
        Ok(long)
    }

    /// The long header of a segment's first page: the same database system as the record's
    /// earlier segments, and the sizes pg_control gives and pgha reads.
    fn check_long_header(
        &self,
        raw: &Bytes<'_>,
        page_lsn: Lsn,
        seen: &mut Seen,
    ) -> Result<(), DecodeError> {
        let truncated = || DecodeError::Truncated { at: page_lsn };
        let system_identifier = raw.u64(24).ok_or_else(truncated)?;
        let segment_size = raw.u32(32).ok_or_else(truncated)?;
        let page_size = raw.u32(36).ok_or_else(truncated)?;
        match seen.system_identifier {
            Some(expected) if expected != system_identifier => {
                return Err(DecodeError::SystemIdentifier {
                    at: field_at(page_lsn, 24),
                    found: system_identifier,
                    expected,
                })
            }
            _ => seen.system_identifier = Some(system_identifier),
        }
        if u64::from(segment_size) != self.segment_size {
            return Err(DecodeError::SegmentSize {
                at: field_at(page_lsn, 32),
                found: segment_size,
                expected: u32::try_from(self.segment_size).unwrap_or(u32::MAX),
            });
        }
        if page_size != WAL_PAGE_SIZE {
            return Err(DecodeError::PageSize {
                at: field_at(page_lsn, 36),
                found: page_size,
            });
        }
        Ok(())
    }

    /// `xlp_tli`: a timeline up to the file's (a timeline's file holds its parent's WAL up to
    /// the switch), never going back within a record.
    fn check_timeline(
        &self,
        timeline: TimelineId,
        page_lsn: Lsn,
        seen: &mut Seen,
    ) -> Result<(), DecodeError> {
        if timeline == 0 || timeline > self.timeline {
            return Err(DecodeError::Timeline {
                at: field_at(page_lsn, 4),
                found: timeline,
                timeline: self.timeline,
            });
        }
        match seen.timeline {
            Some(previous) if timeline < previous => Err(DecodeError::TimelineBackwards {
                at: field_at(page_lsn, 4),
                found: timeline,
                previous,
            }),
            _ => {
                seen.timeline = Some(timeline);
                Ok(())
            }
        }
    }
}

/// `xlp_magic`: a major pgha reads, the same on every page of a record. The major it names.
fn check_magic(magic: u16, page_lsn: Lsn, seen: &mut Seen) -> Result<&'static Major, DecodeError> {
    let major = major::by_page_magic(magic).ok_or(DecodeError::Magic {
        at: field_at(page_lsn, 0),
        found: magic,
    })?;
    match seen.magic {
        Some(expected) if expected != magic => Err(DecodeError::MagicChanged {
            at: field_at(page_lsn, 0),
            found: magic,
            expected,
        }),
        _ => {
            seen.magic = Some(magic);
            Ok(major)
        }
    }
}

#[cfg(test)]
mod tests;
