//! A job's scheduled times: its expression's, in its time zone, each moved
//! later by the job's spread offset. Every reader of "when is this job due"
//! goes through here (the scheduler, `schedule`'s next time), so the offset
//! is the same everywhere.
//!
//! The offset is `FNV-1a-64(name) mod (spread in seconds)`, whole seconds
//! in `[0, spread)`, like Jenkins' `H`: fixed by the name, the same on every
//! node and across versions (the hash is named and written out here, never
//! the standard library's `DefaultHasher`, whose output may change).

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use crate::cron::Schedule;
use crate::state::Job;

/// FNV-1a, 64 bits (the published offset basis and prime).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The offset a job called `name` gets from a spread of `spread_ms`.
pub fn spread_offset_ms(name: &str, spread_ms: i64) -> i64 {
    let secs = (spread_ms / 1000).max(1) as u64;
    (fnv1a64(name.as_bytes()) % secs) as i64 * 1000
}

/// A job's times.
pub struct Times {
    schedule: Schedule,
    tz: Tz,
    offset_ms: i64,
}

impl Times {
    /// `None` when the job's expression does not parse (a job always holds
    /// one that did, or none).
    pub fn of(job: &Job) -> Option<Times> {
        let schedule = Schedule::parse(&job.schedule).ok()?;
        let tz: Tz = job.tz.parse().unwrap_or(Tz::UTC);
        let offset_ms = job.spread_ms.map_or(0, |s| spread_offset_ms(&job.name, s));
        Some(Times { schedule, tz, offset_ms })
    }

    /// The first time strictly after `after_ms`.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let at = Utc.timestamp_millis_opt(after_ms.checked_sub(self.offset_ms)?).single()?;
        self.schedule.next_after(at, self.tz)?.timestamp_millis().checked_add(self.offset_ms)
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }
}

/// The shortest gap between two consecutive times of `schedule` in `tz`
/// over the next `SAMPLES` times from `from_ms` (enough to see a week's and
/// a month's pattern in all but yearly expressions, which are long anyway).
pub fn shortest_gap_ms(schedule: &Schedule, tz: Tz, from_ms: i64) -> Option<i64> {
    const SAMPLES: usize = 1000;
    let mut t = schedule.next_after(Utc.timestamp_millis_opt(from_ms).single()?, tz)?;
    let mut gap: Option<i64> = None;
    for _ in 0..SAMPLES {
        let Some(n) = schedule.next_after(t, tz) else { break };
        let g = n.timestamp_millis() - t.timestamp_millis();
        gap = Some(gap.map_or(g, |m| m.min(g)));
        t = n;
    }
    gap
}

/// Why `spread_ms` cannot be the spread of a job with `schedule` in `tz`:
/// it is not whole seconds, or not shorter than the expression's period.
pub fn check_spread(spread_ms: i64, schedule: &str, tz: &str, now_ms: i64) -> Result<(), String> {
    if spread_ms % 1000 != 0 {
        return Err(format!("spread {}: use whole seconds", crate::cron::duration_text(spread_ms)));
    }
    let Ok(schedule) = Schedule::parse(schedule) else { return Ok(()) };
    let tz: Tz = tz.parse().unwrap_or(Tz::UTC);
    match shortest_gap_ms(&schedule, tz, now_ms) {
        Some(period) if spread_ms > period => Err(format!(
            "spread {} is longer than the expression's period ({} between two of its times)",
            crate::cron::duration_text(spread_ms),
            crate::cron::duration_text(period)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_fixed_by_the_name_and_stay_in_range() {
        // Golden values: these must never change (they place users' jobs).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(spread_offset_ms("backup", 3_600_000), 1_647_000);
        assert_eq!(spread_offset_ms("report", 600_000), 323_000);
        assert_eq!(spread_offset_ms("tick", 1000), 0);
        for (i, spread) in [(0, 60_000), (1, 3_600_000), (2, 86_400_000)].iter().cycle().take(300).enumerate() {
            let off = spread_offset_ms(&format!("job{i}-{}", spread.0), spread.1);
            assert!((0..spread.1).contains(&off) && off % 1000 == 0, "{off} of {}", spread.1);
        }
    }

    #[test]
    fn times_move_by_the_offset() {
        let mut job = Job::new("backup", 1, "true", "0 * * * *", 0);
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000; // on the hour
        assert_eq!(Times::of(&job).unwrap().next_after(t0), Some(t0 + 3_600_000));
        job.spread_ms = Some(3_600_000);
        let times = Times::of(&job).unwrap();
        let off = spread_offset_ms("backup", 3_600_000);
        assert_eq!(times.next_after(t0), Some(t0 + off));
        assert_eq!(times.next_after(t0 + off), Some(t0 + 3_600_000 + off));
    }

    #[test]
    fn a_spread_past_the_period_is_refused() {
        let now = 1_700_000_000_000;
        assert_eq!(check_spread(600_000, "*/15 * * * *", "UTC", now), Ok(()));
        assert_eq!(check_spread(900_000, "*/15 * * * *", "UTC", now), Ok(()));
        let err = check_spread(960_000, "*/15 * * * *", "UTC", now).unwrap_err();
        assert_eq!(err, "spread 16m is longer than the expression's period (15m between two of its times)");
        // Two times close together in an otherwise sparse expression count.
        assert!(check_spread(600_000, "0 9,9 * * *", "UTC", now).is_ok());
        assert!(check_spread(7_200_000, "0 9,10 * * *", "UTC", now).is_err());
        assert!(check_spread(1500, "@hourly", "UTC", now).unwrap_err().contains("whole seconds"));
    }
}
