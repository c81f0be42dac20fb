//! Chains on a real cluster: `b` runs after each successful run of `a`,
//! once per triggering run, even when the leader is SIGKILLed between
//! `a`'s end and `b`'s take-over (the test seam `JOBD_TEST_HOLD_CHAINS_MS`
//! keeps every node from claiming a chained run for its first 3 s, so the
//! kill lands in that window every time). Bad `after` rules are refused
//! with one line and change nothing.

use std::time::Duration;

use cluster_tests::cluster::Cluster;
use cluster_tests::poll::poll;
use ninep::client::{Client, Options};
use ninep::Dialect;

/// `runs` lines of a job: (run id, trigger, node, status).
fn runs(text: &str) -> Vec<(u64, String, u64, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.first()?.parse().ok()?, f.get(2)?.to_string(), f.get(3)?.parse().ok()?, f.get(6..)?.join(" ")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_run_runs_once_across_a_leader_kill_between_the_end_and_its_take_over() {
    let hold = vec![("JOBD_TEST_HOLD_CHAINS_MS".to_string(), "3000".to_string())];
    let mut c = Cluster::start_with_env(3, |_| hold.clone()).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let witness = dir.path().join("witness");
    let old = c.wait_leader().await.unwrap();
    let fs = c.client(old).await.unwrap();
    fs.write("clone", b"a:@yearly:true").await.unwrap();
    let b = format!("b::echo $JOBD_AFTER_RUN_ID $JOBD_NODE $JOBD_TRIGGER >> {}", witness.display());
    fs.write("clone", b.as_bytes()).await.unwrap();
    fs.write("jobs/b/ctl", b"after a success\nstart").await.unwrap();
    let ctl = String::from_utf8(fs.read("jobs/b/ctl").await.unwrap()).unwrap();
    assert!(ctl.contains("\nafter a=success\n") && ctl.starts_with("state started\n"), "{ctl}");
    assert!(String::from_utf8(fs.read("jobs/a/ctl").await.unwrap()).unwrap().contains("\nfollowed-by b\n"));

    // a runs by hand on the leader; once its end is applied, the leader dies.
    fs.write("jobs/a/ctl", b"run").await.unwrap();
    let a_run = poll("a's run to end", Duration::from_secs(10), Duration::from_millis(5), async || {
        runs(&c.read(old, "jobs/a/runs").await).into_iter().find(|r| r.3 == "exit 0").map(|r| r.0)
    })
    .await;
    let pending = runs(&c.read(old, "jobs/b/runs").await);
    assert!(matches!(pending.as_slice(), [(_, t, 0, s)] if t == "after" && s == "pending"), "b's run accepted with a's end, under no node: {pending:?}");
    c.kill(old).await.unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader_among(&others).await.unwrap();
    let done = poll("b's run to end", Duration::from_secs(30), Duration::from_millis(100), async || {
        let r = runs(&c.read(new, "jobs/b/runs").await);
        r.iter().all(|r| r.3 != "pending" && r.3 != "running").then_some(r)
    })
    .await;
    let new_id = new as u64 + 1;
    assert_eq!(done.len(), 1, "one run of b for one run of a: {done:?}\n{}", c.log_tails());
    assert_eq!((done[0].1.as_str(), done[0].2, done[0].3.as_str()), ("after", new_id, "exit 0"), "taken over and run by the new leader: {done:?}");
    let seen = std::fs::read_to_string(&witness).unwrap_or_default();
    assert_eq!(seen, format!("{a_run} {new_id} after\n"), "b began once, knowing which run of a started it");

    // The end of b and its take-over are in every node's events.
    let events = c.read(new, "events").await;
    assert!(events.lines().any(|l| l.contains(" b ") && l.contains(" after ") && l.contains(" ended exit 0 ")), "{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_after_rules_are_refused_with_one_line_and_change_nothing() {
    let c = Cluster::start(1).await.expect("cluster");
    c.wait_leader().await.unwrap();
    let opts = Options { dialect: Dialect::P2000U, ..Default::default() };
    let fs = Client::connect(c.nodes[0].fs_addr, opts).await.unwrap();
    fs.write("clone", b"a:@yearly:true").await.unwrap();
    fs.write("clone", b"b::true").await.unwrap();
    fs.write("clone", b"c::true").await.unwrap();
    fs.write("jobs/b/ctl", b"after a").await.unwrap();
    fs.write("jobs/c/ctl", b"after b failure").await.unwrap();
    for (job, verb, want) in [
        ("b", "after nope", "nope: no such job"),
        ("b", "after b", "cannot follow itself"),
        ("a", "after c always", "makes a cycle: a → c → b → a"),
        ("b", "after a sometimes", "use success, failure or always"),
        ("b", "after a/x", "'/'"),
        ("b", "after", "unknown command"),
        ("c", "start\nafter a maybe", "use success, failure or always"),
    ] {
        let err = fs.write(&format!("jobs/{job}/ctl"), verb.as_bytes()).await.unwrap_err();
        assert_eq!(err.errno(), Some(22), "{verb:?}: EINVAL, not {err}");
        assert!(err.to_string().contains(want) && !err.to_string().contains('\n'), "{verb:?}: {err}");
    }
    let ctl = |name: &'static str| {
        let fs = &fs;
        async move { String::from_utf8(fs.read(&format!("jobs/{name}/ctl")).await.unwrap()).unwrap() }
    };
    assert!(ctl("a").await.contains("\nafter -\nfollowed-by b\n"));
    assert!(ctl("c").await.starts_with("state stopped\n"), "a refused write runs none of its verbs");
    assert!(ctl("c").await.contains("\nafter b=failure\n"));
    // A job another follows cannot be deleted until that rule is cleared.
    let err = fs.remove("jobs/a").await.unwrap_err();
    assert!(err.to_string().contains("followed by b"), "{err}");
    fs.write("jobs/b/ctl", b"after off").await.unwrap();
    fs.remove("jobs/a").await.unwrap();
    assert!(ctl("b").await.contains("\nafter -\nfollowed-by c\n"));
}
