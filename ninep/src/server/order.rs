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
//! A request's place is its [`Turn`], dropped when its task ends (answered,
//! flushed or aborted), which lets the requests behind it go.

use std::collections::HashMap;

use tokio::sync::watch;

use crate::fcall::Tmsg;

/// Held by a request while it runs.
pub(crate) struct Turn(#[allow(dead_code)] watch::Sender<()>);

/// What a request waits for before it starts.
pub(crate) struct Prior(Vec<watch::Receiver<()>>);

impl Prior {
    pub async fn finished(self) {
        for mut r in self.0 {
            // `changed` fails once the sender (the earlier request's Turn) is dropped.
            while r.changed().await.is_ok() {}
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

impl FidQueue {
    fn live(&self) -> bool {
        self.change.as_ref().is_some_and(|r| !finished(r)) || self.uses.iter().any(|r| !finished(r))
    }
}

/// One connection's fids and the unfinished requests on each.
pub(crate) struct Order {
    fids: HashMap<u32, FidQueue>,
    /// The table is swept of finished entries when it reaches this size.
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 64;

impl Default for Order {
    fn default() -> Self {
        Order { fids: HashMap::new(), sweep_at: FIRST_SWEEP }
    }
}

impl Order {
    /// Places a request naming `fids` (each with whether it changes it):
    /// what it must wait for, and its turn.
    pub fn enter(&mut self, fids: &[(u32, bool)]) -> (Prior, Turn) {
        let (tx, rx) = watch::channel(());
        // A fid named twice (Tattach with fid = afid) is one use, a change
        // if either is: a request must never wait for itself.
        let mut named: Vec<(u32, bool)> = Vec::with_capacity(fids.len());
        for &(fid, changes) in fids {
            match named.iter_mut().find(|(f, _)| *f == fid) {
                Some(n) => n.1 |= changes,
                None => named.push((fid, changes)),
            }
        }
        let mut prior = vec![];
        for (fid, changes) in named {
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
        }
        if self.fids.len() >= self.sweep_at {
            self.fids.retain(|_, q| q.live());
            self.sweep_at = (self.fids.len() * 2).max(FIRST_SWEEP);
        }
        (Prior(prior), Turn(tx))
    }

    /// Forgets every request (after a Tversion aborted them all).
    pub fn clear(&mut self) {
        *self = Order::default();
    }
}

/// The fids a request names, and whether it changes each (makes it, opens
/// it, or ends it). Tversion and Tflush name none.
pub(crate) fn fids_of(msg: &Tmsg) -> Vec<(u32, bool)> {
    use Tmsg::*;
    match msg {
        Version { .. } | Flush { .. } => vec![],
        Auth { afid, .. } => vec![(*afid, true)],
        Attach { fid, afid, .. } => vec![(*fid, true), (*afid, false)],
        Walk { fid, newfid, .. } | Xattrwalk { fid, newfid, .. } => {
            if fid == newfid {
                vec![(*fid, true)]
            } else {
                vec![(*fid, false), (*newfid, true)]
            }
        }
        Open { fid, .. } | Create { fid, .. } | Lopen { fid, .. } | Lcreate { fid, .. } | Xattrcreate { fid, .. } | Clunk { fid } | Remove { fid } => {
            vec![(*fid, true)]
        }
        Read { fid, .. }
        | Write { fid, .. }
        | Stat { fid }
        | Wstat { fid, .. }
        | Statfs { fid }
        | Symlink { fid, .. }
        | Readlink { fid }
        | Getattr { fid, .. }
        | Setattr { fid, .. }
        | Readdir { fid, .. }
        | Fsync { fid, .. }
        | Lock { fid, .. }
        | Getlock { fid, .. } => vec![(*fid, false)],
        Mknod { dfid, .. } | Mkdir { dfid, .. } | Unlinkat { dirfid: dfid, .. } => vec![(*dfid, false)],
        Rename { fid, dfid, .. } | Link { dfid, fid, .. } => vec![(*fid, false), (*dfid, false)],
        Renameat { olddirfid, newdirfid, .. } => vec![(*olddirfid, false), (*newdirfid, false)],
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
    fn finished_entries_are_swept() {
        let mut o = Order::default();
        for fid in 0..10_000 {
            drop(o.enter(&[(fid, true)]));
        }
        assert!(o.fids.len() <= 2 * FIRST_SWEEP, "{} entries kept", o.fids.len());
    }

    #[tokio::test]
    async fn a_dropped_turn_lets_the_waiters_go() {
        let mut o = Order::default();
        let (_, first) = o.enter(&[(7, true)]);
        let (prior, _) = o.enter(&[(7, false)]);
        let waiter = tokio::spawn(prior.finished());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("released").expect("task");
    }
}
