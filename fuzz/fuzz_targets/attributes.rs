//! Text other nodes publish through Pacemaker's node attributes (`lsn_location`: `TL#LSN`;
//! `timelines-<rsc>`: `TL:X/Y …`), WAL positions in PostgreSQL's text form, and segment file
//! names in `pg_wal`: `election::{Position, ancestors_from_attribute}`, `lsn::Lsn`,
//! `instance::wal::parse_segment_name`. Each reads back what it writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::election::{ancestors_from_attribute, ancestors_to_attribute, Position};
use pgha::lsn::Lsn;
use pgha::instance::wal::{parse_segment_name, segno_file_name};

fuzz_target!(|text: &str| {
    if let Some(position) = Position::from_attribute(text) {
        assert_eq!(
            Position::from_attribute(&position.to_attribute()),
            Some(position)
        );
    }
    if let Some(ancestors) = ancestors_from_attribute(text) {
        let again = ancestors_from_attribute(&ancestors_to_attribute(&ancestors));
        assert_eq!(again.as_ref(), Some(&ancestors));
    }
    if let Ok(lsn) = text.parse::<Lsn>() {
        assert_eq!(lsn.to_string().parse::<Lsn>(), Ok(lsn));
    }
    for size in [1u64 << 20, 16 << 20, 1 << 30] {
        // Only a name whose low part is below the segments per 4 GiB is one the server
        // writes; the parser, like the server's `XLogFromFileName`, reads others too.
        let canonical = text
            .get(16..)
            .and_then(|lo| u64::from_str_radix(lo, 16).ok())
            .is_some_and(|lo| lo < 0x1_0000_0000 / size);
        if let Some((tli, segno)) = parse_segment_name(text, size).filter(|_| canonical) {
            assert!(
                segno_file_name(tli, segno, size).eq_ignore_ascii_case(text),
                "{text:?}"
            );
        }
    }
});
