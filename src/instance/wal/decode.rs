//! What a record's bytes say, once they are assembled and their CRC checked: the header's
//! fields, the body's block references and main data (`DecodeXLogRecord`'s walk, as the
//! record's major lays it out), and a checkpoint record's `CheckPoint`.

use crate::lsn::{Lsn, TimelineId};

use super::error::{BodyProblem, DecodeError};
use super::format::{
    Bytes, RECORD_HEADER, RMGR_INFO_MASK, RM_XLOG_ID, XLOG_CHECKPOINT_ONLINE,
    XLOG_CHECKPOINT_SHUTDOWN,
};
use super::major::Major;

/// `BLCKSZ`: the data block size of default builds; full-page images are checked against it.
const BLOCK_SIZE: u16 = 8192;

/// Block header ids of the record body (`xlogrecord.h`).
mod block_id {
    /// `XLR_MAX_BLOCK_ID`: block references use ids 0 to 32.
    pub(super) const MAX_BLOCK: u8 = 32;
    /// `XLR_BLOCK_ID_TOPLEVEL_XID`, from PostgreSQL 14.
    pub(super) const TOPLEVEL_XID: u8 = 252;
    pub(super) const ORIGIN: u8 = 253;
    pub(super) const DATA_LONG: u8 = 254;
    pub(super) const DATA_SHORT: u8 = 255;
}

/// `fork_flags` bits of a block reference.
mod bkpblock {
    pub(super) const FORK_MASK: u8 = 0x0F;
    pub(super) const HAS_IMAGE: u8 = 0x10;
    pub(super) const HAS_DATA: u8 = 0x20;
    pub(super) const SAME_REL: u8 = 0x80;
    /// `MAX_FORKNUM` (`INIT_FORKNUM`).
    pub(super) const MAX_FORK: u8 = 3;
}

/// One WAL record, as read at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// Where the record starts (`ReadRecPtr`).
    pub lsn: Lsn,
    /// Where the next record starts: just after this record's last byte, MAXALIGNed, not
    /// counting the header of a page that would follow (`EndRecPtr`; the server's flush and
    /// receive positions report the end of a record the same way). A standby that has
    /// received up to here has all of the record.
    pub end: Lsn,
    /// `xl_rmid`: the resource manager (0 is `RM_XLOG_ID`).
    pub rmid: u8,
    /// `xl_info`, all eight bits.
    pub info: u8,
    /// `xl_prev`: where the previous record starts.
    pub prev: Lsn,
    /// `xl_tot_len`: the record's length, header included, page headers excluded.
    pub total_len: u32,
    /// The block references, in order (what `pg_waldump` shows as `blkref #N`).
    pub blocks: Vec<BlockRef>,
    /// The record's main data (the resource manager's own struct).
    pub main_data: Vec<u8>,
    /// The major whose page magic the record's pages carry: how its main data is laid out.
    major: &'static Major,
}

/// A block reference of a record body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// The block id, 0 to 32, strictly increasing within a record.
    pub id: u8,
    /// 0 main, 1 fsm, 2 visibility map, 3 init.
    pub fork: u8,
    /// `RelFileNode` (13–15) / `RelFileLocator` (16–19): tablespace, database, relation.
    pub rel: [u32; 3],
    pub block: u32,
    /// Bytes of full-page image stored in the record (after hole removal and compression).
    pub image_len: Option<u16>,
    /// Bytes of block data (not image) stored in the record.
    pub data_len: u16,
}

/// What a checkpoint record says, from its `CheckPoint` main data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// `XLOG_CHECKPOINT_SHUTDOWN` rather than `XLOG_CHECKPOINT_ONLINE`.
    pub shutdown: bool,
    /// `redo`: where replay from this checkpoint starts (the record itself, for a shutdown
    /// checkpoint).
    pub redo: Lsn,
    /// `ThisTimeLineID`.
    pub timeline: TimelineId,
    /// `PrevTimeLineID`: differs from `timeline` only in the first checkpoint of a timeline.
    pub prev_timeline: TimelineId,
}

impl WalRecord {
    /// The record whose bytes, header included and page headers left out, are `record`
    /// (assembled and CRC-checked), read at `lsn` and ending at `end`, as `major` lays its
    /// body out.
    pub(super) fn decode(
        record: &[u8],
        lsn: Lsn,
        end: Lsn,
        major: &'static Major,
    ) -> Result<WalRecord, DecodeError> {
        let body = decode_body(record, major).map_err(|(offset, problem)| DecodeError::Body {
            at: lsn,
            offset,
            problem,
        })?;
        let header = Bytes(record);
        Ok(WalRecord {
            lsn,
            end,
            rmid: header.u8(17).unwrap_or_default(),
            info: header.u8(16).unwrap_or_default(),
            prev: Lsn(header.u64(8).unwrap_or_default()),
            total_len: header.u32(0).unwrap_or_default(),
            blocks: body.blocks,
            main_data: record.get(body.main_data).unwrap_or_default().to_vec(),
            major,
        })
    }

    /// The checkpoint this record is, if it is one: `RM_XLOG_ID` with `XLOG_CHECKPOINT_SHUTDOWN`
    /// or `XLOG_CHECKPOINT_ONLINE`, and main data the size of its major's `CheckPoint` (88
    /// bytes in 13–18, 96 in 19; anything else is no checkpoint record a server wrote).
    /// PostgreSQL 17's `XLOG_CHECKPOINT_REDO` (0xE0) only marks a redo point and is not one.
    pub fn checkpoint(&self) -> Option<CheckpointRecord> {
        if self.rmid != RM_XLOG_ID || self.main_data.len() != self.major.checkpoint_size {
            return None;
        }
        let shutdown = match self.info & RMGR_INFO_MASK {
            XLOG_CHECKPOINT_SHUTDOWN => true,
            XLOG_CHECKPOINT_ONLINE => false,
            _ => return None,
        };
        // `CheckPoint` offsets, the same in 13–19: redo 0, ThisTimeLineID 8, PrevTimeLineID 12.
        let data = Bytes(&self.main_data);
        Some(CheckpointRecord {
            shutdown,
            redo: Lsn(data.u64(0)?),
            timeline: data.u32(8)?,
            prev_timeline: data.u32(12)?,
        })
    }
}

/// Where a record body's parts are.
pub(super) struct Body {
    pub(super) blocks: Vec<BlockRef>,
    pub(super) main_data: std::ops::Range<usize>,
}

/// `DecodeXLogRecord`'s walk over the headers that follow the record header: block
/// references, origin, top-level xid, then the main data length; the payloads follow in the
/// same order (for each block its image, then its data; the main data last) and must add up
/// to exactly what is left. The error carries the byte offset in the record.
pub(super) fn decode_body(record: &[u8], major: &Major) -> Result<Body, (usize, BodyProblem)> {
    let mut cursor = Cursor {
        bytes: record,
        at: RECORD_HEADER,
    };
    let mut payload: u64 = 0;
    let mut main_data_len: u64 = 0;
    let mut blocks: Vec<BlockRef> = Vec::new();
    let left = |cursor: &Cursor<'_>| record.len().saturating_sub(cursor.at) as u64;
    while left(&cursor) > payload {
        let id_at = cursor.at;
        let id = cursor.u8()?;
        match id {
            block_id::DATA_SHORT => {
                main_data_len = u64::from(cursor.u8()?);
                payload += main_data_len;
                break;
            }
            block_id::DATA_LONG => {
                main_data_len = u64::from(cursor.u32()?);
                payload += main_data_len;
                break;
            }
            block_id::ORIGIN => {
                cursor.u16()?;
            }
            block_id::TOPLEVEL_XID if major.toplevel_xid => {
                cursor.u32()?;
            }
            id if id <= block_id::MAX_BLOCK => {
                if let Some(previous) = blocks.last().map(|b| b.id) {
                    if id <= previous {
                        return Err((id_at, BodyProblem::OutOfOrderBlockId { id, previous }));
                    }
                }
                let block = decode_block(&mut cursor, id, major, blocks.last())?;
                payload += u64::from(block.data_len) + u64::from(block.image_len.unwrap_or(0));
                blocks.push(block);
            }
            id => return Err((id_at, BodyProblem::InvalidBlockId(id))),
        }
    }
    let present = record.len().saturating_sub(cursor.at);
    if present as u64 != payload {
        return Err((
            cursor.at,
            BodyProblem::Length {
                announced: payload,
                present,
            },
        ));
    }
    // The main data is the last payload; `present == payload >= main_data_len`.
    let main_data_len = usize::try_from(main_data_len).unwrap_or(usize::MAX);
    Ok(Body {
        blocks,
        main_data: record.len().saturating_sub(main_data_len)..record.len(),
    })
}

/// One block reference's header, after its id.
fn decode_block(
    cursor: &mut Cursor<'_>,
    id: u8,
    major: &Major,
    previous: Option<&BlockRef>,
) -> Result<BlockRef, (usize, BodyProblem)> {
    let flags_at = cursor.at;
    let flags = cursor.u8()?;
    let fork = flags & bkpblock::FORK_MASK;
    // Stricter than PostgreSQL's reader, which leaves the fork to redo: no server of 13–19
    // writes a fork number past INIT_FORKNUM.
    if fork > bkpblock::MAX_FORK {
        return Err((flags_at, BodyProblem::Fork(fork)));
    }
    let data_len_at = cursor.at;
    let data_len = cursor.u16()?;
    let has_data = flags & bkpblock::HAS_DATA != 0;
    if has_data != (data_len > 0) {
        return Err((
            data_len_at,
            BodyProblem::DataFlag {
                has_data,
                len: data_len,
            },
        ));
    }
    let image_len = if flags & bkpblock::HAS_IMAGE != 0 {
        Some(decode_image(cursor, major)?)
    } else {
        None
    };
    let rel = if flags & bkpblock::SAME_REL != 0 {
        previous
            .map(|b| b.rel)
            .ok_or((flags_at, BodyProblem::SameRelFirst))?
    } else {
        [cursor.u32()?, cursor.u32()?, cursor.u32()?]
    };
    let block = cursor.u32()?;
    Ok(BlockRef {
        id,
        fork,
        rel,
        block,
        image_len,
        data_len,
    })
}

/// A full-page image header (`XLogRecordBlockImageHeader`, and the compressed hole length);
/// gives the image's length in the record.
fn decode_image(cursor: &mut Cursor<'_>, major: &Major) -> Result<u16, (usize, BodyProblem)> {
    // `bimg_info` bits: HAS_HOLE is 0x01 in 13–19; which bits mean compressed depends on the
    // major (`Major::compressed_image`).
    const HAS_HOLE: u8 = 0x01;
    let at = cursor.at;
    let len = cursor.u16()?;
    let hole_offset = cursor.u16()?;
    let info = cursor.u8()?;
    let compressed = info & major.compressed_image != 0;
    let has_hole = info & HAS_HOLE != 0;
    let hole_length = if !compressed {
        BLOCK_SIZE.saturating_sub(len)
    } else if has_hole {
        cursor.u16()?
    } else {
        0
    };
    let consistent = if has_hole {
        hole_offset > 0 && hole_length > 0 && len != BLOCK_SIZE
    } else {
        hole_offset == 0 && hole_length == 0
    } && !(compressed && len == BLOCK_SIZE)
        && (has_hole || compressed || len == BLOCK_SIZE);
    if !consistent {
        return Err((
            at,
            BodyProblem::Image {
                len,
                hole_offset,
                hole_length,
                info,
            },
        ));
    }
    Ok(len)
}

/// Sequential reads of a record body's headers.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], (usize, BodyProblem)> {
        let value = Bytes(self.bytes)
            .array(self.at)
            .ok_or((self.at, BodyProblem::Short))?;
        self.at += N;
        Ok(value)
    }

    fn u8(&mut self) -> Result<u8, (usize, BodyProblem)> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, (usize, BodyProblem)> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, (usize, BodyProblem)> {
        self.take().map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests;
