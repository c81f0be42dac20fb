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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::clock::now_ms;
use crate::command::{Command, Fence};
use crate::propose::Proposer;
use crate::state::notify as rules;
use crate::store::state_machine::StateMachine;

/// How often the loop looks for new deliveries and due attempts, when no
/// attempt's report wakes it sooner: a run's end is sent within this of
/// its apply.
const TICK: Duration = Duration::from_millis(20);
/// Attempts not yet settled (sent, or their outcome not yet committed),
/// in all...
const MAX_IN_FLIGHT: usize = 256;
/// ...and requests under way to one origin (scheme, host and port): a
/// slow or silent receiver holds these, never the others' share.
const MAX_PER_ORIGIN: usize = 8;
/// An attempt whose outcome cannot be committed (no quorum, or this node's
/// leadership not confirmed for a moment) proposes it again after this...
const REPROPOSE: Duration = Duration::from_millis(500);
/// ...for this long, while no other leadership of this node begins; then
/// it gives up, and the delivery is sent again (a duplicate, if the
/// receiver had answered 2xx).
const OUTCOME_PATIENCE: Duration = Duration::from_secs(10);
/// A delivery whose read failed is tried again this much later.
const READ_RETRY_MS: i64 = 1000;

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
    /// Its outcome could not be committed: send it again from then on.
    Unrecorded(i64),
}

/// The deliveries one leadership knows: by when each is due, and, for an
/// origin with `MAX_PER_ORIGIN` requests under way, parked until one ends
/// (so a dead receiver's backlog costs nothing per tick).
#[derive(Default)]
struct Queue {
    due: BTreeSet<(i64, u64)>,
    /// Seq → (due at, origin), for each delivery in `due` or parked.
    known: HashMap<u64, (i64, String)>,
    parked: HashMap<String, VecDeque<u64>>,
    /// Deliveries with a seq below this have been read (None: none yet).
    read_to: Option<u64>,
    /// Seq → origin (None once its request is over), for attempts not
    /// settled yet: none is sent again meanwhile.
    in_flight: HashMap<u64, Option<String>>,
    /// Requests under way, by origin (an origin with none is removed).
    per_origin: HashMap<String, usize>,
}

/// The parts of a delivery the queue keeps (its body is read when sent).
#[derive(serde::Deserialize)]
struct Head {
    seq: u64,
    url: String,
    next_at_ms: i64,
}

impl Queue {
    fn add(&mut self, seq: u64, at_ms: i64, origin: String) {
        if self.in_flight.contains_key(&seq) || self.known.contains_key(&seq) {
            return;
        }
        self.known.insert(seq, (at_ms, origin));
        self.due.insert((at_ms, seq));
    }

    /// Reads the deliveries made since the last call (every pending one,
    /// the first time: on a blocking thread, as there may be many).
    async fn read_new(&mut self, sm: &StateMachine) -> Result<(), crate::state::KvError> {
        let next = rules::load_state(sm)?.next;
        let heads = match self.read_to {
            None => {
                let sm = sm.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let mut heads = vec![];
                    sm.visit(rules::PREFIX, |k, v| {
                        heads.push(crate::state::decode::<Head>(k, v)?);
                        Ok(())
                    })?;
                    Ok::<_, crate::state::KvError>(heads)
                });
                read.await.map_err(|e| crate::state::KvError::Read(e.to_string()))??
            }
            Some(from) => {
                let mut heads = vec![];
                for seq in from..next {
                    if let Some(d) = rules::load(sm, seq)? {
                        heads.push(Head { seq, url: d.url, next_at_ms: d.next_at_ms });
                    }
                }
                heads
            }
        };
        for h in heads.into_iter().filter(|h| h.seq < next) {
            self.add(h.seq, h.next_at_ms, origin(&h.url));
        }
        self.read_to = Some(next);
        Ok(())
    }

    /// Takes the deliveries due at `now` that have room to go, marking
    /// them in flight; one whose origin is full is parked.
    fn take_due(&mut self, now: i64) -> Vec<u64> {
        let mut out = vec![];
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(&(at, seq)) = self.due.first() else { break };
            if at > now {
                break;
            }
            self.due.pop_first();
            let Some((_, origin)) = self.known.get(&seq).cloned() else { continue };
            let n = self.per_origin.entry(origin.clone()).or_default();
            if *n >= MAX_PER_ORIGIN {
                self.parked.entry(origin).or_default().push_back(seq);
                continue;
            }
            *n += 1;
            self.known.remove(&seq);
            self.in_flight.insert(seq, Some(origin));
            out.push(seq);
        }
        out
    }

    /// The request for `seq` is over: its origin may take another, the
    /// first parked there if any.
    fn answered(&mut self, seq: u64) {
        let Some(origin) = self.in_flight.get_mut(&seq).and_then(Option::take) else { return };
        if let Some(n) = self.per_origin.get_mut(&origin) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_origin.remove(&origin);
            }
        }
        if let Some(parked) = self.parked.get_mut(&origin) {
            if let Some(next) = parked.pop_front() {
                if let Some(&(at, _)) = self.known.get(&next) {
                    self.due.insert((at, next));
                }
            }
            if parked.is_empty() {
                self.parked.remove(&origin);
            }
        }
    }

    fn finish(&mut self, seq: u64, next: Next, origin: String) {
        self.answered(seq);
        self.in_flight.remove(&seq);
        match next {
            Next::At(at) | Next::Unrecorded(at) => self.add(seq, at, origin),
            Next::Gone => {}
        }
    }
}

/// `scheme://host:port` of a URL, lowercased, without user and password:
/// what one receiver is.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    format!("{scheme}://{host}").to_ascii_lowercase()
}

/// One leadership's loop state, kept while its fence lasts (a moment
/// without a confirmed leadership, then the same fence again, keeps it:
/// its attempts are still in flight and must not be sent twice).
struct Leading {
    fence: Fence,
    queue: Queue,
    /// Seq → origin of the attempts in flight, for their reports.
    origins: HashMap<u64, String>,
    reports: mpsc::UnboundedReceiver<Report>,
    report_tx: mpsc::UnboundedSender<Report>,
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
        let mut leading: Option<Leading> = None;
        loop {
            let fence = *self.leadership.borrow_and_update();
            match fence {
                Some(fence) => {
                    let l = match leading.take() {
                        Some(l) if l.fence == fence => l,
                        _ => {
                            let (report_tx, reports) = mpsc::unbounded_channel();
                            Leading { fence, queue: Queue::default(), origins: HashMap::new(), reports, report_tx }
                        }
                    };
                    match self.lead(l, &client).await {
                        Some(l) => leading = Some(l),
                        // The node is stopping.
                        None => return,
                    }
                }
                None => {
                    if self.leadership.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Sends deliveries while `l.fence` is this node's leadership; returns
    /// `l` when it is not (for a moment, or for good), None when the
    /// leadership watch is closed (the node is stopping).
    async fn lead(&mut self, mut l: Leading, client: &reqwest::Client) -> Option<Leading> {
        loop {
            if *self.leadership.borrow_and_update() != Some(l.fence) {
                return Some(l);
            }
            while let Ok(report) = l.reports.try_recv() {
                l.settle(report);
            }
            if let Err(e) = l.queue.read_new(&self.sm).await {
                warn!("webhooks: cannot read the pending deliveries: {e}");
            }
            for seq in l.queue.take_due(now_ms()) {
                if let Some(Some(origin)) = l.queue.in_flight.get(&seq) {
                    l.origins.insert(seq, origin.clone());
                }
                let attempt = Attempt {
                    sm: self.sm.clone(),
                    proposer: self.proposer.clone(),
                    leadership: self.leadership.clone(),
                    fence: l.fence,
                    client: client.clone(),
                    secret: self.secret.clone(),
                    metrics: self.metrics.clone(),
                };
                let report = l.report_tx.clone();
                tokio::spawn(async move {
                    let next = attempt.run(seq, &report).await;
                    let _ = report.send(Report::Done(seq, next));
                });
            }
            // An attempt's report frees a slot at once (a herd of ends
            // must not wait a tick per MAX_PER_ORIGIN of them).
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                Some(report) = l.reports.recv() => l.settle(report),
                changed = self.leadership.changed() => if changed.is_err() { return None },
            }
        }
    }
}

impl Leading {
    fn settle(&mut self, report: Report) {
        match report {
            Report::Answered(seq) => self.queue.answered(seq),
            Report::Done(seq, next) => {
                let origin = self.origins.remove(&seq).unwrap_or_default();
                self.queue.finish(seq, next, origin);
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
                return Next::At(now_ms() + READ_RETRY_MS);
            }
        };
        let sent = send::Attempt { url: &d.url, id: d.id, attempt: d.attempts + 1, body: &d.body, timestamp: now_ms() / 1000 };
        let result = send::post(&self.client, self.secret.as_deref(), sent).await;
        let _ = report.send(Report::Answered(seq));
        match &result {
            Ok(()) => {
                self.metrics.notify_attempts.with_label_values(&["delivered"]).inc();
                debug!(id = d.id, "webhook delivered");
            }
            Err(e) => {
                self.metrics.notify_attempts.with_label_values(&["failed"]).inc();
                info!(id = d.id, attempt = d.attempts + 1, "webhook failed: {e}");
            }
        }
        let cmd = Command::Notified { seq, error: result.err(), at_ms: now_ms() };
        let give_up = tokio::time::Instant::now() + OUTCOME_PATIENCE;
        loop {
            // Another leadership of this node reads the delivery afresh.
            let now = *self.leadership.borrow();
            if now.is_some_and(|f| f != self.fence) || tokio::time::Instant::now() > give_up {
                return Next::Unrecorded(now_ms());
            }
            if now == Some(self.fence) {
                match self.proposer.propose(cmd.clone()).await {
                    Ok(_) => break,
                    Err(e) => debug!("webhooks: the outcome of delivery {seq} is not committed yet: {e}"),
                }
            }
            tokio::time::sleep(REPROPOSE).await;
        }
        match rules::load(&self.sm, seq) {
            Ok(Some(d)) => Next::At(d.next_at_ms),
            Ok(None) => Next::Gone,
            Err(_) => Next::At(now_ms() + READ_RETRY_MS),
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
        assert_eq!(origin("http://user:pw@h:1/x"), "http://h:1");
    }

    #[test]
    fn a_busy_origin_parks_its_deliveries_and_others_go() {
        let mut q = Queue::default();
        for seq in 0..12 {
            let origin = if seq < 10 { "http://slow" } else { "http://fast" };
            q.add(seq, 100, origin.into());
        }
        let first = q.take_due(100);
        assert_eq!(first.len(), MAX_PER_ORIGIN + 2, "{first:?}");
        assert!(first.contains(&10) && first.contains(&11), "the other origin is not held up");
        // The slow origin's other two are parked: nothing to look at per tick.
        assert!(q.due.is_empty());
        assert_eq!(q.parked["http://slow"].len(), 2);
        // A request answered frees its origin's slot for a parked one,
        // though its outcome is not committed yet (and it is not sent
        // again meanwhile).
        q.answered(3);
        assert_eq!(q.take_due(100), [8]);
        assert!(q.in_flight.contains_key(&3));
        q.add(3, 100, "http://slow".into());
        assert!(!q.due.contains(&(100, 3)), "in flight: not queued again");
        q.finish(0, Next::Gone, "http://slow".into());
        assert_eq!(q.take_due(100), [9]);
        // An attempt that failed is due again when its outcome says.
        q.finish(1, Next::At(5000), "http://slow".into());
        assert!(q.take_due(4999).is_empty());
        assert_eq!(q.take_due(5000), [1]);
        // One whose outcome went unrecorded is sent again too.
        q.finish(2, Next::Unrecorded(6000), "http://slow".into());
        assert_eq!(q.take_due(6000), [2]);
        // Origins with nothing under way are forgotten.
        for seq in [10, 11] {
            q.finish(seq, Next::Gone, "http://fast".into());
        }
        assert!(!q.per_origin.contains_key("http://fast"));
    }
}
