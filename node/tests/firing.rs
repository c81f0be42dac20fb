//! Firing through Raft, three nodes in one process: a one-second job keeps
//! firing across a leader change, and no scheduled time runs twice — by the
//! job's own witness file and by the replicated run records.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{eventually, Cluster};
use node::command::Command;
use node::state::{self, run::Run};

fn witness_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

fn runs(c: &Cluster, i: usize, name: &str) -> Vec<Run> {
    let n = c.node(i);
    let job = state::load_job(&n.sm, name).unwrap().expect("job");
    job.recent_runs.iter().filter_map(|id| state::run::load_run(&n.sm, job.incarnation, *id).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_fires_across_a_leader_change_and_never_twice() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("witness");
    let cmd = format!("echo $JOBD_SCHEDULED_TIME >> {}", witness.display());
    let create = Command::CreateJob { name: "tick".into(), schedule: "* * * * * *".into(), cmd, at_ms: node::clock::now_ms() };
    c.node(leader).write(create).await.unwrap();
    c.node(leader).write(Command::StartJob { name: "tick".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    eventually("three runs", || (witness_lines(&witness).len() >= 3).then_some(())).await;

    let term = c.node(leader).raft.metrics().borrow().current_term;
    c.stop(leader).await;
    let new = c.leader().await;
    assert!(c.node(new).raft.metrics().borrow().current_term > term);
    let before = witness_lines(&witness).len();
    eventually("three more runs under the new leader", || (witness_lines(&witness).len() >= before + 3).then_some(())).await;

    let lines = witness_lines(&witness);
    let unique: HashSet<&String> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "a scheduled time ran twice: {lines:?}");
    let records = runs(&c, new, "tick");
    let times: HashSet<i64> = records.iter().map(|r| r.scheduled_ms).collect();
    assert_eq!(times.len(), records.len(), "two run records for one time");
    // Every run the witness saw is a run record.
    assert!(records.len() >= lines.len());
    let other = (0..3).find(|i| *i != new && *i != leader).unwrap();
    eventually("the follower's log matches the leader's", || {
        let (a, b) = (&c.node(new).sm, &c.node(other).sm);
        let ja = state::load_job(a, "tick").unwrap()?;
        let jb = state::load_job(b, "tick").unwrap()?;
        let la = state::log::read(a, &ja, 0, usize::MAX).unwrap();
        let lb = state::log::read(b, &jb, 0, usize::MAX).unwrap();
        (la == lb && !la.1.is_empty()).then_some(())
    })
    .await;
}

/// The leader reads a started job again only when an apply wrote it (or
/// its time is near): a job waiting for a time a year away whose
/// expression becomes every second fires within seconds, as does one
/// started while others wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_expression_or_a_new_start_is_seen_by_the_scheduler() {
    let c = Cluster::start(1, 10_000).await;
    let n = c.node(c.leader().await);
    for name in ["far", "later"] {
        let create = Command::CreateJob { name: name.into(), schedule: "0 0 1 1 *".into(), cmd: "true".into(), at_ms: node::clock::now_ms() };
        n.write(create).await.unwrap();
    }
    n.write(Command::StartJob { name: "far".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    // Long enough for the scheduler to have read "far" and set it aside.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(runs(&c, 0, "far").is_empty());
    n.write(Command::SetSchedule { name: "far".into(), schedule: "* * * * * *".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    eventually("a run at the new expression", || (!runs(&c, 0, "far").is_empty()).then_some(())).await;
    n.write(Command::SetSchedule { name: "later".into(), schedule: "* * * * * *".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    n.write(Command::StartJob { name: "later".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    eventually("a run of the job started later", || (!runs(&c, 0, "later").is_empty()).then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_job_does_not_fire_and_a_restart_is_not_a_missed_period() {
    let c = Cluster::start(1, 10_000).await;
    let leader = c.leader().await;
    let n = c.node(leader);
    let create = Command::CreateJob { name: "s".into(), schedule: "* * * * * *".into(), cmd: "true".into(), at_ms: node::clock::now_ms() };
    n.write(create).await.unwrap();
    n.write(Command::StartJob { name: "s".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    eventually("a run", || (!runs(&c, leader, "s").is_empty()).then_some(())).await;
    n.write(Command::StopJob { name: "s".into(), at_ms: 0 }).await.unwrap();
    let count = runs(&c, leader, "s").len();
    // Absence needs time to pass: two and a half scheduled seconds.
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_millis(2500)).await;
    assert!(runs(&c, leader, "s").len() <= count + 1, "at most a fire already in flight lands after stop");
    let stopped_count = runs(&c, leader, "s").len();
    n.write(Command::StartJob { name: "s".into(), at_ms: node::clock::now_ms() }).await.unwrap();
    eventually("firing again", || (runs(&c, leader, "s").len() > stopped_count).then_some(())).await;
    assert!(runs(&c, leader, "s").iter().all(|r| r.trigger == node::command::Trigger::Schedule), "no catch-up for a stopped period");
}

async fn text(c: &ninep::client::Client, path: &str) -> String {
    String::from_utf8(c.read(path).await.unwrap()).unwrap()
}

async fn wait_text(c: &ninep::client::Client, path: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
    let start = tokio::time::Instant::now();
    loop {
        let t = text(c, path).await;
        if f(&t) {
            return t;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_a_run_and_records_it() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = ninep::client::Client::connect(c.fs_addrs[0], Default::default()).await.unwrap();
    fs.write("clone", b"slow:@yearly:echo begin; sleep 5; echo never").await.unwrap();
    fs.write("jobs/slow/ctl", b"timeout 1s\nrun").await.unwrap();
    assert!(text(&fs, "jobs/slow/ctl").await.contains("timeout 1s\n"));
    let runs = wait_text(&fs, "jobs/slow/runs", "a timed-out run", |t| t.trim_end().ends_with(" timeout")).await;
    assert!(runs.contains(" manual "), "{runs}");
    let log = text(&fs, "jobs/slow/log").await;
    assert!(log.contains(":begin\n") && !log.contains("never"), "{log}");
}

/// The start is recorded while the process runs (so its commit does not
/// delay the output or the end); the log still reads start, output, end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_logs_its_start_then_its_output_then_its_end() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let fs = ninep::client::Client::connect(c.fs_addrs[(leader + 1) % 3], Default::default()).await.unwrap();
    fs.write("clone", b"quick:@yearly:echo one; echo two").await.unwrap();
    for _ in 0..3 {
        fs.write("jobs/quick/ctl", b"run").await.unwrap();
        let runs = wait_text(&fs, "jobs/quick/runs", "the run to end", |t| t.lines().last().is_some_and(|l| !l.ends_with(" running") && !l.ends_with(" pending"))).await;
        assert!(runs.lines().all(|l| !l.ends_with(" running")), "{runs}");
    }
    let log = text(&fs, "jobs/quick/log").await;
    let order: Vec<&str> = log
        .lines()
        .filter_map(|l| l.rsplit_once(':').map(|(_, t)| t))
        .filter_map(|t| match t {
            "one" | "two" => Some(t),
            _ if t.starts_with("started run ") => Some("start"),
            _ if t.starts_with("run ") && t.contains(" in ") => Some("end"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["start", "one", "two", "end"].repeat(3), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_and_replace() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = ninep::client::Client::connect(c.fs_addrs[0], Default::default()).await.unwrap();
    fs.write("clone", b"busy:* * * * * *:sleep 5").await.unwrap();
    fs.write("jobs/busy/ctl", b"overlap skip\nstart").await.unwrap();
    wait_text(&fs, "jobs/busy/log", "an overlap skip", |t| t.contains("skipped 1 scheduled times (overlap)")).await;
    let runs = text(&fs, "jobs/busy/runs").await;
    assert_eq!(runs.lines().count(), 1, "one run at a time: {runs}");
    // A manual run respects the policy unless forced.
    let err = fs.write("jobs/busy/ctl", b"run").await.unwrap_err();
    assert_eq!(err.errno(), Some(ninep::error::errno::EBUSY), "{err}");
    fs.write("jobs/busy/ctl", b"overlap replace").await.unwrap();
    wait_text(&fs, "jobs/busy/runs", "a replaced run", |t| t.lines().any(|l| l.ends_with(" killed"))).await;
    fs.write("jobs/busy/ctl", b"stop").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_the_running_runs_and_jobs_get_a_clean_environment() {
    // cargo sets CARGO_MANIFEST_DIR for this test process: a job must not see it.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = ninep::client::Client::connect(c.fs_addrs[0], Default::default()).await.unwrap();
    fs.write("clone", b"env:@yearly:echo trigger=$JOBD_TRIGGER node=$JOBD_NODE term=$JOBD_TERM inherited=${CARGO_MANIFEST_DIR:-none} path=$PATH; sleep 5").await.unwrap();
    fs.write("jobs/env/ctl", b"run").await.unwrap();
    wait_text(&fs, "jobs/env/log", "the run's output", |t| t.contains("trigger=")).await;
    fs.write("jobs/env/ctl", b"kill").await.unwrap();
    let runs = wait_text(&fs, "jobs/env/runs", "a killed run", |t| t.trim_end().ends_with(" killed")).await;
    assert_eq!(runs.lines().count(), 1);
    let log = text(&fs, "jobs/env/log").await;
    let term = c.node(0).raft.metrics().borrow().current_term;
    assert!(log.contains(&format!(":trigger=manual node=1 term={term} inherited=none path=/usr/local/sbin:")), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_env_reaches_its_runs_and_bad_env_is_refused_changing_nothing() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    // 9P2000.u, whose errors carry the reason.
    let opts = ninep::client::Options { dialect: ninep::Dialect::P2000U, ..Default::default() };
    let fs = ninep::client::Client::connect(c.fs_addrs[0], opts).await.unwrap();
    fs.write("clone", b"e:@yearly:echo greeting=$GREETING empty=[${EMPTY-unset}] path=$PATH lang=$LANG run=$JOBD_RUN_ID").await.unwrap();
    assert_eq!(text(&fs, "jobs/e/env").await, "", "no variables at first");
    fs.write("jobs/e/env", b"GREETING=hello world\nEMPTY=\n\nPATH=/opt/x:/usr/bin:/bin\n").await.unwrap();
    let written = "GREETING=hello world\nEMPTY=\nPATH=/opt/x:/usr/bin:/bin\n";
    assert_eq!(text(&fs, "jobs/e/env").await, written);
    for (bad, want) in [
        ("noequals", "has no '='"),
        ("JOBD_RUN_ID=1", "jobd's own"),
        ("A=1\nA=2", "given twice"),
        ("1A=x", "want [A-Za-z_]"),
    ] {
        let err = fs.write("jobs/e/env", bad.as_bytes()).await.expect_err(bad).to_string();
        assert!(err.contains(want), "{bad}: {err}");
        assert_eq!(text(&fs, "jobs/e/env").await, written, "{bad} changed nothing");
    }
    fs.write("jobs/e/ctl", b"run").await.unwrap();
    let log = wait_text(&fs, "jobs/e/log", "the run's output", |t| t.contains("greeting=")).await;
    // The job's PATH replaces jobd's; LANG stays jobd's; JOBD_ variables are jobd's.
    assert!(log.contains(":greeting=hello world empty=[] path=/opt/x:/usr/bin:/bin lang=C.UTF-8 run="), "{log}");
    // A blank write clears it.
    fs.write("jobs/e/env", b"\n").await.unwrap();
    assert_eq!(text(&fs, "jobs/e/env").await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_deadline_is_recorded_not_started_with_the_reason() {
    let c = Cluster::start(1, 10_000).await;
    let leader = c.leader().await;
    let n = c.node(leader);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let cmd = format!("touch {}", marker.display());
    let now = node::clock::now_ms();
    n.write(Command::CreateJob { name: "late".into(), schedule: "@yearly".into(), cmd, at_ms: now }).await.unwrap();
    let deadline = node::command::Policy::Deadline(Some(1000));
    n.write(Command::SetPolicy { name: "late".into(), policy: deadline, at_ms: 0 }).await.unwrap();
    let job = state::load_job(&n.sm, "late").unwrap().unwrap();
    let fence = node::command::Fence { term: 1, node: n.id, incarnation: n.incarnation };
    // Accepted as if asked for five seconds ago, with a deadline of 1 s.
    let asked = now - 5000;
    let r = n.write(Command::RunNow { name: "late".into(), incarnation: job.incarnation, fence, at_ms: asked, force: true, claims: true }).await;
    let Ok(node::command::Response::Accepted { run_id }) = r else { panic!("{r:?}") };
    let order = node::sched::executor::RunOrder {
        name: "late".into(),
        incarnation: job.incarnation,
        run_id,
        scheduled_ms: asked,
        trigger: node::command::Trigger::Manual,
        fence,
        begin_at_ms: 0,
        attempt: 1,
        after_run: None,
    };
    let active = n.executor.register(run_id).expect("not registered yet");
    // One task per run in a process: a second registration fails while
    // the first holds.
    assert!(n.executor.register(run_id).is_none(), "run {run_id} registered twice");
    n.executor.clone().run(order, active).await;
    assert!(n.executor.register(run_id).is_some(), "run {run_id}'s registration ends with its task");
    let run = state::run::load_run(&n.sm, job.incarnation, run_id).unwrap().unwrap();
    assert_eq!(run.status, node::command::RunStatus::NotStarted(node::command::NotStarted::Deadline));
    assert!(!marker.exists(), "the command did not run");
}

/// `runs-running` and `runs-queued` from a node's `/ctl`.
async fn slots(fs: &ninep::client::Client) -> (u64, u64) {
    let ctl = text(fs, "ctl").await;
    let get = |k: &str| ctl.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse().ok()).unwrap_or(u64::MAX);
    (get("runs-running "), get("runs-queued "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_cap_runs_wait_and_queued_runs_end_as_documented() {
    let c = Cluster::start_with(1, 10_000, |cfg| cfg.max_concurrent_runs = 1).await;
    c.leader().await;
    let fs = ninep::client::Client::connect(c.fs_addrs[0], Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("witness");
    let w = w.display();
    // One run holds the only slot for 5 s.
    fs.write("clone", format!("hold:@yearly:echo hold $(date +%s%3N) >> {w}; sleep 5; echo held $(date +%s%3N) >> {w}").as_bytes())
        .await
        .unwrap();
    fs.write("clone", format!("next:@yearly:echo next $(date +%s%3N) >> {w}").as_bytes()).await.unwrap();
    fs.write("clone", b"killed:@yearly:true").await.unwrap();
    fs.write("clone", b"skip:@yearly:true").await.unwrap();
    fs.write("jobs/skip/ctl", b"overlap skip").await.unwrap();
    fs.write("clone", format!("stopped:* * * * * *:echo stopped >> {w}").as_bytes()).await.unwrap();
    fs.write("jobs/hold/ctl", b"run").await.unwrap();
    wait_text(&fs, "jobs/hold/runs", "the holding run to start", |t| t.contains(" running")).await;
    // Each of these waits for the slot instead of ending not-started.
    fs.write("jobs/next/ctl", b"run").await.unwrap();
    fs.write("jobs/killed/ctl", b"run").await.unwrap();
    fs.write("jobs/skip/ctl", b"run").await.unwrap();
    fs.write("jobs/stopped/ctl", b"start").await.unwrap();
    let t = tokio::time::Instant::now();
    while slots(&fs).await.1 < 4 {
        assert!(t.elapsed() < Duration::from_secs(10), "four runs queued: {:?}", slots(&fs).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(slots(&fs).await.0, 1);
    // A queued run counts as running for overlap skip.
    let err = fs.write("jobs/skip/ctl", b"run").await.unwrap_err();
    assert_eq!(err.errno(), Some(ninep::error::errno::EBUSY), "{err}");
    // kill ends a queued run `killed`; stop ends a queued scheduled run
    // `not-started (stopped)`; neither began.
    fs.write("jobs/killed/ctl", b"kill").await.unwrap();
    fs.write("jobs/stopped/ctl", b"stop").await.unwrap();
    let killed = wait_text(&fs, "jobs/killed/runs", "the queued run killed", |t| t.trim_end().ends_with(" killed")).await;
    assert!(killed.contains(" - "), "it never began: {killed}");
    let stopped = wait_text(&fs, "jobs/stopped/runs", "the queued run stopped", |t| t.contains("not-started (stopped)")).await;
    assert!(stopped.lines().all(|l| l.contains("not-started (stopped)")), "{stopped}");
    // The waiting manual run begins once the slot frees: after the holder ended.
    let next = wait_text(&fs, "jobs/next/runs", "the queued run to run", |t| t.trim_end().ends_with(" exit 0")).await;
    assert_eq!(next.lines().count(), 1, "{next}");
    let lines = witness_lines(dir.path().join("witness").as_path());
    let at = |what: &str| lines.iter().find_map(|l| l.strip_prefix(what)).and_then(|v| v.parse::<i64>().ok()).unwrap_or_else(|| panic!("{what}: {lines:?}"));
    assert!(at("next ") >= at("held "), "the queued run began after the holder ended: {lines:?}");
    assert!(!lines.iter().any(|l| l == "stopped"), "the stopped job's run never began: {lines:?}");
    wait_text(&fs, "jobs/skip/runs", "the skip job's run", |t| t.trim_end().ends_with(" exit 0")).await;
    assert_eq!(slots(&fs).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_f_style_reads_at_growing_offsets_see_each_line_once() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = ninep::client::Client::connect(c.fs_addrs[0], Default::default()).await.unwrap();
    fs.write("clone", b"t:* * * * * *:echo line $JOBD_RUN_ID").await.unwrap();
    fs.write("jobs/t/ctl", b"start").await.unwrap();
    // Like tail -f: keep one fid open and read on from where the last read ended.
    let fid = fs.walk("jobs/t/log").await.unwrap();
    fs.open(fid, ninep::fcall::omode::OREAD).await.unwrap();
    let mut seen = String::new();
    let start = tokio::time::Instant::now();
    while seen.matches(":line ").count() < 3 {
        assert!(start.elapsed() < Duration::from_secs(20), "new lines did not appear: {seen:?}");
        let chunk = fs.read_at(fid, seen.len() as u64, 64).await.unwrap();
        if chunk.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    fs.write("jobs/t/ctl", b"stop").await.unwrap();
    // Whole lines, each once, in the order a fresh read gives them.
    let whole = text(&fs, "jobs/t/log").await;
    assert!(whole.starts_with(&seen[..seen.rfind('\n').unwrap() + 1]), "{seen:?} vs {whole:?}");
    let lines: Vec<&str> = seen.lines().filter(|l| l.contains(":line ")).collect();
    let unique: std::collections::HashSet<&&str> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "a line twice: {lines:?}");
}
