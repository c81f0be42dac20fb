//! Where runs run (issue 21), so far its first part: each node's
//! `--labels` (here through `JOBD_LABELS`) are announced into the
//! replicated state and every node's `/ctl` shows every member's; bad
//! labels stop jobd at start, saying why, before it writes anything.

use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::jobd::binary;
use cluster_tests::poll::poll;

#[tokio::test(flavor = "multi_thread")]
async fn every_node_shows_every_members_labels() {
    let c = Cluster::start_with_env(3, |i| vec![("JOBD_LABELS".to_string(), format!("zone=z{i}, rack=r1"))]).await.expect("cluster");
    let want = "1:rack=r1,zone=z0 2:rack=r1,zone=z1 3:rack=r1,zone=z2";
    for i in 0..3 {
        poll("every member's labels in /ctl", Duration::from_secs(10), Duration::from_millis(100), async || {
            let ctl = c.ctl(i).await.ok()?;
            (ctl.get("labels").map(String::as_str) == Some(want)).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_labels_stop_jobd_at_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, want) in [("zone", "write key=value"), ("zone=a b", "[A-Za-z0-9._-]"), ("a=1,a=2", "given twice")] {
        let run = tokio::process::Command::new(binary().unwrap())
            .args(["--dbdir", &dir.path().display().to_string(), "--fsaddr", "127.0.0.1:0", "--raftaddr", "127.0.0.1:0", "--labels", bad])
            .kill_on_drop(true)
            .output();
        // A jobd that accepted the labels would serve until killed.
        let out = tokio::time::timeout(Duration::from_secs(20), run).await.unwrap_or_else(|_| panic!("{bad}: jobd started")).unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: jobd must not start");
        assert!(err.contains(want), "{bad}: {err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written for {bad}");
    }
}
