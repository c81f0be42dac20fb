//! Where a write's time goes on this node, stage by stage: how many times
//! each stage ran and the time spent in it, kept in process-wide counters
//! (two relaxed atomic adds per stage, so always on) and served with the
//! Prometheus metrics as `jobd_write_stage_seconds_sum` / `_count`.
//! `bench -- create-stages` reads them around a run of one-client creates
//! to give the per-stage breakdown of one create in `docs/BENCHMARKS.md`.
//!
//! A stage is timed where our code can see it begin and end; openraft's
//! own work between them (its core task, the replication streams) is the
//! difference between an outer stage and the ones inside it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The stages, in the order a forwarded write meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A follower: the gRPC call that hands a write to the leader, until
    /// its answer (`write.rs`).
    ForwardCall,
    /// The leader: serving that call, from its decoded request to its
    /// encoded answer (`net/forward.rs`).
    ForwardServe,
    /// The leader: a write waiting in the batching task for the entry
    /// before it (`propose.rs`).
    ProposeWait,
    /// The leader: openraft's `client_write` of one entry, until it is
    /// committed and applied here (`propose.rs`).
    Commit,
    /// Any node: one append of entries to the Raft log, synced
    /// (`store/log_store.rs`).
    LogAppend,
    /// The leader: one AppendEntries call that carries entries, to a
    /// follower and back (`net/raft_client.rs`).
    ReplicateCall,
    /// A follower: serving such a call (`net/raft_service.rs`).
    ReplicateServe,
    /// Any node: applying committed entries in one RocksDB write
    /// (`store/state_machine.rs`).
    Apply,
    /// A follower: after the leader answered a forwarded write, waiting
    /// until this node has applied it too (`write.rs`).
    ForwardApplyWait,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::ForwardCall,
        Stage::ForwardServe,
        Stage::ProposeWait,
        Stage::Commit,
        Stage::LogAppend,
        Stage::ReplicateCall,
        Stage::ReplicateServe,
        Stage::Apply,
        Stage::ForwardApplyWait,
    ];

    /// The stage's label in the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Stage::ForwardCall => "forward_call",
            Stage::ForwardServe => "forward_serve",
            Stage::ProposeWait => "propose_wait",
            Stage::Commit => "commit",
            Stage::LogAppend => "log_append",
            Stage::ReplicateCall => "replicate_call",
            Stage::ReplicateServe => "replicate_serve",
            Stage::Apply => "apply",
            Stage::ForwardApplyWait => "forward_apply_wait",
        }
    }
}

struct Total {
    count: AtomicU64,
    nanos: AtomicU64,
}

static TOTALS: [Total; Stage::ALL.len()] = [const { Total { count: AtomicU64::new(0), nanos: AtomicU64::new(0) } }; Stage::ALL.len()];

/// Counts one pass through `stage` that took `took`.
pub fn record(stage: Stage, took: Duration) {
    let t = &TOTALS[stage as usize];
    t.count.fetch_add(1, Ordering::Relaxed);
    t.nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
}

/// Counts one pass through `stage` that began at `start` and ends now.
pub fn since(stage: Stage, start: Instant) {
    record(stage, start.elapsed());
}

/// Each stage with how many times it ran and its total time in seconds.
pub fn totals() -> impl Iterator<Item = (Stage, u64, f64)> {
    Stage::ALL.into_iter().map(|s| {
        let t = &TOTALS[s as usize];
        (s, t.count.load(Ordering::Relaxed), t.nanos.load(Ordering::Relaxed) as f64 / 1e9)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_counts_its_own_passes() {
        let before: Vec<_> = totals().collect();
        record(Stage::Apply, Duration::from_millis(3));
        record(Stage::Apply, Duration::from_millis(1));
        let after: Vec<_> = totals().collect();
        for ((s, c0, t0), (_, c1, t1)) in before.into_iter().zip(after) {
            // Other tests in this binary may record too, never less.
            if s == Stage::Apply {
                assert!(c1 >= c0 + 2, "{s:?}: {c0} -> {c1}");
                assert!(t1 - t0 >= 0.004 - 1e-9, "{s:?}: {t0} -> {t1}");
            }
        }
        assert!(Stage::ALL.iter().enumerate().all(|(i, s)| *s as usize == i));
    }
}
