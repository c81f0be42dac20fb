//! Webhooks: `notify URL [success|failure|always]` on a job's ctl (or on
//! `/ctl`, the cluster's default) makes each matching run end a delivery:
//! a JSON document to POST to the URL. The delivery is made by the very
//! apply that records the end, so it exists on every node and survives
//! any leader; the leader's delivery loop (`node/src/notify`) sends it and
//! reports back with `Command::Notified`: a 2xx removes it, a failure
//! counts the attempt and sets when the next is due (backoff, doubling
//! from a second to ten minutes), and a day after it was made it is given
//! up. At least once: a leader that dies between the receiver's answer
//! and its `Notified` commit leaves the delivery to the next leader,
//! which sends it again under the same id (the run's).
//!
//! Pending deliveries are kept under `notify/SEQ` (SEQ counts up, so the
//! oldest is the lowest), bounded by `limit notify-pending`: past it the
//! oldest is dropped, counted, and said in its job's log.

use serde::{Deserialize, Serialize};

use super::run::{status_text, Run};
use super::{decode, encode, load_job, log, store_job, Job, Kv, KvError, KvRead};
use crate::command::{NotStarted, Notify, NotifyRule, On, Response, RunStatus};
use crate::time::rfc3339_millis;

const KEY: &[u8] = b"\x00notify";
pub const PREFIX: &[u8] = b"notify/";

/// A delivery is given up this long after it was made.
pub const GIVE_UP_MS: i64 = 86_400_000;
/// The wait after the first failed attempt; each next one doubles...
pub const FIRST_BACKOFF_MS: i64 = 1000;
/// ...up to this.
pub const MAX_BACKOFF_MS: i64 = 600_000;
/// The output lines a run keeps for its delivery (its last ones)...
pub const TAIL_LINES: usize = 10;
/// ...each cut to at most this many bytes.
pub const TAIL_LINE_BYTES: usize = 300;
/// A failure's text kept (the receiver's error, or the status line).
const ERROR_BYTES: usize = 200;
/// The most deliveries one end drops to make room.
const DROPS_PER_END: usize = 100;
/// The longest URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// The cluster's part: the default rule and the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifier {
    pub default: Option<Notify>,
    /// No delivery below this seq is pending.
    pub first: u64,
    /// The next delivery's seq.
    pub next: u64,
    pub pending: u64,
    pub delivered: u64,
    /// Dropped as the oldest past `limit notify-pending`.
    pub dropped: u64,
    /// Still failing a day after they were made.
    pub given_up: u64,
}

/// One pending delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub seq: u64,
    /// The delivery's id, the same on every attempt: its run's id.
    pub id: u64,
    pub url: String,
    pub job: String,
    pub incarnation: u64,
    /// The JSON document, made once at the end, so every attempt (by
    /// any leader) sends the same bytes.
    pub body: String,
    pub made_ms: i64,
    pub attempts: u32,
    /// When the next attempt is due (the first: at once).
    pub next_at_ms: i64,
    pub last_error: Option<String>,
}

/// The document POSTed: one run's end. Field order is the struct's.
#[derive(Serialize)]
struct Document<'a> {
    delivery: u64,
    job: &'a str,
    run: u64,
    scheduled: String,
    trigger: &'static str,
    node: u64,
    attempt: u32,
    /// Another attempt of this scheduled time is pending (`retry`).
    retrying: bool,
    after_run: Option<u64>,
    started: Option<String>,
    ended: String,
    duration_ms: Option<i64>,
    status: String,
    exit_code: Option<i32>,
    output: &'a [String],
}

pub fn key(seq: u64) -> Vec<u8> {
    [PREFIX, &seq.to_be_bytes()].concat()
}

pub fn load_state(kv: &impl KvRead) -> Result<Notifier, KvError> {
    Ok(kv.get(KEY)?.map(|v| decode(KEY, &v)).transpose()?.unwrap_or_default())
}

pub fn load(kv: &impl KvRead, seq: u64) -> Result<Option<Delivery>, KvError> {
    let key = key(seq);
    kv.get(&key)?.map(|v| decode(&key, &v)).transpose()
}

/// Whether an end with `status` is one `on` asks to hear of. Unlike a
/// chain's (which follows what a run did), `failure` here is every end
/// that is not `exit 0` — a time that never ran (`lost`, `not-started`)
/// is what an operator most needs to hear of — except a run a user's
/// `stop` or `delete` ended before it began.
pub fn matches(on: On, status: &RunStatus) -> bool {
    let asked_for = matches!(status, RunStatus::NotStarted(NotStarted::Stopped | NotStarted::Deleted));
    match on {
        On::Always => true,
        On::Success => *status == RunStatus::Exit(0),
        On::Failure => *status != RunStatus::Exit(0) && !asked_for,
    }
}

/// The rule that applies to `job`: its own, else the cluster's default.
pub fn rule_for(job: &Job, cluster: &Notifier) -> Option<Notify> {
    match &job.notify {
        NotifyRule::Default => cluster.default.clone(),
        NotifyRule::Off => None,
        NotifyRule::To(n) => Some(n.clone()),
    }
}

/// Checks a notify URL: `http://` or `https://`, a host, no spaces or
/// control characters. Not a full parse (the sender's HTTP client does
/// that, and a URL it refuses fails its attempts, each with the reason).
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("notify {url:?}: want an http:// or https:// URL"))?;
    if url.len() > MAX_URL_BYTES {
        return Err(format!("notify: the URL is over {MAX_URL_BYTES} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("notify {url:?}: a URL has no spaces or control characters"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("notify {url:?}: the URL names no host"));
    }
    Ok(())
}

/// `Command::SetNotify`: a job's rule (`name`), or the cluster's default.
pub fn set(kv: &mut impl Kv, name: Option<&str>, rule: &NotifyRule) -> Result<Response, KvError> {
    if let NotifyRule::To(n) = rule {
        if let Err(reason) = check_url(&n.url) {
            return Ok(Response::Rejected { reason });
        }
    }
    let Some(name) = name else {
        let mut cluster = load_state(kv)?;
        cluster.default = match rule {
            NotifyRule::Default => {
                return Ok(Response::Rejected { reason: "notify default: only a job's rule can be the cluster's default".into() })
            }
            NotifyRule::Off => None,
            NotifyRule::To(n) => Some(n.clone()),
        };
        kv.put(KEY.to_vec(), encode(&cluster));
        return Ok(Response::Done);
    };
    let Some(mut job) = load_job(kv, name)? else { return Ok(Response::NoSuchJob) };
    job.notify = rule.clone();
    store_job(kv, &job);
    Ok(Response::Done)
}

/// Keeps `line` among the last output lines of `run` (cut to
/// `TAIL_LINE_BYTES` on a character boundary).
pub fn keep_tail(run: &mut Run, line: &str) {
    run.tail.push(cut(line, TAIL_LINE_BYTES).to_string());
    if run.tail.len() > TAIL_LINES {
        run.tail.remove(0);
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// After `run` ended (its status stored): makes its delivery if the rule
/// for `job` asks for this end. `tail` is the run's last output lines;
/// `retrying`: another attempt of its time is pending. `job` is stored by
/// the caller (a delivery dropped for room may be one of its own).
pub fn after_end(kv: &mut impl Kv, job: &mut Job, run: &Run, tail: &[String], retrying: bool, at_ms: i64) -> Result<(), KvError> {
    let mut cluster = load_state(kv)?;
    let Some(rule) = rule_for(job, &cluster) else { return Ok(()) };
    if !matches(rule.on, &run.status) {
        return Ok(());
    }
    let cap = super::limits::load(kv)?.notify_pending;
    // A limit just lowered far below the pending count is reached over
    // several ends, not by one apply dropping a million.
    let mut budget = DROPS_PER_END;
    while cluster.pending >= cap && budget > 0 {
        drop_oldest(kv, &mut cluster, job, cap, at_ms)?;
        budget -= 1;
    }
    let doc = Document {
        delivery: run.id,
        job: &job.name,
        run: run.id,
        scheduled: rfc3339_millis(run.scheduled_ms),
        trigger: run.trigger.word(),
        node: run.node,
        attempt: run.attempt,
        retrying,
        after_run: run.after_run,
        started: run.start_ms.map(rfc3339_millis),
        ended: rfc3339_millis(at_ms),
        duration_ms: run.start_ms.map(|s| at_ms.saturating_sub(s).max(0)),
        status: status_text(&run.status),
        exit_code: match run.status {
            RunStatus::Exit(n) => Some(n),
            _ => None,
        },
        output: tail,
    };
    let delivery = Delivery {
        seq: cluster.next,
        id: run.id,
        url: rule.url,
        job: job.name.clone(),
        incarnation: job.incarnation,
        // A struct of strings and numbers: serializing cannot fail.
        body: serde_json::to_string(&doc).expect("a notify document serializes"),
        made_ms: at_ms,
        attempts: 0,
        next_at_ms: at_ms,
        last_error: None,
    };
    kv.put(key(delivery.seq), encode(&delivery));
    cluster.next += 1;
    cluster.pending += 1;
    job.notify_pending += 1;
    kv.put(KEY.to_vec(), encode(&cluster));
    Ok(())
}

/// Removes the oldest pending delivery to make room, counting and saying
/// so. `ending` is the job whose end needs the room (held by the caller,
/// not yet stored): if the oldest is its own, it is changed in place.
fn drop_oldest(kv: &mut impl Kv, cluster: &mut Notifier, ending: &mut Job, cap: u64, at_ms: i64) -> Result<(), KvError> {
    while cluster.first < cluster.next {
        if let Some(d) = load(kv, cluster.first)? {
            let line = format!("notification of run {} to {} dropped: {cap} are pending (limit notify-pending)", d.id, d.url);
            remove(kv, cluster, &d, ending, |kv, job| log::append(kv, job, at_ms, &line))?;
            cluster.dropped += 1;
            return Ok(());
        }
        cluster.first += 1;
    }
    // Nothing found below `next`: the count was wrong; mend it.
    cluster.pending = 0;
    Ok(())
}

/// Deletes delivery `d`, updates the counts, and runs `on_job` on its job
/// if that incarnation still exists (`ending`, when it is that job).
fn remove<K: Kv>(
    kv: &mut K,
    cluster: &mut Notifier,
    d: &Delivery,
    ending: &mut Job,
    on_job: impl FnOnce(&mut K, &mut Job) -> Result<(), KvError>,
) -> Result<(), KvError> {
    kv.delete(key(d.seq));
    cluster.pending = cluster.pending.saturating_sub(1);
    if d.job == ending.name && d.incarnation == ending.incarnation {
        ending.notify_pending = ending.notify_pending.saturating_sub(1);
        return on_job(kv, ending);
    }
    if let Some(mut job) = load_job(kv, &d.job)?.filter(|j| j.incarnation == d.incarnation) {
        job.notify_pending = job.notify_pending.saturating_sub(1);
        on_job(kv, &mut job)?;
        store_job(kv, &job);
    }
    Ok(())
}

/// The wait before the attempt after `failed` attempts.
pub fn backoff_ms(failed: u32) -> i64 {
    let doublings = failed.saturating_sub(1).min(20);
    FIRST_BACKOFF_MS.saturating_mul(1 << doublings).min(MAX_BACKOFF_MS)
}

/// `Command::Notified`: the outcome of an attempt at delivery `seq`.
pub fn notified(kv: &mut impl Kv, seq: u64, error: Option<&str>, at_ms: i64) -> Result<Response, KvError> {
    let Some(mut d) = load(kv, seq)? else {
        // Delivered, dropped or given up since the attempt began.
        return Ok(Response::Done);
    };
    let mut cluster = load_state(kv)?;
    // No job is ending here: a stand-in that matches no delivery.
    let mut none = Job::new("", u64::MAX, "", "", 0);
    match error {
        None => {
            remove(kv, &mut cluster, &d, &mut none, |_, job| {
                job.notify_error = None;
                Ok(())
            })?;
            cluster.delivered += 1;
        }
        Some(e) => {
            d.attempts = d.attempts.saturating_add(1);
            let e = cut(e, ERROR_BYTES).to_string();
            if at_ms.saturating_sub(d.made_ms) >= GIVE_UP_MS {
                let line = format!("notification of run {} to {} given up after {} attempts in a day: {e}", d.id, d.url, d.attempts);
                remove(kv, &mut cluster, &d, &mut none, |kv, job| {
                    job.notify_error = Some(e.clone());
                    log::append(kv, job, at_ms, &line)
                })?;
                cluster.given_up += 1;
            } else {
                d.next_at_ms = at_ms.saturating_add(backoff_ms(d.attempts));
                d.last_error = Some(e.clone());
                kv.put(key(seq), encode(&d));
                if let Some(mut job) = load_job(kv, &d.job)?.filter(|j| j.incarnation == d.incarnation) {
                    if job.notify_error.as_deref() != Some(&e) {
                        job.notify_error = Some(e);
                        store_job(kv, &job);
                    }
                }
            }
        }
    }
    // Keep `first` at the oldest still pending, so a drop finds it at once.
    while cluster.first < cluster.next && kv.get(&key(cluster.first))?.is_none() {
        cluster.first += 1;
    }
    kv.put(KEY.to_vec(), encode(&cluster));
    Ok(Response::Done)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::command::{Command, Fence, Trigger};
    use crate::state::apply;

    const FENCE: Fence = Fence { term: 2, node: 1, incarnation: 7 };

    struct T {
        kv: BTreeMap<Vec<u8>, Vec<u8>>,
        index: u64,
    }

    impl T {
        fn new(jobs: &[&str]) -> T {
            let mut t = T { kv: BTreeMap::new(), index: 0 };
            for name in jobs {
                t.apply(Command::CreateJob { name: (*name).into(), schedule: "* * * * * *".into(), cmd: "true".into(), at_ms: 0 });
                t.apply(Command::StartJob { name: (*name).into(), at_ms: 0 });
            }
            t
        }
        fn apply(&mut self, c: Command) -> Response {
            self.index += 1;
            apply(&mut self.kv, self.index, &c).unwrap()
        }
        fn notify(&mut self, name: Option<&str>, rule: NotifyRule) -> Response {
            self.apply(Command::SetNotify { name: name.map(Into::into), rule })
        }
        fn job(&self, name: &str) -> Job {
            load_job(&self.kv, name).unwrap().unwrap()
        }
        /// A run of `name` at `at` that prints `output` and ends with `status`.
        fn run(&mut self, name: &str, at: i64, output: &[&str], status: RunStatus) -> u64 {
            let inc = self.job(name).incarnation;
            let fire = Command::Fire { name: name.into(), incarnation: inc, scheduled_ms: at, trigger: Trigger::Schedule, skipped: 0, fence: FENCE, at_ms: at, claims: true };
            let Response::Accepted { run_id } = self.apply(fire) else { panic!("fire refused") };
            self.apply(Command::Begin { name: name.into(), incarnation: inc, run_id, fence: FENCE });
            self.apply(Command::RunStarted { name: name.into(), incarnation: inc, run_id, at_ms: at, fence: Some(FENCE) });
            let lines = output.iter().map(|l| l.to_string()).collect();
            self.apply(Command::Output { name: name.into(), incarnation: inc, run_id, seq: 0, lines, at_ms: at + 5, fence: Some(FENCE) });
            self.apply(Command::RunEnded { name: name.into(), incarnation: inc, run_id, status, at_ms: at + 10, fence: Some(FENCE) });
            run_id
        }
        fn pending(&self) -> Vec<Delivery> {
            self.kv.iter().filter(|(k, _)| k.starts_with(PREFIX)).map(|(k, v)| decode(k, v).unwrap()).collect()
        }
        fn log(&self, name: &str) -> String {
            let job = self.job(name);
            String::from_utf8(crate::state::log::read(&self.kv, &job, 0, 1 << 20).unwrap().1).unwrap()
        }
    }

    fn to(url: &str, on: On) -> NotifyRule {
        NotifyRule::To(Notify { url: url.into(), on })
    }

    fn refused(r: Response, want: &str) {
        match r {
            Response::Rejected { reason } => assert!(reason.contains(want), "{reason:?} should say {want:?}"),
            other => panic!("expected a refusal saying {want:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_matching_end_makes_one_delivery_with_the_run_and_its_last_lines() {
        let mut t = T::new(&["a", "b", "quiet"]);
        assert_eq!(t.notify(Some("a"), to("http://hook.example/a", On::Failure)), Response::Done);
        // The cluster's default covers b; quiet opts out.
        assert_eq!(t.notify(None, to("https://hook.example/all", On::Always)), Response::Done);
        t.notify(Some("quiet"), NotifyRule::Off);
        t.run("a", 1000, &["fine"], RunStatus::Exit(0));
        assert!(t.pending().is_empty(), "a success is not a failure");
        let lines: Vec<String> = (0..15).map(|i| format!("line {i} {}", "x".repeat(if i == 14 { 400 } else { 1 }))).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let failed = t.run("a", 2000, &refs, RunStatus::Exit(3));
        let ok = t.run("b", 3000, &[], RunStatus::Exit(0));
        t.run("quiet", 4000, &["x"], RunStatus::Exit(1));
        let pending = t.pending();
        assert_eq!(pending.iter().map(|d| (d.id, d.url.as_str())).collect::<Vec<_>>(), [(failed, "http://hook.example/a"), (ok, "https://hook.example/all")]);
        let doc: serde_json::Value = serde_json::from_str(&pending[0].body).unwrap();
        assert_eq!(doc["delivery"], failed);
        assert_eq!(doc["job"], "a");
        assert_eq!(doc["status"], "exit 3");
        assert_eq!(doc["exit_code"], 3);
        assert_eq!(doc["trigger"], "schedule");
        assert_eq!(doc["duration_ms"], 10);
        assert_eq!(doc["ended"], "1970-01-01T00:00:02.010Z");
        let output: Vec<String> = serde_json::from_value(doc["output"].clone()).unwrap();
        assert_eq!(output.len(), TAIL_LINES, "the last {TAIL_LINES} lines");
        assert_eq!(output[0], lines[5]);
        assert_eq!(output[9].len(), TAIL_LINE_BYTES, "a long line is cut");
        assert_eq!((t.job("a").notify_pending, t.job("b").notify_pending), (1, 1));
        assert_eq!(load_state(&t.kv).unwrap().pending, 2);
        // The run record keeps no tail once ended.
        let a = t.job("a");
        assert!(crate::state::run::load_run(&t.kv, a.incarnation, failed).unwrap().unwrap().tail.is_empty());
    }

    #[test]
    fn failure_is_every_end_but_success_and_a_users_stop_or_delete() {
        for (status, want) in [
            (RunStatus::Exit(0), false),
            (RunStatus::Exit(1), true),
            (RunStatus::Signal("KILL".into()), true),
            (RunStatus::Timeout, true),
            (RunStatus::Lost, true),
            (RunStatus::NotStarted(NotStarted::Deadline), true),
            (RunStatus::NotStarted(NotStarted::NodeGone), true),
            (RunStatus::NotStarted(NotStarted::Stopped), false),
            (RunStatus::NotStarted(NotStarted::Deleted), false),
        ] {
            assert_eq!(matches(On::Failure, &status), want, "{status:?}");
            assert!(matches(On::Always, &status));
            assert_eq!(matches(On::Success, &status), status == RunStatus::Exit(0));
        }
    }

    #[test]
    fn an_attempt_backs_off_on_failure_is_removed_on_success_and_given_up_after_a_day() {
        let mut t = T::new(&["a"]);
        t.notify(Some("a"), to("http://h/", On::Always));
        let first = t.run("a", 1000, &[], RunStatus::Exit(0));
        let second = t.run("a", 2000, &[], RunStatus::Exit(0));
        let [d1, d2] = <[Delivery; 2]>::try_from(t.pending()).unwrap();
        assert_eq!((d1.id, d2.id, d1.next_at_ms), (first, second, 1010));
        t.apply(Command::Notified { seq: d1.seq, error: Some("HTTP 500".into()), at_ms: 5000 });
        t.apply(Command::Notified { seq: d1.seq, error: Some("connection refused".into()), at_ms: 6000 });
        let d = load(&t.kv, d1.seq).unwrap().unwrap();
        assert_eq!((d.attempts, d.next_at_ms, d.last_error.as_deref()), (2, 6000 + 2000, Some("connection refused")));
        assert_eq!(t.job("a").notify_error.as_deref(), Some("connection refused"));
        // The second is answered: removed and counted; the first stays first.
        t.apply(Command::Notified { seq: d2.seq, error: None, at_ms: 6100 });
        let c = load_state(&t.kv).unwrap();
        assert_eq!((c.pending, c.delivered, c.first), (1, 1, d1.seq));
        assert_eq!(t.job("a").notify_pending, 1);
        // An answer for a delivery no longer pending changes nothing.
        let before = t.kv.clone();
        t.apply(Command::Notified { seq: d2.seq, error: Some("late".into()), at_ms: 6200 });
        assert_eq!(t.kv.iter().filter(|(k, _)| !k.starts_with(b"\x00applied")).count(), before.len());
        assert_eq!(load_state(&t.kv).unwrap(), c);
        // A day after it was made, a failure gives it up, said in the log.
        t.apply(Command::Notified { seq: d1.seq, error: Some("HTTP 404".into()), at_ms: 1010 + GIVE_UP_MS });
        let c = load_state(&t.kv).unwrap();
        assert_eq!((c.pending, c.given_up, c.first), (0, 1, c.next));
        assert!(t.pending().is_empty());
        assert!(t.log("a").contains(&format!("notification of run {first} to http://h/ given up after 3 attempts in a day: HTTP 404")), "{}", t.log("a"));
        assert_eq!(t.job("a").notify_pending, 0);
    }

    #[test]
    fn past_the_limit_the_oldest_is_dropped_counted_and_logged() {
        let mut t = T::new(&["a", "b"]);
        t.notify(None, to("http://h/", On::Always));
        t.apply(Command::SetLimit { name: "notify-pending".into(), value: 2 });
        let oldest = t.run("b", 1000, &[], RunStatus::Exit(0));
        t.run("a", 2000, &[], RunStatus::Exit(0));
        let third = t.run("a", 3000, &[], RunStatus::Exit(0));
        let fourth = t.run("b", 4000, &[], RunStatus::Exit(0));
        let ids: Vec<u64> = t.pending().iter().map(|d| d.id).collect();
        assert_eq!(ids, [third, fourth]);
        let c = load_state(&t.kv).unwrap();
        assert_eq!((c.pending, c.dropped), (2, 2));
        assert_eq!((t.job("a").notify_pending, t.job("b").notify_pending), (1, 1), "each job's count follows its own");
        assert!(t.log("b").contains(&format!("notification of run {oldest} to http://h/ dropped: 2 are pending")), "{}", t.log("b"));
    }

    #[test]
    fn a_limit_lowered_far_below_the_count_is_reached_a_hundred_drops_an_end() {
        let mut t = T::new(&["a"]);
        t.notify(None, to("http://h/", On::Always));
        for i in 0..105 {
            t.run("a", 1000 * (i + 1), &[], RunStatus::Exit(0));
        }
        t.apply(Command::SetLimit { name: "notify-pending".into(), value: 1 });
        t.run("a", 200_000, &[], RunStatus::Exit(0));
        assert_eq!(load_state(&t.kv).unwrap().pending, 6, "105 + 1 - 100");
        t.run("a", 201_000, &[], RunStatus::Exit(0));
        let c = load_state(&t.kv).unwrap();
        assert_eq!((c.pending, c.dropped), (1, 106));
        assert_eq!(t.pending().len(), 1);
        assert_eq!(t.job("a").notify_pending, 1);
    }

    #[test]
    fn bad_urls_and_a_default_of_default_are_refused_and_change_nothing() {
        let mut t = T::new(&["a"]);
        for bad in ["ftp://h/", "http://", "http:///x", "https://:80/", "http://h/a b", "hook.example"] {
            let before = t.kv.clone();
            refused(t.notify(Some("a"), to(bad, On::Failure)), "notify");
            assert_eq!(t.kv.len(), before.len(), "{bad}");
            assert_eq!(t.job("a").notify, NotifyRule::Default);
        }
        refused(t.notify(None, NotifyRule::Default), "only a job's rule");
        assert_eq!(t.notify(Some("nope"), NotifyRule::Off), Response::NoSuchJob);
        assert_eq!(check_url("http://user:pw@h:8080/x?y#z"), Ok(()));
    }

    #[test]
    fn the_backoff_doubles_from_a_second_to_ten_minutes() {
        assert_eq!([1, 2, 3, 4].map(backoff_ms), [1000, 2000, 4000, 8000]);
        assert_eq!(backoff_ms(30), MAX_BACKOFF_MS);
    }
}
