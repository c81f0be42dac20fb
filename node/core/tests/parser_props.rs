//! Property tests over everything a client's text goes through before
//! anything is proposed: cron expressions (and their next time), clone
//! strings, job ctl verbs and /ctl commands. Whatever the input, a parser
//! answers `Ok` or one line of error, and never panics (a panic used to
//! leave the client's request unanswered); a parsed schedule's next time
//! is later than the instant asked about, and the one after it later still.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use jobd_core::cron::Schedule;
use jobd_core::input::{parse_clone, parse_cluster_ctl, parse_ctl};
use proptest::prelude::*;

/// Instants from 1970 to 2200 (the year field's range and beyond).
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..7_258_118_400).prop_map(|s| Utc.timestamp_opt(s, 0).single().expect("in range"))
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![Tz::UTC, Tz::Europe__Paris, Tz::America__New_York, Tz::Australia__Lord_Howe, Tz::Asia__Kathmandu])
}

/// A number at a field's edges or anywhere up to u32::MAX and past it.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![0u64, 1, 6, 7, 12, 23, 24, 28, 29, 30, 31, 32, 59, 60, 1969, 1970, 2199, 2200]).prop_map(|n| n.to_string()),
        (0u64..=u32::MAX as u64).prop_map(|n| n.to_string()),
        prop::sample::select(vec![u32::MAX as u64 - 1, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX]).prop_map(|n| n.to_string()),
    ]
}

/// One item of a field, in every form the grammar has, with any numbers.
fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        Just("L".to_string()),
        Just("LW".to_string()),
        number(),
        (number(), number()).prop_map(|(a, b)| format!("{a}-{b}")),
        (number(), number()).prop_map(|(a, s)| format!("{a}/{s}")),
        number().prop_map(|s| format!("*/{s}")),
        (number(), number(), number()).prop_map(|(a, b, s)| format!("{a}-{b}/{s}")),
        number().prop_map(|n| format!("L-{n}")),
        number().prop_map(|n| format!("{n}W")),
        number().prop_map(|n| format!("{n}L")),
        (number(), number()).prop_map(|(d, k)| format!("{d}#{k}")),
        prop::sample::select(vec!["MON", "sun", "SAT-SUN", "JAN", "dec", "FEB-NOV/3", "MON#2", "FRIL"]).prop_map(String::from),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop::collection::vec(item(), 1..4).prop_map(|items| items.join(","))
}

/// Expressions of 5, 6 and 7 fields built from the grammar, and macros.
fn expression() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(field(), 5..=7).prop_map(|f| f.join(" ")),
        prop::sample::select(vec!["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]).prop_map(String::from),
        (number(), prop::sample::select(vec!["ms", "s", "m", "h", "d"])).prop_map(|(n, u)| format!("@every {n}{u}")),
    ]
}

fn one_line(err: &str) -> bool {
    !err.is_empty() && !err.contains('\n')
}

/// The next two times of a schedule, checked for order.
fn check_next(s: &Schedule, after: DateTime<Utc>, tz: Tz) -> Result<(), TestCaseError> {
    if let Some(t) = s.next_after(after, tz) {
        prop_assert!(t > after, "next {t} is not after {after}");
        if let Some(u) = s.next_after(t, tz) {
            prop_assert!(u > t, "next after {t} is {u}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_says_why_in_one_line(text in "(?s).{0,80}") {
        match Schedule::parse_new(&text) {
            Ok(s) => check_next(&s, Utc.timestamp_opt(1_800_000_000, 0).unwrap(), Tz::UTC)?,
            Err(e) => prop_assert!(one_line(&e), "{text:?}: {e:?}"),
        }
    }

    #[test]
    fn macros_and_durations_with_control_characters_say_why_in_one_line(text in "@(every )?[a-z0-9!\\x00-\\x1f]{0,12}") {
        if let Err(e) = Schedule::parse_new(&text) {
            prop_assert!(one_line(&e) && !e.chars().any(char::is_control), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn every_form_at_every_bound_parses_or_says_why(expr in expression(), after in instant(), tz in zone()) {
        match Schedule::parse(&expr) {
            Ok(s) => check_next(&s, after, tz)?,
            Err(e) => prop_assert!(one_line(&e), "{expr:?}: {e:?}"),
        }
        if let Err(e) = Schedule::parse_new(&expr) {
            prop_assert!(one_line(&e), "{expr:?}: {e:?}");
        }
    }

    #[test]
    fn clone_strings_parse_or_say_why(name in "[A-Za-z0-9._/ -]{0,70}", expr in expression(), cmd in ".{0,20}") {
        let text = format!("{name}:{expr}:{cmd}");
        match parse_clone(text.as_bytes()) {
            Ok(r) => {
                prop_assert_eq!(&r.name, &name);
                prop_assert_eq!(&r.cmd, &cmd);
                prop_assert!(Schedule::parse_new(&r.schedule).is_ok());
            }
            Err(e) => prop_assert!(one_line(&e), "{text:?}: {e:?}"),
        }
    }

    #[test]
    fn any_bytes_to_clone_and_ctl_are_answered_in_one_line(data in prop::collection::vec(any::<u8>(), 0..200)) {
        for err in [parse_clone(&data).err(), parse_ctl(&data).err(), parse_cluster_ctl(&data).err()].into_iter().flatten() {
            prop_assert!(one_line(&err), "{data:?}: {err:?}");
        }
    }

    #[test]
    fn ctl_verbs_with_any_arguments_parse_or_say_why(
        verb in prop::sample::select(vec!["start", "stop", "run", "kill", "delete", "tz", "overlap", "catchup", "timeout",
            "add", "promote", "remove", "backup", "limit"]),
        args in prop::collection::vec(prop_oneof![number(), "[a-z/:._0-9]{0,12}".prop_map(String::from)], 0..4),
    ) {
        let line = format!("{verb} {}", args.join(" "));
        for err in [parse_ctl(line.as_bytes()).err(), parse_cluster_ctl(line.as_bytes()).err()].into_iter().flatten() {
            prop_assert!(one_line(&err), "{line:?}: {err:?}");
        }
    }
}
