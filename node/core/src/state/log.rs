//! A job's log in the state machine: lines `TIMESTAMP:TEXT\n`, kept as
//! `lines.rs` keeps lines, under `log/INCARNATION/OFFSET`, where OFFSET is
//! logical (counted from the job's creation): the span is the job's
//! `log_start` and `log_end`.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::lines::{Lines, Span};
use super::{Job, Kv, KvError, KvSeek};

fn prefix(incarnation: u64) -> [u8; 12] {
    let mut p = [0; 12];
    p[..4].copy_from_slice(b"log/");
    p[4..].copy_from_slice(&incarnation.to_be_bytes());
    p
}

/// Runs `f` on the job's lines and its span, and keeps the span it leaves.
fn with_lines<T>(job: &mut Job, f: impl FnOnce(&Lines, &mut Span) -> T) -> T {
    let prefix = prefix(job.incarnation);
    let mut span = Span { start: job.log_start, end: job.log_end };
    let out = f(&Lines { prefix: &prefix, kind: "log", name: &job.name }, &mut span);
    (job.log_start, job.log_end) = (span.start, span.end);
    out
}

/// The original jobd's layout, always nine fractional digits, in `tz`:
/// `2014-02-11 09:42:33.454707331 -0600 CST`.
pub fn timestamp(ms: i64, tz: &str) -> String {
    let tz: Tz = tz.parse().unwrap_or(Tz::UTC);
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S%.9f %z %Z")
            .to_string(),
        None => "-".into(),
    }
}

/// Appends one line per line of `text` (an empty text is one empty line),
/// then trims to the retention limit.
pub fn append(kv: &mut impl Kv, job: &mut Job, at_ms: i64, text: &str) -> Result<(), KvError> {
    let limit = super::limits::load(kv)?.log_bytes;
    append_within(kv, job, at_ms, text, limit)
}

/// `append` with the log limit already loaded (a run's output appends line
/// by line, and the apply loop need not read the limits once per line).
pub fn append_within(
    kv: &mut impl Kv,
    job: &mut Job,
    at_ms: i64,
    text: &str,
    limit: u64,
) -> Result<(), KvError> {
    let ts = timestamp(at_ms, &job.tz);
    let lines: Vec<&str> = if text.is_empty() {
        vec![""]
    } else {
        text.lines().collect()
    };
    with_lines(job, |store, span| {
        for line in lines {
            store.push(kv, span, format!("{ts}:{line}\n").into_bytes());
        }
        store.trim(kv, span, limit)
    })
}

/// Drops whole lines from the front until at most `limit` bytes remain.
pub fn trim(kv: &mut impl Kv, job: &mut Job, limit: u64) -> Result<(), KvError> {
    with_lines(job, |store, span| store.trim(kv, span, limit))
}

/// Deletes every kept line of the job.
pub fn clear(kv: &mut impl Kv, job: &mut Job) -> Result<(), KvError> {
    trim(kv, job, 0)
}

/// Reads `count` bytes from logical `offset`, whole lines being stored: an
/// offset below `log_start` reads from `log_start`. Returns the bytes and
/// the logical offset they start at. Costs one seek and one get per line
/// read, however long the log (a follower of its end, or a tail, reads
/// only the end).
pub fn read(
    kv: &impl KvSeek,
    job: &Job,
    offset: u64,
    count: usize,
) -> Result<(u64, Vec<u8>), KvError> {
    let span = Span { start: job.log_start, end: job.log_end };
    let lines = Lines { prefix: &prefix(job.incarnation), kind: "log", name: &job.name };
    lines.read(kv, span, offset, count)
}
