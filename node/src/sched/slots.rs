//! The concurrency cap (`--max-concurrent-runs`) as a queue: a run holds
//! a slot from before its process is created until it has ended, and a
//! run that finds every slot taken waits for one, in order of scheduled
//! time (then run id), instead of being dropped. So a herd of due runs is
//! started as fast as slots free, and the processes parked ahead of their
//! time never number more than the cap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A place in the queue: scheduled time, then run id.
pub type Place = (i64, u64);

pub struct Slots {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    taken: usize,
    waiting: BTreeMap<Place, oneshot::Sender<()>>,
}

/// One slot, given back when dropped.
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

/// A run waiting for a slot; dropping it leaves the queue (and gives
/// back a slot granted in the meantime).
pub struct Waiting {
    slots: Arc<Slots>,
    place: Place,
    granted: Option<oneshot::Receiver<()>>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots { max: max.max(1), inner: Mutex::default() })
    }

    /// A slot now if one is free and nobody waits ahead; else a place in
    /// the queue.
    pub fn take(self: &Arc<Slots>, place: Place) -> Result<Slot, Waiting> {
        let mut inner = crate::lock::lock(&self.inner);
        let ahead = inner.waiting.first_key_value().is_some_and(|(p, _)| *p < place);
        if inner.taken < self.max && !ahead {
            inner.taken += 1;
            return Ok(Slot(self.clone()));
        }
        let (tx, rx) = oneshot::channel();
        inner.waiting.insert(place, tx);
        Err(Waiting { slots: self.clone(), place, granted: Some(rx) })
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Runs holding a slot, and runs waiting for one.
    pub fn counts(&self) -> (usize, usize) {
        let inner = crate::lock::lock(&self.inner);
        (inner.taken, inner.waiting.len())
    }

    fn give_back(&self) {
        self.release(&mut crate::lock::lock(&self.inner));
    }

    /// One slot is free again: hand it on.
    fn release(&self, inner: &mut Inner) {
        inner.taken -= 1;
        self.grant(inner);
    }

    /// Hands free slots to the first in the queue.
    fn grant(&self, inner: &mut Inner) {
        while inner.taken < self.max {
            let Some((_, tx)) = inner.waiting.pop_first() else { return };
            inner.taken += 1;
            if tx.send(()).is_err() {
                // Its waiter is gone (and will not give it back).
                inner.taken -= 1;
            }
        }
    }
}

impl Waiting {
    /// Waits for the slot.
    pub async fn slot(mut self) -> Slot {
        let rx = self.granted.as_mut().expect("a waiting run has its receiver until granted");
        // The sender is dropped only when granted or when `self` leaves the
        // queue, which cannot happen while it is awaited here.
        let _ = rx.await;
        self.granted = None;
        Slot(self.slots.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.granted.is_none() {
            return; // became a Slot
        }
        let mut inner = crate::lock::lock(&self.slots.inner);
        if inner.waiting.remove(&self.place).is_none() {
            // Granted after we stopped waiting: hand it on.
            self.slots.release(&mut inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_past_the_cap_wait_in_order_of_time_and_none_is_lost() {
        let slots = Slots::new(2);
        let a = slots.take((10, 1)).ok().unwrap();
        let b = slots.take((10, 2)).ok().unwrap();
        let late = slots.take((30, 3)).err().unwrap();
        let early = slots.take((20, 4)).err().unwrap();
        let gone = slots.take((25, 5)).err().unwrap();
        assert_eq!(slots.counts(), (2, 3));
        // A run that leaves the queue (killed while waiting) frees its place.
        drop(gone);
        assert_eq!(slots.counts(), (2, 2));
        // A newcomer does not pass the queue even when a slot frees.
        drop(a);
        assert!(slots.take((40, 6)).is_err(), "one slot was handed to the queue, not taken from it");
        let first = early.slot().await;
        assert_eq!(slots.counts(), (2, 1));
        drop(b);
        let second = late.slot().await;
        drop((first, second));
        // The newcomer (40, 6) was dropped at once: everything is free.
        assert_eq!(slots.counts(), (0, 0));
    }

    #[tokio::test]
    async fn a_slot_granted_to_a_run_that_stopped_waiting_is_passed_on() {
        let slots = Slots::new(1);
        let held = slots.take((1, 1)).ok().unwrap();
        let leaving = slots.take((2, 2)).err().unwrap();
        let next = slots.take((3, 3)).err().unwrap();
        drop(held); // granted to `leaving`, which has not looked yet
        drop(leaving);
        let _slot = next.slot().await;
        assert_eq!(slots.counts(), (1, 0));
    }
}
