//! Pages with what a server writes without WAL masked, as PostgreSQL's own consistency
//! checks of replay mask them (`wal_consistency_checking`: `bufmask.c`, `heap_mask`,
//! `btree_mask`): the page LSN and checksum, the page's hint flags and prune hint, the
//! unused space, tuples' commit hint bits and command ids, and a B-tree leaf's line pointer
//! flags (LP_DEAD), garbage flag and cycle id. A page the native engine took from the
//! source's disk, where pg_rewind's copy got it by replay, may differ only there.

const BLOCK: usize = 8192;
const PAGE_HEADER: usize = 24;
/// `sizeof(BTPageOpaqueData)`: a B-tree page's special space.
const BTREE_SPECIAL: usize = 16;
const BTP_LEAF: u16 = 1 << 0;
const BTP_SPLIT_END: u16 = 1 << 5;
const BTP_HAS_GARBAGE: u16 = 1 << 6;
/// `HEAP_XACT_MASK`, and the two bits that together say "frozen".
const HEAP_XACT_MASK: u16 = 0xFFF0;
const HEAP_XMIN_FROZEN: u16 = 0x0300;
const HEAP_XMAX_HINTS: u16 = 0x0C00;
const LP_NORMAL: u32 = 1;

fn u16_at(page: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([page[at], page[at + 1]])
}

fn set_u16(page: &mut [u8], at: usize, value: u16) {
    page[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Whether two 8 kB pages are equal once masked; `None` when either is not a page these
/// masks know (then only equal bytes count).
pub fn equal_masked(a: &[u8], b: &[u8]) -> bool {
    match (masked(a), masked(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

fn masked(page: &[u8]) -> Option<Vec<u8>> {
    if page.len() != BLOCK {
        return None;
    }
    let mut page = page.to_vec();
    let (lower, upper, special) = (
        usize::from(u16_at(&page, 12)),
        usize::from(u16_at(&page, 14)),
        usize::from(u16_at(&page, 16)),
    );
    if !(PAGE_HEADER <= lower && lower <= upper && upper <= special && special <= BLOCK) {
        return None;
    }
    page[0..10].fill(0); // pd_lsn, pd_checksum
    let flags = u16_at(&page, 10) & !0x7; // PD_HAS_FREE_LINES, PD_PAGE_FULL, PD_ALL_VISIBLE
    set_u16(&mut page, 10, flags);
    page[20..24].fill(0); // pd_prune_xid
    page[lower..upper].fill(0);
    let items = (lower - PAGE_HEADER) / 4;
    match BLOCK - special {
        0 => mask_heap_tuples(&mut page, items),
        BTREE_SPECIAL => mask_btree(&mut page, items, special),
        _ => return None,
    }
    Some(page)
}

/// A line pointer: offset, flags, length.
fn item(page: &[u8], index: usize) -> (usize, u32, usize) {
    let at = PAGE_HEADER + 4 * index;
    let word = u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
    (
        (word & 0x7FFF) as usize,
        (word >> 15) & 0x3,
        (word >> 17) as usize,
    )
}

fn mask_heap_tuples(page: &mut [u8], items: usize) {
    for index in 0..items {
        let (offset, flags, len) = item(page, index);
        if flags != LP_NORMAL || offset + 23 > BLOCK || len < 23 {
            continue;
        }
        let infomask = u16_at(page, offset + 20);
        let kept = if infomask & HEAP_XMIN_FROZEN == HEAP_XMIN_FROZEN {
            infomask & !HEAP_XMAX_HINTS
        } else {
            infomask & !HEAP_XACT_MASK
        };
        set_u16(page, offset + 20, kept);
        page[offset + 8..offset + 12].fill(0); // t_cid
        let padded = (offset + len).next_multiple_of(8).min(BLOCK);
        page[offset + len..padded].fill(0);
    }
}

fn mask_btree(page: &mut [u8], items: usize, special: usize) {
    let flags_at = special + 12;
    let flags = u16_at(page, flags_at);
    set_u16(page, flags_at, flags & !(BTP_SPLIT_END | BTP_HAS_GARBAGE));
    set_u16(page, special + 14, 0); // btpo_cycleid
    if flags & BTP_LEAF != 0 {
        for index in 0..items {
            let at = PAGE_HEADER + 4 * index;
            let word = u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
            // LP_DEAD (3) set by index scans without WAL: counted as LP_NORMAL (1).
            let word = if (word >> 15) & 0x3 == 3 {
                word & !(0x2 << 15)
            } else {
                word
            };
            page[at..at + 4].copy_from_slice(&word.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap_page() -> Vec<u8> {
        let mut page = vec![0u8; BLOCK];
        set_u16(&mut page, 12, 28); // one line pointer
        set_u16(&mut page, 14, 8192 - 32);
        set_u16(&mut page, 16, 8192);
        let lp: u32 = (8192 - 32) | (LP_NORMAL << 15) | (30 << 17);
        page[24..28].copy_from_slice(&lp.to_le_bytes());
        page[8192 - 32 + 24..8192 - 32 + 30].copy_from_slice(b"tuple!");
        page
    }

    #[test]
    fn hint_bits_are_masked_and_data_is_not() {
        let a = heap_page();
        let mut hinted = a.clone();
        hinted[0] = 7; // page LSN
        set_u16(&mut hinted, 8192 - 32 + 20, 0x0100); // HEAP_XMIN_COMMITTED
        hinted[20] = 9; // pd_prune_xid
        assert!(equal_masked(&a, &hinted));
        let mut changed = a.clone();
        changed[8192 - 32 + 24] = b'T';
        assert!(!equal_masked(&a, &changed));
    }
}
