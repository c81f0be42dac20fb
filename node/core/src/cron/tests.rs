//! One test per form, and the rules at their edges.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Schedule;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn next(expr: &str, after: &str) -> String {
    next_in(expr, after, Tz::UTC)
}

fn next_in(expr: &str, after: &str, tz: Tz) -> String {
    let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    s.next_after(at(after), tz).expect("fires").to_rfc3339()
}

fn times(expr: &str, after: &str, n: usize, tz: Tz) -> Vec<String> {
    let s = Schedule::parse(expr).unwrap();
    let mut t = at(after);
    (0..n)
        .map(|_| {
            t = s.next_after(t, tz).unwrap();
            t.to_rfc3339()
        })
        .collect()
}

#[test]
fn quartz_with_seconds_and_year_as_in_the_seed() {
    assert_eq!(next("0 0/5 * * * ? *", "2014-02-11T09:42:33Z"), "2014-02-11T09:45:00+00:00");
    assert_eq!(next("0 0 12 ? * WED 2030", "2026-01-01T00:00:00Z"), "2030-01-02T12:00:00+00:00");
    // Quartz day-of-week: 1 is Sunday.
    assert_eq!(next("0 0 0 ? * 1", "2026-11-28T00:00:00Z"), "2026-11-29T00:00:00+00:00");
}

#[test]
fn six_fields_with_seconds() {
    assert_eq!(next("*/5 * * * * *", "2026-11-28T10:00:03Z"), "2026-11-28T10:00:05+00:00");
    assert_eq!(next("30 15 10 * * *", "2026-11-28T10:15:30Z"), "2026-11-29T10:15:30+00:00");
}

#[test]
fn classic_five_fields_with_vixie_meaning() {
    assert_eq!(next("*/5 * * * *", "2026-11-28T10:01:00Z"), "2026-11-28T10:05:00+00:00");
    // 0 and 7 are both Sunday; names work; 2026-11-28 is a Saturday.
    assert_eq!(next("0 9 * * 0", "2026-11-28T00:00:00Z"), "2026-11-29T09:00:00+00:00");
    assert_eq!(next("0 9 * * 7", "2026-11-28T00:00:00Z"), "2026-11-29T09:00:00+00:00");
    assert_eq!(next("0 9 * * mon-fri", "2026-11-28T00:00:00Z"), "2026-11-30T09:00:00+00:00");
    assert_eq!(next("0 0 1 jan *", "2026-11-28T00:00:00Z"), "2027-01-01T00:00:00+00:00");
    assert_eq!(next("15 2-4/2 * * *", "2026-11-28T02:20:00Z"), "2026-11-28T04:15:00+00:00");
    // Both day fields restricted: either matches (the 1st, or any Friday).
    assert_eq!(next("0 0 1 * 5", "2026-11-28T00:00:00Z"), "2026-12-01T00:00:00+00:00");
    assert_eq!(next("0 0 15 * 5", "2026-12-01T00:00:00Z"), "2026-12-04T00:00:00+00:00");
    // One of them `*`-prefixed: AND (here: every 2nd day that is a Friday).
    assert_eq!(next("0 0 */2 * 5", "2026-12-01T00:00:00Z"), "2026-12-11T00:00:00+00:00");
}

#[test]
fn macros() {
    let after = "2026-11-28T10:20:30Z";
    assert_eq!(next("@yearly", after), "2027-01-01T00:00:00+00:00");
    assert_eq!(next("@annually", after), "2027-01-01T00:00:00+00:00");
    assert_eq!(next("@monthly", after), "2026-12-01T00:00:00+00:00");
    assert_eq!(next("@weekly", after), "2026-11-29T00:00:00+00:00");
    assert_eq!(next("@daily", after), "2026-11-29T00:00:00+00:00");
    assert_eq!(next("@midnight", after), "2026-11-29T00:00:00+00:00");
    assert_eq!(next("@hourly", after), "2026-11-28T11:00:00+00:00");
}

#[test]
fn every_is_anchored_to_the_epoch() {
    assert_eq!(next("@every 1h30m", "2026-11-28T10:20:30Z"), "2026-11-28T10:30:00+00:00");
    assert_eq!(next("@every 7s", "1970-01-01T00:00:13Z"), "1970-01-01T00:00:14+00:00");
    // The phase does not depend on the time zone or on when we ask.
    assert_eq!(next_in("@every 7s", "1970-01-01T00:00:13Z", Tz::Europe__Paris), "1970-01-01T00:00:14+00:00");
    assert!(Schedule::parse("@every 500ms").is_err());
    assert!(Schedule::parse("@every").is_err());
    assert!(Schedule::parse("@every 5x").is_err());
}

#[test]
fn quartz_l_w_and_hash() {
    // L: last day of the month.
    assert_eq!(next("0 0 0 L * ?", "2026-02-01T00:00:00Z"), "2026-02-28T00:00:00+00:00");
    assert_eq!(next("0 0 0 L-2 * ?", "2026-02-01T00:00:00Z"), "2026-02-26T00:00:00+00:00");
    // 15W: 2026-11-15 is a Sunday, so Monday the 16th.
    assert_eq!(next("0 0 0 15W * ?", "2026-11-01T00:00:00Z"), "2026-11-16T00:00:00+00:00");
    // 1W: 2026-08-01 is a Saturday and W does not leave the month: Monday the 3rd.
    assert_eq!(next("0 0 0 1W * ?", "2026-07-31T00:00:00Z"), "2026-08-03T00:00:00+00:00");
    // LW: the last weekday; 2026-05-31 is a Sunday, so Friday the 29th.
    assert_eq!(next("0 0 0 LW * ?", "2026-05-01T00:00:00Z"), "2026-05-29T00:00:00+00:00");
    // 6#3: the third Friday (Quartz 6 = Friday).
    assert_eq!(next("0 0 0 ? * 6#3", "2026-11-01T00:00:00Z"), "2026-11-20T00:00:00+00:00");
    // 2L: the last Monday.
    assert_eq!(next("0 0 0 ? * 2L", "2026-11-01T00:00:00Z"), "2026-11-30T00:00:00+00:00");
}

#[test]
fn dst_skipped_time_fires_once_at_the_next_valid_instant() {
    let ny = Tz::America__New_York;
    // 2026-03-08 02:30 does not exist in New York: it fires at 03:00 EDT (07:00Z), once.
    let got = times("0 30 2 * * *", "2026-03-07T12:00:00Z", 2, ny);
    assert_eq!(got, ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00"]);
}

#[test]
fn dst_repeated_time_fires_once() {
    let ny = Tz::America__New_York;
    // 2026-11-01 01:30 happens twice in New York; it fires at the first (05:30Z).
    let got = times("0 30 1 * * *", "2026-10-31T12:00:00Z", 2, ny);
    assert_eq!(got, ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]);
}

#[test]
fn bad_expressions_say_what_is_wrong() {
    for (expr, want) in [
        ("", "empty expression"),
        ("* * *", "3 fields"),
        ("61 * * * *", "minute field: 61 is outside 0-59"),
        ("* * * * 8", "day-of-week field: 8 is outside 0-7"),
        ("* * * foo *", "month field"),
        ("*/0 * * * *", "step 0"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 0 30 2 ?", "never fires"),
        ("0 0 0 1 * MON *", "needs ?"),
        ("0 0 L * ?", "a ?, which makes it Quartz: want 6 or 7"),
        ("0 0 0 ? * 0", "Quartz counts 1 = Sunday"),
        ("0 0 0 1 1 ? 2000/4294967000", "never fires"),
        ("@fortnightly", "unknown macro @fortnightly; the macros are @yearly"),
        ("0 0 0 ? * 6#9", "#9 must be 1-5"),
    ] {
        let err = Schedule::parse_new(expr).expect_err(expr);
        assert!(err.contains(want), "{expr:?}: {err:?} should mention {want:?}");
        assert!(!err.contains('\n'), "one line");
    }
}

#[test]
fn a_step_near_the_largest_number_ends_its_field_instead_of_wrapping() {
    // `v += step` used to wrap here and index past the year table (a panic
    // that left the client's request unanswered).
    let big = u32::MAX;
    for expr in [
        format!("0 0 0 1 1 ? 2030/{big}"),
        format!("0 0 0 1 1 ? 2030/{}", big - 40),
        format!("*/{big} * * * * *"),
        format!("0 5/{big} * * * *"),
        format!("0 0 0/{big} * * *"),
        format!("0 0 0 1/{big} * *"),
        format!("0 0 0 * 1-12/{big} *"),
        format!("0 0 0 ? * 1/{big}"),
        format!("0 0 * * 0-7/{big}"),
    ] {
        let s = Schedule::parse_new(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert!(s.next_after(at("2026-01-01T00:00:00Z"), Tz::UTC).is_some(), "{expr}");
    }
    assert_eq!(next(&format!("0 0 0 1 1 ? 2030/{big}"), "2026-01-01T00:00:00Z"), "2030-01-01T00:00:00+00:00");
}

#[test]
fn an_error_quoting_the_expression_stays_one_line() {
    let e = Schedule::parse("@!every\0\0\n@").unwrap_err();
    assert!(!e.contains('\n') && !e.contains('\0'), "{e:?}");
    assert!(e.contains(r"@!every\u{0}\u{0}\n@"), "{e:?}");
    let e = Schedule::parse("@every 1\n5x").unwrap_err();
    assert!(!e.contains('\n'), "{e:?}");
}

#[test]
fn durations_are_shown_as_they_read_back() {
    use super::{duration_text, parse_duration_ms};
    for (ms, text) in [(1000, "1s"), (1500, "1500ms"), (90_000, "90s"), (60_000, "1m"), (3_600_000, "1h"), (172_800_000, "2d")] {
        assert_eq!(duration_text(ms), text);
        assert_eq!(parse_duration_ms(text), Ok(ms));
    }
    assert_eq!(parse_duration_ms("0s").unwrap_err(), "duration 0s is shorter than 1s");
}
