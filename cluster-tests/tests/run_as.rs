//! `--run-as USER`: run as root, jobd runs its jobs as `nobody` (uid,
//! primary group, no supplementary groups) in a working directory that
//! user can write. Run as anyone else, jobd refuses the flag at start with
//! one line, because it could not change user.

use std::time::Duration;

use cluster_tests::jobd::{binary, free_addr, Jobd};
use cluster_tests::wait_for;
use ninep::client::{Client, Options};

fn id(args: &[&str]) -> String {
    let out = std::process::Command::new("id").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_run_as_the_given_user() {
    if id(&["-u"]) != "0" {
        // Not root: the flag must be refused, not ignored.
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(binary().unwrap())
            .args(["--dbdir", dir.path().to_str().unwrap(), "--run-as", "nobody"])
            .args(["--fsaddr", &free_addr().unwrap().to_string(), "--raftaddr", &free_addr().unwrap().to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("only root can run jobs as another user"), "{err}");
        return;
    }
    let j = Jobd::single_with(&["--run-as", "nobody"]).await.unwrap();
    let c = Client::connect(j.fs_addr, Options::default()).await.unwrap();
    c.write("clone", b"who:0 0 3 * * ?:echo uid=$(id -u) gid=$(id -g) groups=$(id -G) user=$USER; touch made-here && echo wrote")
        .await
        .unwrap();
    c.write("jobs/who/ctl", b"run").await.unwrap();
    let mut log = String::new();
    wait_for("the run to end", Duration::from_secs(20), async || {
        log = String::from_utf8(c.read("jobs/who/log").await.unwrap()).unwrap();
        log.lines().any(|l| l.contains(":run ") && l.contains(" in "))
    })
    .await;
    let (uid, gid) = (id(&["-u", "nobody"]), id(&["-g", "nobody"]));
    assert!(log.contains(&format!("uid={uid} gid={gid} groups={gid} user=nobody")), "{log}");
    assert!(log.contains(":wrote\n") && log.contains(" exit 0 in "), "{log}");
    let made = j.dir.path().join("db/work/made-here");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(made).unwrap()).to_string(), uid);
    j.stop().await.unwrap();
}
