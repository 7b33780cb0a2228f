//! Dates in UTC, for names and log lines: days-to-civil arithmetic, because a date crate for
//! three formats is more code than the formats.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now in UTC, `YYYY-MM-DDTHH:MM:SSZ` (and a compact form for directory names).
pub fn utc_now() -> (String, String) {
    utc(SystemTime::now())
}

/// A time in UTC, `YYYY-MM-DDTHH:MM:SSZ` (and the compact form).
pub fn utc(time: SystemTime) -> (String, String) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = civil(secs);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
    )
}

/// Seconds since the epoch → UTC date and time (days-to-civil, proleptic Gregorian).
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYY/MM/DD_HH:MM:SS ` (UTC), the date ocf-shellfuncs' `ha_log` writes in front of a line
/// of `HA_LOGFILE`.
pub fn log_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}/{mo:02}/{d:02}_{h:02}:{mi:02}:{s:02} ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_767_323_045), (2026, 1, 2, 3, 4, 5));
    }

    #[test]
    fn stamps() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_767_323_045);
        assert_eq!(utc(t).0, "2026-01-02T03:04:05Z");
        assert_eq!(utc(t).1, "20260102T030405Z");
        assert_eq!(log_stamp(t), "2026/01/02_03:04:05 ");
    }
}
