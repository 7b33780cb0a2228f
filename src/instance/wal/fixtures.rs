//! Real WAL of every major 13–19 (`tests/fixtures/wal/pgN`, made by `make-fixtures.sh` there
//! with that major's binaries) for the tests of every part: the pages, rebuilt into sparse
//! 1 MiB segment files in a temporary `pg_wal` (the fixtures are single pages); the records
//! they hold, with `pg_waldump`'s and `pg_controldata`'s view of the same bytes; and ways to
//! damage them. The functions without a major read PostgreSQL 15's, which the tests of
//! hand-damaged WAL use.

#![allow(clippy::indexing_slicing)] // tests index their own buffers

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::lsn::{Lsn, TimelineId};

use super::major::{Major, MAJORS};
use super::{read_record, DecodeError, WalError, WalRecord};

pub(super) const MIB: u32 = 1 << 20;
pub(super) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wal/pg15");

/// The directory of one major's fixtures.
fn dir_of(major: u32) -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wal/pg").to_owned() + &major.to_string()
}

/// The pages of PostgreSQL 15's fixtures: (segment file name, offset) -> 8 KiB.
pub(super) fn fixture_pages() -> BTreeMap<(String, u64), Vec<u8>> {
    fixture_pages_of(15)
}

/// The pages of one major's fixtures.
pub(super) fn fixture_pages_of(major: u32) -> BTreeMap<(String, u64), Vec<u8>> {
    let dir = dir_of(major);
    let mut pages = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".page") else {
            continue;
        };
        let (segment, offset) = stem.split_once('-').unwrap();
        let offset = u64::from_str_radix(offset, 16).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 8192, "{name}");
        pages.insert((segment.to_owned(), offset), bytes);
    }
    assert!(!pages.is_empty(), "no fixture pages in {dir}");
    pages
}

/// A temporary `pg_wal` of sparse 1 MiB segments holding PostgreSQL 15's fixture pages.
pub(super) fn pg_wal() -> tempfile::TempDir {
    pg_wal_of(15)
}

/// A temporary `pg_wal` of sparse 1 MiB segments holding one major's fixture pages.
pub(super) fn pg_wal_of(major: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for ((segment, offset), bytes) in fixture_pages_of(major) {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.path().join(&segment))
            .unwrap();
        file.set_len(u64::from(MIB)).unwrap();
        file.write_all_at(&bytes, offset).unwrap();
    }
    dir
}

/// Changes bytes of a segment file in `dir` at `offset`.
pub(super) fn patch(dir: &Path, segment: &str, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new()
        .write(true)
        .open(dir.join(segment))
        .unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

pub(super) fn read_byte(dir: &Path, segment: &str, offset: u64) -> u8 {
    let mut byte = [0];
    File::open(dir.join(segment))
        .unwrap()
        .read_exact_at(&mut byte, offset)
        .unwrap();
    byte[0]
}

pub(super) struct Listed {
    pub(super) name: String,
    pub(super) timeline: TimelineId,
    pub(super) lsn: Lsn,
    pub(super) waldump: String,
}

/// One major's records.txt with the matching lines of waldump.txt.
pub(super) fn listed_of(major: u32) -> Vec<Listed> {
    let dir = dir_of(major);
    let records = std::fs::read_to_string(format!("{dir}/records.txt")).unwrap();
    let waldump = std::fs::read_to_string(format!("{dir}/waldump.txt")).unwrap();
    let listed: Vec<Listed> = records
        .lines()
        .zip(waldump.lines())
        .map(|(record, line)| {
            let fields: Vec<&str> = record.split_whitespace().collect();
            Listed {
                name: fields[0].to_owned(),
                timeline: fields[1].parse().unwrap(),
                lsn: fields[2].parse().unwrap(),
                waldump: line.to_owned(),
            }
        })
        .collect();
    assert_eq!(listed.len(), records.lines().count());
    assert_eq!(listed.len(), waldump.lines().count());
    listed
}

pub(super) fn listed_lsn(name: &str) -> Lsn {
    listed_lsn_of(15, name)
}

pub(super) fn listed_lsn_of(major: u32, name: &str) -> Lsn {
    listed_of(major)
        .into_iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no {name} in PostgreSQL {major}'s records.txt"))
        .lsn
}

/// The text between `before` and the next `after` in `line`.
pub(super) fn between<'a>(line: &'a str, before: &str, after: &str) -> &'a str {
    let start = line
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} in {line}"))
        + before.len();
    let rest = &line[start..];
    &rest[..rest.find(after).unwrap_or(rest.len())]
}

pub(super) fn controldata(name: &str, field: &str) -> String {
    controldata_of(15, name, field)
}

/// A field of one major's `controldata-NAME.txt`, as `pg_controldata` printed it.
pub(super) fn controldata_of(major: u32, name: &str, field: &str) -> String {
    let text =
        std::fs::read_to_string(format!("{}/controldata-{name}.txt", dir_of(major))).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in controldata-{name}.txt"))
        .trim()
        .to_owned()
}

pub(super) fn read(dir: &Path, timeline: TimelineId, lsn: Lsn) -> Result<WalRecord, WalError> {
    read_record(dir, timeline, lsn, MIB)
}

pub(super) fn invalid(result: Result<WalRecord, WalError>) -> (String, u64, DecodeError) {
    match result {
        Err(WalError::Invalid {
            file,
            offset,
            source,
        }) => (
            file.file_name().unwrap().to_str().unwrap().to_owned(),
            offset,
            source,
        ),
        Err(other) => panic!("expected an invalid-WAL error, got {other}"),
        Ok(record) => panic!(
            "expected an invalid-WAL error, read the record at {}",
            record.lsn
        ),
    }
}

/// The row of a major, for the checks that depend on it.
pub(super) fn pg(version: u32) -> &'static Major {
    MAJORS
        .iter()
        .find(|major| major.version == version)
        .unwrap_or_else(|| panic!("no row for PostgreSQL {version}"))
}
