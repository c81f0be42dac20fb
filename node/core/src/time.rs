//! The time formats jobd shows: Unix milliseconds (how times travel in
//! commands) written as RFC 3339 UTC. Part of the vocabulary, so the tree
//! (`fs`) and the executor (`JOBD_SCHEDULED_TIME`) print a time the same
//! way without one importing the other. A time outside chrono's range
//! reads as `-`.

use chrono::{SecondsFormat, TimeZone, Utc};

/// To the second, as the original jobd's files show times
/// (`2026-12-02T17:00:00Z`).
pub fn rfc3339_secs(ms: i64) -> String {
    rfc3339(ms, SecondsFormat::Secs)
}

/// With milliseconds, for run records: how late a run started is a matter
/// of milliseconds (`2026-12-02T17:00:00.012Z`).
pub fn rfc3339_millis(ms: i64) -> String {
    rfc3339(ms, SecondsFormat::Millis)
}

fn rfc3339(ms: i64, precision: SecondsFormat) -> String {
    Utc.timestamp_millis_opt(ms).single().map_or_else(|| "-".into(), |t| t.to_rfc3339_opts(precision, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_drop_the_milliseconds_and_millis_keep_them() {
        assert_eq!(rfc3339_secs(1_796_230_800_012), "2026-12-02T17:00:00Z");
        assert_eq!(rfc3339_millis(1_796_230_800_012), "2026-12-02T17:00:00.012Z");
        assert_eq!(rfc3339_secs(i64::MAX), "-");
    }
}
