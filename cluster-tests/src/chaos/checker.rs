//! The checkers, as pure functions of what a chaos run collected:
//! P1 no lost acknowledged write, P2 no duplicate fire, P3 no silent miss,
//! P4 run integrity, P5 convergence (the last is waited for, in `mod.rs`,
//! and its outcome passed in); beside P2, no run begins before its
//! scheduled time by the witness's clock (what clock skew must not cause),
//! and no run of a term begins after the first begin of a later term
//! (what the lease must not allow).

use std::collections::{BTreeMap, HashMap};

use super::witness;
use super::workload::Known;

/// The deadlines the tick jobs have (`deadline 1s`, or the cluster's
/// default for the retrying one, `mod.rs`), and what the witness's own
/// clock reading may add (the shell's start, a busy machine).
pub const STRICT_DEADLINE_MS: i64 = 1000;
pub const DEFAULT_DEADLINE_MS: i64 = 60_000;
const START_SLACK_MS: i64 = 300;

/// One line of `/jobs/NAME/runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRec {
    pub id: u64,
    pub scheduled_ms: i64,
    pub trigger: String,
    pub start_ms: Option<i64>,
    pub status: String,
}

fn ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp_millis())
}

pub fn parse_runs(text: &str) -> Vec<RunRec> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let [id, scheduled, trigger, _node, start, _end, status @ ..] = f.as_slice() else { return None };
            Some(RunRec {
                id: id.parse().ok()?,
                scheduled_ms: ms(scheduled)?,
                trigger: trigger.to_string(),
                start_ms: ms(start),
                status: status.join(" "),
            })
        })
        .collect()
}

/// The text of each `log` line (after its timestamp).
pub fn log_texts(log: &str) -> Vec<&str> {
    log.lines().filter_map(|l| l.split_once(" UTC:").map(|(_, t)| t)).collect()
}

/// A job's runs as read over time: a later read of a run replaces the
/// earlier one (its status moves on), so runs that scrolled out of the
/// last-100 window are kept.
#[derive(Debug, Default)]
pub struct Runs(pub BTreeMap<u64, RunRec>);

impl Runs {
    pub fn merge(&mut self, text: &str) {
        for r in parse_runs(text) {
            self.0.insert(r.id, r);
        }
    }
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub fires: usize,
    pub duplicates: usize,
    pub expected_times: usize,
    pub missed_accounted_lost: usize,
    pub skipped: usize,
    pub unaccounted: usize,
    pub lost_runs: usize,
    /// Runs whose command began before their scheduled time (witness clock).
    pub early: usize,
    /// Run records that ended without beginning (or `lost`), by job and status.
    pub not_begun: BTreeMap<String, usize>,
    /// Witness lines of attempts after the first.
    pub retries: usize,
    /// Runs of the chained job accepted (one per end it follows).
    pub chained: usize,
    /// Failed ends delivered to the webhook receiver.
    pub notified: usize,
    pub failures: Vec<String>,
}

/// P1: every job the ledger settled is in that state on node `node`
/// (`listing`: the names in its `/jobs`; `started`: its started jobs).
pub fn p1(known: &BTreeMap<String, Option<Known>>, node: u64, listing: &[String], started: &[String], v: &mut Verdict) {
    for (name, k) in known {
        let Some(k) = k else { continue };
        let exists = listing.contains(name);
        if exists != k.exists {
            v.failures.push(format!("P1 node {node}: job {name} exists={exists}, acknowledged exists={}", k.exists));
        } else if exists && started.contains(name) != k.started {
            v.failures.push(format!("P1 node {node}: job {name} started={}, acknowledged started={}", !k.started, k.started));
        }
    }
}

/// P2 and P3 for one tick job firing every second, with start deadline
/// `deadline_ms`, over scheduled seconds `from_s..to_s`; P4 from its final
/// log and runs.
#[allow(clippy::too_many_arguments)]
pub fn tick_job(job: &str, deadline_ms: i64, wit: &[witness::Line], runs: &Runs, log: &str, from_s: i64, to_s: i64, v: &mut Verdict) {
    // P2: at most one run per attempt of a scheduled time (a retry is a
    // new attempt, never a second first one), by the witness and by the
    // records.
    let mut seen: HashMap<(i64, u32), usize> = HashMap::new();
    for w in wit.iter().filter(|w| w.job == job) {
        *seen.entry((w.scheduled_s, w.attempt)).or_default() += 1;
        v.fires += 1;
        if w.attempt > 1 {
            v.retries += 1;
        }
        // No run starts before its time, whatever a node's clock says; and
        // a scheduled (not catch-up) run starts within the start deadline,
        // so a deposed leader cannot begin a stale one.
        let late = w.start_ms - w.scheduled_s * 1000;
        if late < 0 {
            v.early += 1;
            v.failures.push(format!("early {job}: run {} of {} began {} ms early on node {}", w.run, w.scheduled_s, -late, w.node));
        }
        if w.trigger == "schedule" && late > deadline_ms + START_SLACK_MS {
            v.failures.push(format!("late {job}: run {} of {} began {late} ms after its time on node {}, past the start deadline", w.run, w.scheduled_s, w.node));
        }
    }
    for ((t, attempt), n) in &seen {
        if *n > 1 {
            v.duplicates += n - 1;
            v.failures.push(format!("P2 {job}: attempt {attempt} of scheduled time {t} ran {n} times (witness)"));
        }
    }
    let times: std::collections::HashSet<i64> = seen.keys().map(|(t, _)| *t).collect();
    // The records do not number attempts: first attempts are the runs
    // that are not retries.
    let mut started_per_time: HashMap<i64, usize> = HashMap::new();
    for r in runs.0.values().filter(|r| r.trigger != "manual" && r.trigger != "retry" && r.start_ms.is_some()) {
        *started_per_time.entry(r.scheduled_ms / 1000).or_default() += 1;
    }
    for (t, n) in &started_per_time {
        if *n > 1 {
            v.duplicates += n - 1;
            v.failures.push(format!("P2 {job}: scheduled time {t} has {n} started runs (records)"));
        }
    }
    // P3: each second in the window ran, or has a run record (lost, not
    // started...), or is counted in a "skipped N scheduled times" line.
    let recorded: HashMap<i64, &RunRec> = runs.0.values().map(|r| (r.scheduled_ms / 1000, r)).collect();
    let texts = log_texts(log);
    let skipped: usize = texts
        .iter()
        .filter_map(|t| t.strip_prefix("skipped ")?.split(' ').next()?.parse::<usize>().ok())
        .sum();
    let mut missing = 0;
    for t in from_s..to_s {
        v.expected_times += 1;
        if times.contains(&t) {
            continue;
        }
        match recorded.get(&t) {
            Some(_) => v.missed_accounted_lost += 1,
            None => missing += 1,
        }
    }
    v.skipped += skipped;
    if missing > skipped {
        v.unaccounted += missing - skipped;
        v.failures.push(format!("P3 {job}: {missing} scheduled times with no run and no record, {skipped} counted as skipped"));
    }
    // P4: every run ended, once; a successful run's output whole and in order.
    for r in runs.0.values() {
        if r.status == "running" || r.status == "pending" {
            v.failures.push(format!("P4 {job}: run {} never ended ({})", r.id, r.status));
        }
        if r.status == "lost" {
            v.lost_runs += 1;
        }
        if r.status == "lost" || r.status.starts_with("not-started") {
            *v.not_begun.entry(format!("{job} {}", r.status)).or_default() += 1;
        }
    }
    let mut ends: HashMap<u64, usize> = HashMap::new();
    let mut outs: HashMap<u64, Vec<&str>> = HashMap::new();
    for t in &texts {
        let f: Vec<&str> = t.split(' ').collect();
        match f.as_slice() {
            ["run", id, .., "in", _] => *ends.entry(id.parse().unwrap_or(0)).or_default() += 1,
            [out @ ("out1" | "out2"), id] => outs.entry(id.parse().unwrap_or(0)).or_default().push(out),
            _ => {}
        }
    }
    for (id, n) in &ends {
        if *n > 1 {
            v.failures.push(format!("P4 {job}: run {id} ended {n} times in the log"));
        }
    }
    for r in runs.0.values().filter(|r| r.status == "exit 0") {
        // Only runs whose whole story is still inside the log's retention.
        if let Some(o) = outs.get(&r.id) {
            if o.as_slice() != ["out1", "out2"] {
                v.failures.push(format!("P4 {job}: run {} output {o:?}, want out1 then out2 once", r.id));
            }
        }
    }
}

/// The reasons a run is not started that a leader change (a node killed,
/// paused, cut off or restarted) gives: the fire protocol hands such runs
/// to the next leader instead.
const LEADER_CHANGE: [&str; 4] = ["node gone", "fence lost", "unanswered", "node stopping"];

/// P3, strict, for a job whose deadline a takeover fits in: no time is
/// left unrun because its leader changed. Stops, deletes, deadlines, the
/// clock guard and policies may still leave a time unrun; `lost` (claimed,
/// its node gone) too.
pub fn no_miss_by_leader_change(job: &str, runs: &Runs, v: &mut Verdict) {
    for r in runs.0.values() {
        let why = r.status.strip_prefix("not-started (").and_then(|w| w.strip_suffix(')'));
        if let Some(why) = why.filter(|w| LEADER_CHANGE.contains(w)) {
            v.failures.push(format!("P3 {job}: run {} of {} not started ({why}): a leader change lost it", r.id, r.scheduled_ms / 1000));
        }
    }
}

/// P2's order across terms, over every job's witness lines: a run begun
/// under term t began (by the witness's clock) no later than the first
/// begin under any later term, give or take the witness's own start
/// (`START_SLACK_MS`). A leader begins runs only under its lease, which
/// ends before any later leader exists (README, "Firing"). And a term's
/// runs were all begun by one node, its leader. Manual runs are left out:
/// a follower makes its own fence for one.
pub fn terms_in_order(wit: &[witness::Line], v: &mut Verdict) {
    let mut by_term: BTreeMap<u64, (i64, &witness::Line)> = BTreeMap::new();
    for w in wit.iter().filter(|w| w.trigger != "manual") {
        let first = by_term.entry(w.term).or_insert((w.start_ms, w));
        if w.node != first.1.node {
            v.failures.push(format!("P2 order: term {} has runs begun by node {} and node {} ({} run {})", w.term, first.1.node, w.node, w.job, w.run));
        }
        if w.start_ms < first.0 {
            *first = (w.start_ms, w);
        }
    }
    for w in wit.iter().filter(|w| w.trigger != "manual") {
        let later = by_term.range(w.term + 1..).map(|(_, f)| *f).min_by_key(|(at, _)| *at);
        if let Some((at, f)) = later.filter(|(at, _)| w.start_ms > at + START_SLACK_MS) {
            v.failures.push(format!(
                "P2 order: {} run {} (term {}, node {}) began at {}, {} ms after {} run {} of the later term {} (node {})",
                w.job,
                w.run,
                w.term,
                w.node,
                w.start_ms,
                w.start_ms - at,
                f.job,
                f.run,
                f.term,
                f.node
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_not_started_for_a_leader_change_fails_the_strict_check() {
        let mut runs = Runs::default();
        runs.merge("1 1970-01-01T00:00:10.000Z schedule 1 - 1970-01-01T00:00:13.000Z not-started (deadline)\n");
        runs.merge("2 1970-01-01T00:00:11.000Z schedule 1 - 1970-01-01T00:00:13.000Z not-started (stopped)\n");
        runs.merge("3 1970-01-01T00:00:12.000Z schedule 1 - 1970-01-01T00:00:13.000Z lost\n");
        let mut v = Verdict::default();
        no_miss_by_leader_change("t", &runs, &mut v);
        assert!(v.failures.is_empty(), "{:?}", v.failures);
        runs.merge("4 1970-01-01T00:00:13.000Z schedule 1 - 1970-01-01T00:00:14.000Z not-started (unanswered)\n");
        no_miss_by_leader_change("t", &runs, &mut v);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
    }

    fn w(t: i64) -> witness::Line {
        witness::Line { job: "t".into(), scheduled_s: t, node: 1, run: t as u64, start_ms: t * 1000 + 3, trigger: "schedule".into(), attempt: 1, term: 1 }
    }

    #[test]
    fn a_run_of_a_term_begun_after_a_later_term_began_fails() {
        let old = |t: i64| witness::Line { node: 1, term: 4, ..w(t) };
        let new = |t: i64| witness::Line { node: 2, term: 6, ..w(t) };
        let mut v = Verdict::default();
        // Term 4's runs all began before term 6's first (out of order in
        // the file, as two nodes append to it), and a manual run is left out.
        let manual = witness::Line { trigger: "manual".into(), term: 3, ..w(30) };
        terms_in_order(&[old(10), new(13), old(11), new(14), manual.clone()], &mut v);
        assert!(v.failures.is_empty(), "{:?}", v.failures);
        // Within the slack of the later term's first begin: allowed.
        let mut v = Verdict::default();
        terms_in_order(&[new(13), witness::Line { start_ms: 13_003 + START_SLACK_MS, ..old(12) }], &mut v);
        assert!(v.failures.is_empty(), "{:?}", v.failures);
        // Past it: a deposed leader began a run.
        let mut v = Verdict::default();
        terms_in_order(&[old(10), new(13), old(14), manual], &mut v);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
        assert!(v.failures[0].contains("term 4") && v.failures[0].contains("term 6"), "{:?}", v.failures);
        // Two nodes beginning runs of one term.
        let mut v = Verdict::default();
        terms_in_order(&[old(10), witness::Line { node: 3, ..old(11) }], &mut v);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
    }

    #[test]
    fn duplicates_misses_and_skips_are_told_apart() {
        let mut runs = Runs::default();
        runs.merge("1 1970-01-01T00:00:10.000Z schedule 1 1970-01-01T00:00:10.001Z 1970-01-01T00:00:10.010Z exit 0\n");
        runs.merge("2 1970-01-01T00:00:12.000Z schedule 1 - 1970-01-01T00:00:13.000Z not-started\n");
        let log = "1970-01-01 00:00:10.001000000 +0000 UTC:started run 1\n\
                   1970-01-01 00:00:10.002000000 +0000 UTC:out1 1\n\
                   1970-01-01 00:00:10.003000000 +0000 UTC:out2 1\n\
                   1970-01-01 00:00:10.010000000 +0000 UTC:run 1 exit 0 in 9ms\n";
        // 10 ran, 11 missing, 12 recorded as not started.
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[w(10)], &runs, log, 10, 13, &mut v);
        assert_eq!((v.expected_times, v.missed_accounted_lost, v.unaccounted), (3, 1, 1));
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
        // The same miss counted by a skip line is accounted for.
        let mut v = Verdict::default();
        let log2 = format!("{log}1970-01-01 00:00:13.000000000 +0000 UTC:skipped 1 scheduled times (catch-up once)\n");
        tick_job("t", STRICT_DEADLINE_MS, &[w(10)], &runs, &log2, 10, 13, &mut v);
        assert!(v.failures.is_empty(), "{:?}", v.failures);
        // A second witness line for 10 is a duplicate.
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[w(10), w(10)], &runs, log, 10, 11, &mut v);
        assert_eq!(v.duplicates, 1);
        // A run that began before its scheduled time is a failure.
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[witness::Line { start_ms: 9_990, ..w(10) }], &runs, log, 10, 11, &mut v);
        assert_eq!((v.early, v.failures.len()), (1, 1), "{:?}", v.failures);
        // A scheduled run begun past the start deadline is a failure; a
        // catch-up run may begin late.
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[witness::Line { start_ms: 11_500, ..w(10) }], &runs, log, 10, 11, &mut v);
        assert_eq!(v.failures.len(), 1, "{:?}", v.failures);
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[witness::Line { start_ms: 11_500, trigger: "catchup".into(), ..w(10) }], &runs, log, 10, 11, &mut v);
        assert!(v.failures.is_empty(), "{:?}", v.failures);
        // A second attempt of a time is a retry, not a duplicate; a second
        // second attempt is.
        let retry = witness::Line { start_ms: 12_000, trigger: "retry".into(), attempt: 2, ..w(10) };
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[w(10), retry.clone()], &runs, log, 10, 11, &mut v);
        assert_eq!((v.duplicates, v.retries, v.failures.len()), (0, 1, 0), "{:?}", v.failures);
        let mut v = Verdict::default();
        tick_job("t", STRICT_DEADLINE_MS, &[w(10), retry.clone(), retry], &runs, log, 10, 11, &mut v);
        assert_eq!(v.duplicates, 1, "{:?}", v.failures);
    }

    #[test]
    fn acknowledged_state_must_hold_on_every_node() {
        let known = BTreeMap::from([("a".to_string(), Some(Known { exists: true, started: true })), ("b".to_string(), None)]);
        let mut v = Verdict::default();
        p1(&known, 1, &["a".into()], &["a".into()], &mut v);
        assert!(v.failures.is_empty());
        p1(&known, 2, &["a".into()], &[], &mut v);
        p1(&known, 3, &[], &[], &mut v);
        assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
    }
}

/// The chained job (`after FOLLOWED always`): every run of the followed job
/// scheduled from `from_ms` on (after the rule was written) that ended got
/// exactly one chained run
/// (the follower's log says which: `run N after run X of FOLLOWED (...)`),
/// no chained run and no triggering run began twice (the chain witness,
/// `X N` per begun run), a chained run that began is not recorded
/// `not-started`, and one recorded `exit 0` began.
pub fn chain(followed_job: &str, from_ms: i64, followed: &Runs, chained: &Runs, log: &str, wit: &[(u64, u64)], v: &mut Verdict) {
    let mut by_trigger: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let tail = format!(" of {followed_job} (");
    for text in log_texts(log) {
        let Some(rest) = text.strip_prefix("run ") else { continue };
        let Some((n, rest)) = rest.split_once(" after run ") else { continue };
        let Some((x, _)) = rest.split_once(&tail) else { continue };
        if let (Ok(n), Ok(x)) = (n.parse::<u64>(), x.parse::<u64>()) {
            by_trigger.entry(x).or_default().push(n);
        }
    }
    for (x, ns) in by_trigger.iter().filter(|(_, ns)| ns.len() > 1) {
        v.failures.push(format!("chain: run {x} of {followed_job} started chained runs {ns:?}"));
    }
    let mut began: HashMap<u64, usize> = HashMap::new();
    let mut triggered: HashMap<u64, usize> = HashMap::new();
    for (x, n) in wit {
        *began.entry(*n).or_default() += 1;
        *triggered.entry(*x).or_default() += 1;
    }
    for (n, k) in began.iter().filter(|(_, k)| **k > 1) {
        v.failures.push(format!("chain: chained run {n} began {k} times"));
    }
    for (x, k) in triggered.iter().filter(|(_, k)| **k > 1) {
        v.failures.push(format!("chain: run {x} of {followed_job} began {k} chained runs"));
    }
    for (x, n) in wit {
        if by_trigger.get(x).is_none_or(|ns| !ns.contains(n)) {
            v.failures.push(format!("chain: chained run {n} began for run {x}, which the log does not say started it"));
        }
        if chained.0.get(n).is_some_and(|r| r.status.starts_with("not-started")) {
            v.failures.push(format!("chain: chained run {n} began but is recorded {}", chained.0[n].status));
        }
    }
    for (n, r) in &chained.0 {
        if r.status == "exit 0" && !wit.iter().any(|(_, m)| m == n) {
            v.failures.push(format!("chain: chained run {n} is recorded exit 0 but never began"));
        }
    }
    if by_trigger.is_empty() {
        v.failures.push(format!("chain: no run of {followed_job} started a chained run"));
    }
    // Every end of a run fired after the rule was written.
    for (x, r) in followed.0.iter().filter(|(_, r)| r.scheduled_ms >= from_ms) {
        if r.status != "pending" && r.status != "running" && !by_trigger.contains_key(x) {
            v.failures.push(format!("chain: run {x} of {followed_job} ended {} and started no chained run", r.status));
        }
    }
    v.chained += by_trigger.len();
}

/// Whether a run's end is one `notify ... failure` asks to hear of: every
/// end but `exit 0` and a user's stop or delete (README, "Webhooks").
pub fn notify_failure(status: &str) -> bool {
    !matches!(status, "exit 0" | "pending" | "running" | "not-started (stopped)" | "not-started (deleted)")
}

/// Webhooks (`notify URL failure` on /ctl, a receiver on port 0): every
/// failed end of the watched jobs reached the receiver (answered 2xx at
/// least once), with the status its record has; nothing else did; and no
/// delivery was answered 2xx more than `1 + leader_changes` times (a
/// leader that dies between the 2xx and its commit leaves it to the next).
/// `delivered`: per delivery id, the statuses of the 2xx-answered requests.
pub fn notify(runs: &[Runs], delivered: &HashMap<u64, Vec<String>>, leader_changes: usize, v: &mut Verdict) {
    for r in runs.iter().flat_map(|r| r.0.values()) {
        if !notify_failure(&r.status) {
            continue;
        }
        match delivered.get(&r.id) {
            None => v.failures.push(format!("notify: run {} ended {} and never reached the receiver", r.id, r.status)),
            Some(s) if s.iter().any(|s| *s != r.status) => v.failures.push(format!("notify: run {} ended {} but was delivered as {s:?}", r.id, r.status)),
            Some(_) => {}
        }
    }
    for (id, statuses) in delivered {
        if let Some(s) = statuses.iter().find(|s| !notify_failure(s)) {
            v.failures.push(format!("notify: run {id} was delivered though it ended {s}, not a failure"));
        }
        if statuses.len() > 1 + leader_changes {
            v.failures.push(format!("notify: run {id} was delivered {} times with {leader_changes} leader changes", statuses.len()));
        }
    }
    v.notified += delivered.len();
}
