//! Three nodes in one process on port-0 listeners: replication through a
//! follower, leader loss and return, catch-up by snapshot, full restart,
//! minority refusal, and the fresh-directory rule.

mod common;

use std::time::Duration;

use common::{create, eventually, Cluster};
use node::command::{Command, Response};
use node::node::{Config, Node, StartError};
use node::write::WriteError;
use node::state::KvRead;
use tokio::net::TcpListener;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_follower_is_read_back_there_and_replicated() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let r = c.node(follower).write(create("via-follower")).await.unwrap();
    assert!(matches!(r, Response::Created { .. }), "{r:?}");
    assert!(c.has_job(follower, "via-follower"), "read-your-writes on the node that took the write");
    for i in 0..3 {
        eventually("replication to every node", || c.has_job(i, "via-follower").then_some(())).await;
    }
    assert_eq!(c.node(leader).write(create("via-follower")).await.unwrap(), Response::AlreadyExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_elects_another_and_the_old_one_catches_up() {
    let mut c = Cluster::start(3, 10_000).await;
    let old = c.leader().await;
    c.node(old).write(create("before")).await.unwrap();
    let term_before = c.node(old).raft.metrics().borrow().current_term;
    c.stop(old).await;
    let new = c.leader().await;
    assert_ne!(new, old);
    assert!(c.node(new).raft.metrics().borrow().current_term > term_before, "a new term began");
    c.node(new).write(create("after")).await.unwrap();
    c.restart(old).await;
    eventually("the old leader catches up", || c.has_job(old, "after").then_some(())).await;
    assert!(c.has_job(old, "before"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_far_behind_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, 20).await;
    let leader = c.leader().await;
    let lagging = (leader + 1) % 3;
    c.stop(lagging).await;
    for i in 0..60 {
        c.node(leader).write(create(&format!("job{i}"))).await.unwrap();
    }
    let purged = eventually("the leader to purge its log behind a snapshot", || {
        let m = c.node(leader).raft.metrics().borrow().clone();
        m.purged.filter(|p| p.index > 20).map(|p| p.index)
    })
    .await;
    c.restart(lagging).await;
    eventually("the lagging node to install a snapshot", || {
        let m = c.node(lagging).raft.metrics().borrow().clone();
        m.snapshot.filter(|s| s.index >= purged).map(|_| ())
    })
    .await;
    eventually("the lagging node to hold every job", || (0..60).all(|i| c.has_job(lagging, &format!("job{i}"))).then_some(())).await;
}

/// Few entries but many bytes (run output makes entries big): the log is
/// still purged, by `snapshot_log_bytes`, long before `snapshot_every`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_of_few_big_entries_is_purged_by_its_size() {
    let c = Cluster::start_with(3, 1_000_000, |cfg| cfg.snapshot_log_bytes = 256 << 10).await;
    let leader = c.leader().await;
    let big = "x".repeat(16 << 10);
    for i in 0..40 {
        let cmd = Command::CreateJob { name: format!("big{i}"), schedule: "* * * * *".into(), cmd: format!("echo {big}"), at_ms: 0 };
        c.node(leader).write(cmd).await.unwrap();
    }
    for i in 0..3 {
        eventually("every node to purge its log behind a snapshot", || {
            let m = c.node(i).raft.metrics().borrow().clone();
            m.purged.filter(|p| p.index > 0).map(|_| ())
        })
        .await;
    }
    let m = c.node(leader).raft.metrics().borrow().clone();
    let kept = m.last_log_index.unwrap_or(0) - m.purged.map_or(0, |p| p.index);
    assert!(kept < 40, "the log still holds {kept} entries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_full_restart() {
    let mut c = Cluster::start(3, 25).await;
    // Elected first: this binary's tests start their clusters side by
    // side on two cores, and a write sent before any leader exists is
    // refused (nothing done) once its own timeout passes.
    c.leader().await;
    let mut acked = vec![];
    for i in 0..40 {
        let via = i % 3;
        let started = Instant::now();
        let answer = loop {
            match c.node(via).write(create(&format!("j{i}"))).await {
                Err(WriteError::NoQuorum) if started.elapsed() < common::DEADLINE => continue,
                other => break other,
            }
        };
        if let Ok(Response::Created { .. }) = answer {
            acked.push(format!("j{i}"));
        }
    }
    assert_eq!(acked.len(), 40, "a healthy cluster acknowledges every write");
    for i in 0..3 {
        c.stop(i).await;
    }
    for i in 0..3 {
        c.restart(i).await;
    }
    c.leader().await;
    for i in 0..3 {
        eventually("every acknowledged job after restart", || acked.iter().all(|j| c.has_job(i, j)).then_some(())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_refuses_writes_within_the_bound() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let survivor = (leader + 1) % 3;
    for i in 0..3 {
        if i != survivor {
            c.stop(i).await;
        }
    }
    let start = Instant::now();
    let r = c.node(survivor).write(create("lonely")).await;
    let took = start.elapsed();
    assert!(matches!(r, Err(WriteError::NoQuorum) | Err(WriteError::Timeout)), "{r:?}");
    assert!(took < Duration::from_secs(4), "refused within the write timeout (took {took:?})");
    assert!(!c.has_job(survivor, "lonely"));
}

#[tokio::test]
async fn a_fresh_directory_with_peers_needs_an_initial_state() {
    let dir = tempfile::tempdir().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut cfg = Config::new(1, dir.path().to_path_buf(), addr.clone(), "127.0.0.1:5640".into());
    cfg.peers = vec![(1, addr), (2, "127.0.0.1:1".into())];
    match Node::start(cfg, l).await {
        Err(e @ StartError::FreshNeedsInitialState(_)) => assert!(e.to_string().contains("--initial-cluster-state")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a fresh directory with peers and no initial state must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_node_holds_a_confirmed_fence_and_it_moves_on_failover() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let fence = eventually("the leader to confirm its leadership", || *c.node(leader).leadership.borrow()).await;
    assert_eq!(fence.node, leader as u64 + 1);
    for i in (0..3).filter(|i| *i != leader) {
        assert!(c.node(i).leadership.borrow().is_none(), "followers hold no fence");
    }
    c.stop(leader).await;
    let new = c.leader().await;
    let next = eventually("the new leader to confirm", || *c.node(new).leadership.borrow()).await;
    assert!(next.term > fence.term && next.node != fence.node, "{next:?} after {fence:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_loses_its_fence() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    eventually("a confirmed leader", || *c.node(leader).leadership.borrow()).await;
    for i in (0..3).filter(|i| *i != leader) {
        c.stop(i).await;
    }
    eventually("the isolated leader to drop its fence", || c.node(leader).leadership.borrow().is_none().then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_as_a_learner_is_promoted_and_removed_through_ctl() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    c.node(leader).write(create("before-join")).await.unwrap();
    // A fresh node that joins an existing cluster waits to be added.
    let (joiner, addr, _dir) = start_joiner(&c).await;
    let fs = ninep::client::Client::connect(c.fs_addrs[leader], Default::default()).await.unwrap();
    fs.write("ctl", format!("add 4 {addr}").as_bytes()).await.unwrap();
    eventually("the learner to catch up", || joiner.sm.get(&node::state::job_key("before-join")).unwrap().map(|_| ())).await;
    let ctl = String::from_utf8(fs.read("ctl").await.unwrap()).unwrap();
    assert!(ctl.contains("learners 4\n"), "{ctl}");
    fs.write("ctl", b"promote 4").await.unwrap();
    let ctl = String::from_utf8(fs.read("ctl").await.unwrap()).unwrap();
    assert!(ctl.contains("members 1,2,3,4\n") && ctl.contains("learners -\n"), "{ctl}");
    fs.write("ctl", b"remove 4").await.unwrap();
    let ctl = String::from_utf8(fs.read("ctl").await.unwrap()).unwrap();
    assert!(ctl.contains("members 1,2,3\n"), "{ctl}");
    // A bad membership command is refused with the commands that exist.
    let err = fs.write("ctl", b"evict 2").await.unwrap_err();
    assert_eq!(err.errno(), Some(ninep::error::errno::EINVAL));
    joiner.shutdown().await;
}

/// Starts node 4 on a fresh directory as a node joining `c`, which waits
/// to be added: the node, its Raft address, and its directory (kept while
/// the node runs).
async fn start_joiner(c: &Cluster) -> (Node, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut cfg = Config::new(4, dir.path().to_path_buf(), addr.clone(), "127.0.0.1:7004".into());
    cfg.peers = c.configs[0].peers.clone();
    cfg.initial_state = Some(node::node::InitialState::Existing);
    let joiner = Node::start(cfg, l).await.expect("a joining node starts");
    (joiner, addr, dir)
}

/// The lease counts openraft's joint quorum, not the old configuration's:
/// promoting a fourth voter while it and one follower are down leaves the
/// leader in the joint configuration {1,2,3} + {1,2,3,4}, where it and the
/// other follower are a majority of the old half but not of the new. Its
/// fence must drop (no heartbeat round is acknowledged by a joint quorum),
/// so it begins nothing, and comes back once a follower returns and the
/// change completes (README, "Firing": why the quorums of every
/// configuration a successor could hold intersect the lease's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stuck_in_a_joint_configuration_without_its_new_majority_loses_its_fence() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    eventually("a confirmed leader", || *c.node(leader).leadership.borrow()).await;
    let (joiner, addr, _dir) = start_joiner(&c).await;
    let fs = ninep::client::Client::connect(c.fs_addrs[leader], Default::default()).await.unwrap();
    fs.write("ctl", format!("add 4 {addr}").as_bytes()).await.unwrap();
    joiner.shutdown().await;
    let (down, up) = ((leader + 1) % 3, (leader + 2) % 3);
    c.stop(down).await;
    // Two of three old voters answer; two of four new ones do not.
    let err = fs.write("ctl", b"promote 4").await.expect_err("the joint configuration cannot commit");
    assert_eq!(err.errno(), Some(ninep::error::errno::ETIMEDOUT), "{err}");
    let m = c.node(leader).raft.metrics().borrow().clone();
    assert!(m.membership_config.membership().get_joint_config().len() == 2, "in the joint configuration: {:?}", m.membership_config);
    eventually("the leader's fence to drop in the joint configuration", || c.node(leader).leadership.borrow().is_none().then_some(())).await;
    assert!(c.node(up).leadership.borrow().is_none(), "nor does the other follower lead");
    // The old half's majority alone never confirms it while the change
    // waits (several confirmation rounds: openraft's heartbeat is 50 ms).
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(1500) {
        assert!(c.node(leader).leadership.borrow().is_none(), "the old configuration's majority confirmed a lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.restart(down).await;
    let fence = eventually("a confirmed leader once three of four new voters answer", || {
        (0..3).find_map(|i| c.nodes[i].as_ref().and_then(|n| *n.leadership.borrow()))
    })
    .await;
    // The change the answer gave up on completes on its own.
    let new_leader = fence.node as usize - 1;
    eventually("the uniform configuration {1,2,3,4}", || {
        let m = c.node(new_leader).raft.metrics().borrow().clone();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        (m.membership_config.membership().get_joint_config().len() == 1 && voters == [1, 2, 3, 4]).then_some(())
    })
    .await;
}

/// A membership change is a write like any other: on a leader that has
/// lost its quorum it is answered within the write timeout (ETIMEDOUT:
/// openraft may have appended it, so it may still be applied), never left
/// hanging, and a change in flight refuses another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_change_that_cannot_commit_is_answered_within_the_bound() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    eventually("a confirmed leader", || *c.node(leader).leadership.borrow()).await;
    let fs = ninep::client::Client::connect(c.fs_addrs[leader], Default::default()).await.unwrap();
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for i in &followers {
        c.stop(*i).await;
    }
    let victim = followers[0] as u64 + 1;
    for verb in [format!("remove {victim}"), format!("promote {victim}")] {
        let start = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(15), fs.write("ctl", verb.as_bytes())).await;
        let took = start.elapsed();
        let err = answer.unwrap_or_else(|_| panic!("`{verb}` unanswered after {took:?}")).expect_err("no quorum: refused");
        let errno = err.errno();
        assert!(
            matches!(errno, Some(ninep::error::errno::ETIMEDOUT) | Some(ninep::error::errno::EAGAIN)),
            "`{verb}`: {err} ({errno:?})"
        );
        assert!(took < Duration::from_secs(5), "`{verb}` answered within the write timeout and a margin (took {took:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_cluster_token_members_work_and_a_stranger_is_refused() {
    let c = Cluster::start_with(3, 10_000, |cfg| cfg.cluster_token = Some("s3cret".into())).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    // Members carry the token: elections, replication and forwarding work.
    assert!(matches!(c.node(follower).write(create("tokened")).await, Ok(Response::Created { .. })));
    let addr = format!("http://{}", c.configs[leader].raft_addr);
    for token in [None, Some("wrong")] {
        let mut stranger = proto::raft::raft_client::RaftClient::connect(addr.clone()).await.unwrap();
        let mut req = tonic::Request::new(proto::raft::RaftRequest { payload: b"{}".to_vec(), sent_at_unix_ms: 0, from_node: 9 });
        if let Some(t) = token {
            req.metadata_mut().insert(node::net::TOKEN_HEADER, t.parse().unwrap());
        }
        let status = stranger.vote(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "token {token:?}: {status:?}");
    }
}

/// Group commit (`propose.rs`): many writes at once, on the leader and
/// forwarded by a follower, share log entries; each gets its own answer
/// and its own incarnation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_log_entries_and_each_gets_its_own_answer() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    let before = c.node(leader).applied_index();
    const N: usize = 200;
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..N {
        let writer = c.node(if i % 2 == 0 { leader } else { follower }).writer();
        writes.spawn(async move { writer.write(create(&format!("g{i}"))).await });
    }
    let answers = writes.join_all().await;
    let mut incarnations: Vec<u64> = answers
        .iter()
        .map(|a| match a {
            Ok(Response::Created { incarnation }) => *incarnation,
            other => panic!("each write is answered for itself: {other:?}"),
        })
        .collect();
    incarnations.sort_unstable();
    incarnations.dedup();
    assert_eq!(incarnations.len(), N, "every job its own incarnation");
    let entries = c.node(leader).applied_index() - before;
    assert!(entries < N as u64 / 2, "{N} concurrent writes took {entries} log entries");
    for i in 0..3 {
        eventually("every job on every node", || (0..N).all(|j| c.has_job(i, &format!("g{j}"))).then_some(())).await;
    }
}

/// A restarted node refuses votes for `election-max` after its start (the
/// lease assumes a follower that acknowledged a round does not vote within
/// that long after it; openraft forgets when it last heard from its leader
/// when the process ends). A vote request in that window is refused before
/// openraft sees it; after it, openraft answers (here: not granted, the
/// candidate's log being empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_refuses_votes_for_an_election_timeout() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    c.stop(follower).await;
    c.restart(follower).await;
    let started = tokio::time::Instant::now();
    let addr = format!("http://{}", c.configs[follower].raft_addr);
    let term = c.node(leader).raft.metrics().borrow().current_term;
    let vote = openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(term + 5, 9), None);
    let ask = || async {
        let mut peer = proto::raft::raft_client::RaftClient::connect(addr.clone()).await.unwrap();
        let payload = serde_json::to_vec(&vote).unwrap();
        peer.vote(tonic::Request::new(proto::raft::RaftRequest { payload, sent_at_unix_ms: 0, from_node: 9 })).await
    };
    let refused = ask().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(node::node::defaults::ELECTION_MAX_MS), "asked too late to tell");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("refusing votes"), "{refused:?}");
    tokio::time::sleep(Duration::from_millis(node::node::defaults::ELECTION_MAX_MS)).await;
    let answered = ask().await.expect("answered after the window");
    let result: Result<openraft::raft::VoteResponse<u64>, serde_json::Value> = serde_json::from_slice(&answered.into_inner().payload).unwrap();
    assert!(!result.expect("a vote response").vote_granted, "an empty log gets no vote");
}
