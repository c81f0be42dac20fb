//! Seeded combined chaos against three real jobd processes with every peer
//! link through a proxy: the nemesis injects faults, a client works on
//! jobs, tick jobs fire every second into a witness file, a chained job
//! runs after every end of the first tick job into another, every failed
//! end is POSTed to a webhook receiver (which refuses some first attempts),
//! and at the end the cluster is healed, the tick jobs stopped, and the
//! five checkers run.
//! The seed alone replays the fault schedule and the client's choices
//! (timing on a shared machine still varies).

pub mod checker;
pub mod nemesis;
pub mod rng;
pub mod witness;
pub mod workload;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use crate::cluster::Cluster;
use checker::{Runs, Verdict};
use nemesis::Injected;

pub const TICK_JOBS: usize = 3;
/// The tick job with the default deadline, `retry` and `onlost rerun`, whose
/// command fails some first attempts; the others have `deadline 1s`.
pub const RETRY_TICK: usize = TICK_JOBS - 1;
/// The job that runs `after tick0 always`.
pub const CHAIN: &str = "chain";

/// The jobs whose runs are collected: the tick jobs, then the chained one.
fn watched(k: usize) -> String {
    if k < TICK_JOBS {
        format!("tick{k}")
    } else {
        CHAIN.into()
    }
}

pub struct Report {
    pub seed: u64,
    pub ran_for: Duration,
    pub faults: Vec<Injected>,
    pub ledger: workload::Ledger,
    pub verdict: Verdict,
    /// The node ids at the end (a replaced node has a new one).
    pub ids: Vec<u64>,
}

/// `JOBD_CHAOS_SEED` if set (a replay), else one from the clock.
pub fn seed() -> u64 {
    std::env::var("JOBD_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    })
}

impl Report {
    pub fn passed(&self) -> bool {
        self.verdict.failures.is_empty() && self.ledger.violations.is_empty()
    }
}

fn spread(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_millis();
    format!("min {} / median {} / p99 {} / max {} ms (n={})", q(0.0), q(0.5), q(0.99), q(1.0), v.len())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, v) = (&self.ledger, &self.verdict);
        writeln!(f, "seed {} ran {:.0} s, {} faults", self.seed, self.ran_for.as_secs_f64(), self.faults.len())?;
        let mut kinds: Vec<String> = vec![];
        for k in self.faults.iter().map(|i| format!("{:?}", i.fault)) {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        let counts: Vec<String> =
            kinds.iter().map(|k| format!("{k} {}", self.faults.iter().filter(|i| format!("{:?}", i.fault) == *k).count())).collect();
        writeln!(f, "faults: {}", counts.join(", "))?;
        writeln!(f, "writes: {} acknowledged, {} failed (nothing done), {} unknown, {} refused", l.acked, l.failed, l.unknown, l.refused)?;
        writeln!(
            f,
            "fires: {} (witness), duplicates {}, early {}, scheduled times {}, ended lost/not-started {}, skipped by policy {}, unaccounted {}, lost runs {}",
            v.fires, v.duplicates, v.early, v.expected_times, v.missed_accounted_lost, v.skipped, v.unaccounted, v.lost_runs
        )?;
        let reasons: Vec<String> = v.not_begun.iter().map(|(why, n)| format!("{why} {n}")).collect();
        writeln!(
            f,
            "not begun, by job and status: {}; retry attempts begun {}; chained runs {}; failures delivered to the webhook {}",
            if reasons.is_empty() { "-".into() } else { reasons.join(", ") },
            v.retries,
            v.chained,
            v.notified
        )?;
        writeln!(f, "failover kill -> new leader: {}", spread(self.faults.iter().filter_map(|i| i.to_leader).collect()))?;
        writeln!(f, "failover kill -> first fire: {}", spread(self.faults.iter().filter_map(|i| i.to_fire).collect()))?;
        for x in l.violations.iter().chain(&v.failures) {
            writeln!(f, "FAIL {x}")?;
        }
        write!(f, "{}", if self.passed() { "PASS: P1-P5 hold" } else { "FAILED" })
    }
}

async fn read(c: &Cluster, i: usize, path: &str) -> Result<String> {
    let client = tokio::time::timeout(Duration::from_secs(5), c.client(i)).await.context("connect timed out")??;
    let bytes = tokio::time::timeout(Duration::from_secs(10), client.read(path)).await.context("read timed out")??;
    Ok(String::from_utf8(bytes)?)
}

/// Writes through the leader until acknowledged (or the deadline passes).
async fn write_acked(c: &Cluster, path: &str, data: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let leader = c.wait_leader().await?;
        if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(5), c.client(leader)).await {
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(10), client.write(path, data.as_bytes())).await {
                return Ok(());
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("{path} <- {data:?} not acknowledged within 60 s");
        }
    }
}

/// Reads every watched job's runs from the first node that answers.
async fn collect_runs(c: &Cluster, runs: &mut [Runs]) {
    for (k, r) in runs.iter_mut().enumerate() {
        for i in 0..c.nodes.len() {
            if c.nodes[i].child.is_some() && !c.is_paused(i) {
                if let Ok(text) = read(c, i, &format!("jobs/{}/runs", watched(k))).await {
                    r.merge(&text);
                    break;
                }
            }
        }
    }
}

/// The highest term any node's `/ctl` shows.
async fn term(c: &Cluster) -> u64 {
    let mut t = 0;
    for i in 0..c.nodes.len() {
        if let Some(n) = c.ctl(i).await.ok().and_then(|m| m.get("term")?.parse().ok()) {
            t = t.max(n);
        }
    }
    t
}

/// P5: one leader, and every node at the same applied index and digest.
async fn converge(c: &Cluster, within: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        c.wait_leader().await?;
        let mut seen = vec![];
        for i in 0..c.nodes.len() {
            seen.push(c.ctl(i).await.ok().map(|m| (m.get("applied").cloned(), m.get("digest").cloned())));
        }
        if seen[0].is_some() && seen.iter().all(|s| *s == seen[0]) {
            return Ok(());
        }
        if start.elapsed() > within {
            bail!("P5: nodes did not converge within {within:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a run does: for how long or how many faults, which faults, and
/// whether the client works beside them.
pub struct Plan {
    pub duration: Duration,
    /// Stop after this many faults even if time is left.
    pub max_faults: usize,
    /// Draw only this fault (a scenario; the failover benchmark).
    pub only: Option<nemesis::Fault>,
    pub workload: bool,
    /// Environment for every node.
    pub env: Vec<(&'static str, &'static str)>,
}

/// How long the ticks and the client go on after the last fault.
const AFTER_FAULTS: Duration = Duration::from_secs(5);

/// Snapshots (and log purges) every 50 entries, so that isolated or
/// replaced nodes catch up by snapshot and compaction runs under faults.
const SNAPSHOT_EVERY: (&str, &str) = ("JOBD_SNAPSHOT_EVERY", "50");

impl Plan {
    /// Every fault, with the client, for `duration`.
    pub fn chaos(duration: Duration) -> Plan {
        Plan { duration, max_faults: usize::MAX, only: None, workload: true, env: vec![SNAPSHOT_EVERY] }
    }

    /// `faults` of one kind, with the client working beside them.
    pub fn scenario(fault: nemesis::Fault, faults: usize) -> Plan {
        Plan { duration: Duration::from_secs(180), max_faults: faults, only: Some(fault), workload: true, env: vec![SNAPSHOT_EVERY] }
    }
}

/// One chaos run.
pub async fn run(seed: u64, plan: Plan) -> Result<Report> {
    let started = Instant::now();
    let mut rng = rng::Rng::new(seed);
    let mut c = Cluster::start_proxied_with_env(3, &plan.env).await?;
    // Every failed end is POSTed here; a fifth of the deliveries are
    // refused once first, so retries happen under the faults too.
    let receiver = crate::receiver::Receiver::start(|h, seen| {
        crate::receiver::Answer::Status(if h.id % 5 == 0 && seen == 0 { 503 } else { 200 })
    })
    .await?;
    write_acked(&c, "ctl", &format!("notify {} failure", receiver.url())).await?;
    let first_term = term(&c).await;
    let dir = tempfile::tempdir()?;
    let witness_path = dir.path().join("witness");
    for k in 0..TICK_JOBS {
        let flaky = k == RETRY_TICK;
        write_acked(&c, "clone", &format!("tick{k}:* * * * * ?:{}", witness::command(&witness_path, flaky))).await?;
        let policy = if flaky {
            // The default deadline, so a new leader takes over what a killed
            // one never claimed; retries of its failures and of lost runs.
            "retry 1 1s\nonlost rerun"
        } else {
            // A deadline of 1 s keeps the lateness check strict: a run that
            // begins later than that began past its deadline.
            "deadline 1s"
        };
        write_acked(&c, &format!("jobs/tick{k}/ctl"), policy).await?;
        write_acked(&c, &format!("jobs/tick{k}/ctl"), "start").await?;
    }
    let chain_witness = dir.path().join("chain-witness");
    write_acked(&c, "clone", &format!("{CHAIN}::echo $JOBD_AFTER_RUN_ID $JOBD_RUN_ID >> {}", chain_witness.display())).await?;
    write_acked(&c, &format!("jobs/{CHAIN}/ctl"), "after tick0 always\nstart").await?;
    // Faults start once every tick job has fired: they hit a working cluster.
    let t = Instant::now();
    while witness::read(&witness_path).len() < TICK_JOBS {
        if t.elapsed() > Duration::from_secs(20) {
            bail!("seed {seed}: the tick jobs did not fire within 20 s\n{}", c.log_tails());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let from_s = chrono::Utc::now().timestamp() + 1;
    let addrs = c.nodes.iter().map(|n| n.fs_addr).collect();
    let (stop, stopped) = watch::channel(false);
    let client_seed = rng.next_u64();
    let client = plan.workload.then(|| tokio::spawn(workload::run(addrs, client_seed, stopped)));

    let mut runs: Vec<Runs> = (0..=TICK_JOBS).map(|_| Runs::default()).collect();
    let mut faults = vec![];
    let mut last_collect = Instant::now();
    while started.elapsed() < plan.duration && faults.len() < plan.max_faults {
        let fault = plan.only.unwrap_or_else(|| nemesis::draw(&mut rng));
        let injected = nemesis::inject(&mut c, fault, &mut rng, &witness_path)
            .await
            .with_context(|| format!("seed {seed}: during {fault:?}\n{}", c.log_tails()))?;
        // Leader kills also say how long until a new leader and its first
        // fire, so a slow one can be matched with the faults around it.
        let took = |what: &str, d: Option<Duration>| d.map_or(String::new(), |d| format!(", {what} {} ms", d.as_millis()));
        println!(
            "{} {:?} node {} for {} ms{}{}",
            injected.at.format("%H:%M:%S%.3f"),
            injected.fault,
            injected.node + 1,
            injected.held.as_millis(),
            took("new leader", injected.to_leader),
            took("first fire", injected.to_fire)
        );
        faults.push(injected);
        if last_collect.elapsed() > Duration::from_secs(20) {
            collect_runs(&c, &mut runs).await;
            last_collect = Instant::now();
        }
        tokio::time::sleep(rng.ms(500, 2500)).await;
    }
    // After the last fault, time for firing to be seen going on.
    tokio::time::sleep(AFTER_FAULTS).await;
    let to_s = chrono::Utc::now().timestamp() - 2;
    let _ = stop.send(true);
    let ledger = match client {
        Some(c) => c.await?,
        None => workload::Ledger::default(),
    };

    // Healed (every fault heals itself): stop the ticks, let the leader end
    // what its sweep must, and wait for every node to agree.
    for k in 0..TICK_JOBS {
        write_acked(&c, &format!("jobs/tick{k}/ctl"), "stop").await?;
    }
    converge(&c, Duration::from_secs(30)).await?;
    let all_ended = |runs: &[Runs]| runs.iter().all(|r| r.0.values().all(|x| x.status != "running" && x.status != "pending"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        collect_runs(&c, &mut runs).await;
        if all_ended(&runs) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    converge(&c, Duration::from_secs(30)).await?;

    let mut verdict = Verdict::default();
    let wit = witness::read(&witness_path);
    for s in faults.iter().filter_map(|i| i.silence.as_ref()) {
        for w in wit.iter().filter(|w| w.node == s.node && (s.from_ms..=s.to_ms).contains(&w.start_ms)) {
            verdict.failures.push(format!("{}: node {} began {} run {} (scheduled {}) at {}", s.why, s.node, w.job, w.run, w.scheduled_s, w.start_ms));
        }
    }
    checker::terms_in_order(&wit, &mut verdict);
    let leader = c.wait_leader().await?;
    let chain_log = read(&c, leader, &format!("jobs/{CHAIN}/log")).await?;
    let chain_wit: Vec<(u64, u64)> = std::fs::read_to_string(&chain_witness)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').and_then(|(x, n)| Some((x.parse().ok()?, n.trim().parse().ok()?))))
        .collect();
    checker::chain("tick0", from_s * 1000, &runs[0], &runs[TICK_JOBS], &chain_log, &chain_wit, &mut verdict);
    // Every delivery made has been answered once none is pending; each
    // term has one leader at most, so its rise bounds the leader changes.
    let t = Instant::now();
    while c.ctl(leader).await.ok().and_then(|m| m.get("notify-pending").cloned()).as_deref() != Some("0") {
        if t.elapsed() > Duration::from_secs(60) {
            verdict.failures.push("notify: deliveries still pending 60 s after the faults ended".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leader_changes = term(&c).await.saturating_sub(first_term) as usize;
    let mut delivered: std::collections::HashMap<u64, Vec<String>> = Default::default();
    for h in receiver.hits().into_iter().filter(|h| h.answered == Some(200)) {
        let status = h.json()["status"].as_str().unwrap_or_default().to_string();
        delivered.entry(h.id).or_default().push(status);
    }
    checker::notify(&runs, &delivered, leader_changes, &mut verdict);
    for (k, r) in runs.iter().take(TICK_JOBS).enumerate() {
        let log = read(&c, leader, &format!("jobs/tick{k}/log")).await?;
        let deadline_ms = if k == RETRY_TICK { checker::DEFAULT_DEADLINE_MS } else { checker::STRICT_DEADLINE_MS };
        checker::tick_job(&format!("tick{k}"), deadline_ms, &wit, r, &log, from_s, to_s, &mut verdict);
        if k == RETRY_TICK {
            checker::no_miss_by_leader_change(&format!("tick{k}"), r, &mut verdict);
        }
    }
    for i in 0..c.nodes.len() {
        let listing: Vec<String> = c.client(i).await?.readdir("jobs").await?.into_iter().map(|e| e.name).collect();
        let mut started_jobs = vec![];
        for name in listing.iter().filter(|n| n.starts_with('w')) {
            if read(&c, i, &format!("jobs/{name}/ctl")).await?.starts_with("state started\n") {
                started_jobs.push(name.clone());
            }
        }
        checker::p1(&ledger.known, c.nodes[i].id, &listing, &started_jobs, &mut verdict);
    }
    let ids = c.nodes.iter().map(|n| n.id).collect();
    Ok(Report { seed, ran_for: started.elapsed(), faults, ledger, verdict, ids })
}
