//! Wall-clock time enters jobd here and nowhere else, and each peer's
//! clock offset is estimated from the timestamps carried by Raft RPCs.
//!
//! Test seams for skew: `JOBD_TEST_CLOCK_OFFSET_MS` shifts this node's wall
//! clock from the start; `JOBD_TEST_CLOCK_OFFSET_FILE=PATH` names a file
//! holding an offset in milliseconds that a thread re-reads every 50 ms, so
//! a test can make a running node's clock jump (as an NTP step does) and
//! jump back. Unset, neither costs anything but an atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::types::NodeId;

fn offset_ms() -> i64 {
    static OFFSET: OnceLock<&'static AtomicI64> = OnceLock::new();
    OFFSET
        .get_or_init(|| {
            let fixed = std::env::var("JOBD_TEST_CLOCK_OFFSET_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let offset: &'static AtomicI64 = Box::leak(Box::new(AtomicI64::new(fixed)));
            if let Ok(path) = std::env::var("JOBD_TEST_CLOCK_OFFSET_FILE") {
                let read = move || {
                    std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<i64>().ok())
                };
                offset.store(fixed + read().unwrap_or(0), Ordering::Relaxed);
                std::thread::spawn(move || loop {
                    std::thread::sleep(Duration::from_millis(50));
                    offset.store(fixed + read().unwrap_or(0), Ordering::Relaxed);
                });
            }
            offset
        })
        .load(Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch on this node's (possibly shifted) clock.
pub fn now_ms() -> i64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    real + offset_ms()
}

/// Time since boot on `CLOCK_BOOTTIME`: monotonic, and unlike `Instant`
/// (`CLOCK_MONOTONIC`) it also runs while the machine is suspended, so a
/// lease measured on it is over when a suspended leader wakes. (A
/// hypervisor that freezes a guest's clocks while it is paused defeats
/// every clock inside the guest, this one too.)
pub fn since_boot() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_BOOTTIME is
    // always present on Linux ≥ 2.6.39.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if r != 0 {
        // Not reachable on Linux; a lease that never holds is the safe side.
        return Duration::MAX;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A peer's offset counts for the skew while it is this recent.
const CURRENT: Duration = Duration::from_secs(5);

/// This node's wall clock minus its monotonic clock (ms since the first
/// call): constant while the wall clock runs true, it moves by exactly the
/// size of a step (an NTP jump, an operator's `date -s`).
fn wall_minus_mono() -> i64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    now_ms()
        - START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as i64
}

/// One peer's clock offset as last observed.
#[derive(Clone, Copy)]
struct Observed {
    /// The peer's clock minus ours, when observed.
    offset: i64,
    /// `wall_minus_mono` when observed.
    base: i64,
    /// When, on the monotonic clock.
    at: std::time::Instant,
}

impl Observed {
    /// The offset now, given `wall_minus_mono` now: corrected by how far
    /// our own wall clock has stepped since it was observed.
    fn offset_at(&self, base_now: i64) -> i64 {
        self.offset - (base_now - self.base)
    }
}

/// The latest estimate of each peer's clock minus ours, in milliseconds.
#[derive(Default)]
pub struct PeerClocks {
    seen: Mutex<HashMap<NodeId, Observed>>,
}

impl PeerClocks {
    /// From a reply: the peer stamped `peer_ms` somewhere between our
    /// `sent_ms` and `received_ms`; assume the middle (as NTP does).
    pub fn observe_reply(&self, peer: NodeId, sent_ms: i64, peer_ms: i64, received_ms: i64) {
        let mid = sent_ms + (received_ms - sent_ms) / 2;
        self.record(peer, peer_ms - mid);
    }

    /// From a request: one-way, so it includes the network delay (small on
    /// the LANs jobd runs on).
    pub fn observe_request(&self, peer: NodeId, peer_ms: i64, received_ms: i64) {
        self.record(peer, peer_ms - received_ms);
    }

    fn record(&self, peer: NodeId, offset: i64) {
        self.record_at(
            peer,
            Observed {
                offset,
                base: wall_minus_mono(),
                at: std::time::Instant::now(),
            },
        );
    }

    fn record_at(&self, peer: NodeId, o: Observed) {
        crate::lock::lock(&self.seen).insert(peer, o);
    }

    /// How long since `peer` was last heard from (`None`: never).
    pub fn silent_for(&self, peer: NodeId) -> Option<std::time::Duration> {
        crate::lock::lock(&self.seen)
            .get(&peer)
            .map(|o| o.at.elapsed())
    }

    /// Each peer ever heard from, by id: its clock minus ours (corrected
    /// for our own steps since, as in `skew_ms`) and how long since it
    /// was heard. For `/ctl`, which an operator reads to see which clock
    /// is off and which peer has gone quiet.
    pub fn peers(&self) -> Vec<(NodeId, i64, std::time::Duration)> {
        let base_now = wall_minus_mono();
        let mut v: Vec<_> = crate::lock::lock(&self.seen)
            .iter()
            .map(|(id, o)| (*id, o.offset_at(base_now), o.at.elapsed()))
            .collect();
        v.sort_unstable_by_key(|p| p.0);
        v
    }

    /// Our clock against the median of the cluster's (ours counted as 0):
    /// positive when ours runs ahead.
    ///
    /// Only peers heard from in the last `CURRENT` count: a removed or dead
    /// node's last offset would otherwise outvote the live ones (found by
    /// the chaos harness: after two nodes were replaced, a leader 30 s
    /// ahead saw no skew). And each offset is corrected by how far our own
    /// wall clock has stepped since it was observed (against the monotonic
    /// clock), so a step shows at once rather than at the next heartbeat
    /// reply — in that gap a leader whose clock had just jumped ahead
    /// proposed a fire for its jumped "now" and began it 30 s early.
    pub fn skew_ms(&self) -> i64 {
        self.skew_with_base(wall_minus_mono())
    }

    fn skew_with_base(&self, base_now: i64) -> i64 {
        let seen = crate::lock::lock(&self.seen).clone();
        let mut all: Vec<i64> = seen
            .values()
            .filter(|o| o.at.elapsed() < CURRENT)
            .map(|o| o.offset_at(base_now))
            .collect();
        all.push(0);
        all.sort_unstable();
        -all[all.len() / 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_against_the_median() {
        let c = PeerClocks::default();
        assert_eq!(c.skew_ms(), 0);
        // Both peers' clocks read 30 s behind ours: we run 30 s ahead.
        c.observe_reply(2, 1000, 1000 - 30_000 + 5, 1010);
        c.observe_request(3, 1000 - 30_000, 1000);
        assert_eq!(c.skew_ms(), 30_000);
        // One peer agrees with us: the median is ours.
        c.observe_request(3, 1000, 1000);
        assert_eq!(c.skew_ms(), 0);
    }

    #[test]
    fn peers_not_heard_from_lately_do_not_count() {
        let c = PeerClocks::default();
        let long_ago = std::time::Instant::now()
            .checked_sub(Duration::from_secs(60))
            .expect("the clock is past a minute");
        // Two removed nodes agreed with us a minute ago; the two live ones
        // say we run 30 s ahead now.
        c.record_at(
            4,
            Observed {
                offset: 0,
                base: wall_minus_mono(),
                at: long_ago,
            },
        );
        c.record_at(
            5,
            Observed {
                offset: 0,
                base: wall_minus_mono(),
                at: long_ago,
            },
        );
        c.observe_request(2, 1000 - 30_000, 1000);
        c.observe_request(3, 1000 - 30_000, 1000);
        assert_eq!(c.skew_ms(), 30_000);
    }

    #[test]
    fn a_step_of_our_own_clock_shows_before_any_peer_replies() {
        let c = PeerClocks::default();
        let now = std::time::Instant::now();
        c.record_at(
            2,
            Observed {
                offset: 0,
                base: 1_000,
                at: now,
            },
        );
        c.record_at(
            3,
            Observed {
                offset: 0,
                base: 1_000,
                at: now,
            },
        );
        assert_eq!(c.skew_with_base(1_000), 0);
        // Our wall clock has jumped 30 s ahead of the monotonic clock since.
        assert_eq!(c.skew_with_base(31_000), 30_000);
        assert_eq!(c.skew_with_base(-29_000), -30_000);
    }
}
