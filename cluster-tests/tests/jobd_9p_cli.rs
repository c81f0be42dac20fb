//! The original jobd's session — clone, start, cat cmd / schedule / log,
//! stop — through `jobd 9p` against every node of a three-node cluster
//! started from the command line, and each bad input's error.

use std::process::Output;

use cluster_tests::cluster::Cluster;
use cluster_tests::jobd::binary;
use tokio::process::Command;

async fn jobd_9p(addr: &std::net::SocketAddr, args: &[&str]) -> Output {
    Command::new(binary().unwrap()).arg("9p").args(["--addr", &addr.to_string()]).args(args).output().await.unwrap()
}

async fn ok(addr: &std::net::SocketAddr, args: &[&str]) -> String {
    let out = jobd_9p(addr, args).await;
    assert!(out.status.success(), "jobd 9p {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn refused(addr: &std::net::SocketAddr, args: &[&str], want: &str) {
    let out = jobd_9p(addr, args).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "jobd 9p {args:?} should fail");
    assert!(err.contains(want), "jobd 9p {args:?}: {err:?} should mention {want:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_session_through_jobd_9p_on_every_node() {
    let c = Cluster::start(3).await.expect("cluster");
    for (i, node) in c.nodes.iter().enumerate() {
        let a = &node.fs_addr;
        let name = format!("hello{i}");
        ok(a, &["write", "/clone", &format!("{name}:0 0/5 * * * ? *:echo hello world")]).await;
        ok(a, &["write", &format!("/jobs/{name}/ctl"), "start"]).await;
        assert_eq!(ok(a, &["read", &format!("/jobs/{name}/cmd")]).await, "echo hello world\n");
        let schedule = ok(a, &["read", &format!("/jobs/{name}/schedule")]).await;
        assert!(schedule.starts_with("0 0/5 * * * ? *\n") && schedule.lines().count() == 2, "{schedule:?}");
        assert_eq!(ok(a, &["read", &format!("/jobs/{name}/log")]).await, "");
        ok(a, &["write", &format!("/jobs/{name}/ctl"), "stop"]).await;
        assert!(ok(a, &["read", &format!("/jobs/{name}/ctl")]).await.starts_with("state stopped\n"));
        assert!(ok(a, &["ls", "/jobs"]).await.lines().any(|l| l == format!("{name}/")));

        refused(a, &["write", "/clone", "nocolon"], "name:cronexpr:cmd").await;
        refused(a, &["write", "/clone", &format!("{name}:@daily:true")], "exists").await;
        refused(a, &["write", "/clone", "x:0 0 0 30 2 ?:true"], "never fires").await;
        // A step that used to wrap in the parser and panic the request.
        refused(a, &["write", "/clone", "x:0 0 0 1 1 ? 2000/4294967000:true"], "never fires").await;
        refused(a, &["write", "/clone", "c:0 0 L * ?:true"], "makes it Quartz").await;
        refused(a, &["write", "/clone", "a/b:@daily:true"], "'/'").await;
        refused(a, &["write", &format!("/jobs/{name}/ctl"), "frob"], "start, stop, run").await;
        refused(a, &["write", &format!("/jobs/{name}/log"), "x"], "read-only").await;
        refused(a, &["read", "/jobs/nope/ctl"], "nope").await;
    }
    // Every node sees every node's jobs (followers may lag a little).
    for node in &c.nodes {
        let start = tokio::time::Instant::now();
        loop {
            let ls = ok(&node.fs_addr, &["ls", "/jobs"]).await;
            if ls == "hello0/\nhello1/\nhello2/\n" {
                break;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "node {} lists {ls:?}", node.id);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// A peer that accepts and never answers: `jobd 9p` gives up after
/// `--timeout` with one line that says what happened, and `--timeout` is
/// checked like any flag.
#[tokio::test]
async fn jobd_9p_gives_up_on_a_silent_peer_after_its_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = vec![];
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let started = std::time::Instant::now();
    refused(&addr, &["--timeout", "1s", "read", "/ctl"], "no answer within 1s").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    let out = jobd_9p(&addr, &["--timeout", "soon", "read", "/ctl"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("or 0 to wait forever"), "{err}");
    held.abort();
}
