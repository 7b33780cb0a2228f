//! Timeline history files (`pg_wal/N.history`, from this node's pg_wal or the source
//! server): `rewind::decision::History::parse`, and what the rewind decision does with
//! two parsed histories (`common_ancestor`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::rewind::decision::{common_ancestor, History};
use pgha_fuzz::parts;

/// One history file: its timeline on the first line, then its text.
fn history(part: &str) -> Option<(u32, &str)> {
    let (tli, text) = part.split_once('\n')?;
    Some((tli.trim().parse().ok()?, text))
}

/// The history written back as a server writes it, one line per ancestor.
fn render(history: &History) -> String {
    history
        .entries()
        .iter()
        .filter_map(|e| {
            Some(format!(
                "{}\t{}\tno recovery target specified\n",
                e.tli, e.end?
            ))
        })
        .collect()
}

fn check(tli: u32, text: &str) -> Option<History> {
    let history = match History::parse(tli, text) {
        Ok(history) => history,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return None;
        }
    };
    let entries = history.entries();
    assert_eq!(history.timeline(), tli);
    let last = entries.last().expect("the timeline itself");
    assert_eq!((last.tli, last.end), (tli, None));
    for pair in entries.windows(2) {
        assert!(pair[0].tli < pair[1].tli, "{entries:?}");
        assert_eq!(pair[0].end, Some(pair[1].begin), "{entries:?}");
        assert!(pair[0].begin <= pair[1].begin);
        assert_eq!(history.switchpoint_of(pair[0].tli), pair[0].end);
    }
    assert_eq!(History::parse(tli, &render(&history)), Ok(history.clone()));
    let fork = common_ancestor(&history, &history).expect("a history shares itself");
    assert_eq!(fork.tli, tli);
    assert!(fork.target_on_common);
    Some(history)
}

// Two history files, `\0`-separated (the target's and the source's).
fuzz_target!(|text: &str| {
    let [one, two] = parts(text).map(|part| history(part).and_then(|(tli, h)| check(tli, h)));
    if let (Some(one), Some(two)) = (one, two) {
        if let Some(fork) = common_ancestor(&one, &two) {
            assert!(one.entries().iter().any(|e| e.tli == fork.tli));
            assert!(two.entries().iter().any(|e| e.tli == fork.tli));
        }
    }
});
