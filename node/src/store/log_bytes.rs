//! Snapshots by log size, beside openraft's count of entries.
//!
//! openraft 0.9's only snapshot policy counts entries (`LogsSinceLast`).
//! Since group commit an entry can carry hundreds of commands and up to a
//! megabyte (run output is the bulk), so `--snapshot-every` 10,000 entries
//! could leave gigabytes of log on disk before the purge behind a snapshot.
//! The log store counts the bytes it appends; `watch` asks openraft for a
//! snapshot once they pass `--snapshot-log-bytes`, and the purge that
//! follows any snapshot starts the count again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::types::Raft;

/// How often the count is looked at. A snapshot takes about as long to
/// build at the sizes that matter here, so looking more often gains nothing.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Bytes appended to this node's log since it was last purged. Starts at
/// zero with the process: after a restart the log may hold up to twice the
/// limit once (the entry count still bounds it).
#[derive(Debug, Default)]
pub struct LogBytes(AtomicU64);

impl LogBytes {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// After a purge. The bytes appended between the snapshot and its purge
    /// are forgotten too; they are few, and only delay the next snapshot.
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Triggers a snapshot whenever more than `limit` bytes were appended since
/// the last purge and something was applied since the last snapshot (a
/// snapshot of the same index would purge nothing). A trigger while one is
/// being built is ignored by openraft; the next check tries again.
pub fn watch(raft: Raft, bytes: Arc<LogBytes>, limit: u64, mut stopped: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            let appended = bytes.get();
            if appended < limit {
                continue;
            }
            let (applied, snapshot) = {
                let m = raft.metrics().borrow().clone();
                (m.last_applied.map_or(0, |l| l.index), m.snapshot.map_or(0, |l| l.index))
            };
            if applied <= snapshot {
                continue;
            }
            info!(appended, limit, applied, "log past --snapshot-log-bytes: taking a snapshot");
            if let Err(e) = raft.trigger().snapshot().await {
                warn!("triggering a snapshot: {e}");
                return;
            }
        }
    })
}
