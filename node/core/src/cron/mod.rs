//! Cron expressions in every dialect jobd accepts, and their next time.
//!
//! - Quartz, as in the original jobd: `sec min hour dom month dow [year]`,
//!   with `?`, `L`, `W`, `#`, day-of-week 1–7 (1 = Sunday). Recognised by a
//!   seventh field or a `?`.
//! - Six fields with seconds, otherwise: `sec min hour dom month dow`, with
//!   Vixie's day-of-week numbering and day rule (below).
//! - Classic crontab: `min hour dom month dow`, day-of-week 0–7 (0 and 7 are
//!   Sunday), names, ranges and steps. When both day fields are restricted
//!   (neither starts with `*`), a day matches if either does (Vixie's OR).
//! - `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
//! - `@every DURATION` (`90s`, `5m`, `1h30m`, `2d`): multiples of the
//!   duration since the Unix epoch, so a failover never shifts its phase.
//!
//! Times are computed in the job's time zone. A local time skipped by a
//! DST change fires once, at the first instant after the gap; a local time
//! that occurs twice fires once, at its first occurrence.

pub mod field;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use field::{Field, Kind};

/// How far ahead `next_after` looks before deciding an expression never
/// fires again (28 years cover every weekday/leap-year combination).
const HORIZON_DAYS: i64 = 366 * 28 + 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Box<Cron>),
    /// Every this many milliseconds since the epoch.
    Every { ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    seconds: Field,
    minutes: Field,
    hours: Field,
    dom: Field,
    months: Field,
    dow: Field,
    years: Option<Field>,
    /// Both day fields restricted in a Vixie expression: either may match.
    day_or: bool,
}

const MACROS: &str = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly and @every DURATION";

fn macro_expansion(name: &str) -> Option<&'static str> {
    Some(match name {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return None,
    })
}

/// `90s`, `5m`, `1h30m`, `2d`, `250ms` as milliseconds; at least 1 s.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot read duration {s:?} (for example 30s, 5m, 1h30m, 2d)");
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    if s.is_empty() {
        return Err(bad());
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit_ms: i64 = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n.checked_mul(unit_ms).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if total < 1000 {
        return Err(format!("duration {s} is shorter than 1s"));
    }
    Ok(total)
}

/// A duration as `parse_duration_ms` reads it back: in the largest unit
/// that divides it (`90s`, `1m`, `1500ms`, `2d`).
pub fn duration_text(ms: i64) -> String {
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// An error that quotes the expression stays one line: its control
/// characters (a newline inside a macro's name, say) are written as escapes
/// (`\n`). Found by the fuzz target `cron`.
fn one_line(e: String) -> String {
    if !e.chars().any(char::is_control) {
        return e;
    }
    e.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

impl Schedule {
    /// Parses an expression a client gave: `parse`, and refuses one that
    /// can never fire (30 February, say). The error is one line.
    pub fn parse_new(expr: &str) -> Result<Schedule, String> {
        let s = Schedule::parse(expr)?;
        let epoch = Utc.timestamp_opt(0, 0).single().expect("the epoch is a valid instant");
        let now_ish = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or(epoch);
        if s.next_after(now_ish, Tz::UTC).is_none() {
            return Err("the expression never fires".into());
        }
        Ok(s)
    }

    /// Parses an expression (syntax only: cheap enough for every scheduler
    /// tick; stored expressions were checked by `parse_new` when written).
    /// The error is one line naming what is wrong.
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        Schedule::parse_syntax(expr).map_err(one_line)
    }

    fn parse_syntax(expr: &str) -> Result<Schedule, String> {
        let expr = expr.trim();
        if let Some(d) = expr.strip_prefix("@every") {
            return Ok(Schedule::Every { ms: parse_duration_ms(d.trim()).map_err(|e| format!("@every: {e}"))? });
        }
        let text = match expr {
            e if e.starts_with('@') => macro_expansion(e).ok_or_else(|| format!("unknown macro {e}; the macros are {MACROS}"))?,
            e => e,
        };
        let f: Vec<&str> = text.split_whitespace().collect();
        let quartz = f.len() == 7 || f.contains(&"?");
        let cron = match (f.len(), quartz) {
            (5, false) => Cron::new(&["0", f[0], f[1], f[2], f[3], f[4]], None, false)?,
            (6, false) => Cron::new(&f, None, false)?,
            (6, true) | (7, true) => Cron::new(&f[..6], f.get(6).copied(), true)?,
            (0, _) => return Err("empty expression; for example */5 * * * * (every five minutes)".into()),
            (n, true) if n < 7 => {
                let crontab = if n == 5 { "; for a 5-field crontab, write * instead of ?" } else { "" };
                return Err(format!(
                    "{n} fields with a ?, which makes it Quartz: want 6 or 7 (sec min hour dom month dow [year]){crontab}"
                ));
            }
            (n, _) => {
                return Err(format!("{n} fields; want 5 (min hour dom month dow), 6 (with seconds) or 7 (Quartz, with year)"))
            }
        };
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first scheduled instant strictly after `after`, in zone `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every { ms } => {
                let n = after.timestamp_millis().div_euclid(*ms) + 1;
                Utc.timestamp_millis_opt(n.checked_mul(*ms)?).single()
            }
            Schedule::Cron(c) => c.next_after(after, tz),
        }
    }
}

impl Cron {
    fn new(f: &[&str], year: Option<&str>, quartz: bool) -> Result<Cron, String> {
        let dow_kind = if quartz { Kind::DayOfWeekQuartz } else { Kind::DayOfWeekVixie };
        let dom = field::parse(f[3], Kind::DayOfMonth)?;
        let dow = field::parse(f[5], dow_kind)?;
        if quartz && !dom.any && !dow.any {
            return Err("a Quartz expression needs ? in day-of-month or day-of-week (it cannot restrict both)".into());
        }
        let day_or = !quartz && !f[3].starts_with('*') && !f[5].starts_with('*');
        Ok(Cron {
            seconds: field::parse(f[0], Kind::Second)?,
            minutes: field::parse(f[1], Kind::Minute)?,
            hours: field::parse(f[2], Kind::Hour)?,
            dom,
            months: field::parse(f[4], Kind::Month)?,
            dow,
            years: year.map(|y| field::parse(y, Kind::Year)).transpose()?,
            day_or,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if !self.months.values.has(d.month()) {
            return false;
        }
        if let Some(y) = &self.years {
            let i = d.year() - 1970;
            if i < 0 || !y.years.get(i as usize).copied().unwrap_or(false) {
                return false;
            }
        }
        let dom = dom_matches(&self.dom, d);
        let dow = dow_matches(&self.dow, d);
        if self.day_or {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first time of day at or after `from` that the time fields allow.
    fn first_time_from(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (from.hour(), from.minute(), from.second());
        for h in (h0..24).filter(|h| self.hours.values.has(*h)) {
            let m_start = if h == h0 { m0 } else { 0 };
            for m in (m_start..60).filter(|m| self.minutes.values.has(*m)) {
                let s_start = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = self.seconds.values.first_from(s_start).filter(|s| *s < 60) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }

    fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // Whole seconds, strictly after `after`.
        let start = after.with_timezone(&tz).naive_local().with_nanosecond(0)? + Duration::seconds(1);
        let mut day = start.date();
        let mut from = start.time();
        for _ in 0..HORIZON_DAYS {
            if self.day_matches(day) {
                let mut cursor = Some(from);
                while let Some(t) = cursor.and_then(|f| self.first_time_from(f)) {
                    if let Some(instant) = resolve(tz, NaiveDateTime::new(day, t)) {
                        if instant > after {
                            return Some(instant);
                        }
                    }
                    // Not later than `after` (the first pass of a repeated
                    // hour): look on from the next second of the day.
                    let (next, wrapped) = t.overflowing_add_signed(Duration::seconds(1));
                    cursor = (wrapped == 0).then_some(next);
                }
            }
            day = day.succ_opt()?;
            from = NaiveTime::MIN;
        }
        None
    }
}

/// A local time as an instant: its first occurrence if it repeats, the
/// end of the gap if a DST change skips it.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // Find the first valid minute after the gap (gaps are at most a few hours).
            let mut probe = local;
            for _ in 0..(6 * 60) {
                probe += Duration::minutes(1);
                let probe_min = probe.with_second(0)?;
                if let LocalResult::Single(t) | LocalResult::Ambiguous(t, _) = tz.from_local_datetime(&probe_min) {
                    return Some(t.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

fn last_day_of_month(d: NaiveDate) -> u32 {
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|f| f.pred_opt()).map_or(28, |l| l.day())
}

/// Quartz's `NW`: the weekday nearest to day `n` (0: the last day) of
/// `d`'s month, never crossing into another month.
fn nearest_weekday(d: NaiveDate, n: u32) -> Option<u32> {
    let last = last_day_of_month(d);
    let n = if n == 0 { last } else { n };
    let target = d.with_day(n)?;
    Some(match target.weekday() {
        Weekday::Sat if n == 1 => 3,
        Weekday::Sat => n - 1,
        Weekday::Sun if n == last => n - 2,
        Weekday::Sun => n + 1,
        _ => n,
    })
}

fn dom_matches(f: &Field, d: NaiveDate) -> bool {
    if f.values.has(d.day()) {
        return true;
    }
    let last = last_day_of_month(d);
    if f.last_minus.iter().any(|n| last.checked_sub(*n) == Some(d.day())) {
        return true;
    }
    f.nearest_weekday.iter().any(|n| nearest_weekday(d, *n) == Some(d.day()))
}

fn dow_matches(f: &Field, d: NaiveDate) -> bool {
    let wd = d.weekday().num_days_from_sunday();
    if f.values.has(wd) {
        return true;
    }
    let last = last_day_of_month(d);
    if f.last_weekday_of.contains(&wd) && d.day() + 7 > last {
        return true;
    }
    f.nth_weekday.iter().any(|(w, k)| *w == wd && (d.day() - 1) / 7 + 1 == *k)
}

#[cfg(test)]
mod tests;
