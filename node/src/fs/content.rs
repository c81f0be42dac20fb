//! What the tree's generated files read as. Pure renderings of state.

use chrono::{DateTime, TimeZone, Utc};

use crate::cron::duration_text;
use crate::state::Job;
use crate::time::{rfc3339_millis, rfc3339_secs};

/// The job's next scheduled time after `now_ms` (its spread included),
/// when it is started.
pub fn next_time(job: &Job, now_ms: i64) -> Option<DateTime<Utc>> {
    if !job.started {
        return None;
    }
    let next = crate::times::Times::of(job)?.next_after(now_ms)?;
    Utc.timestamp_millis_opt(next).single()
}

/// `schedule`: the expression, then the next time when started.
pub fn schedule(job: &Job, now_ms: i64) -> String {
    match next_time(job, now_ms) {
        Some(t) => format!(
            "{}\n{}\n",
            job.schedule,
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!("{}\n", job.schedule),
    }
}

pub fn cmd(job: &Job) -> String {
    if job.cmd.is_empty() {
        String::new()
    } else {
        format!("{}\n", job.cmd)
    }
}

/// A job's `ctl`: one `key value` per line.
pub fn job_ctl(job: &Job, now_ms: i64) -> String {
    let next = next_time(job, now_ms).map_or_else(
        || "-".into(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let state = if job.started { "started" } else { "stopped" };
    let armed = job.armed_at_ms.map_or_else(|| "-".into(), rfc3339_secs);
    let last_start = job.last_start_ms.map_or_else(|| "-".into(), rfc3339_secs);
    let overlap = job.overlap;
    let catchup = match job.catchup_window_ms {
        Some(w) => format!("{} {}", job.catchup, duration_text(w)),
        None => job.catchup.to_string(),
    };
    let timeout = job.timeout_ms.map_or_else(|| "off".into(), duration_text);
    let deadline = job
        .deadline_ms
        .map_or_else(|| "default".into(), duration_text);
    let spread = job.spread_ms.map_or_else(|| "off".into(), duration_text);
    let retry = job.retry.map_or_else(
        || "off".into(),
        |r| format!("{} {}", r.retries, duration_text(r.backoff_ms)),
    );
    let onlost = job.onlost;
    let after = if job.after.is_empty() {
        "-".to_string()
    } else {
        let rules: Vec<String> = job.after.iter().map(|r| format!("{}={}", r.job, r.on)).collect();
        rules.join(",")
    };
    let followed_by = if job.followers.is_empty() { "-".to_string() } else { job.followers.join(",") };
    let notify = match &job.notify {
        crate::command::NotifyRule::Default => "default".to_string(),
        crate::command::NotifyRule::Off => "off".to_string(),
        crate::command::NotifyRule::To(n) => rule_text(n),
    };
    // One line: the error is the receiver's text, cut, and may hold anything.
    let notify_error = job.notify_error.as_deref().map_or_else(|| "-".into(), |e| e.replace(['\n', '\r'], " "));
    let pending = job.retry_pending;
    let retry_pending = pending.map_or_else(|| "-".into(), |p| rfc3339_secs(p.scheduled_ms));
    let retry_at = pending.map_or_else(|| "-".into(), |p| rfc3339_secs(p.at_ms));
    let attempt = pending.map_or_else(
        || "-".into(),
        |p| {
            format!(
                "{}/{}",
                p.attempt,
                crate::state::retry::attempts_for(job, p.lost)
            )
        },
    );
    format!(
        "state {state}\nnext {next}\nlast-start {last_start}\nlast-status {}\nruns {}\nfailures {}\nskipped {}\ntz {}\n\
         overlap {overlap}\ncatchup {catchup}\ntimeout {timeout}\ndeadline {deadline}\nspread {spread}\nretry {retry}\nonlost {onlost}\n\
         retry-pending {retry_pending}\nretry-at {retry_at}\nattempt {attempt}\narmed-at {armed}\ncreated {}\n\
         after {after}\nfollowed-by {followed_by}\nnotify {notify}\nnotify-pending {}\nnotify-error {notify_error}\n",
        job.last_status.as_deref().unwrap_or("-"),
        job.runs,
        job.failures,
        job.skipped,
        job.tz,
        rfc3339_secs(job.created_at_ms),
        job.notify_pending
    )
}

/// `runs`: `RUNID SCHEDULED TRIGGER NODE START END STATUS`, oldest first.
pub fn runs(runs: &[crate::state::run::Run]) -> String {
    let opt = |t: Option<i64>| t.map_or_else(|| "-".into(), rfc3339_millis);
    runs.iter()
        .map(|r| {
            let trigger = r.trigger;
            let status = crate::state::run::status_text(&r.status);
            format!(
                "{} {} {trigger} {} {} {} {status}\n",
                r.id,
                rfc3339_millis(r.scheduled_ms),
                r.node,
                opt(r.start_ms),
                opt(r.end_ms)
            )
        })
        .collect()
}

/// What `/ctl` shows of this node and the cluster.
pub struct ClusterStatus {
    pub id: u64,
    pub leader: Option<u64>,
    pub leader_fsaddr: Option<String>,
    pub term: u64,
    pub members: Vec<u64>,
    pub learners: Vec<u64>,
    pub commit: u64,
    pub applied: u64,
    pub digest: u64,
    pub clock_skew_ms: i64,
    /// Each peer heard from: its clock minus ours (ms), and how long since.
    pub peers: Vec<(u64, i64, std::time::Duration)>,
    /// The last log index covered by this node's snapshot, and purged from its log.
    pub snapshot: u64,
    pub purged: u64,
    /// The newest backup under this node's `--dbdir`.
    pub backup: Option<String>,
    pub limits: crate::state::limits::Limits,
    /// The default webhook and the deliveries' counts (replicated).
    pub notify: crate::state::notify::Notifier,
    /// Each member's and learner's `--labels`, as it announced them.
    pub labels: Vec<(u64, Vec<(String, String)>)>,
    /// This node's runs holding a slot, and waiting for one.
    pub runs: (usize, usize),
}

fn ids(v: &[u64]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }
}

/// `peer-clock-ms ID=MS,...` (each member's and learner's clock minus
/// ours, as last observed) and `peer-heard-ms ID=MS,...` (since it was
/// last heard from); `-` when none has been heard. A node no longer in
/// the membership is left out.
fn peer_lines(s: &ClusterStatus) -> String {
    let current = |id: &u64| *id != s.id && (s.members.contains(id) || s.learners.contains(id));
    let peers: Vec<_> = s.peers.iter().filter(|p| current(&p.0)).collect();
    let list = |f: &dyn Fn(&(u64, i64, std::time::Duration)) -> String| {
        if peers.is_empty() {
            "-".to_string()
        } else {
            peers
                .iter()
                .map(|p| format!("{}={}", p.0, f(p)))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    format!(
        "peer-clock-ms {}\npeer-heard-ms {}\n",
        list(&|p| p.1.to_string()),
        list(&|p| p.2.as_millis().to_string())
    )
}

/// `labels ID:KEY=VALUE,... ID:-`: each member's and learner's labels
/// (`-`: none, or not announced yet).
fn labels_line(labels: &[(u64, Vec<(String, String)>)]) -> String {
    let each: Vec<String> = labels
        .iter()
        .map(|(id, l)| {
            let l = if l.is_empty() { "-".to_string() } else { l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",") };
            format!("{id}:{l}")
        })
        .collect();
    format!("labels {}\n", if each.is_empty() { "-".to_string() } else { each.join(" ") })
}

/// A notify rule as written on a ctl (`URL ON`).
fn rule_text(n: &crate::command::Notify) -> String {
    format!("{} {}", n.url, n.on)
}

fn notify_lines(n: &crate::state::notify::Notifier) -> String {
    format!(
        "notify {}\nnotify-pending {}\nnotify-delivered {}\nnotify-dropped {}\nnotify-given-up {}\n",
        n.default.as_ref().map_or_else(|| "off".into(), rule_text),
        n.pending,
        n.delivered,
        n.dropped,
        n.given_up
    )
}

pub fn cluster_ctl(s: &ClusterStatus) -> String {
    format!(
        "id {}\nleader {}\nleader-fsaddr {}\nterm {}\nmembers {}\nlearners {}\ncommit {}\napplied {}\ndigest {:016x}\nclock-skew-ms {}\nsnapshot {}\npurged {}\nbackup {}\nruns-running {}\nruns-queued {}\n",
        s.id,
        s.leader.map_or_else(|| "none".into(), |l| l.to_string()),
        s.leader_fsaddr.as_deref().unwrap_or("-"),
        s.term,
        ids(&s.members),
        ids(&s.learners),
        s.commit,
        s.applied,
        s.digest,
        s.clock_skew_ms,
        s.snapshot,
        s.purged,
        s.backup.as_deref().unwrap_or("-"),
        s.runs.0,
        s.runs.1
    ) + &peer_lines(s)
        + &labels_line(&s.labels)
        + &notify_lines(&s.notify)
        + &s.limits.list().iter().map(|(n, v)| format!("limit-{n} {v}\n")).collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(started: bool) -> Job {
        let mut j = Job::new("hello", 3, "echo hello world", "0 0/5 * * * ? *", 0);
        j.started = started;
        j.armed_at_ms = started.then_some(0);
        j
    }

    #[test]
    fn schedule_shows_the_expression_first_and_next_only_when_started() {
        let now = 1_392_133_353_000; // 2014-02-11T15:42:33Z
        assert_eq!(schedule(&job(false), now), "0 0/5 * * * ? *\n");
        assert_eq!(
            schedule(&job(true), now),
            "0 0/5 * * * ? *\n2014-02-11T15:45:00Z\n"
        );
        assert_eq!(cmd(&job(true)), "echo hello world\n");
    }

    #[test]
    fn cluster_ctl_names_each_current_peers_clock_and_silence() {
        let s = ClusterStatus {
            id: 1,
            leader: Some(1),
            leader_fsaddr: None,
            term: 2,
            members: vec![1, 2, 3],
            learners: vec![],
            commit: 5,
            applied: 5,
            digest: 0,
            clock_skew_ms: 0,
            // Node 9 was removed: its last observation is left out.
            peers: vec![
                (2, 30, Duration::from_millis(120)),
                (3, -4, Duration::from_secs(7)),
                (9, 0, Duration::ZERO),
            ],
            snapshot: 0,
            purged: 0,
            backup: None,
            limits: Default::default(),
            notify: Default::default(),
            labels: vec![(1, vec![("zone".into(), "a".into()), ("gpu".into(), "1".into())]), (2, vec![])],
            runs: (0, 0),
        };
        let text = cluster_ctl(&s);
        assert!(
            text.contains(
                "runs-queued 0\npeer-clock-ms 2=30,3=-4\npeer-heard-ms 2=120,3=7000\nlabels 1:zone=a,gpu=1 2:-\nnotify off\nnotify-pending 0\n\
                 notify-delivered 0\nnotify-dropped 0\nnotify-given-up 0\nlimit-"
            ),
            "{text}"
        );
        let alone = ClusterStatus { peers: vec![], ..s };
        assert!(cluster_ctl(&alone).contains("peer-clock-ms -\npeer-heard-ms -\n"));
    }

    #[test]
    fn job_ctl_is_key_value_lines() {
        let text = job_ctl(&job(true), 1_392_133_353_000);
        assert!(
            text.starts_with("state started\nnext 2014-02-11T15:45:00Z\n"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.split_once(' ').is_some()));
    }
}
