//! `start_opts` (a parameter that ends up in a `/bin/sh` command line through `pg_ctl -o`):
//! `ocf::params::StartOpts`. What is accepted holds no character a shell interprets, and
//! the words given to the shell read back as the same words.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::ocf::params::StartOpts;

/// What `/bin/sh` interprets inside single quotes: only the closing quote. Outside them
/// (between words), these, and control characters.
const SHELL: &str = "`$\\\";&|<>(){}*?[]~!#\n";

fuzz_target!(|text: &str| {
    let Ok(opts) = StartOpts::parse(text) else {
        return;
    };
    assert!(
        !text.chars().any(|c| SHELL.contains(c) || c.is_control()),
        "{text:?}"
    );
    for word in opts.words() {
        assert!(!word.contains('\''), "{word:?}");
    }
    let shell = opts.for_shell();
    assert_eq!(StartOpts::parse(&shell).as_ref(), Ok(&opts), "{shell:?}");
    assert_eq!(opts.is_empty(), opts.words().is_empty());
});
