//! What pg_rewind printed, read back to tell whether it passed its point of no return:
//! `rewind::runner::RewindOutput::parse`. (pg_basebackup's output is only logged, never
//! parsed; `pgha` reads nothing else a tool prints.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::rewind::runner::RewindOutput;

fuzz_target!(|text: &str| {
    let out = RewindOutput::parse(text);
    assert!(out.lines.len() <= text.lines().count());
    for line in &out.lines {
        assert!(!line.is_empty() && line.trim() == line);
    }
    assert!(out.errors.len() <= out.lines.len());
    // A claim of progress comes from a line that says it.
    if out.done {
        assert!(text.contains("Done!"));
    }
    if out.need_to_copy_mb.is_some() {
        assert!(text.contains("need to copy "));
        assert!(out.passed_point_of_no_return());
    }
    // The same lines again give the same reading.
    assert_eq!(RewindOutput::parse(&out.lines.join("\n")), out);
});
