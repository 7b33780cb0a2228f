//! libpq connection strings: reading and writing `primary_conninfo`, and keeping the
//! passwords in them out of everything pgha shows or hands to a child.
//!
//! Keyword/value form (`host=a port=5432 application_name='node 1'`) with libpq's quoting
//! rules (single quotes, backslash escapes), and the URI form
//! (`postgresql://user:password@host:port/dbname?key=value&…`, percent-encoded), read the
//! way libpq's `conninfo_parse` and `conninfo_uri_parse_options` read them.
//!
//! Passwords: [`redact`] is the one function that makes a connection string fit for a
//! message (log line, error, exit reason); [`split_password`] takes the password out of one
//! for a child's argument list. Both see the string through the same scan ([`edits`]), so
//! what one finds, the other finds.

use std::ops::Range;

/// What a secret is shown as.
const HIDDEN: &str = "********";
/// What replaces keyword/value text that is not a `key=value` pair, from there to the end:
/// libpq refuses such a string, and the text may hold anything, a password included. A
/// child given it fails with libpq's own `missing "=" after "<unreadable-text-removed>"`.
const UNREADABLE: &str = "<unreadable-text-removed>";
/// Keywords whose values are secrets: the password, and the passphrase of the TLS key.
const SECRET_KEYS: &[&str] = &["password", "sslpassword"];

fn is_uri(text: &str) -> bool {
    uri_rest(text).is_some()
}

/// What libpq takes for a connection string rather than a database name.
fn is_conninfo(text: &str) -> bool {
    is_uri(text) || text.contains('=')
}

/// The text after `postgresql://` or `postgres://`, and where it starts.
fn uri_rest(text: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|scheme| text.starts_with(*scheme))
        .map(|scheme| scheme.len())
}

/// The value of `key` in a connection string, if present. A keyword given twice takes its
/// last value, as libpq does: pgha must read what pg_rewind and the server will use.
pub fn get(conninfo: &str, key: &str) -> Option<String> {
    let text = conninfo.trim();
    if is_uri(text) {
        let (_, params) = uri_query(text)?;
        return params
            .into_iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value);
    }
    parse_pairs(text)
        .0
        .into_iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.value)
}

/// The keywords of a keyword/value connection string, in order (none for a URI).
pub fn keywords(conninfo: &str) -> Vec<String> {
    let text = conninfo.trim();
    if is_uri(text) {
        return Vec::new();
    }
    parse_pairs(text).0.into_iter().map(|p| p.key).collect()
}

/// The connection string fit for a message: every password (`password`, `sslpassword`,
/// in keyword/value or URI form, and in a `dbname` that is itself a connection string)
/// shown as `********`, and text libpq could not read cut off. Apply it to the connection
/// string before it goes into any message: on a whole command line it would find nothing.
pub fn redact(conninfo: &str) -> String {
    let text = conninfo.trim();
    let shown = apply(text, edits(text, Purpose::Show).0);
    // A masked URI value may have held the `/` that ended the authority: read again, the
    // text before a later `@` would be credentials. Then only the scheme is shown.
    match uri_rest(&shown) {
        Some(start) if apply(&shown, edits(&shown, Purpose::Show).0) != shown => {
            format!("{}{HIDDEN}", shown.get(..start).unwrap_or_default())
        }
        _ => shown,
    }
}

/// The connection string to give a child, without its password, and the password, for the
/// child's environment (`PGPASSWORD`, which libpq reads when the string has none).
/// `sslpassword` stays: libpq has no environment variable for it. Text libpq could not read
/// is replaced by a word it refuses, so the child fails as it would have, without the text.
pub fn split_password(conninfo: &str) -> (String, Option<String>) {
    let text = conninfo.trim();
    let (edits, password) = edits(text, Purpose::Child);
    (apply(text, edits), password.filter(|p| !p.is_empty()))
}

/// `conninfo` with `key` set to `value`, replacing every value it had. The keyword/value
/// form is rewritten pair by pair from what libpq reads (a value with nothing simple in it
/// quoted), so that no pair as written can swallow the new one (`sslmode=` at the end, a
/// dangling backslash); text libpq could not read is dropped. A URI gets a query parameter,
/// after the query libpq sees (a `?` inside the credentials is not one).
pub fn with_value(conninfo: &str, key: &str, value: &str) -> String {
    let text = conninfo.trim();
    if is_uri(text) {
        if get(text, key).as_deref() == Some(value) {
            return text.to_owned();
        }
        let sep = if uri_query(text).is_some() { '&' } else { '?' };
        return format!(
            "{text}{sep}{}={}",
            percent_encode(key),
            percent_encode(value)
        );
    }
    let mut pairs: Vec<String> = parse_pairs(text)
        .0
        .into_iter()
        .filter(|p| p.key != key)
        .map(|p| format!("{}={}", p.key, bare_or_quoted(&p.value)))
        .collect();
    pairs.push(format!("{key}={}", bare_or_quoted(value)));
    pairs.join(" ")
}

/// A value as it can be written in a keyword/value string: bare when it is made of simple
/// characters only, else quoted.
fn bare_or_quoted(value: &str) -> String {
    let simple = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | ','));
    if simple {
        value.to_owned()
    } else {
        quote(value)
    }
}

/// A URI part percent-encoded: everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Quotes a value for a keyword/value connection string.
pub fn quote(value: &str) -> String {
    let mut out = String::from("'");
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// For a message: secrets replaced by `********`.
    Show,
    /// For a child's arguments: the password removed (and returned).
    Child,
}

/// A replacement of `range` of the text.
type Edit = (Range<usize>, String);

/// Where the secrets of `text` are and what replaces them for `purpose`; for
/// [`Purpose::Child`], the password taken out (the last one, as libpq takes the last).
fn edits(text: &str, purpose: Purpose) -> (Vec<Edit>, Option<String>) {
    if is_uri(text) {
        return uri_edits(text, purpose);
    }
    let (pairs, unreadable) = parse_pairs(text);
    let mut edits = Vec::new();
    let mut password = None;
    for pair in pairs {
        let secret = SECRET_KEYS.contains(&pair.key.as_str());
        match purpose {
            Purpose::Show if secret => {
                edits.push((pair.raw_value.clone(), mask_for(text, &pair.raw_value)))
            }
            // libpq expands a `dbname` that is a connection string (PQconnectdbParams).
            Purpose::Show if pair.key == "dbname" && is_conninfo(&pair.value) => {
                let shown = redact(&pair.value);
                if shown != pair.value.trim() {
                    edits.push((pair.raw_value, quote(&shown)));
                }
            }
            Purpose::Child if pair.key == "password" => {
                edits.push((pair.whole, String::new()));
                password = Some(pair.value);
            }
            Purpose::Show | Purpose::Child => {}
        }
    }
    if let Some(from) = unreadable {
        edits.push((from..text.len(), UNREADABLE.to_owned()));
    }
    (edits, password)
}

/// What a secret written at `raw` in keyword/value `text` is shown as: the mask, and a space
/// after it when a quoted value was followed right away by the next pair (libpq allows
/// `password='x'host=h`), which the mask, unquoted, would otherwise run into: read again,
/// the message would not show the same pairs.
fn mask_for(text: &str, raw: &Range<usize>) -> String {
    let quoted = text.get(raw.clone()).is_some_and(|v| v.starts_with('\''));
    let joined = text
        .get(raw.end..)
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| !c.is_whitespace());
    if quoted && joined {
        format!("{HIDDEN} ")
    } else {
        HIDDEN.to_owned()
    }
}

/// [`edits`] of the URI form: the password of `user:password@`, and `password=` or
/// `sslpassword=` among the query parameters.
fn uri_edits(text: &str, purpose: Purpose) -> (Vec<Edit>, Option<String>) {
    let mut edits = Vec::new();
    let mut password = None;
    if let Some(raw) = uri_password(text) {
        match purpose {
            Purpose::Show => edits.push((raw, HIDDEN.to_owned())),
            Purpose::Child => {
                password = text.get(raw.clone()).map(percent_decode);
                // The ':' before it goes too: `user:@` would be an empty password.
                edits.push((raw.start.saturating_sub(1)..raw.end, String::new()));
            }
        }
    }
    if let Some((query, params)) = uri_query(text) {
        match purpose {
            Purpose::Show => edits.extend(
                params
                    .iter()
                    .filter(|p| SECRET_KEYS.contains(&p.key.as_str()))
                    .map(|p| (p.raw_value.clone(), HIDDEN.to_owned())),
            ),
            Purpose::Child if params.iter().any(|p| p.key == "password") => {
                let mut kept = Vec::new();
                for p in &params {
                    if p.key == "password" {
                        password = Some(p.value.clone());
                    } else {
                        kept.extend(text.get(p.whole.clone()));
                    }
                }
                let rebuilt = if kept.is_empty() {
                    String::new()
                } else {
                    format!("?{}", kept.join("&"))
                };
                edits.push((query..text.len(), rebuilt));
            }
            Purpose::Child => {}
        }
    }
    (edits, password)
}

/// `text` with `edits` (which do not overlap) made.
fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut out = text.to_owned();
    for (range, with) in edits {
        if out.get(range.clone()).is_some() {
            out.replace_range(range, &with);
        }
    }
    out
}

/// One `key=value` of a connection string, with where it sits in the text.
#[derive(Debug)]
struct Pair {
    key: String,
    /// Unquoted and unescaped (percent-decoded in a URI).
    value: String,
    /// The whole `key = value`.
    whole: Range<usize>,
    /// The value as written, quotes included.
    raw_value: Range<usize>,
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn position(chars: &mut Chars<'_>, len: usize) -> usize {
    chars.peek().map_or(len, |&(i, _)| i)
}

fn skip_spaces(chars: &mut Chars<'_>) {
    while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
        chars.next();
    }
}

/// Keyword/value pairs in order, and where the text stops being pairs (a keyword without
/// `=`, an unterminated quote), if it does: libpq would refuse the string.
fn parse_pairs(text: &str) -> (Vec<Pair>, Option<usize>) {
    let mut pairs = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        skip_spaces(&mut chars);
        let start = position(&mut chars, text.len());
        if start == text.len() {
            return (pairs, None);
        }
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        skip_spaces(&mut chars);
        if key.is_empty() || chars.next().map(|(_, c)| c) != Some('=') {
            return (pairs, Some(start));
        }
        skip_spaces(&mut chars);
        let value_start = position(&mut chars, text.len());
        let mut value = String::new();
        if chars.peek().is_some_and(|&(_, c)| c == '\'') {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return (pairs, Some(start));
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
        }
        let end = position(&mut chars, text.len());
        pairs.push(Pair {
            key,
            value,
            whole: start..end,
            raw_value: value_start..end,
        });
    }
}

/// Where the password of `scheme://user:password@host…` is, as written. libpq takes the
/// credentials up to the first `@` before the first `/`, and the password from the first
/// `:` in them; a raw `@` or `/` in a password must be percent-encoded for libpq too.
fn uri_password(text: &str) -> Option<Range<usize>> {
    let start = uri_rest(text)?;
    let rest = text.get(start..)?;
    let at = rest.find(['@', '/'])?;
    if !rest.get(at..)?.starts_with('@') {
        return None;
    }
    let colon = rest.get(..at)?.find(':')?;
    Some(start + colon + 1..start + at)
}

/// Where a URI's hosts start: after `user[:password]@` when the first `@` comes before the
/// first `/` (libpq's rule: whatever the credentials hold, a `?` included), else right after
/// the scheme.
fn uri_host_start(text: &str) -> Option<usize> {
    let start = uri_rest(text)?;
    let rest = text.get(start..)?;
    Some(match rest.find(['@', '/']) {
        Some(at) if rest.get(at..)?.starts_with('@') => start + at + 1,
        _ => start,
    })
}

/// Where a URI's query starts (its `?`), and its parameters, keys and values decoded.
fn uri_query(text: &str) -> Option<(usize, Vec<Pair>)> {
    let after_credentials = uri_host_start(text)?;
    let query = after_credentials + text.get(after_credentials..)?.find('?')?;
    let mut params = Vec::new();
    let mut from = query + 1;
    for piece in text.get(from..)?.split('&') {
        let whole = from..from + piece.len();
        from = whole.end + 1;
        let Some((key, value)) = piece.split_once('=') else {
            continue;
        };
        params.push(Pair {
            key: percent_decode(key),
            value: percent_decode(value),
            raw_value: whole.start + key.len() + 1..whole.end,
            whole,
        });
    }
    Some((query, params))
}

/// `%XX` sequences decoded, as libpq decodes a URI's parts; anything else kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_values() {
        let ci = "host=10.0.0.1 port=5432 user=replicator application_name=node1";
        assert_eq!(get(ci, "application_name").as_deref(), Some("node1"));
        assert_eq!(get(ci, "port").as_deref(), Some("5432"));
        assert_eq!(get(ci, "password"), None);
    }

    #[test]
    fn quoted_values_and_spaces_around_equals() {
        let ci = "host = 'a b' application_name='it\\'s' sslmode=prefer";
        assert_eq!(get(ci, "host").as_deref(), Some("a b"));
        assert_eq!(get(ci, "application_name").as_deref(), Some("it's"));
        assert_eq!(get(ci, "sslmode").as_deref(), Some("prefer"));
    }

    #[test]
    fn substring_is_not_a_match() {
        // PAF's regex matched "node1" inside "node10" (PAF #25).
        assert_eq!(
            get("application_name=node10", "application_name").as_deref(),
            Some("node10")
        );
        assert_eq!(get("xapplication_name=node1", "application_name"), None);
    }

    #[test]
    fn finding_4_a_repeated_keyword_takes_its_last_value_as_in_libpq() {
        let ci = "host=a sslmode=verify-full sslmode=disable";
        assert_eq!(get(ci, "sslmode").as_deref(), Some("disable"));
        let uri = "postgresql://h/db?sslmode=disable&sslmode=verify-full";
        assert_eq!(get(uri, "sslmode").as_deref(), Some("verify-full"));
    }

    #[test]
    fn uri_form() {
        let ci = "postgresql://rep@10.0.0.1:5432/postgres?application_name=node2&sslmode=off";
        assert_eq!(get(ci, "application_name").as_deref(), Some("node2"));
    }

    /// `redact!(name, input => shown)`: one row of the redaction table.
    macro_rules! redact {
        ($name:ident, $input:expr => $shown:expr) => {
            #[test]
            fn $name() {
                assert_eq!(redact($input), $shown);
                assert!(!redact($input).contains("s3cret"), "{}", redact($input));
            }
        };
    }

    redact!(finding_3_redacts_an_unquoted_password,
        "host=a user=r password=s3cret" => "host=a user=r password=********");
    redact!(finding_3_redacts_a_quoted_password_with_spaces,
        "host=a password='it s3cret' user=r" => "host=a password=******** user=r");
    redact!(finding_3_redacts_a_password_with_escaped_quotes,
        r"password='it\'s s3cret\\' user=r" => "password=******** user=r");
    redact!(finding_3_redacts_an_unquoted_escaped_space,
        r"password=s3cret\ more user=r" => "password=******** user=r");
    redact!(finding_3_redacts_spaces_around_equals,
        "host=a password = s3cret" => "host=a password = ********");
    redact!(finding_3_redacts_every_repeated_password,
        "password=s3cret host=a password=s3cret2" => "password=******** host=a password=********");
    redact!(finding_3_redacts_the_tls_key_passphrase,
        "host=a sslpassword=s3cret" => "host=a sslpassword=********");
    redact!(finding_3_redacts_a_password_in_a_dbname_connection_string,
        "host=a dbname='user=r password=s3cret'" => "host=a dbname='user=r password=********'");
    redact!(finding_3_keeps_a_plain_dbname,
        "host=a dbname=postgres" => "host=a dbname=postgres");
    redact!(finding_3_cuts_unreadable_text,
        "host=a junk password=s3cret" => "host=a <unreadable-text-removed>");
    redact!(finding_3_cuts_an_unterminated_quote,
        "host=a password='s3cret" => "host=a <unreadable-text-removed>");
    redact!(finding_3_redacts_uri_credentials,
        "postgresql://rep:s3cret@10.0.0.1:5432/db" => "postgresql://rep:********@10.0.0.1:5432/db");
    redact!(finding_3_redacts_postgres_scheme_credentials,
        "postgres://rep:s3c%40ret@h/db?sslmode=verify-full"
            => "postgres://rep:********@h/db?sslmode=verify-full");
    redact!(finding_3_redacts_uri_credentials_without_a_path,
        "postgresql://rep:s3cret@h?application_name=pg1"
            => "postgresql://rep:********@h?application_name=pg1");
    redact!(finding_3_redacts_a_uri_query_password,
        "postgresql://rep@h/db?application_name=pg1&password=s3cret&sslmode=require"
            => "postgresql://rep@h/db?application_name=pg1&password=********&sslmode=require");
    redact!(finding_3_redacts_a_percent_encoded_query_key,
        "postgresql://h/db?pass%77ord=s3cret" => "postgresql://h/db?pass%77ord=********");
    redact!(finding_3_leaves_a_conninfo_without_password,
        "host=10.0.0.1 user=r application_name='pg 1'" => "host=10.0.0.1 user=r application_name='pg 1'");
    redact!(finding_3_leaves_a_uri_without_password,
        "postgresql://rep@h:5432/db?application_name=pg1" => "postgresql://rep@h:5432/db?application_name=pg1");
    redact!(finding_3_leaves_a_user_at_host_after_the_path,
        "postgresql://h/db?application_name=a:b@c" => "postgresql://h/db?application_name=a:b@c");

    /// `splits!(name, input => (for the child, password))`.
    macro_rules! splits {
        ($name:ident, $input:expr => ($child:expr, $password:expr)) => {
            #[test]
            fn $name() {
                let (child, password) = split_password($input);
                assert_eq!(child, $child);
                assert_eq!(password.as_deref(), $password);
            }
        };
    }

    splits!(finding_3_split_keyword_password,
        "host=a password='it\\'s' user=r" => ("host=a  user=r", Some("it's")));
    splits!(finding_3_split_takes_the_last_password,
        "password=one host=a password=two" => (" host=a ", Some("two")));
    splits!(finding_3_split_an_empty_password_is_none,
        "host=a password=''" => ("host=a ", None));
    splits!(finding_3_split_keeps_the_tls_passphrase,
        "host=a sslpassword=k" => ("host=a sslpassword=k", None));
    splits!(finding_3_split_unreadable_text_fails_in_libpq,
        "host=a junk password=x" => ("host=a <unreadable-text-removed>", None));
    splits!(finding_3_split_uri_credentials_are_decoded,
        "postgresql://rep:s3c%40ret@h:5432/db" => ("postgresql://rep@h:5432/db", Some("s3c@ret")));
    splits!(finding_3_split_uri_query_password,
        "postgresql://rep@h/db?password=p%26w&sslmode=require"
            => ("postgresql://rep@h/db?sslmode=require", Some("p&w")));
    splits!(finding_3_split_uri_only_query_password,
        "postgresql://rep:first@h/db?password=second" => ("postgresql://rep@h/db", Some("second")));
    splits!(finding_3_split_without_password,
        "postgresql://rep@h/db?sslmode=require" => ("postgresql://rep@h/db?sslmode=require", None));

    #[test]
    fn quote_round_trips() {
        for v in ["node1", "a b", "it's", "back\\slash", ""] {
            let ci = format!("application_name={}", quote(v));
            assert_eq!(get(&ci, "application_name").as_deref(), Some(v));
        }
    }

    /// Fuzz findings (`fuzz/corpus/*/finding-*`): a value set after a pair that libpq would
    /// read the new pair into, or after a `?` of the credentials taken for a query.
    #[test]
    fn finding_empty_last_value_keeps_the_new_value() {
        let set = with_value("host=a sslmode=", "application_name", "pg1");
        assert_eq!(
            get(&set, "application_name").as_deref(),
            Some("pg1"),
            "{set}"
        );
        assert_eq!(get(&set, "sslmode").as_deref(), Some(""), "{set}");
    }

    #[test]
    fn finding_dangling_backslash_keeps_the_new_value() {
        let set = with_value(r"host=a user=r\", "application_name", "pg1");
        assert_eq!(
            get(&set, "application_name").as_deref(),
            Some("pg1"),
            "{set}"
        );
        assert_eq!(get(&set, "user").as_deref(), Some("r"), "{set}");
    }

    #[test]
    fn finding_question_mark_in_password_is_no_query() {
        let uri = "postgresql://repl:s3?cret@h/db";
        let set = with_value(uri, "application_name", "pg 1");
        assert_eq!(
            set,
            "postgresql://repl:s3?cret@h/db?application_name=pg%201"
        );
        assert_eq!(get(&set, "application_name").as_deref(), Some("pg 1"));
        assert_eq!(split_password(&set).1.as_deref(), Some("s3?cret"));
    }

    #[test]
    fn finding_question_mark_in_user_is_no_query() {
        let uri = "postgresql://us?sslmode=disable@h/db?sslmode=require";
        assert_eq!(get(uri, "sslmode").as_deref(), Some("require"));
        assert_eq!(get("postgresql://us?x=1@h/db", "x"), None);
    }

    #[test]
    fn finding_redact_twice_changes_nothing_more() {
        for text in [
            "host=h password='a b'user=r",
            r"hos/t='a b' password='it\'s sec\\r=x pat='a b' password='it\'sssword=innerpw'",
            "password='x'sslpassword='y'host=h",
            // The `/` that ended the authority was inside the masked sslpassword.
            "postgresql://u:x?sslpassword=a/b&k=v@h",
        ] {
            let once = redact(text);
            assert_eq!(redact(&once), once, "{text}");
            assert_eq!(keywords(&once), keywords(text), "{text}");
        }
    }

    #[test]
    fn with_value_replaces_every_old_value() {
        assert_eq!(
            with_value(
                "host=a application_name=x port = 5433 application_name=y",
                "application_name",
                "pg1"
            ),
            "host=a port=5433 application_name=pg1"
        );
        assert_eq!(
            with_value(
                "postgresql://h/db?application_name=pg1",
                "application_name",
                "pg1"
            ),
            "postgresql://h/db?application_name=pg1"
        );
    }
}
