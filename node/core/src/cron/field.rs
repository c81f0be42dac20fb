//! One field of a cron expression: lists of values, ranges, steps and
//! names, plus the day fields' specials (L, W, #, ?). Parsing only.

/// A set of small integers, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bits(pub u64);

impl Bits {
    pub fn has(self, v: u32) -> bool {
        v < 64 && self.0 & (1 << v) != 0
    }
    pub fn set(&mut self, v: u32) {
        self.0 |= 1 << v;
    }
    /// The smallest member ≥ `from`.
    pub fn first_from(self, from: u32) -> Option<u32> {
        (from..64).find(|v| self.has(*v))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    /// Vixie numbering: 0–7, 0 and 7 are Sunday.
    DayOfWeekVixie,
    /// Quartz numbering: 1–7, 1 is Sunday.
    DayOfWeekQuartz,
    Year,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Second => "second",
            Kind::Minute => "minute",
            Kind::Hour => "hour",
            Kind::DayOfMonth => "day-of-month",
            Kind::Month => "month",
            Kind::DayOfWeekVixie | Kind::DayOfWeekQuartz => "day-of-week",
            Kind::Year => "year",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Kind::Second | Kind::Minute => (0, 59),
            Kind::Hour => (0, 23),
            Kind::DayOfMonth => (1, 31),
            Kind::Month => (1, 12),
            Kind::DayOfWeekVixie => (0, 7),
            Kind::DayOfWeekQuartz => (1, 7),
            Kind::Year => (1970, 2199),
        }
    }

    fn names(self) -> &'static [&'static str] {
        const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            Kind::Month => MONTHS,
            Kind::DayOfWeekVixie | Kind::DayOfWeekQuartz => DAYS,
            _ => &[],
        }
    }

    /// Turns a name or number into this field's numbering.
    fn value(self, s: &str) -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = self.names().iter().position(|n| *n == upper) {
            return Ok(match self {
                Kind::Month => i as u32 + 1,
                Kind::DayOfWeekQuartz => i as u32 + 1,
                _ => i as u32,
            });
        }
        let v: u32 = s.parse().map_err(|_| format!("{} field: {s:?} is not a number or name", self.name()))?;
        let (lo, hi) = self.bounds();
        if v < lo || v > hi {
            let hint = if self == Kind::DayOfWeekQuartz { " (Quartz counts 1 = Sunday to 7 = Saturday)" } else { "" };
            return Err(format!("{} field: {v} is outside {lo}-{hi}{hint}", self.name()));
        }
        Ok(v)
    }

    /// Day of week as 0 = Sunday … 6 = Saturday.
    fn weekday(self, v: u32) -> u32 {
        match self {
            Kind::DayOfWeekVixie => v % 7,
            Kind::DayOfWeekQuartz => v - 1,
            _ => v,
        }
    }
}

/// A parsed field. `values` uses the field's own numbering except day of
/// week (0 = Sunday) and year (offset from 1970, in `years`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field {
    pub values: Bits,
    /// Years as offsets from 1970 (the year field only).
    pub years: Vec<bool>,
    /// `*` or `?`: every value, and "unrestricted" for the day-field rule.
    pub any: bool,
    /// Day of month: `L` (last day), `L-N` (N days before the last).
    pub last_minus: Vec<u32>,
    /// Day of month: `NW` (nearest weekday to N), `LW` as N = 0.
    pub nearest_weekday: Vec<u32>,
    /// Day of week: `NL` (the last such weekday of the month).
    pub last_weekday_of: Vec<u32>,
    /// Day of week: `N#K` (the K-th such weekday), as (weekday, K).
    pub nth_weekday: Vec<(u32, u32)>,
}

pub fn parse(text: &str, kind: Kind) -> Result<Field, String> {
    let mut f = Field::default();
    if kind == Kind::Year {
        f.years = vec![false; 230];
    }
    for item in text.split(',') {
        parse_item(item, kind, &mut f)?;
    }
    Ok(f)
}

fn set(f: &mut Field, kind: Kind, v: u32) {
    match kind {
        // `value` and `bounds` keep v within 1970..=2199, the 230 slots of `years`.
        Kind::Year => f.years[(v - 1970) as usize] = true,
        Kind::DayOfWeekVixie | Kind::DayOfWeekQuartz => f.values.set(kind.weekday(v)),
        _ => f.values.set(v),
    }
}

fn parse_item(item: &str, kind: Kind, f: &mut Field) -> Result<(), String> {
    let bad = || format!("{} field: cannot read {item:?}", kind.name());
    if item.is_empty() {
        return Err(bad());
    }
    let is_dom = kind == Kind::DayOfMonth;
    let is_dow = matches!(kind, Kind::DayOfWeekVixie | Kind::DayOfWeekQuartz);
    let upper = item.to_ascii_uppercase();
    if item == "?" {
        if !(is_dom || is_dow) {
            return Err(format!("{} field: ? is only for the day fields", kind.name()));
        }
        f.any = true;
        return fill(f, kind, 1);
    }
    if is_dom {
        if upper == "L" {
            f.last_minus.push(0);
            return Ok(());
        }
        if upper == "LW" {
            f.nearest_weekday.push(0);
            return Ok(());
        }
        if let Some(n) = upper.strip_prefix("L-") {
            let n: u32 = n.parse().map_err(|_| bad())?;
            if n > 30 {
                return Err(bad());
            }
            f.last_minus.push(n);
            return Ok(());
        }
        if let Some(n) = upper.strip_suffix('W') {
            f.nearest_weekday.push(kind.value(n)?);
            return Ok(());
        }
    }
    if is_dow {
        if upper == "L" {
            // Quartz: L alone in day-of-week is Saturday.
            f.values.set(6);
            return Ok(());
        }
        if let Some((day, k)) = upper.split_once('#') {
            let k: u32 = k.parse().map_err(|_| bad())?;
            if !(1..=5).contains(&k) {
                return Err(format!("day-of-week field: #{k} must be 1-5"));
            }
            f.nth_weekday.push((kind.weekday(kind.value(day)?), k));
            return Ok(());
        }
        if let Some(day) = upper.strip_suffix('L') {
            f.last_weekday_of.push(kind.weekday(kind.value(day)?));
            return Ok(());
        }
    }
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => {
            let s: u32 = s.parse().map_err(|_| bad())?;
            if s == 0 {
                return Err(format!("{} field: step 0 in {item:?}", kind.name()));
            }
            (r, s)
        }
        None => (item, 1),
    };
    let (lo, hi) = kind.bounds();
    let (from, to) = if range == "*" {
        if step == 1 {
            f.any = true;
        }
        (lo, hi)
    } else if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (kind.value(a)?, kind.value(b)?);
        if a > b {
            return Err(format!("{} field: range {a}-{b} runs backwards", kind.name()));
        }
        (a, b)
    } else {
        let a = kind.value(range)?;
        // "N/S" (Quartz) starts at N and steps to the end of the range.
        (a, if item.contains('/') { hi } else { a })
    };
    // step_by, not `v += step`: a step near u32::MAX must end the loop,
    // not wrap around to a value below `to` (and index past the years).
    for v in (from..=to).step_by(step as usize) {
        set(f, kind, v);
    }
    Ok(())
}

fn fill(f: &mut Field, kind: Kind, step: u32) -> Result<(), String> {
    let (lo, hi) = kind.bounds();
    for v in (lo..=hi).step_by(step as usize) {
        set(f, kind, v);
    }
    Ok(())
}
