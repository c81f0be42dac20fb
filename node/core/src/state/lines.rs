//! Whole lines kept at logical offsets under a key prefix: a job's log
//! (`log.rs`) and the cluster's events (`events.rs`). Each line is stored
//! under `PREFIX OFFSET` (big-endian), where OFFSET is counted from the
//! first line ever written. Trimming drops whole lines from the front and
//! moves `start`; `end` only grows. So a reader never sees a torn or
//! repeated line, and the file's length is `end`.

use serde::{Deserialize, Serialize};

use super::{Kv, KvError, KvSeek};

/// The logical offsets of the lines kept: the first byte still kept, and
/// the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

/// Where one store of lines lives, and what it is called in errors
/// (`log of NAME`, `events`).
pub struct Lines<'a> {
    pub prefix: &'a [u8],
    pub kind: &'static str,
    pub name: &'a str,
}

impl Lines<'_> {
    pub fn key(&self, offset: u64) -> Vec<u8> {
        [self.prefix, &offset.to_be_bytes()].concat()
    }

    fn missing(&self, at: u64) -> KvError {
        KvError::Corrupt {
            key: format!("{}{}{} at {at}", self.kind, if self.name.is_empty() { "" } else { " of " }, self.name),
            reason: "missing line".into(),
        }
    }

    /// Stores one line (its newline included) at the end.
    pub fn push(&self, kv: &mut impl Kv, span: &mut Span, line: Vec<u8>) {
        let len = line.len() as u64;
        kv.put(self.key(span.end), line);
        span.end += len;
    }

    /// Drops whole lines from the front until at most `limit` bytes remain.
    pub fn trim(&self, kv: &mut impl Kv, span: &mut Span, limit: u64) -> Result<(), KvError> {
        while span.end - span.start > limit {
            let key = self.key(span.start);
            let Some(line) = kv.get(&key)? else {
                return Err(self.missing(span.start));
            };
            kv.delete(key);
            span.start += line.len() as u64;
        }
        Ok(())
    }

    /// Reads `count` bytes from logical `offset`: an offset below `start`
    /// reads from `start`. Returns the bytes and the logical offset they
    /// start at. Costs one seek and one get per line read, however many
    /// lines are kept (a follower of the end, or a tail, reads only the end).
    pub fn read(
        &self,
        kv: &impl KvSeek,
        span: Span,
        offset: u64,
        count: usize,
    ) -> Result<(u64, Vec<u8>), KvError> {
        let start = offset.max(span.start);
        let mut out = Vec::new();
        if start >= span.end || count == 0 {
            return Ok((start, out));
        }
        // The line holding `start`: the last line beginning at or before it.
        let n = self.prefix.len();
        let found = kv
            .key_at_or_before(&self.key(start), self.prefix)?
            .and_then(|k| Some(u64::from_be_bytes(k.get(n..n + 8)?.try_into().ok()?)));
        let mut at = found.map_or(span.start, |o| o.max(span.start));
        while at < span.end && out.len() < count {
            let Some(line) = kv.get(&self.key(at))? else {
                return Err(self.missing(at));
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
}
