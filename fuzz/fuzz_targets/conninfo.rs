//! Connection strings (`primary_conninfo`, in `postgresql.auto.conf`, which the postgres
//! account writes): `instance::conninfo::{get, keywords, redact, split_password, quote}`.
//! What matters most: no secret `get` finds survives `redact`, and none stays in what
//! `split_password` leaves for a child's command line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgha::instance::conninfo::{get, keywords, quote, redact, split_password};

const SECRETS: [&str; 2] = ["password", "sslpassword"];
/// The texts `redact` writes in: a secret found inside them, or made of their characters,
/// proves nothing.
const WRITTEN: &str = "******** <unreadable-text-removed>";

/// Whether `secret` appearing in a string tells that it leaked: it appears once in
/// `conninfo` (so nowhere else the output could take it from), is long enough not to occur
/// by chance, and is not made of what `redact` writes or of quoting.
fn telling(conninfo: &str, secret: &str) -> bool {
    secret.len() >= 4
        && secret.chars().all(|c| c.is_ascii_alphanumeric())
        && !WRITTEN.contains(secret)
        && conninfo.find(secret) == conninfo.rfind(secret)
}

fuzz_target!(|text: &str| {
    let shown = redact(text);
    let (child, password) = split_password(text);
    for key in keywords(text) {
        assert!(get(text, &key).is_some(), "{key:?} in {text:?}");
    }

    for key in SECRETS {
        // Not asserted: that the redacted text, read again, has the mask as its secret.
        // Text right after a quoted value (no space, which libpq allows) reads differently
        // once the value is masked (`corpus/conninfo/finding-*`); what it exposes is the
        // text of other keywords, never a secret `get` found.
        if let Some(secret) = get(text, key).filter(|s| telling(text, s)) {
            assert!(
                !shown.contains(&secret),
                "{key} {secret:?} shown in {shown:?}"
            );
        }
    }
    // The child's string holds no password; the one taken out is the one libpq would use.
    // Not asserted when taking the password out turns the string into another form: `password=x<FF>postgresql://…=y`
    // (libpq refuses it: a keyword named `postgresql://…`) loses its first pair and, with
    // the form feed trimmed, `get` reads the rest as a URI
    // (`corpus/conninfo/finding-becomes-a-uri`).
    let is_uri = |s: &str| {
        ["postgresql://", "postgres://"]
            .iter()
            .any(|p| s.trim().starts_with(p))
    };
    if is_uri(text) == is_uri(&child) {
        assert_eq!(
            get(&child, "password").filter(|p| !p.is_empty()),
            None,
            "{child:?}"
        );
    }
    if let Some(secret) = get(text, "password").filter(|p| !p.is_empty()) {
        assert_eq!(password.as_deref(), Some(secret.as_str()), "{text:?}");
        if telling(text, &secret) {
            assert!(!child.contains(&secret), "{secret:?} left in {child:?}");
        }
    }
    // Redacting twice changes nothing more (a quoted secret followed right away by the next
    // pair once joined the mask: `corpus/conninfo/finding-redact-twice`, fixed).
    assert_eq!(redact(&shown), shown, "{text:?}");

    // A quoted value reads back as it was.
    let key = "application_name";
    let pair = format!("host=h {key}={}", quote(text));
    assert_eq!(get(&pair, key).as_deref(), Some(text), "{pair:?}");
});
