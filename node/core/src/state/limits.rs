//! The cluster's limits on replicated state. They are part of the state
//! (set with `limit NAME VALUE` on `/ctl`, one replicated command), not
//! per-node flags, because apply must trim and refuse identically on every
//! node. A lowered limit takes effect at the next change it governs (the
//! next line of a job's log, the next run, the next create), never by
//! rewriting history at once.

use serde::{Deserialize, Serialize};

use super::{encode, KvError, KvRead};

const KEY: &[u8] = b"\x00limits";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Jobs the cluster holds at most; creates beyond are refused.
    pub max_jobs: u64,
    /// Run records kept per job (the oldest go first).
    pub runs_kept: u64,
    /// Output kept per run; the rest is dropped, with a line saying so.
    pub run_output_bytes: u64,
    /// A job's log is trimmed from its oldest line to stay under this.
    pub log_bytes: u64,
    /// How late an accepted run may still begin, in milliseconds, for jobs
    /// that set no `deadline` of their own. Large, so that load (a herd, a
    /// full concurrency cap) delays runs instead of dropping them; as
    /// Kubernetes' `startingDeadlineSeconds`.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// `/events` is trimmed from its oldest line to stay under this.
    #[serde(default = "default_events_bytes")]
    pub events_bytes: u64,
    /// Webhook deliveries kept pending at most; past it the oldest is
    /// dropped (`notify.rs`).
    #[serde(default = "default_notify_pending")]
    pub notify_pending: u64,
}

pub const DEFAULT_NOTIFY_PENDING: u64 = 10_000;

fn default_notify_pending() -> u64 {
    DEFAULT_NOTIFY_PENDING
}

pub const DEFAULT_EVENTS_BYTES: u64 = 4 << 20;

fn default_events_bytes() -> u64 {
    DEFAULT_EVENTS_BYTES
}

pub const DEFAULT_DEADLINE_MS: u64 = 60_000;

fn default_deadline_ms() -> u64 {
    DEFAULT_DEADLINE_MS
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_jobs: 200_000, runs_kept: 100, run_output_bytes: 1 << 20, log_bytes: 1 << 20, deadline_ms: DEFAULT_DEADLINE_MS, events_bytes: DEFAULT_EVENTS_BYTES, notify_pending: DEFAULT_NOTIFY_PENDING }
    }
}

/// Each limit's name on `/ctl`, and its allowed range.
pub const NAMES: [(&str, u64, u64); 7] = [
    ("max-jobs", 1, 10_000_000),
    ("runs-kept", 1, 10_000),
    ("run-output-bytes", 1 << 10, 64 << 20),
    ("log-bytes", 4 << 10, 64 << 20),
    ("deadline", 1000, 86_400_000),
    ("events-bytes", 4 << 10, 256 << 20),
    ("notify-pending", 1, 1_000_000),
];

/// Limits whose value is a duration (written `30s`, shown the same way,
/// kept in milliseconds); the others are whole numbers.
pub fn is_duration(name: &str) -> bool {
    name == "deadline"
}

impl Limits {
    /// Sets the limit called `name`, or says why not (unknown name, out of range).
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), String> {
        let Some((_, lo, hi)) = NAMES.iter().find(|(n, _, _)| *n == name) else {
            let names: Vec<&str> = NAMES.iter().map(|(n, _, _)| *n).collect();
            return Err(format!("no limit {name:?}; the limits are {}", names.join(", ")));
        };
        if value < *lo || value > *hi {
            let show = |v: u64| if is_duration(name) { crate::cron::duration_text(v as i64) } else { v.to_string() };
            return Err(format!("limit {name} must be between {} and {}, not {}", show(*lo), show(*hi), show(value)));
        }
        match name {
            "max-jobs" => self.max_jobs = value,
            "runs-kept" => self.runs_kept = value,
            "run-output-bytes" => self.run_output_bytes = value,
            "deadline" => self.deadline_ms = value,
            "events-bytes" => self.events_bytes = value,
            "notify-pending" => self.notify_pending = value,
            _ => self.log_bytes = value,
        }
        Ok(())
    }

    /// `(name, value as written)` for each limit, in `NAMES` order.
    pub fn list(&self) -> [(&'static str, String); 7] {
        [
            ("max-jobs", self.max_jobs.to_string()),
            ("runs-kept", self.runs_kept.to_string()),
            ("run-output-bytes", self.run_output_bytes.to_string()),
            ("log-bytes", self.log_bytes.to_string()),
            ("deadline", crate::cron::duration_text(self.deadline_ms as i64)),
            ("events-bytes", self.events_bytes.to_string()),
            ("notify-pending", self.notify_pending.to_string()),
        ]
    }
}

pub fn load(kv: &impl KvRead) -> Result<Limits, KvError> {
    match kv.get(KEY)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| KvError::Corrupt { key: "limits".into(), reason: e.to_string() }),
        None => Ok(Limits::default()),
    }
}

pub fn store(kv: &mut impl super::Kv, limits: &Limits) {
    kv.put(KEY.to_vec(), encode(limits));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ranges_and_defaults() {
        let mut l = Limits::default();
        assert_eq!(l.list()[1], ("runs-kept", "100".to_string()));
        assert_eq!(l.list()[4], ("deadline", "1m".to_string()));
        assert_eq!(l.set("deadline", 10).unwrap_err(), "limit deadline must be between 1s and 1d, not 10ms");
        // A record stored before the deadline existed reads with its default.
        let old: Limits = serde_json::from_str(r#"{"max_jobs":1,"runs_kept":2,"run_output_bytes":3,"log_bytes":4}"#).unwrap();
        assert_eq!((old.deadline_ms, old.events_bytes), (DEFAULT_DEADLINE_MS, DEFAULT_EVENTS_BYTES));
        l.set("runs-kept", 5).unwrap();
        assert_eq!(l.runs_kept, 5);
        assert_eq!(l.set("runs-kept", 0).unwrap_err(), "limit runs-kept must be between 1 and 10000, not 0");
        assert!(l.set("speed", 1).unwrap_err().starts_with("no limit \"speed\"; the limits are max-jobs"));
        assert_eq!(l.runs_kept, 5, "a refused change changes nothing");
    }
}
