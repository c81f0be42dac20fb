//! The README's backup and restore, with the real binary: `backup` written
//! to /ctl, `jobd restore` into a new --dbdir, and jobd started there
//! serving the backed-up job. A second restore into the same directory is
//! refused with one line and changes nothing.

use cluster_tests::jobd::{binary, free_addr, spawn_jobd, Jobd};
use tokio::process::Command;

async fn jobd(args: &[&str]) -> std::process::Output {
    Command::new(binary().unwrap()).args(args).output().await.unwrap()
}

async fn ninep(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = jobd(&[&["9p", "--addr", &addr.to_string()], args].concat()).await;
    assert!(out.status.success(), "jobd 9p {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_then_restore_as_a_new_cluster() {
    let old = Jobd::single().await.unwrap();
    ninep(old.fs_addr, &["write", "/clone", "nightly:0 0 3 * * ?:echo backed up"]).await;
    ninep(old.fs_addr, &["write", "/ctl", "backup"]).await;
    let ctl = ninep(old.fs_addr, &["read", "/ctl"]).await;
    let backup = ctl.lines().find_map(|l| l.strip_prefix("backup ")).unwrap().to_string();
    assert!(std::path::Path::new(&backup).is_dir(), "{ctl}");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let (fs_addr, raft_addr) = (free_addr().unwrap(), free_addr().unwrap());
    let restore = ["--dbdir", db.to_str().unwrap(), "--id", "1", "--raftaddr", &raft_addr.to_string(), "restore", &backup];
    let out = jobd(&restore).await;
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("restored "), "{out:?}");
    let again = jobd(&restore).await;
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && err.contains("already holds data") && err.lines().count() == 1, "{err}");

    let log_path = dir.path().join("jobd.log");
    let child = spawn_jobd(dir.path(), fs_addr, raft_addr, &[], &[], &log_path).unwrap();
    let new = Jobd { child, dir, fs_addr, raft_addr, log_path };
    new.wait_ready().await.unwrap();
    assert_eq!(ninep(fs_addr, &["read", "/jobs/nightly/cmd"]).await, "echo backed up\n");
    let ctl = ninep(fs_addr, &["read", "/ctl"]).await;
    assert!(ctl.contains("members 1\n") && ctl.contains("leader 1\n"), "{ctl}");
    ninep(fs_addr, &["write", "/clone", "fresh:0 0 4 * * ?:true"]).await;
    new.stop().await.unwrap();
    // Last: the backup lives in its --dbdir, which goes with it.
    old.stop().await.unwrap();
}
