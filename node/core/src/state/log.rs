//! A job's log in the state machine: lines `TIMESTAMP:TEXT\n`, each stored
//! under `log/INCARNATION/OFFSET` (big-endian), where OFFSET is logical —
//! counted from the job's creation. Trimming drops whole lines from the
//! front and moves `log_start`; `log_end` only grows. So a reader never
//! sees a torn or repeated line, and the file's length is `log_end`.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::{Job, Kv, KvError, KvSeek};

pub fn line_key(incarnation: u64, offset: u64) -> Vec<u8> {
    [
        b"log/".as_slice(),
        &incarnation.to_be_bytes(),
        &offset.to_be_bytes(),
    ]
    .concat()
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
    for line in lines {
        let bytes = format!("{ts}:{line}\n").into_bytes();
        let len = bytes.len() as u64;
        kv.put(line_key(job.incarnation, job.log_end), bytes);
        job.log_end += len;
    }
    trim(kv, job, limit)
}

/// Drops whole lines from the front until at most `limit` bytes remain.
pub fn trim(kv: &mut impl Kv, job: &mut Job, limit: u64) -> Result<(), KvError> {
    while job.log_end - job.log_start > limit {
        let key = line_key(job.incarnation, job.log_start);
        let Some(line) = kv.get(&key)? else {
            return Err(KvError::Corrupt {
                key: format!("log of {} at {}", job.name, job.log_start),
                reason: "missing line".into(),
            });
        };
        kv.delete(key);
        job.log_start += line.len() as u64;
    }
    Ok(())
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
    let start = offset.max(job.log_start);
    let mut out = Vec::new();
    if start >= job.log_end || count == 0 {
        return Ok((start, out));
    }
    // The line holding `start`: the last line beginning at or before it.
    let prefix = line_key(job.incarnation, 0)[..12].to_vec();
    let found = kv
        .key_at_or_before(&line_key(job.incarnation, start), &prefix)?
        .and_then(|k| Some(u64::from_be_bytes(k.get(12..20)?.try_into().ok()?)));
    let mut at = found.map_or(job.log_start, |o| o.max(job.log_start));
    while at < job.log_end && out.len() < count {
        let key = line_key(job.incarnation, at);
        let Some(line) = kv.get(&key)? else {
            return Err(KvError::Corrupt {
                key: format!("log of {} at {at}", job.name),
                reason: "missing line".into(),
            });
        };
        let end = at + line.len() as u64;
        if end > start {
            let from = start.saturating_sub(at) as usize;
            let take = (line.len() - from).min(count - out.len());
            out.extend_from_slice(&line[from..from + take]);
        }
        at = end;
    }
    Ok((start, out))
}
