//! Webhook delivery: the leader's loop that sends the pending deliveries
//! (`state::notify` makes them, in the apply of each run's end) and
//! records each attempt's outcome through Raft (`Command::Notified`).
//!
//! Only a node that holds a confirmed leadership (a fence) sends. It reads
//! every pending delivery when it becomes leader, then the new ones as
//! they are applied, and sends each when it is due, apart from the fire
//! path (its own tasks, its own HTTP client): a slow, refusing or silent
//! receiver delays nothing but its own deliveries. Attempts are bounded in
//! all and per origin, so one dead receiver holds a few slots, not all.
//!
//! At least once, and duplicates bounded by leader changes: within one
//! leadership a delivery is never sent again after a 2xx (it stays in
//! flight until its `Notified` is committed, or the leadership ends). A
//! leader that dies after the 2xx and before that commit leaves it
//! pending, and the next leader sends it again (same delivery id).

pub mod send;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::clock::now_ms;
use crate::command::{Command, Fence};
use crate::propose::Proposer;
use crate::state::notify as rules;
use crate::store::state_machine::StateMachine;

/// How often the loop looks for new deliveries and due attempts: a run's
/// end is sent within this of its apply.
const TICK: Duration = Duration::from_millis(20);
/// Attempts in flight at once, in all...
const MAX_IN_FLIGHT: usize = 256;
/// ...and to one origin (scheme, host and port).
const MAX_PER_ORIGIN: usize = 8;
/// A due delivery whose origin is busy is looked at again this much later.
const ORIGIN_BUSY_MS: i64 = 100;
/// An outcome not committed (no quorum for a moment) is proposed again
/// after this, while the leadership lasts.
const REPROPOSE: Duration = Duration::from_millis(500);

/// The delivery loop of one node.
pub struct Deliverer {
    pub sm: StateMachine,
    pub proposer: Proposer,
    pub leadership: watch::Receiver<Option<Fence>>,
    /// `--notify-secret`: sign every request.
    pub secret: Option<Arc<[u8]>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What an attempt's task reports: its request is over (its origin's
/// slot is free), then what became of it once its outcome is committed.
enum Report {
    Answered(u64),
    Done(u64, Next),
}

/// What became of an attempt, once its outcome is committed (or not).
enum Next {
    /// Still pending: its next attempt is due then.
    At(i64),
    /// No longer pending (delivered, given up, dropped).
    Gone,
    /// Its outcome could not be committed under this leadership.
    Unrecorded,
}

/// The deliveries this leadership knows, by when each is due.
#[derive(Default)]
struct Queue {
    due: BTreeSet<(i64, u64)>,
    at: HashMap<u64, i64>,
    /// Deliveries with a seq below this have been read (None: none yet).
    read_to: Option<u64>,
    /// Seq → origin (None once its request is over), for attempts whose
    /// outcome is not committed yet: none is sent again meanwhile.
    in_flight: HashMap<u64, Option<String>>,
    /// Requests under way, by origin.
    per_origin: HashMap<String, usize>,
}

impl Queue {
    fn add(&mut self, seq: u64, at_ms: i64) {
        if self.in_flight.contains_key(&seq) {
            return;
        }
        if let Some(old) = self.at.insert(seq, at_ms) {
            self.due.remove(&(old, seq));
        }
        self.due.insert((at_ms, seq));
    }

    /// Reads the deliveries made since the last call (all of them, the first time).
    fn read_new(&mut self, sm: &StateMachine) -> Result<(), crate::state::KvError> {
        let next = rules::load_state(sm)?.next;
        match self.read_to {
            None => {
                for (k, v) in sm.scan(rules::PREFIX)? {
                    let d: rules::Delivery = crate::state::decode(&k, &v)?;
                    if d.seq < next {
                        self.add(d.seq, d.next_at_ms);
                    }
                }
            }
            Some(from) => {
                for seq in from..next {
                    if let Some(d) = rules::load(sm, seq)? {
                        self.add(seq, d.next_at_ms);
                    }
                }
            }
        }
        self.read_to = Some(next);
        Ok(())
    }

    /// Takes the deliveries due at `now` that have room to go, marking
    /// them in flight.
    fn take_due(&mut self, now: i64, origin_of: impl Fn(u64) -> Option<String>) -> Vec<u64> {
        let mut out = vec![];
        let mut busy = vec![];
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(&(at, seq)) = self.due.first() else { break };
            if at > now {
                break;
            }
            self.due.pop_first();
            self.at.remove(&seq);
            // Gone since it was queued (dropped for room): nothing to send.
            let Some(origin) = origin_of(seq) else { continue };
            let n = self.per_origin.entry(origin.clone()).or_default();
            if *n >= MAX_PER_ORIGIN {
                busy.push(seq);
                continue;
            }
            *n += 1;
            self.in_flight.insert(seq, Some(origin));
            out.push(seq);
        }
        for seq in busy {
            self.add(seq, now + ORIGIN_BUSY_MS);
        }
        out
    }

    /// The request for `seq` is over: its origin may take another.
    fn answered(&mut self, seq: u64) {
        if let Some(origin) = self.in_flight.get_mut(&seq).and_then(Option::take) {
            if let Some(n) = self.per_origin.get_mut(&origin) {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn finish(&mut self, seq: u64, next: Next) {
        self.answered(seq);
        self.in_flight.remove(&seq);
        match next {
            Next::At(at) => self.add(seq, at),
            Next::Gone => {}
            // The leadership is ending: the next one reads it afresh.
            Next::Unrecorded => {}
        }
    }
}

/// `scheme://host:port` of a URL, lowercased: what one receiver is.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}").to_ascii_lowercase()
}

impl Deliverer {
    /// Runs until the node's leadership watch closes.
    pub async fn run(mut self) {
        let client = match send::client() {
            Ok(c) => c,
            Err(e) => {
                warn!("webhooks are off on this node: cannot make an HTTP client: {e}");
                return;
            }
        };
        loop {
            let fence = *self.leadership.borrow_and_update();
            if let Some(fence) = fence {
                self.lead(fence, &client).await;
            } else if self.leadership.changed().await.is_err() {
                return;
            }
        }
    }

    /// Sends deliveries while `fence` is this node's leadership.
    async fn lead(&mut self, fence: Fence, client: &reqwest::Client) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Report>();
        let mut q = Queue::default();
        loop {
            if *self.leadership.borrow_and_update() != Some(fence) {
                return;
            }
            while let Ok(report) = done_rx.try_recv() {
                match report {
                    Report::Answered(seq) => q.answered(seq),
                    Report::Done(seq, next) => q.finish(seq, next),
                }
            }
            if let Err(e) = q.read_new(&self.sm) {
                warn!("webhooks: cannot read the pending deliveries: {e}");
            }
            let sm = &self.sm;
            let origin_of = |seq| rules::load(sm, seq).ok().flatten().map(|d| origin(&d.url));
            for seq in q.take_due(now_ms(), origin_of) {
                let attempt = Attempt {
                    sm: self.sm.clone(),
                    proposer: self.proposer.clone(),
                    leadership: self.leadership.clone(),
                    fence,
                    client: client.clone(),
                    secret: self.secret.clone(),
                    metrics: self.metrics.clone(),
                };
                let done = done_tx.clone();
                tokio::spawn(async move {
                    let next = attempt.run(seq, &done).await;
                    let _ = done.send(Report::Done(seq, next));
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                changed = self.leadership.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// One attempt's task: send, then commit the outcome.
struct Attempt {
    sm: StateMachine,
    proposer: Proposer,
    leadership: watch::Receiver<Option<Fence>>,
    fence: Fence,
    client: reqwest::Client,
    secret: Option<Arc<[u8]>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Attempt {
    async fn run(self, seq: u64, report: &mpsc::UnboundedSender<Report>) -> Next {
        let d = match rules::load(&self.sm, seq) {
            Ok(Some(d)) => d,
            Ok(None) => return Next::Gone,
            Err(e) => {
                warn!("webhooks: cannot read delivery {seq}: {e}");
                return Next::At(now_ms() + 1000);
            }
        };
        let sent = send::Attempt { url: &d.url, id: d.id, attempt: d.attempts + 1, body: &d.body, timestamp: now_ms() / 1000 };
        let result = send::post(&self.client, self.secret.as_deref(), sent).await;
        let _ = report.send(Report::Answered(seq));
        match &result {
            Ok(()) => {
                self.metrics.notify_attempts.with_label_values(&["delivered"]).inc();
                debug!(id = d.id, url = %d.url, "webhook delivered");
            }
            Err(e) => {
                self.metrics.notify_attempts.with_label_values(&["failed"]).inc();
                info!(id = d.id, url = %d.url, attempt = d.attempts + 1, "webhook failed: {e}");
            }
        }
        let cmd = Command::Notified { seq, error: result.err(), at_ms: now_ms() };
        loop {
            if *self.leadership.borrow() != Some(self.fence) {
                return Next::Unrecorded;
            }
            match self.proposer.propose(cmd.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    debug!("webhooks: the outcome of delivery {seq} is not committed yet: {e}");
                    tokio::time::sleep(REPROPOSE).await;
                }
            }
        }
        match rules::load(&self.sm, seq) {
            Ok(Some(d)) => Next::At(d.next_at_ms),
            Ok(None) => Next::Gone,
            Err(_) => Next::At(now_ms() + 1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        assert_eq!(origin("https://Hooks.Example:8443/a/b?x=1"), "https://hooks.example:8443");
        assert_eq!(origin("http://h"), "http://h");
    }

    #[test]
    fn a_busy_origin_waits_and_others_go() {
        let mut q = Queue::default();
        for seq in 0..12 {
            q.add(seq, 100);
        }
        let slow = |seq: u64| Some(if seq < 10 { "http://slow".to_string() } else { "http://fast".into() });
        let first = q.take_due(100, slow);
        assert_eq!(first.len(), MAX_PER_ORIGIN + 2, "{first:?}");
        assert!(first.contains(&10) && first.contains(&11), "the other origin is not held up");
        // The slow origin's other two are looked at again a little later,
        // and wait while it has MAX_PER_ORIGIN in flight.
        assert!(q.take_due(100, slow).is_empty());
        assert!(q.take_due(100 + ORIGIN_BUSY_MS, slow).is_empty());
        q.finish(0, Next::Gone);
        assert_eq!(q.take_due(100 + 2 * ORIGIN_BUSY_MS, slow), [8]);
        // A request answered frees its origin's slot, though its outcome
        // is not committed yet (and it is not sent again meanwhile).
        q.answered(3);
        assert_eq!(q.take_due(100 + 3 * ORIGIN_BUSY_MS, slow), [9]);
        assert!(q.in_flight.contains_key(&3));
        // An attempt that failed is due again when its outcome says.
        q.finish(1, Next::At(5000));
        assert!(q.take_due(4999, slow).is_empty());
        assert_eq!(q.take_due(5000, slow), [1]);
        // Gone before its turn: skipped, and nothing is held for it.
        q.add(20, 6000);
        assert!(q.take_due(6000, |_| None).is_empty());
        assert!(q.due.is_empty());
    }
}
