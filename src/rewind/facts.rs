//! Gathering facts: both sides of a rejoin as they stand (the target's pg_control and WAL,
//! the source over SQL or its stopped data directory), and what a rejoin would cost. Reads
//! only: [`decision`] judges what is gathered here, and `plan.rs` plans from it.

use std::collections::BTreeSet;
use std::path::Path;

use super::changes::{self, TargetChanges};
use super::decision::{self, CostEstimate, Decision, History, SourceFacts, TargetFacts};
use super::error::RewindError;
use super::filemap::{self, Rules};
use super::forensics::{self, PG_CONTROL_LIMIT};
use super::kept;
use super::listing::local_file_list;
use super::major::pg_rewind;
use super::marker;
use super::replay::{self, SourceWal, TargetWal};
use super::settings::{Fallback, RewindSettings, Source};
use super::source::{self, SourceSession};
use super::target;
use super::view::NativeView;
use crate::deadline::Deadline;
use crate::instance::control::{self, ControlFile};
use crate::instance::{wal, Instance};
use crate::lsn::Lsn;

/// A session on the source server; `None` for a stopped data directory.
fn connect(
    home: &Path,
    source: &Source,
    deadline: &Deadline,
) -> Result<Option<SourceSession>, RewindError> {
    match source {
        Source::Server(c) => Ok(Some(SourceSession::connect(&c.sql, Some(home), deadline)?)),
        Source::Pgdata(_) => Ok(None),
    }
}

/// Facts of both sides, and the session on the source they were asked on (`None` for a
/// stopped data directory). The source is reached and asked on a thread of its own (30–40 ms:
/// the TLS settings loaded, a connection, its questions) while the target's server
/// configuration says here whether it restores WAL (`postgres -C`, 20 ms).
pub(super) fn gather(
    instance: &Instance,
    source: &Source,
    settings: &RewindSettings,
    deadline: &Deadline,
) -> Result<(Option<SourceSession>, TargetFacts, SourceFacts), RewindError> {
    // The instance's caches are its thread's: the source is reached on the other.
    let home = &instance.user.home;
    let (asked, restore) = alongside(
        || {
            let session = connect(home, source, deadline)?;
            let facts = source_facts(source, session.as_ref(), deadline)?;
            Ok::<_, RewindError>((session, facts))
        },
        || match settings.restore_target_wal {
            Some(v) => v,
            None => target::has_restore_command(instance, deadline),
        },
    );
    let (session, source_facts) = asked?;
    let control = match instance.control() {
        Ok(control) => control,
        Err(e) => control_before_unfinished_rewind(instance, settings).ok_or(e)?,
    };
    let (_, target_facts) = target::facts_from(instance, control, restore)?;
    Ok((session, target_facts, source_facts))
}

fn source_facts(
    source: &Source,
    session: Option<&SourceSession>,
    deadline: &Deadline,
) -> Result<SourceFacts, RewindError> {
    match (source, session) {
        (_, Some(s)) => s.facts(deadline),
        (Source::Pgdata(dir), None) => source::local_facts(dir),
        (Source::Server(_), None) => Err(RewindError::Source {
            source_conninfo: String::new(),
            what: "no connection".into(),
        }),
    }
}

/// The target's pg_control as it was before an unfinished pg_rewind, from the run folder its
/// marker names (only a kept folder of `rewind_keep_dir` is believed). 13's pg_rewind
/// rewrites pg_control like any other file, so one killed mid-copy can leave it empty; the
/// marker has the directory re-cloned whatever it holds, and the decision is made on what
/// the directory was.
fn control_before_unfinished_rewind(
    instance: &Instance,
    settings: &RewindSettings,
) -> Option<ControlFile> {
    let datadir = instance.datadir();
    let saved_in = marker::read(datadir)?.saved_in?;
    let keep_dir = forensics::keep_dir(settings.keep_dir.as_deref(), datadir);
    let run = kept::open_run(&keep_dir, &saved_in).ok()?;
    let bytes = run.read("pg_control", PG_CONTROL_LIMIT).ok()?;
    let control = control::decode(&bytes).ok()?;
    log::warn!(
        "{}: pg_control is unreadable after an unfinished pg_rewind; using the copy kept in {}",
        datadir.display(),
        run.path().display()
    );
    Some(control)
}

/// What a rewind and a re-clone would copy, when a rewind is decided and the source is a
/// server to ask: the WAL counted is what the pg_rewind of the instance's major copies.
pub(super) fn estimate_for(
    instance: &Instance,
    decision: &Decision,
    target: &TargetFacts,
    source: &SourceFacts,
    session: Option<&SourceSession>,
    deadline: &Deadline,
) -> Option<CostEstimate> {
    match (decision, session) {
        (
            Decision::Rewind {
                fork_point,
                target_end,
                ..
            },
            Some(s),
        ) => s.estimate(
            *fork_point,
            source,
            *target_end,
            target.wal_segments.segment_size,
            pg_rewind(instance.major).wal_copied,
            deadline,
        ),
        _ => None,
    }
}

/// What a native rewind would do, when a rewind is decided: the target's changes past the
/// last common checkpoint (read from its WAL with pg_rewind's rules) and the file map over
/// both listings. `Err` says why it is not known (the native engine would hand over to
/// pg_rewind there).
// The target's three facts, the source's three, the changes read ahead and the deadline.
#[allow(clippy::too_many_arguments)]
pub(super) fn native_view(
    instance: &Instance,
    decision: &Decision,
    target: &TargetFacts,
    source: &Source,
    session: Option<&SourceSession>,
    source_facts: &SourceFacts,
    ahead: Option<ReadAhead>,
    deadline: &Deadline,
) -> Option<Result<NativeView, String>> {
    let Decision::Rewind {
        fork_point,
        target_end,
        ..
    } = decision
    else {
        return None;
    };
    let segment_size = u32::try_from(target.wal_segments.segment_size).ok()?;
    let datadir = instance.datadir();
    let owner = instance.user.owner();
    let own = control::read(datadir)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            filemap::native_geometry(c.block_size, c.relseg_size)?;
            Ok(c.checkpoint_redo)
        });
    let own_redo = match own {
        Ok(redo) => redo,
        Err(why) => return Some(Err(why)),
    };
    let source_wal = source_wal(source, session);
    let read_source = || {
        let wal = source_wal.as_ref();
        replay::read_source(
            segment_size,
            instance.major,
            *fork_point,
            wal,
            source_facts,
            deadline,
        )
    };
    let (read, source_read) = match ahead.filter(|a| a.fork == *fork_point && a.end == *target_end)
    {
        Some(ahead) => (Ok(ahead.changes), ahead.source),
        None => {
            let (pg_wal, timeline, major) =
                (datadir.join("pg_wal"), target.timeline(), instance.major);
            let (fork, end) = (*fork_point, *target_end);
            alongside(
                || changes::read(&pg_wal, timeline, fork, end, segment_size, major, deadline),
                read_source,
            )
        }
    };
    let changes = match read {
        Ok(changes) => changes,
        Err(e) => return Some(Err(e.to_string())),
    };
    let target_wal = TargetWal {
        pg_wal: &datadir.join("pg_wal"),
        timeline: target.timeline(),
        segment_size,
        major: instance.major,
        own_redo,
    };
    let replay = match replay::choose(&target_wal, &changes, source_read, deadline) {
        Ok(replay) => replay,
        Err(e) => return Some(Err(e)),
    };
    let source_list = match (source, session) {
        (_, Some(s)) => s.file_list(deadline).map_err(|e| e.to_string()),
        (Source::Pgdata(dir), None) => local_file_list(dir, owner).map_err(|e| e.to_string()),
        (Source::Server(_), None) => Err("no connection to the source".into()),
    };
    let target_list = local_file_list(datadir, owner).map_err(|e| e.to_string());
    // The source's end of WAL: the later of the two read (a checkpoint may have come
    // between).
    let read_end = replay.from_source.as_ref().map(|f| f.source_end);
    let source_end = (!source_facts.in_recovery)
        .then_some(source_facts.insert_lsn.max(read_end.unwrap_or_default()));
    // Replay from the source's checkpoint reads none of its older WAL.
    let replay_from = replay.from_source.as_ref().map(|_| replay.start.redo);
    let mut rules = filemap_rules(
        instance,
        target,
        &changes,
        *fork_point,
        replay_from,
        source_end,
    );
    // A running source's: a stopped one's end is its checkpoint record's start.
    if session.is_some() {
        rules.wal_copy_end = source_end.and_then(|end| wal_copy_end(end, segment_size));
    }
    let blocks = replay.blocks(&changes);
    let map = source_list
        .and_then(|s| filemap::build(s, target_list?, &blocks, &rules).map_err(|e| e.to_string()));
    Some(map.map(|map| NativeView {
        fork: *fork_point,
        changes,
        map,
        replay,
    }))
}

/// The facts of this pair the file map's rules need: the tablespace directory of the
/// target's major and catalog, the WAL from the last common checkpoint to the fork (kept
/// for recovery), and the WAL the native engine copies: from the fork's segment (as 19's
/// pg_rewind does), or from the segment of `replay_from` (the redo point of the source's
/// checkpoint, where replay starts), to the segment of the source's end (`source_end`).
fn filemap_rules(
    instance: &Instance,
    target: &TargetFacts,
    changes: &TargetChanges,
    fork: Lsn,
    replay_from: Option<Lsn>,
    source_end: Option<Lsn>,
) -> Rules {
    let segment_size = target.wal_segments.segment_size.max(1);
    let keep_wal = wal_for_recovery(&target.history, changes.checkpoint_redo, fork, segment_size);
    // The log and segment part of a segment's name, the part these rules compare.
    let segment = |segno: u64| {
        wal::segno_file_name(0, segno, segment_size)
            .get(8..)
            .map(str::to_owned)
    };
    // The segments past the one holding the source's end are files it recycled ahead:
    // their bytes are old WAL, which recovery stops at. `source_end` is a primary's insert
    // position, or a stopped one's shutdown checkpoint, whose record ends within a page;
    // `None` for a standby, whose received WAL may be ahead of what it replayed.
    let skip_wal_after = source_end.filter(|end| end.0 > 0).and_then(|end| {
        segment(end.0.saturating_add(u64::from(wal::WAL_PAGE_SIZE)) / segment_size)
    });
    Rules {
        tablespace_dir: format!("PG_{}_{}", instance.major, target.catalog_version),
        keep_wal,
        // 19's pg_rewind rule, on every major: the segments before the fork's are the same
        // WAL on both sides (the source streamed them from the target), and replay reads
        // the target's own. Before 19, pg_rewind copies them all (944 of 1005 MB in the
        // benchmark).
        skip_wal_before: segment(fork.0 / segment_size),
        skip_wal_after,
        skip_source_wal_before: replay_from.and_then(|redo| segment(redo.0 / segment_size)),
        wal_copy_end: None,
    }
}

/// The segment (its name past the timeline) that holds `end`, a running source's end of WAL,
/// and its bytes to the end of the page after the one that holds it
/// ([`Rules::wal_copy_end`]).
fn wal_copy_end(end: Lsn, segment_size: u32) -> Option<(String, u64)> {
    let (size, page) = (u64::from(segment_size), u64::from(wal::WAL_PAGE_SIZE));
    let name = wal::segno_file_name(0, end.0 / size, size)
        .get(8..)?
        .to_owned();
    let len = ((end.0 % size) / page + 2) * page;
    Some((name, len.min(size)))
}

/// The target's WAL files that recovery after a rewind reads: from the last common
/// checkpoint's redo point, where replay starts (a spread checkpoint's is often several
/// segments before its record), to the fork's, each named by every timeline of the target's
/// `history` that wrote in it (a segment where the target switched timelines has a file of
/// each).
fn wal_for_recovery(
    history: &History,
    redo: Lsn,
    fork: Lsn,
    segment_size: u64,
) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for segno in redo.0 / segment_size..=fork.0 / segment_size {
        let (first, next) = (segno * segment_size, (segno + 1) * segment_size);
        for entry in history.entries() {
            if entry.begin.0 < next && entry.end.is_none_or(|end| end.0 > first) {
                let name = wal::segno_file_name(entry.tli, segno, segment_size);
                files.insert(format!("pg_wal/{name}"));
            }
        }
    }
    files
}

/// Where the source's WAL is read: over the `session`, or in a stopped source's `pg_wal`.
pub(super) fn source_wal<'a>(
    source: &'a Source,
    session: Option<&'a SourceSession>,
) -> Option<SourceWal<'a>> {
    match (source, session) {
        (_, Some(s)) => Some(SourceWal::Server(s)),
        (Source::Pgdata(dir), None) => Some(SourceWal::Pgdata(dir)),
        (Source::Server(_), None) => None,
    }
}

/// Runs `on_a_thread` on a thread of its own while `here` runs here: the target's WAL read
/// from its disk while the source's is read over SQL (0.1–0.2 s each at 1 GB in the
/// benchmark), or the source reached while the target's server is asked. Both run here,
/// one after the other, when the system refuses a thread.
fn alongside<T: Send, S>(on_a_thread: impl Fn() -> T + Sync, here: impl FnOnce() -> S) -> (T, S) {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new().spawn_scoped(scope, &on_a_thread);
        let ours = here();
        let theirs = match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => on_a_thread(),
        };
        (theirs, ours)
    })
}

/// The target's changes, read ahead of the native view for the fork and end they were read
/// to (in the pass that found where a crashed target's WAL ends), with the source's WAL
/// read meanwhile.
pub(super) struct ReadAhead {
    fork: Lsn,
    end: Lsn,
    changes: TargetChanges,
    source: replay::SourceRead,
}

/// A target that stopped uncleanly as a primary on the timeline it shares with the source,
/// as crash recovery would leave it: its WAL read natively from the last checkpoint before
/// the fork to where recovery would stop too, the decision on that, and the changes read on
/// the way (for the native engine, which is what runs on such a target). `None` when that
/// is not certain: no checkpoint before the fork or a record no rule covers (the native
/// engine could not run), a stop that is not an end of WAL
/// ([`wal::end_of_wal_for_recovery`]), an end before pg_control's last checkpoint record
/// (unreadable, or read past), the target on a later timeline of its own, the deadline's
/// share spent.
pub(super) fn as_recovered(
    instance: &Instance,
    target: &TargetFacts,
    source: &SourceFacts,
    source_wal: Option<&SourceWal>,
    deadline: &Deadline,
) -> Option<(TargetFacts, Decision, ReadAhead)> {
    let fork = decision::common_ancestor(&target.history, &source.history)?;
    let at = fork.at.filter(|_| fork.target_on_common)?;
    let segment_size = u32::try_from(target.wal_segments.segment_size).ok()?;
    let pg_wal = instance.datadir().join("pg_wal");
    let budget = deadline.at_most(deadline.remaining() / 4);
    let (timeline, major) = (target.timeline(), instance.major);
    let (read, source_read) = alongside(
        || changes::read_to_recovery_end(&pg_wal, timeline, at, segment_size, major, &budget),
        || {
            replay::read_source(
                segment_size,
                instance.major,
                at,
                source_wal,
                source,
                deadline,
            )
        },
    );
    let (changes, end) = read
        .map_err(|e| log::debug!("the target's WAL, read to its end: {e}"))
        .ok()??;
    let checkpoint_end = target.checkpoint_end?;
    if end < checkpoint_end {
        return None;
    }
    let recovered = target.as_if_recovered(end);
    let decision = decision::decide(&recovered, source);
    let ahead = ReadAhead {
        fork: at,
        end,
        changes,
        source: source_read,
    };
    Some((recovered, decision, ahead))
}

/// Before the crash recovery of a target that stopped uncleanly as a primary: when its WAL,
/// read natively from the fork point on, shows that it went past the fork and a re-clone
/// will cost less than a rewind, the facts and decision crash recovery would lead to.
/// `None` whenever that is not certain: the recovery then runs and the decision is made
/// again on what it leaves.
pub(super) fn reclone_preview(
    instance: &Instance,
    target: &TargetFacts,
    source: &SourceFacts,
    session: Option<&SourceSession>,
    settings: &RewindSettings,
    fallback: Fallback,
    deadline: &Deadline,
) -> Option<(TargetFacts, Decision)> {
    if fallback != Fallback::Reclone || !settings.automatic {
        return None;
    }
    let fork = decision::common_ancestor(&target.history, &source.history)?.at?;
    let segment_size = u32::try_from(target.wal_segments.segment_size).ok()?;
    let pg_wal = instance.datadir().join("pg_wal");
    let session = session?;
    let reclone_preferred = |target_end| {
        session
            .estimate(
                fork,
                source,
                target_end,
                target.wal_segments.segment_size,
                pg_rewind(instance.major).wal_copied,
                deadline,
            )
            .is_some_and(|e| e.prefers_reclone())
    };
    let end = if reclone_preferred(fork) {
        // Cheaper even if the target wrote nothing past the fork: one record there proves
        // it did, and every file it has bounds where its WAL ends (what is kept).
        wal::read_record(
            &pg_wal,
            target.timeline(),
            wal::past_page_header(fork, segment_size),
            segment_size,
        )
        .ok()?;
        target.wal_segments.end_of_files(target.timeline())?
    } else if reclone_preferred(target.wal_segments.end_of_files(target.timeline())?) {
        // It depends on how far the target's WAL goes: read it (about 0.2 s per 100 MB).
        let budget = deadline.at_most(deadline.remaining() / 4);
        wal::end_of_valid_wal(&pg_wal, target.timeline(), fork, segment_size, &budget)?
    } else {
        // A rewind is cheaper even if the target's WAL filled every file it has.
        return None;
    };
    let recovered = target.as_if_recovered(end);
    let preview = decision::decide(&recovered, source);
    let estimate = estimate_for(
        instance,
        &preview,
        &recovered,
        source,
        Some(session),
        deadline,
    )?;
    (matches!(preview, Decision::Rewind { .. }) && estimate.prefers_reclone())
        .then_some((recovered, preview))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_wal_is_read_on_a_thread_of_its_own_while_the_sources_is_read_here() {
        use std::sync::mpsc;
        use std::time::Duration;
        let (started, seen) = mpsc::channel();
        let started = std::sync::Mutex::new(started);
        let here = std::thread::current().id();
        let (target, source) = alongside(
            || {
                started.lock().unwrap().send(()).unwrap();
                std::thread::current().id()
            },
            // Returns only once the target's read has begun: both run at once.
            || seen.recv_timeout(Duration::from_secs(10)).is_ok(),
        );
        assert_ne!(target, here);
        assert!(
            source,
            "the target's read did not run while the source's did"
        );
    }

    const SEGMENT: u64 = 16 << 20;

    #[test]
    fn a_sources_last_segment_is_copied_to_the_end_of_the_page_after_its_end_of_wal() {
        let page = u64::from(wal::WAL_PAGE_SIZE);
        let at = |segno: u64, offset: u64| Lsn(segno * SEGMENT + offset);
        let table = [
            (at(0x72, 0x4C10), "0000000000000072", 4 * page),
            // At a page's first byte: that page and the next.
            (at(0x72, 2 * page), "0000000000000072", 4 * page),
            // Right after a segment switch: its first two pages.
            (at(0x73, 0), "0000000000000073", 2 * page),
            // In the last page: the whole segment.
            (at(0x72, SEGMENT - 8), "0000000000000072", SEGMENT),
        ];
        for (end, segment, len) in table {
            let found = wal_copy_end(end, SEGMENT as u32);
            assert_eq!(found, Some((segment.to_owned(), len)), "{end}");
        }
    }

    /// Found in review: the WAL kept for recovery began at the checkpoint record's segment,
    /// so a target-only segment between the redo point and the record (a spread checkpoint)
    /// was removed, and the rewound node waited for WAL it no longer had.
    #[test]
    fn wal_from_the_redo_point_is_kept_not_only_from_the_checkpoint_record() {
        let timeline_1 = History::parse(1, "").unwrap();
        let kept = |redo: u64, fork: u64| -> Vec<String> {
            wal_for_recovery(&timeline_1, Lsn(redo), Lsn(fork), SEGMENT)
                .into_iter()
                .collect()
        };
        let name = |segno: u64| format!("pg_wal/{}", wal::segno_file_name(1, segno, SEGMENT));
        // Redo in segment 3, fork in segment 7: 3 to 7.
        assert_eq!(
            kept(3 * SEGMENT + 0x28, 7 * SEGMENT + 0x100),
            (3..=7).map(name).collect::<Vec<_>>()
        );
        // Redo and fork in one segment: that one.
        assert_eq!(kept(5 * SEGMENT + 8, 5 * SEGMENT + 0x2000), vec![name(5)]);
        // A fork on a segment boundary keeps the segment it begins.
        assert_eq!(kept(2 * SEGMENT, 3 * SEGMENT), vec![name(2), name(3)]);
    }

    /// Found in review: every file was named with the target's latest timeline, so the
    /// files of the timeline it left (before its own switch) were not kept.
    #[test]
    fn wal_kept_for_recovery_is_named_by_the_timelines_that_wrote_it() {
        // Timeline 2 began at 0/5000100, in segment 5.
        let history = History::parse(2, "1\t0/5000100\tno recovery target specified\n").unwrap();
        let kept: Vec<String> = wal_for_recovery(
            &history,
            Lsn(4 * SEGMENT + 0x28),
            Lsn(6 * SEGMENT + 8),
            SEGMENT,
        )
        .into_iter()
        .collect();
        let name = |tli, segno| format!("pg_wal/{}", wal::segno_file_name(tli, segno, SEGMENT));
        let mut expected = vec![name(1, 4), name(1, 5), name(2, 5), name(2, 6)];
        expected.sort();
        assert_eq!(kept, expected);
    }
}
