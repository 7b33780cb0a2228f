//! The OCF environment Pacemaker (or a hand run) gives the agent: `ocf::env::OcfEnv`,
//! every parameter (`ocf::params::Params::from_lookup`), from `NAME=value` lines, and the operation's deadline built from the timeout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::deadline::Deadline;
use pgha::ocf::env::{params_from_lookup, OcfEnv};
use pgha::ocf::params::StartOpts;
use pgha_fuzz::env_lookup;

fuzz_target!(|env: &str| {
    if let Ok(ocf) = OcfEnv::from_lookup(env_lookup(env)) {
        assert!(!ocf.instance.trim().is_empty());
        assert!(!ocf.timeout.is_zero());
        let deadline = Deadline::for_operation(ocf.timeout);
        assert!(deadline.remaining() <= ocf.timeout);
        let _ = ocf.is_probe();
    }

    match params_from_lookup(env_lookup(env)) {
        Ok(params) => {
            assert!(params.pgdata.is_absolute() && params.datadir.is_absolute());
            assert!(params.bindir.as_ref().is_none_or(|b| b.is_absolute()));
            let words = &params.start_opts;
            assert_eq!(StartOpts::parse(&words.for_shell()).as_ref(), Ok(words));
            if let Some(limit) = params.rewind_timeout {
                let _ = Deadline::for_operation(limit);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
