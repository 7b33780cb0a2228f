//! Clone notification variables (`OCF_RESKEY_CRM_meta_notify_*`), from `NAME=value` lines:
//! `ocf::notify`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::ocf::notify::Notification;
use pgha_fuzz::env_lookup;

fuzz_target!(|env: &str| {
    let n = Notification::from_lookup(env_lookup(env));
    assert_eq!(n.kind, n.kind.trim());
    assert_eq!(n.operation, n.operation.trim());
    let sets = [
        &n.active,
        &n.start,
        &n.stop,
        &n.promote,
        &n.demote,
        &n.promoted,
        &n.unpromoted,
    ];
    for set in sets {
        for node in &set.0 {
            assert!(
                !node.is_empty() && !node.contains(char::is_whitespace),
                "{node:?}"
            );
        }
    }
    let candidates = n.candidates();
    for node in &candidates {
        assert!(
            n.active.contains(node) || n.start.contains(node),
            "{node:?}"
        );
    }
    if let Some(node) = n.promoting() {
        assert!(n.promote.contains(node));
        let _ = (n.is_primary_recovery(node), n.is_switchover_to(node));
    }
});
