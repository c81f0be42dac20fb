//! The order of requests that share a fid. Requests on a connection run
//! concurrently, yet a client may send a request on a fid before an earlier
//! request that makes, opens or ends that fid is answered: a pipelined
//! Twalk to a new fid, Topen, Twrite and Tclunk, sent together in one
//! write. So a request starts only after every earlier request that changes
//! one of its fids has finished, and a request that changes a fid starts
//! only after every earlier request naming that fid has finished. Reads,
//! writes and stats of an open fid still run side by side, and requests on
//! other fids are never held.
//!
//! A request's place is its [`Turn`]. It is let go when the request has
//! been handled, or, for a request flushed or aborted while it still
//! waited, only once what it waited for has finished: the requests behind
//! it wait for it alone, so letting go earlier would let them overtake the
//! ones before it.

use std::collections::HashMap;

use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::fcall::Tmsg;

/// Held by a request while it waits and runs.
pub(crate) struct Turn(#[allow(dead_code)] watch::Sender<()>);

/// What a request waits for before it starts.
pub(crate) struct Prior(Vec<watch::Receiver<()>>);

impl Prior {
    /// Waits for every earlier request; those that finished are forgotten
    /// as it goes, so what is left after a cancelled wait is still owed.
    pub async fn finished(&mut self) {
        while let Some(r) = self.0.last_mut() {
            // `changed` fails once the sender (the earlier request's Turn) is dropped.
            while r.changed().await.is_ok() {}
            self.0.pop();
        }
    }
}

/// A request's place while its task lives: its prior, its turn, and its
/// slot in the connection's bound on requests read but not answered.
pub(crate) struct Place {
    prior: Prior,
    turn: Option<Turn>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Place {
    pub fn new(prior: Prior, turn: Turn, slot: OwnedSemaphorePermit) -> Place {
        Place { prior, turn: Some(turn), slot: Some(slot) }
    }

    /// The slot, for the reply to hold until it is written.
    pub fn take_slot(&mut self) -> Option<OwnedSemaphorePermit> {
        self.slot.take()
    }

    /// Waits until the request may start.
    pub async fn ready(&mut self) {
        self.prior.finished().await;
    }

    /// The request has been handled: those behind it may go.
    pub fn done(&mut self) {
        self.turn = None;
    }
}

impl Drop for Place {
    /// Dropped while it still waited (flushed, aborted): its turn is let go
    /// only once its own prior has finished. Its slot is held as long, so a
    /// client that flushes waiting requests over and over cannot pile up
    /// more of them than the connection's bound.
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else { return };
        if self.prior.0.iter().all(finished) {
            return;
        }
        let (mut prior, slot) = (Prior(std::mem::take(&mut self.prior.0)), self.slot.take());
        // Tasks are dropped on the runtime's threads (an abort, a reset, the
        // runtime shutting down, when the spawned task is dropped too).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                prior.finished().await;
                drop((turn, slot));
            });
        }
    }
}

fn finished(r: &watch::Receiver<()>) -> bool {
    r.has_changed().is_err()
}

#[derive(Default)]
struct FidQueue {
    /// The last request that changes the fid.
    change: Option<watch::Receiver<()>>,
    /// The requests since then that only use it.
    uses: Vec<watch::Receiver<()>>,
}

/// One connection's fids and the unfinished requests on each.
pub(crate) struct Order {
    fids: HashMap<u32, FidQueue>,
    /// Requests recorded in `fids` (finished ones included until a sweep).
    held: usize,
    /// The table is swept of finished requests when `held` reaches this:
    /// twice what the last sweep left, so a sweep costs O(1) a request and
    /// memory stays within a few times the unfinished requests.
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 64;

impl Default for Order {
    fn default() -> Self {
        Order { fids: HashMap::new(), held: 0, sweep_at: FIRST_SWEEP }
    }
}

impl Order {
    /// Places a request naming `fids` (each with whether it changes it):
    /// what it must wait for, and its turn.
    pub fn enter(&mut self, fids: &[(u32, bool)]) -> (Prior, Turn) {
        let (tx, rx) = watch::channel(());
        let mut prior = vec![];
        for (i, &(fid, _)) in fids.iter().enumerate() {
            // A fid named twice (Tattach with fid = afid) is one use, a
            // change if either is: a request must never wait for itself.
            if fids[..i].iter().any(|(f, _)| *f == fid) {
                continue;
            }
            let changes = fids.iter().any(|&(f, c)| f == fid && c);
            let q = self.fids.entry(fid).or_default();
            if q.change.as_ref().is_some_and(finished) {
                q.change = None;
            }
            q.uses.retain(|r| !finished(r));
            prior.extend(q.change.iter().cloned());
            if changes {
                prior.append(&mut q.uses);
                q.change = Some(rx.clone());
            } else {
                q.uses.push(rx.clone());
            }
            self.held += 1;
        }
        if self.held >= self.sweep_at {
            self.sweep();
        }
        (Prior(prior), Turn(tx))
    }

    /// Drops every finished request, and the fids left with none.
    fn sweep(&mut self) {
        self.held = 0;
        self.fids.retain(|_, q| {
            if q.change.as_ref().is_some_and(finished) {
                q.change = None;
            }
            q.uses.retain(|r| !finished(r));
            let n = q.uses.len() + usize::from(q.change.is_some());
            self.held += n;
            n > 0
        });
        self.sweep_at = (self.held * 2).max(FIRST_SWEEP);
    }

    /// Forgets every request (after a Tversion aborted them all).
    pub fn clear(&mut self) {
        *self = Order::default();
    }
}

/// The fids one request names (at most two) and whether it changes each,
/// kept in place: this runs for every request.
pub(crate) struct Named {
    list: [(u32, bool); 2],
    len: usize,
}

impl Named {
    fn of(fids: &[(u32, bool)]) -> Named {
        let mut list = [(0, false); 2];
        list[..fids.len()].copy_from_slice(fids);
        Named { list, len: fids.len() }
    }

    pub fn as_slice(&self) -> &[(u32, bool)] {
        &self.list[..self.len]
    }
}

/// The fids a request names, and whether it changes each: makes it, opens
/// it, ends it, or changes the file or directory it stands for (its
/// attributes, its entries), so that a later request on that fid sees the
/// change. Reads, writes and stats are uses: several run at once. Tversion
/// and Tflush name none.
pub(crate) fn fids_of(msg: &Tmsg) -> Named {
    use Tmsg::*;
    match msg {
        Version { .. } | Flush { .. } => Named::of(&[]),
        Auth { afid, .. } => Named::of(&[(*afid, true)]),
        Attach { fid, afid, .. } => Named::of(&[(*fid, true), (*afid, false)]),
        Walk { fid, newfid, .. } | Xattrwalk { fid, newfid, .. } => {
            if fid == newfid {
                Named::of(&[(*fid, true)])
            } else {
                Named::of(&[(*fid, false), (*newfid, true)])
            }
        }
        Open { fid, .. }
        | Create { fid, .. }
        | Lopen { fid, .. }
        | Lcreate { fid, .. }
        | Xattrcreate { fid, .. }
        | Clunk { fid }
        | Remove { fid }
        | Wstat { fid, .. }
        | Setattr { fid, .. }
        | Symlink { fid, .. } => Named::of(&[(*fid, true)]),
        Read { fid, .. }
        | Write { fid, .. }
        | Stat { fid }
        | Statfs { fid }
        | Readlink { fid }
        | Getattr { fid, .. }
        | Readdir { fid, .. }
        | Fsync { fid, .. }
        | Lock { fid, .. }
        | Getlock { fid, .. } => Named::of(&[(*fid, false)]),
        Mknod { dfid, .. } | Mkdir { dfid, .. } | Unlinkat { dirfid: dfid, .. } => Named::of(&[(*dfid, true)]),
        Rename { fid, dfid, .. } | Link { dfid, fid, .. } => Named::of(&[(*fid, true), (*dfid, true)]),
        Renameat { olddirfid, newdirfid, .. } => Named::of(&[(*olddirfid, true), (*newdirfid, true)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(p: &Prior) -> usize {
        p.0.iter().filter(|r| !finished(r)).count()
    }

    #[test]
    fn uses_wait_for_changes_and_changes_wait_for_everything() {
        let mut o = Order::default();
        let (p1, walk) = o.enter(&[(0, false), (1, true)]);
        assert_eq!(waits(&p1), 0, "nothing before the walk");
        let (p2, read_a) = o.enter(&[(1, false)]);
        let (p3, read_b) = o.enter(&[(1, false)]);
        assert_eq!((waits(&p2), waits(&p3)), (1, 1), "each read waits for the walk only");
        let (p4, clunk) = o.enter(&[(1, true)]);
        assert_eq!(waits(&p4), 3, "the clunk waits for the walk and both reads");
        let (p5, _) = o.enter(&[(2, false), (2, true)]);
        assert_eq!(waits(&p5), 0, "another fid is never held, nor a request by itself");
        drop((walk, read_a, read_b));
        let (p6, _) = o.enter(&[(1, false)]);
        assert_eq!(waits(&p6), 1, "after the clunk");
        drop(clunk);
        assert_eq!(waits(&p6), 0);
    }

    #[test]
    fn finished_requests_are_swept() {
        let mut o = Order::default();
        for fid in 0..10_000 {
            drop(o.enter(&[(fid, true)]));
        }
        assert!(o.fids.len() <= 2 * FIRST_SWEEP, "{} fids kept", o.fids.len());
        // Many uses of fids never named again: the count of requests kept
        // is what bounds the table, not the number of fids.
        let mut live = vec![];
        for fid in 0..100 {
            for _ in 0..200 {
                let (_, turn) = o.enter(&[(fid, false)]);
                if fid == 99 {
                    live.push(turn);
                }
            }
        }
        assert!(o.held <= 4 * live.len().max(FIRST_SWEEP), "{} requests kept, {} unfinished", o.held, live.len());
    }

    #[tokio::test]
    async fn a_request_cancelled_while_it_waits_keeps_its_turn_until_its_prior_ends() {
        let mut o = Order::default();
        // A walk that has not finished, an open cancelled while it waits
        // for it, and a clunk behind the open.
        let (_, walk) = o.enter(&[(0, false), (5, true)]);
        let (prior, open) = o.enter(&[(5, true)]);
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let mut open = Place::new(prior, open, slots.clone().try_acquire_owned().unwrap());
        let (mut clunk, _) = o.enter(&[(5, true)]);
        tokio::select! {
            _ = open.ready() => panic!("the open started before the walk finished"),
            _ = tokio::task::yield_now() => {}
        }
        drop(open);
        let waiting = tokio::spawn(async move { clunk.finished().await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the clunk overtook the walk");
        assert_eq!(slots.available_permits(), 0, "the cancelled open still holds its slot");
        drop(walk);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.expect("released").expect("task");
        assert_eq!(slots.available_permits(), 1, "and frees it once the walk is done");
    }

    #[tokio::test]
    async fn a_dropped_turn_lets_the_waiters_go() {
        let mut o = Order::default();
        let (_, first) = o.enter(&[(7, true)]);
        let (mut prior, _) = o.enter(&[(7, false)]);
        let waiter = tokio::spawn(async move { prior.finished().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("released").expect("task");
    }
}
