//! libpq connection strings: just enough to read and write `primary_conninfo`.
//!
//! Keyword/value form (`host=a port=5432 application_name='node 1'`) with libpq's quoting
//! rules (single quotes, backslash escapes), and the URI form's query parameters.

/// The value of `key` in a connection string, if present. A keyword given twice takes its
/// last value, as libpq does: pgha must read what pg_rewind and the server will use.
pub fn get(conninfo: &str, key: &str) -> Option<String> {
    let text = conninfo.trim();
    if text.starts_with("postgresql://") || text.starts_with("postgres://") {
        let query = text.split_once('?')?.1;
        return query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned());
    }
    parse_pairs(text)
        .into_iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The keywords of a keyword/value connection string, in order (none for a URI).
pub fn keywords(conninfo: &str) -> Vec<String> {
    parse_pairs(conninfo.trim())
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// Keyword/value pairs in order; malformed trailing text is ignored (libpq would refuse it,
/// and then the server would report the problem itself).
fn parse_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
    pairs
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

    #[test]
    fn quote_round_trips() {
        for v in ["node1", "a b", "it's", "back\\slash", ""] {
            let ci = format!("application_name={}", quote(v));
            assert_eq!(get(&ci, "application_name").as_deref(), Some(v));
        }
    }
}
