//! Network faults, through the proxies on every peer link. Each scenario
//! runs a job that fires every second and writes `TIME NODE` to a witness
//! file, and asserts its fault took effect (the proxies refused
//! connections, the term rose) before checking that no scheduled time ran
//! twice and that firing went on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::wait_for;

fn witness(path: &Path) -> Vec<(i64, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, node) = l.split_once(' ')?;
            Some((chrono::DateTime::parse_from_rfc3339(t).ok()?.timestamp(), node.trim().parse().ok()?))
        })
        .collect()
}

fn no_duplicates(path: &Path) {
    let lines = witness(path);
    let times: HashSet<i64> = lines.iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), lines.len(), "a scheduled time ran twice: {lines:?}");
}

async fn tick(c: &Cluster, dir: &Path) -> PathBuf {
    let path = dir.join("witness");
    let leader = c.wait_leader().await.unwrap();
    let fs = c.client(leader).await.unwrap();
    let clone = format!("tick:* * * * * *:echo $JOBD_SCHEDULED_TIME $JOBD_NODE >> {}", path.display());
    fs.write("clone", clone.as_bytes()).await.unwrap();
    fs.write("jobs/tick/ctl", b"start").await.unwrap();
    wait_for("three runs", Duration::from_secs(20), async || witness(&path).len() >= 3).await;
    path
}

async fn more_runs(path: &Path, n: usize) {
    let seen = witness(path).len();
    wait_for("more runs", Duration::from_secs(20), async || witness(path).len() >= seen + n).await;
}

async fn term(c: &Cluster, i: usize) -> u64 {
    c.ctl(i).await.unwrap()["term"].parse().unwrap()
}

/// The leader, cut off from both others, is in a minority: they elect a
/// leader and keep firing; the isolated one fires nothing while cut off;
/// after healing, one history.
#[tokio::test(flavor = "multi_thread")]
async fn an_isolated_leader_fires_nothing_and_the_majority_goes_on() {
    let c = Cluster::start_proxied(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = tick(&c, dir.path()).await;
    let old = c.wait_leader().await.unwrap();
    let before = term(&c, old).await;
    c.isolate(old, true);
    let cut_at = chrono::Utc::now().timestamp();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&others).await.unwrap();
    assert!(term(&c, new).await > before, "the majority elected under a new term");
    more_runs(&path, 3).await;
    let refused: u64 = c.links.iter().filter(|((a, b), _)| *a == old || *b == old).map(|(_, p)| p.refused()).sum();
    assert!(refused > 0, "the proxies refused the isolated node's connections");
    c.isolate(old, false);
    let healed_at = chrono::Utc::now().timestamp();
    more_runs(&path, 3).await;
    no_duplicates(&path);
    let old_id = old as u64 + 1;
    let during: Vec<_> = witness(&path).into_iter().filter(|(t, n)| *n == old_id && *t > cut_at + 1 && *t <= healed_at).collect();
    assert!(during.is_empty(), "the isolated old leader fired: {during:?}");
    wait_for("the same digest on every node", Duration::from_secs(20), async || {
        let mut digests = HashSet::new();
        for i in 0..3 {
            let ctl = c.ctl(i).await.unwrap();
            digests.insert((ctl["applied"].clone(), ctl["digest"].clone()));
        }
        // A job fires every second: compare at a moment all three agree.
        digests.len() == 1
    })
    .await;
}

/// n1 and n3 cannot reach each other; n2 reaches both. Firing goes on
/// with no duplicate whoever leads.
#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_partition_keeps_firing() {
    let c = Cluster::start_proxied(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = tick(&c, dir.path()).await;
    for (a, b) in [(0, 2), (2, 0)] {
        c.links[&(a, b)].cut(true);
    }
    // The cut is in force: a fresh connection through it is closed at once.
    let mut probe = tokio::net::TcpStream::connect(c.links[&(0, 2)].addr).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::io::AsyncReadExt::read(&mut probe, &mut byte).await.unwrap_or(0);
    assert_eq!(n, 0, "the cut link closed the connection");
    more_runs(&path, 5).await;
    c.links[&(0, 2)].cut(false);
    c.links[&(2, 0)].cut(false);
    more_runs(&path, 2).await;
    no_duplicates(&path);
}

/// Every link delayed by 40 ms each way: slower commits, same promise.
/// openraft's RPC timeout is the heartbeat interval, so the nodes run with
/// a heartbeat above the delayed round trip, as an operator of such a
/// network must (with the default 100 ms, heartbeats time out, leadership
/// cannot be confirmed and nothing fires: a third of runs failed so).
#[tokio::test(flavor = "multi_thread")]
async fn delayed_links_still_fire_once() {
    let slow = [("JOBD_HEARTBEAT_MS", "250"), ("JOBD_ELECTION_MIN_MS", "750"), ("JOBD_ELECTION_MAX_MS", "1500")];
    let c = Cluster::start_proxied_with_env(3, &slow).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = tick(&c, dir.path()).await;
    let before: u64 = c.links.values().map(|p| p.bytes()).sum();
    for p in c.links.values() {
        p.delay(40);
    }
    let seen = witness(&path).len();
    let start = std::time::Instant::now();
    while witness(&path).len() < seen + 5 {
        assert!(start.elapsed() < Duration::from_secs(20), "no runs over delayed links:\n{}", c.log_tails());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after: u64 = c.links.values().map(|p| p.bytes()).sum();
    assert!(after > before, "traffic went through the delayed links");
    no_duplicates(&path);
}

/// One way: the leader's messages to one follower are cut, the follower's
/// to the leader are not. Firing goes on; no duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_way_partition_keeps_firing() {
    let c = Cluster::start_proxied(3).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let path = tick(&c, dir.path()).await;
    let leader = c.wait_leader().await.unwrap();
    let follower = (leader + 1) % 3;
    c.links[&(leader, follower)].cut(true);
    more_runs(&path, 5).await;
    assert!(c.links[&(leader, follower)].refused() > 0, "the leader's connections to the follower were refused");
    c.links[&(leader, follower)].cut(false);
    more_runs(&path, 2).await;
    no_duplicates(&path);
}

/// A follower cut off while the leader takes more entries than the
/// snapshot threshold (and purges its log behind the snapshot): after
/// healing it catches up — by snapshot, since the entries it missed are
/// gone — and every node ends with the same digest.
#[tokio::test(flavor = "multi_thread")]
async fn a_follower_isolated_past_the_snapshot_threshold_catches_up() {
    let c = Cluster::start_proxied_with_env(3, &[("JOBD_SNAPSHOT_EVERY", "20")]).await.expect("cluster");
    let leader = c.wait_leader().await.unwrap();
    let follower = (leader + 1) % 3;
    let fs = c.client(leader).await.unwrap();
    c.isolate(follower, true);
    for i in 0..60 {
        fs.write("clone", format!("j{i}:@daily:true").as_bytes()).await.unwrap();
    }
    let refused: u64 = c.links.iter().filter(|((a, b), _)| *a == follower || *b == follower).map(|(_, p)| p.refused()).sum();
    assert!(refused > 0, "the follower was cut off");
    let applied = |ctl: &std::collections::HashMap<String, String>| ctl["applied"].parse::<u64>().unwrap();
    let behind = applied(&c.ctl(follower).await.unwrap());
    let ahead = applied(&c.ctl(leader).await.unwrap());
    assert!(ahead >= behind + 60, "the follower fell {} entries behind", ahead - behind);
    c.isolate(follower, false);
    wait_for("the follower to catch up with the same digest", Duration::from_secs(30), async || {
        let (a, b) = (c.ctl(leader).await.unwrap(), c.ctl(follower).await.unwrap());
        a["applied"] == b["applied"] && a["digest"] == b["digest"]
    })
    .await;
    let listing = String::from_utf8(c.client(follower).await.unwrap().read("jobs/j59/cmd").await.unwrap()).unwrap();
    assert_eq!(listing, "true\n");
    // It had to be a snapshot: the leader purged what the follower missed.
    let leader_ctl = c.ctl(leader).await.unwrap();
    assert!(leader_ctl["purged"].parse::<u64>().unwrap() > behind, "the leader purged past the follower: {leader_ctl:?}");
    let follower_snapshot: u64 = c.ctl(follower).await.unwrap()["snapshot"].parse().unwrap();
    assert!(follower_snapshot > behind, "the follower holds a snapshot past where it stopped");
}
