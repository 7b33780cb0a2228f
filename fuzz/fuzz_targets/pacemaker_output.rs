//! What Pacemaker's tools print (`crm_node -n`, `attrd_updater -Q`, `crm_node -p`,
//! `crm_attribute -G -q`): the parsers of `pacemaker`. A node name accepted is one that can
//! safely name a folder and sit in a connection string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::pacemaker::{
    check_node_name, parse_attrd_value, parse_node_name, parse_partition, parse_score,
};

fuzz_target!(|text: &str| {
    if let Ok(name) = parse_node_name(text) {
        assert!(check_node_name(&name).is_ok());
        assert!(!name.is_empty() && name != "." && name != ".." && !name.contains('/'));
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    }
    if let Some(value) = parse_attrd_value(text) {
        assert!(text.contains(&format!("value=\"{value}\"")), "{value:?}");
    }
    for node in parse_partition(text) {
        assert!(!node.is_empty() && !node.contains(char::is_whitespace));
    }
    match parse_score(text) {
        Ok(score) => {
            let word = text.trim().to_ascii_uppercase();
            assert!(
                word.ends_with("INFINITY") || word.parse::<i64>() == Ok(score),
                "{text:?}"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
