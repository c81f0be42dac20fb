//! Backup and restore: `backup` written to a follower's /ctl checkpoints a
//! state that holds every write acknowledged before it; restoring it makes
//! a new one-node cluster that serves that state (and nothing written
//! after the backup), takes writes, and grows: a member added later gets
//! the state by snapshot, because the restored log does not hold it.

mod common;

use common::{create, eventually, Cluster};
use node::command::Response;
use node::node::{Config, InitialState, Node};
use node::state::{job_key, KvRead};
use node::store::backup::{restore, BackupError};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_as_a_new_cluster_that_grows_by_snapshot() {
    let c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    // Acknowledged through the leader: the follower may not have applied
    // them yet when asked, and must catch up before its checkpoint.
    for name in ["alpha", "beta"] {
        assert!(matches!(c.node(leader).write(create(name)).await, Ok(Response::Created { .. })));
    }
    let fs = ninep::client::Client::connect(c.fs_addrs[follower], Default::default()).await.unwrap();
    let ctl = String::from_utf8(fs.read("ctl").await.unwrap()).unwrap();
    assert!(ctl.contains("backup -\n"), "no backup yet: {ctl}");
    fs.write("ctl", b"backup").await.unwrap();
    let ctl = String::from_utf8(fs.read("ctl").await.unwrap()).unwrap();
    let path = ctl.lines().find_map(|l| l.strip_prefix("backup ")).unwrap().to_string();
    assert!(path.starts_with(c.configs[follower].dbdir.join("backups").to_str().unwrap()), "{path}");
    c.node(leader).write(create("after-backup")).await.unwrap();

    // Restore refuses a target with data and a source that is no backup.
    let taken = tempfile::tempdir().unwrap();
    std::fs::write(taken.path().join("something"), "x").unwrap();
    assert!(matches!(restore(path.as_ref(), taken.path(), 7, "x:1").await, Err(BackupError::TargetNotEmpty(_))));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(restore(empty.path(), &empty.path().join("to"), 7, "x:1").await, Err(BackupError::NotABackup(..))));

    let dir = tempfile::tempdir().unwrap();
    let l7 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr7 = l7.local_addr().unwrap().to_string();
    let restored = restore(path.as_ref(), dir.path(), 7, &addr7).await.unwrap();
    assert!(restored.keys >= 2, "{restored:?}");
    let n7 = Node::start(Config::new(7, dir.path().into(), addr7.clone(), "127.0.0.1:7007".into()), l7).await.unwrap();
    eventually("the restored node to lead", || (n7.current_leader() == Some(7)).then_some(())).await;
    let has = |n: &Node, name: &str| n.sm.get(&job_key(name)).unwrap().is_some();
    assert!(has(&n7, "alpha") && has(&n7, "beta"), "the backup's jobs are served");
    assert!(!has(&n7, "after-backup"), "a job created after the backup is not");
    assert!(matches!(n7.write(create("gamma")).await, Ok(Response::Created { .. })));

    // Grow it: a fresh node joins and receives the state by snapshot.
    let dir8 = tempfile::tempdir().unwrap();
    let l8 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr8 = l8.local_addr().unwrap().to_string();
    let mut cfg = Config::new(8, dir8.path().into(), addr8.clone(), "127.0.0.1:7008".into());
    cfg.peers = vec![(7, addr7), (8, addr8.clone())];
    cfg.initial_state = Some(InitialState::Existing);
    let n8 = Node::start(cfg, l8).await.unwrap();
    let (fs7, _stop) = common::serve_9p(&n7).await;
    let fs7 = ninep::client::Client::connect(fs7, Default::default()).await.unwrap();
    fs7.write("ctl", format!("add 8 {addr8}\npromote 8").as_bytes()).await.unwrap();
    eventually("the new member to hold every job", || (has(&n8, "alpha") && has(&n8, "gamma")).then_some(())).await;
    assert!(n8.raft.metrics().borrow().snapshot.is_some(), "the new member was sent a snapshot");
    let ctl = String::from_utf8(fs7.read("ctl").await.unwrap()).unwrap();
    assert!(ctl.contains("members 7,8\n"), "{ctl}");
    n8.shutdown().await;
    n7.shutdown().await;
}
