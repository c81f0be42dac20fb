//! The jobd file tree through real 9P connections: the seed's session,
//! every bad input with its errno and reason (and nothing changed), mkdir
//! and rm -r, qids, and a three-node cluster read through any node.

mod common;

use std::time::Duration;

use common::Cluster;
use ninep::client::{Client, ClientError, Options};
use ninep::error::errno::*;
use ninep::fcall::omode;
use ninep::{Dialect, Rmsg, Tmsg, DMDIR};

async fn client(addr: std::net::SocketAddr) -> Client {
    Client::connect(addr, Options { dialect: Dialect::P2000U, ..Options::default() }).await.unwrap()
}

fn refused(r: Result<impl std::fmt::Debug, ClientError>, errno: u32, text: &str) {
    match r {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.errno, errno, "errno for {:?}", e.reason);
            assert!(e.reason.contains(text), "{:?} should mention {text:?}", e.reason);
            assert!(!e.reason.contains('\n'), "one line: {:?}", e.reason);
        }
        other => panic!("expected a refusal mentioning {text:?}, got {other:?}"),
    }
}

async fn text(c: &Client, path: &str) -> String {
    String::from_utf8(c.read(path).await.unwrap()).unwrap()
}

async fn names(c: &Client, path: &str) -> Vec<String> {
    let mut v: Vec<String> = c.readdir(path).await.unwrap().into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_session_on_a_single_node() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = client(c.fs_addrs[0]).await;
    assert_eq!(names(&fs, "/").await, ["clone", "ctl", "events", "jobs"]);
    fs.write("clone", b"hello:0 0/5 * * * ? *:echo hello world").await.unwrap();
    assert_eq!(names(&fs, "jobs").await, ["hello"]);
    assert_eq!(names(&fs, "jobs/hello").await, ["cmd", "ctl", "env", "log", "runs", "schedule", "wait"]);
    assert_eq!(text(&fs, "jobs/hello/cmd").await, "echo hello world\n");
    // New jobs are stopped: the expression only.
    assert_eq!(text(&fs, "jobs/hello/schedule").await, "0 0/5 * * * ? *\n");
    assert!(text(&fs, "jobs/hello/ctl").await.starts_with("state stopped\n"));
    fs.write("jobs/hello/ctl", b"start").await.unwrap();
    let sched = text(&fs, "jobs/hello/schedule").await;
    let lines: Vec<&str> = sched.lines().collect();
    assert_eq!(lines[0], "0 0/5 * * * ? *");
    assert!(lines[1].ends_with(":00Z") && lines.len() == 2, "next time: {sched:?}");
    assert!(text(&fs, "jobs/hello/ctl").await.starts_with("state started\n"));
    assert_eq!(text(&fs, "jobs/hello/log").await, "");
    fs.write("jobs/hello/ctl", b"stop\n").await.unwrap();
    assert!(text(&fs, "jobs/hello/ctl").await.starts_with("state stopped\n"));
    fs.write("jobs/hello/ctl", b"delete").await.unwrap();
    assert!(names(&fs, "jobs").await.is_empty());
    let ctl = text(&fs, "ctl").await;
    for key in ["id 1\n", "leader 1\n", "term ", "members 1\n", "learners -\n", "commit ", "applied ", "digest ", "clock-skew-ms "] {
        assert!(ctl.contains(key), "/ctl shows {key:?}: {ctl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_read_through_the_creating_fid_returns_the_name() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = client(c.fs_addrs[0]).await;
    let fid = fs.walk("clone").await.unwrap();
    fs.open(fid, omode::ORDWR).await.unwrap();
    fs.write_at(fid, 0, b"made:@hourly:date\n").await.unwrap();
    assert_eq!(fs.read_at(fid, 0, 100).await.unwrap(), b"made\n");
    // A write at another offset is refused: a split write cannot create a job from a tail.
    refused(fs.write_at(fid, 5, b"x:@hourly:date").await, EINVAL, "offset 0");
    fs.clunk(fid).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = client(c.fs_addrs[0]).await;
    fs.write("clone", b"keep:* * * * *:true").await.unwrap();
    let before = text(&fs, "jobs/keep/ctl").await;
    for (input, errno, why) in [
        ("nocolon", EINVAL, "name:cronexpr:cmd"),
        ("one:colon", EINVAL, "name:cronexpr:cmd"),
        (":* * * * *:true", EINVAL, "empty job name"),
        ("..:* * * * *:true", EINVAL, "not a job name"),
        ("a/b:* * * * *:true", EINVAL, "'/'"),
        ("keep:* * * * *:true", EEXIST, "exists"),
        ("x:* * * * *:", EINVAL, "empty command"),
        ("x:not a schedule:true", EINVAL, "fields"),
        ("x:0 0 0 30 2 ?:true", EINVAL, "never fires"),
    ] {
        refused(fs.write("clone", input.as_bytes()).await, errno, why);
    }
    let long = format!("{}:* * * * *:true", "n".repeat(65));
    refused(fs.write("clone", long.as_bytes()).await, EINVAL, "at most 64");
    refused(fs.write("clone", &vec![b'x'; 70_000]).await, EINVAL, "at most 65536");
    refused(fs.write("jobs/keep/ctl", b"frobnicate").await, EINVAL, "start, stop, run");
    refused(fs.write("jobs/keep/ctl", b"tz Mars/Olympus").await, EINVAL, "time zone");
    refused(fs.write("jobs/keep/schedule", b"61 * * * *").await, EINVAL, "minute");
    refused(fs.write("jobs/keep/cmd", b"").await, EINVAL, "empty command");
    refused(fs.write("jobs/keep/log", b"x").await, EROFS, "read-only");
    refused(fs.write("jobs/nope/ctl", b"start").await, ENOENT, "");
    assert_eq!(names(&fs, "jobs").await, ["keep"], "nothing was created");
    assert_eq!(text(&fs, "jobs/keep/ctl").await, before, "nothing changed");

    // A zone in which the period is shorter than the spread: a daily
    // 01:30 is 24 h apart in UTC, 23 h across New York's spring forward.
    fs.write("clone", b"dst:30 1 * * *:true").await.unwrap();
    fs.write("jobs/dst/ctl", b"spread 84000s").await.unwrap();
    let spread_set = text(&fs, "jobs/dst/ctl").await;
    refused(fs.write("jobs/dst/ctl", b"tz America/New_York").await, EINVAL, "longer than the expression's period");
    assert_eq!(text(&fs, "jobs/dst/ctl").await, spread_set, "the refused zone changed nothing");
    fs.write("jobs/dst/ctl", b"spread off\ntz America/New_York").await.unwrap();
    fs.write("jobs/dst/ctl", b"delete").await.unwrap();

    // A verb through a fid whose job was deleted.
    let stale = fs.walk("jobs/keep/ctl").await.unwrap();
    fs.open(stale, omode::OWRITE).await.unwrap();
    fs.write("jobs/keep/ctl", b"delete").await.unwrap();
    refused(fs.write_at(stale, 0, b"start").await, ENOENT, "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_then_cmd_and_schedule_then_start_and_rm_r() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = client(c.fs_addrs[0]).await;
    fs.create("jobs/made", DMDIR | 0o777).await.unwrap();
    refused(fs.write("jobs/made/ctl", b"start").await, EINVAL, "no command");
    fs.write("jobs/made/cmd", b"echo made\n").await.unwrap();
    refused(fs.write("jobs/made/ctl", b"start").await, EINVAL, "no schedule");
    fs.write("jobs/made/schedule", b"@every 10s\n").await.unwrap();
    fs.write("jobs/made/ctl", b"start").await.unwrap();
    assert!(text(&fs, "jobs/made/ctl").await.starts_with("state started\n"));
    refused(fs.create("jobs/made/extra", 0o644).await, EPERM, "");
    refused(fs.create("file-at-root", 0o644).await, EPERM, "");
    // rm -r: the files (no-ops), then the directory.
    for f in ["ctl", "cmd", "schedule", "log", "runs", "wait", "env"] {
        fs.remove(&format!("jobs/made/{f}")).await.unwrap();
    }
    fs.remove("jobs/made").await.unwrap();
    assert!(names(&fs, "jobs").await.is_empty());
    refused(fs.remove("clone").await, EPERM, "cannot be removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qids_are_the_same_on_every_node_and_new_after_recreation() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let fs = client(c.fs_addrs[leader]).await;
    fs.write("clone", b"q:@daily:true").await.unwrap();
    let mut qids = vec![];
    for addr in &c.fs_addrs {
        let other = client(*addr).await;
        let mut got = None;
        for _ in 0..200 {
            if let Ok(st) = other.stat("jobs/q/log").await {
                got = Some(st.qid);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        qids.push(got.expect("the job reached this node"));
    }
    assert!(qids.windows(2).all(|w| w[0] == w[1]), "{qids:?}");
    fs.write("jobs/q/ctl", b"delete").await.unwrap();
    fs.write("clone", b"q:@daily:true").await.unwrap();
    assert_ne!(fs.stat("jobs/q/log").await.unwrap().qid, qids[0], "a re-created job gets a new qid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_any_node_takes_writes_and_serves_reads() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let via = client(c.fs_addrs[follower]).await;
    via.write("clone", b"tick:* * * * * *:echo tick").await.unwrap();
    via.write("jobs/tick/ctl", b"start").await.unwrap();
    // Read-your-writes on the node written to.
    assert!(text(&via, "jobs/tick/ctl").await.starts_with("state started\n"));
    let third = client(c.fs_addrs[other]).await;
    for _ in 0..500 {
        if third.read("jobs/tick/cmd").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(text(&third, "jobs/tick/cmd").await, "echo tick\n");
    // The leader's 9P address is known everywhere.
    let ctl = text(&third, "ctl").await;
    assert!(ctl.contains(&format!("leader {}\n", leader + 1)), "{ctl}");
    // Without a quorum, writes fail within the bound with EAGAIN or ETIMEDOUT.
    c.stop(leader).await;
    c.stop(other).await;
    let start = std::time::Instant::now();
    match via.write("clone", b"late:@daily:true").await {
        Err(ClientError::Server(e)) => assert!(e.errno == EAGAIN || e.errno == ETIMEDOUT, "{e:?}"),
        other => panic!("a write without quorum must fail: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5), "within the write timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_frames_write_and_read_the_tree_in_dotl() {
    // The kernel's default dialect: errors are Rlerror with the errno.
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    let fs = Client::connect(c.fs_addrs[0], Options::default()).await.unwrap();
    assert_eq!(fs.dialect(), Dialect::P2000L);
    fs.write("clone", b"l:@hourly:true").await.unwrap();
    let err = fs.write("clone", b"l:@hourly:true").await.unwrap_err();
    assert_eq!(err.errno(), Some(EEXIST));
    let r = fs.rpc(Tmsg::Walk { fid: fs.root(), newfid: 900, wnames: vec!["jobs".into(), "l".into(), "zzz".into()] }).await;
    assert!(matches!(r, Ok(Rmsg::Walk { ref wqids }) if wqids.len() == 2), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linearizable_follower_read_sees_a_write_made_elsewhere() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let (addr, _stop) = common::serve_9p_with(c.node(follower), true).await;
    let reader = client(addr).await;
    let writer = client(c.fs_addrs[leader]).await;
    for i in 0..20 {
        writer.write("clone", format!("lin{i}:@daily:true").as_bytes()).await.unwrap();
        // No polling: the read waits for what the leader had committed.
        assert_eq!(text(&reader, &format!("jobs/lin{i}/cmd")).await, "true\n", "write {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_listener_serves_the_tree_and_refuses_every_change() {
    let c = Cluster::start(1, 10_000).await;
    c.leader().await;
    client(c.fs_addrs[0]).await.write("clone", b"ro:@daily:true").await.unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let mut fs = c.node(0).tree();
    fs.read_only = true;
    tokio::spawn(ninep::serve(l, std::sync::Arc::new(fs), std::future::pending()));
    let ro = client(addr).await;
    assert_eq!(text(&ro, "jobs/ro/cmd").await, "true\n");
    refused(ro.write("clone", b"x:@daily:true").await, EROFS, "read-only");
    refused(ro.write("jobs/ro/ctl", b"start").await, EROFS, "read-only");
    refused(ro.create("jobs/made", DMDIR | 0o777).await, EROFS, "read-only");
    refused(ro.remove("jobs/ro").await, EROFS, "read-only");
    assert_eq!(names(&client(c.fs_addrs[0]).await, "jobs").await, ["ro"], "nothing changed");
}

/// The cluster's limits through `/ctl` of any node: shown as
/// `limit-NAME VALUE`, set with `limit NAME VALUE`, refused with a reason
/// (and nothing changed) when out of range, unknown or not a number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_read_and_set_through_ctl() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let fs = client(c.fs_addrs[(leader + 1) % 3]).await;
    assert!(text(&fs, "ctl").await.contains("limit-runs-kept 100\n"));
    fs.write("ctl", b"limit runs-kept 7").await.unwrap();
    refused(fs.write("ctl", b"limit runs-kept 0").await, EINVAL, "between 1 and 10000");
    refused(fs.write("ctl", b"limit speed 3").await, EINVAL, "the limits are max-jobs");
    refused(fs.write("ctl", b"limit runs-kept seven").await, EINVAL, "not a whole number");
    // Replicated: every node shows the value set through a follower.
    for i in 0..3 {
        let node = client(c.fs_addrs[i]).await;
        let start = tokio::time::Instant::now();
        while !text(&node, "ctl").await.contains("limit-runs-kept 7\n") {
            assert!(start.elapsed() < common::DEADLINE, "node {i} never showed the new limit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
