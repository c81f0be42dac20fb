//! `/events` and `/jobs/NAME/wait` on real jobd processes: through jobd's
//! client on a three-node cluster, through raw 9P frames (a flushed wait),
//! through `jobd 9p` (its timeout does not cut a wait) and through the
//! Linux kernel's mount.

use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::jobd::{binary, Jobd};
use cluster_tests::poll::poll;
use cluster_tests::v9fs::Vm;
use ninep::client::Client;
use ninep::codec::split_header;
use ninep::fcall::omode;
use ninep::{Dialect, Rmsg, Tmsg, NOFID, NOTAG};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The first field of an events line, its TIME, in Unix milliseconds.
fn time_of(line: &str) -> i64 {
    let first = line.split(' ').next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(first)
        .unwrap_or_else(|e| panic!("{line:?}: TIME {first:?}: {e}"))
        .timestamp_millis()
}

async fn open_read(c: &Client, path: &str) -> u32 {
    let fid = c.walk(path).await.unwrap();
    c.open(fid, omode::OREAD).await.unwrap();
    fid
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_end_is_in_another_nodes_events_within_a_second_and_every_node_serves_the_same_bytes() {
    let c = Cluster::start(3).await.expect("cluster");
    let leader = c.wait_leader().await.unwrap();
    let follower = (leader + 1) % 3;
    let lc = c.client(leader).await.unwrap();
    lc.write("clone", b"ev:* * * * * *:echo hi").await.unwrap();
    lc.write("jobs/ev/ctl", b"start").await.unwrap();

    // Follow the follower's events from its end, as `tail -f` does, and
    // time each end of ev against the moment it became readable there.
    let fc = c.client(follower).await.unwrap();
    let fid = open_read(&fc, "events").await;
    let mut at = fc.stat("events").await.unwrap().length;
    let (mut pending, mut ends, mut worst) = (String::new(), 0, 0);
    let start = tokio::time::Instant::now();
    while ends < 4 {
        assert!(start.elapsed() < Duration::from_secs(30), "4 ends of ev seen on the follower in 30 s; saw {ends}:\n{}", c.log_tails());
        let chunk = fc.read_at(fid, at, 8192).await.unwrap();
        if chunk.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        at += chunk.len() as u64;
        pending.push_str(std::str::from_utf8(&chunk).unwrap());
        let seen = now_ms();
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let fields: Vec<&str> = line.split(' ').collect();
            assert!(fields.len() >= 7, "an events line: {line:?}");
            if fields[2] == "ev" && fields[6] == "ended" {
                assert!(line.ends_with('\n') && fields[7] == "exit" && fields[8] == "0", "{line:?}");
                ends += 1;
                worst = worst.max(seen - time_of(&line));
            }
        }
    }
    assert!(worst <= 1000, "a run's end read on another node {worst} ms after it");
    fc.clunk(fid).await.unwrap();

    lc.write("jobs/ev/ctl", b"stop").await.unwrap();
    // Once every node has applied the stop and the last run's end, the
    // three serve the same bytes; `read` reads until a read answers
    // nothing, so it also shows a read at the end is end-of-file.
    let same = poll("every node's events alike", Duration::from_secs(20), Duration::from_millis(100), async || {
        let texts = [c.read(0, "events").await, c.read(1, "events").await, c.read(2, "events").await];
        let settled = texts[0].lines().filter(|l| l.contains(" began")).count()
            == texts[0].lines().filter(|l| l.contains(" ended ")).count();
        (settled && !texts[0].is_empty() && texts.iter().all(|t| *t == texts[0])).then(|| texts[0].clone())
    })
    .await;
    // Each run began once and ended once, on the node that ran it.
    for line in same.lines().filter(|l| l.contains(" began")) {
        let id = line.split(' ').nth(1).unwrap();
        let ended = same.lines().filter(|l| l.split(' ').nth(1) == Some(id) && l.contains(" ended ")).count();
        assert_eq!(ended, 1, "run {id} ended once: {same}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_answers_the_next_end_then_eof_and_misses_none_between_open_and_read() {
    let jobd = Jobd::single().await.expect("jobd starts");
    // 9P2000.u: its errors carry the reason's text.
    let opts = ninep::client::Options { dialect: Dialect::P2000U, ..Default::default() };
    let c = Client::connect(jobd.fs_addr, opts).await.unwrap();
    c.write("clone", b"w:@yearly:sleep 0.3").await.unwrap();

    // A read blocks until a run ends, answers that run's line, then EOF.
    let fid = open_read(&c, "jobs/w/wait").await;
    let blocked = tokio::spawn({
        let c = c.clone();
        async move { c.read_at(fid, 0, 8192).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!blocked.is_finished(), "a wait with no run answered");
    c.write("jobs/w/ctl", b"run").await.unwrap();
    let line = tokio::time::timeout(Duration::from_secs(10), blocked).await.expect("answered once the run ended").unwrap().unwrap();
    let line = String::from_utf8(line).unwrap();
    let runs = String::from_utf8(c.read("jobs/w/runs").await.unwrap()).unwrap();
    assert!(line.contains(" manual 1 ") && line.ends_with(" exit 0\n"), "{line:?}");
    assert_eq!(runs, line, "the runs line of the one run");
    assert!(c.read_at(fid, line.len() as u64, 8192).await.unwrap().is_empty(), "then end-of-file");
    assert!(c.read_at(fid, 0, 8192).await.unwrap() == line.as_bytes(), "the fid keeps its answer");
    c.clunk(fid).await.unwrap();

    // A run that ends between the open and the read is the one answered.
    let fid = open_read(&c, "jobs/w/wait").await;
    c.write("jobs/w/ctl", b"run").await.unwrap();
    poll("the second run to end", Duration::from_secs(10), Duration::from_millis(50), async || {
        let runs = String::from_utf8(c.read("jobs/w/runs").await.unwrap()).unwrap();
        (runs.lines().filter(|l| l.ends_with(" exit 0")).count() == 2).then_some(())
    })
    .await;
    let second = String::from_utf8(c.read("jobs/w/runs").await.unwrap()).unwrap().lines().nth(1).unwrap().to_string();
    let got = tokio::time::timeout(Duration::from_secs(2), c.read_at(fid, 0, 8192)).await.expect("answered at once").unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), format!("{second}\n"));
    c.clunk(fid).await.unwrap();

    // `jobd 9p read` does not time a wait out.
    let cli = tokio::process::Command::new(binary().unwrap())
        .args(["9p", "--addr", &jobd.fs_addr.to_string(), "--timeout", "1s", "read", "/jobs/w/wait"])
        .output();
    let cli = tokio::spawn(cli);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!cli.is_finished(), "jobd 9p read of wait ended before any run did");
    c.write("jobs/w/ctl", b"run").await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), cli).await.expect("jobd 9p answered").unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(" exit 0\n"), "{out:?}");

    // A started job stopped while a read waits: ENOENT saying so.
    c.write("jobs/w/ctl", b"start").await.unwrap();
    for (verb, word) in [("stop", "stopped"), ("delete", "deleted")] {
        let fid = open_read(&c, "jobs/w/wait").await;
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.read_at(fid, 0, 8192).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.write("jobs/w/ctl", verb.as_bytes()).await.unwrap();
        let err = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("answered").unwrap().unwrap_err();
        assert_eq!(err.errno(), Some(2), "{verb}: ENOENT, not {err}");
        assert!(err.to_string().contains(word), "{verb}: {err}");
        c.clunk(fid).await.unwrap();
        c.write("jobs/w/ctl", b"start").await.ok();
    }
    jobd.stop().await.unwrap();
}

/// A raw 9P2000.u connection: a flushed wait must be answered Rflush and
/// never Rread, even once a run ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_flushed_wait_is_answered_rflush_and_nothing_else() {
    let jobd = Jobd::single().await.expect("jobd starts");
    let c = Client::connect(jobd.fs_addr, Default::default()).await.unwrap();
    c.write("clone", b"f:@yearly:true").await.unwrap();

    let mut s = TcpStream::connect(jobd.fs_addr).await.unwrap();
    let d = Dialect::P2000U;
    async fn send(s: &mut TcpStream, tag: u16, m: Tmsg, d: Dialect) {
        s.write_all(&m.encode(tag, d)).await.unwrap();
    }
    async fn recv(s: &mut TcpStream, d: Dialect) -> (u16, Rmsg) {
        let read = async {
            let mut head = [0u8; 4];
            s.read_exact(&mut head).await.unwrap();
            let mut buf = vec![0u8; u32::from_le_bytes(head) as usize];
            buf[..4].copy_from_slice(&head);
            s.read_exact(&mut buf[4..]).await.unwrap();
            let (t, tag, body) = split_header(&buf).unwrap();
            (tag, Rmsg::decode(t, body, d).unwrap())
        };
        tokio::time::timeout(Duration::from_secs(10), read).await.expect("a reply within 10 s")
    }
    send(&mut s, NOTAG, Tmsg::Version { msize: 8192, version: d.version_string().into() }, d).await;
    assert!(matches!(recv(&mut s, d).await.1, Rmsg::Version { .. }));
    send(&mut s, 1, Tmsg::Attach { fid: 0, afid: NOFID, uname: "t".into(), aname: String::new(), n_uname: 0 }, d).await;
    assert!(matches!(recv(&mut s, d).await.1, Rmsg::Attach { .. }));
    let wnames = ["jobs", "f", "wait"].map(String::from).to_vec();
    send(&mut s, 1, Tmsg::Walk { fid: 0, newfid: 1, wnames }, d).await;
    assert!(matches!(recv(&mut s, d).await.1, Rmsg::Walk { .. }));
    send(&mut s, 1, Tmsg::Open { fid: 1, mode: omode::OREAD }, d).await;
    assert!(matches!(recv(&mut s, d).await.1, Rmsg::Open { .. }));

    send(&mut s, 5, Tmsg::Read { fid: 1, offset: 0, count: 4096 }, d).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut s, 6, Tmsg::Flush { oldtag: 5 }, d).await;
    assert_eq!(recv(&mut s, d).await, (6, Rmsg::Flush), "the flush answered, and first");
    // A run ends; the flushed read stays unanswered: the next reply on the
    // connection is the stat sent after it.
    c.write("jobs/f/ctl", b"run").await.unwrap();
    poll("the run to end", Duration::from_secs(10), Duration::from_millis(50), async || {
        String::from_utf8(c.read("jobs/f/runs").await.unwrap()).unwrap().contains(" exit 0").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    send(&mut s, 7, Tmsg::Stat { fid: 1 }, d).await;
    let (tag, reply) = recv(&mut s, d).await;
    assert_eq!(tag, 7, "nothing for the flushed tag: {reply:?}");
    jobd.stop().await.unwrap();
}

/// The kernel's mount: `cat events` ends, `tail -f events` sees new ends
/// as they come (busybox's tail polls, like GNU's), `cat wait` blocks
/// until the next end and prints it.
#[tokio::test(flavor = "multi_thread")]
async fn the_kernel_mount_cats_and_tails_events_and_cats_a_wait() {
    let vm = Vm::prepare().await.expect("kernel and initramfs");
    let jobd = Jobd::single().await.expect("jobd starts");
    let c = Client::connect(jobd.fs_addr, Default::default()).await.unwrap();
    c.write("clone", b"k:* * * * * *:echo k").await.unwrap();
    c.write("jobs/k/ctl", b"start").await.unwrap();
    poll("a first end of k", Duration::from_secs(10), Duration::from_millis(50), async || {
        String::from_utf8(c.read("events").await.unwrap()).unwrap().contains(" ended exit 0 ").then_some(())
    })
    .await;
    let script = r#"
set -e
cat events > /before
grep -c ' k .* ended exit 0 ' /before
tail -f events > /tailed &
tail=$!
sleep 3.5
kill $tail
echo "-- tailed"
grep ' ended exit 0 ' /tailed | wc -l
echo "-- new"
grep -v -F -x -f /before /tailed | grep -c ' ended exit 0 '
echo "-- wait"
cat jobs/k/wait
echo done
"#;
    let run = vm.run(jobd.fs_addr.port(), "default", script).await.expect("vm run");
    let out = &run.output;
    assert_eq!(run.exit, 0, "session failed:\n{}\njobd:\n{}", run.console, jobd.log_tail());
    let new: usize = out.split("-- new\n").nth(1).and_then(|s| s.lines().next()).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(new >= 2, "tail -f saw at least two ends that came after it started: {out}");
    let waited = out.split("-- wait\n").nth(1).and_then(|s| s.lines().next()).unwrap_or_default();
    assert!(waited.contains(" schedule 1 ") && waited.ends_with(" exit 0"), "cat wait printed the next run's line: {out}");
    jobd.stop().await.unwrap();
}
