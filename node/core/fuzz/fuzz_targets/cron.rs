//! Any text as a cron expression: parsing answers a schedule or one line
//! of error and never panics; a schedule's next time, from an instant and
//! in a zone the input also chooses, is later than that instant, and the
//! one after it later still.
#![no_main]

use chrono::{TimeZone, Utc};
use chrono_tz::{Tz, TZ_VARIANTS};
use jobd_core::cron::Schedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 5 bytes choose the instant (seconds, up to about 2318)
    // and the zone; the rest is the expression.
    let Some((head, text)) = data.split_at_checked(5) else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let secs = i64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]])) * 2;
    let tz: Tz = TZ_VARIANTS[usize::from(head[4]) % TZ_VARIANTS.len()];
    for parsed in [Schedule::parse(text), Schedule::parse_new(text)] {
        match parsed {
            Ok(s) => {
                let after = Utc.timestamp_opt(secs, 0).single().expect("in range");
                if let Some(t) = s.next_after(after, tz) {
                    assert!(t > after, "{text:?}: next {t} is not after {after}");
                    if let Some(u) = s.next_after(t, tz) {
                        assert!(u > t, "{text:?}: next after {t} is {u}");
                    }
                }
            }
            Err(e) => assert!(!e.is_empty() && !e.contains('\n'), "{text:?}: {e:?}"),
        }
    }
});
