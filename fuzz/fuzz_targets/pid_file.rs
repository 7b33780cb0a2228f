//! Small files the postgres account writes and the agent reads to tell whether its server
//! runs: `postmaster.pid` (`instance::postmaster`), `/proc/PID/stat` (its `comm` is the
//! process's own to set), and `PG_VERSION` (`instance::parse_major`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::instance::parse_major;
use pgha::instance::postmaster::{parse_pid_file, parse_stat, pid_file_start, pid_file_status};

fuzz_target!(|text: &str| {
    if let Some(pid) = parse_pid_file(text) {
        assert!(pid > 0);
    }
    let _ = pid_file_start(text);
    if let Some(status) = pid_file_status(text) {
        assert_eq!(status, status.trim());
    }
    if let Some((comm, _state)) = parse_stat(text) {
        assert!(text.contains(&format!("({comm})")));
    }
    let _ = parse_major(text);
});
