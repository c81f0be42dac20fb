//! Opening gates on time (see `spawn.rs` for what a gate is).
//!
//! A thread per core (two at most) holds the waiting gates handed to it in
//! turn, sleeps until the earliest is due, and opens all that are due in
//! one pass: for each, the last checks (a state read, microseconds) and a
//! one-byte write.
//!
//! Measured with 200 runs due in the same second (`bench -- lateness`,
//! `docs/BENCHMARKS.md` §2): when each run's task slept until its own time
//! on tokio's timer and opened its own gate, lateness p99 was 97 ms; on one
//! ordinary thread, 112 ms — each byte written wakes that run's shell, and
//! on two busy cores the woken shells preempted the thread before it
//! reached the next gate; at nice −10, 74 ms. So the thread asks for the
//! lowest real-time priority (`SCHED_FIFO` 1), which ordinary processes do
//! not preempt: 200 gates then open within 4 ms. The threads' work is a
//! few milliseconds a pass, so two of them on two cores hold everything
//! else off only that long. It needs root,
//! `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least 1 (systemd's
//! `LimitRTPRIO=1`, set in `deploy/systemd`); without, the threads stay
//! ordinary and jobd says so once at start. Their work is bounded
//! (it sleeps between passes), so it cannot starve the machine; its
//! children would not inherit the priority (`SCHED_RESET_ON_FORK`), and it
//! has none.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::clock::now_ms;
use crate::command::{NotStarted, RunStatus};

/// Why a gate was not opened: the run must not start (or not yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    NotStarted(NotStarted),
    /// `kill`, or overlap `replace`, before it began.
    #[error("it was killed before it began")]
    Cancelled,
    /// Someone else recorded its end already (the leader's sweep).
    #[error("it has been ended already")]
    Ended,
    /// A new leader's claim came first: the run is that node's now.
    #[error("node {node} took it over")]
    TakenOver { node: u64 },
    /// The lease lapsed but this node still leads the run's term: try
    /// again when the next heartbeat round renews it.
    #[error("this node's lease lapsed {since_ms} ms ago")]
    LeaseLapsed { since_ms: u64 },
    #[error("cannot open the gate: {0}")]
    Io(String),
    #[error("the gate-keeping thread has ended")]
    Gone,
}

impl Refusal {
    /// How the run is recorded when it does not start for this reason
    /// (None: it has been recorded by someone else).
    pub fn status(&self) -> Option<RunStatus> {
        match self {
            Refusal::NotStarted(why) => Some(RunStatus::NotStarted(*why)),
            Refusal::Cancelled => Some(RunStatus::Killed),
            Refusal::Ended | Refusal::TakenOver { .. } => None,
            Refusal::LeaseLapsed { .. } => Some(RunStatus::NotStarted(NotStarted::FenceLost)),
            Refusal::Io(_) | Refusal::Gone => Some(RunStatus::NotStarted(NotStarted::CannotStart)),
        }
    }
}

/// The last checks before a run starts, made at its time on a gate thread.
pub type Check = Box<dyn FnOnce(i64) -> Result<(), Refusal> + Send>;

struct Waiting {
    at_ms: i64,
    gate: Arc<File>,
    check: Check,
    /// The start time, or why not.
    reply: oneshot::Sender<Result<i64, Refusal>>,
}

/// The node's gate-keeping threads, one per core (at most `MAX_THREADS`):
/// each holds the gates handed to it in turn and ends when the last handle
/// is dropped and none of its gates waits.
pub struct Gatekeeper {
    txs: Vec<mpsc::Sender<Waiting>>,
    next: AtomicUsize,
}

/// Gate threads per node at most. Opening a gate costs about 10 µs on this
/// machine (a state read, and a write that wakes a sleeping shell), so 500
/// runs due at one instant took one thread 6–8 ms; two threads, one per
/// core, halve that (`docs/BENCHMARKS.md` §14). More would only take turns.
const MAX_THREADS: usize = 2;

impl Gatekeeper {
    pub fn start() -> std::io::Result<Gatekeeper> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
        let mut txs = vec![];
        for i in 0..threads {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new().name(format!("jobd-gates-{i}")).spawn(move || {
                if let Err(e) = realtime() {
                    if i == 0 {
                        tracing::warn!("the gate threads run at ordinary priority ({e}): runs due together may start late when the machine is busy; allow LimitRTPRIO=1 or CAP_SYS_NICE");
                    }
                }
                keep(rx)
            })?;
            txs.push(tx);
        }
        Ok(Gatekeeper { txs, next: AtomicUsize::new(0) })
    }

    /// At `at_ms` (now, if past), runs `check` and, if it passes, opens
    /// `gate`: answers the time it opened.
    pub async fn open_at(&self, at_ms: i64, gate: Arc<File>, check: Check) -> Result<i64, Refusal> {
        let (reply, answer) = oneshot::channel();
        let tx = &self.txs[self.next.fetch_add(1, Ordering::Relaxed) % self.txs.len()];
        tx.send(Waiting { at_ms, gate, check, reply }).map_err(|_| Refusal::Gone)?;
        answer.await.unwrap_or(Err(Refusal::Gone))
    }
}

/// The calling thread becomes `SCHED_FIFO` at priority 1.
fn realtime() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sets this thread's own policy; `param` outlives the call.
    let r = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if r == 0 { Ok(()) } else { Err(std::io::Error::from_raw_os_error(r)) }
}

fn keep(rx: mpsc::Receiver<Waiting>) {
    // By time, then arrival.
    let mut waiting: BTreeMap<(i64, u64), Waiting> = BTreeMap::new();
    let mut arrivals = 0u64;
    let mut open = true;
    loop {
        let next = waiting.first_key_value().map(|((at, _), _)| *at);
        let received = match next {
            None if !open => return,
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) if !open => {
                // Nothing more can arrive: sleep to the next gate's time.
                // (It looped here without waiting, and at real-time
                // priority a spinning thread starves the rest of its core.)
                let wait = at - now_ms();
                if wait > 0 {
                    std::thread::sleep(Duration::from_millis(wait as u64));
                }
                Err(RecvTimeoutError::Timeout)
            }
            Some(at) => match at - now_ms() {
                wait if wait > 0 => rx.recv_timeout(Duration::from_millis(wait as u64)),
                _ => Err(RecvTimeoutError::Timeout),
            },
        };
        match received {
            Ok(w) => {
                arrivals += 1;
                waiting.insert((w.at_ms, arrivals), w);
            }
            Err(RecvTimeoutError::Disconnected) => open = false,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Open everything due, with no wait between.
        while let Some(entry) = waiting.first_entry() {
            if entry.key().0 > now_ms() {
                break;
            }
            let w = entry.remove();
            // Nobody would follow the run (its task is gone): leave it shut.
            if w.reply.is_closed() {
                continue;
            }
            let now = now_ms();
            let result = (w.check)(now).and_then(|()| {
                (&*w.gate).write_all(b"\n").map_err(|e| Refusal::Io(e.to_string()))?;
                Ok(now)
            });
            let _ = w.reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (File, Arc<File>) {
        let mut fds = [0i32; 2];
        // SAFETY: pipe(2) fills two fresh descriptors, owned below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        use std::os::fd::FromRawFd;
        // SAFETY: as above.
        unsafe { (File::from_raw_fd(fds[0]), Arc::new(File::from_raw_fd(fds[1]))) }
    }

    #[tokio::test]
    async fn gates_open_at_their_time_in_order_and_refused_ones_stay_shut() {
        use std::io::Read;
        let keeper = Gatekeeper::start().unwrap();
        let t = now_ms() + 150;
        let (mut r1, w1) = pipe();
        let (mut r2, w2) = pipe();
        let (mut r3, w3) = pipe();
        let late = keeper.open_at(t + 100, w1, Box::new(|_| Ok(())));
        let early = keeper.open_at(t, w2, Box::new(|_| Ok(())));
        let refused = keeper.open_at(t, w3.clone(), Box::new(|_| Err(Refusal::Cancelled)));
        let (late, early, refused) = tokio::join!(late, early, refused);
        let (late, early) = (late.unwrap(), early.unwrap());
        assert!(early >= t && late >= t + 100, "opened at {early} and {late}, due at {t} and {}", t + 100);
        assert!(early - t < 50, "opened {} ms after its time", early - t);
        assert_eq!(refused, Err(Refusal::Cancelled));
        let mut byte = [0u8; 1];
        r1.read_exact(&mut byte).unwrap();
        r2.read_exact(&mut byte).unwrap();
        // The refused gate got nothing: closing our end shows end-of-file.
        drop(w3);
        assert_eq!(r3.read(&mut byte).unwrap(), 0);
    }

    /// This thread's CPU time so far, in ms.
    fn thread_cpu_ms() -> i64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the timespec we own.
        assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }, 0);
        ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    /// Once every handle is gone (the node stopping), a gate still waiting
    /// opens at its time and the thread sleeps until then, not spins.
    #[test]
    fn a_keeper_whose_handles_are_gone_sleeps_until_its_last_gate() {
        let (tx, rx) = mpsc::channel();
        let (_r, w) = pipe();
        let (reply, answer) = oneshot::channel();
        let due = now_ms() + 300;
        tx.send(Waiting { at_ms: due, gate: w, check: Box::new(|_| Ok(())), reply }).unwrap();
        drop(tx);
        let cpu = std::thread::spawn(move || {
            keep(rx);
            thread_cpu_ms()
        })
        .join()
        .unwrap();
        let opened = answer.blocking_recv().unwrap().unwrap();
        assert!(opened >= due, "opened at {opened}, due at {due}");
        assert!(cpu < 100, "the keeper spent {cpu} ms of CPU waiting 300 ms");
    }
}
