//! The original jobd's session through a 9P2000 client nobody here wrote
//! (sminez's `ninep` crate, built in its own workspace under
//! `ninep/tests/sminez/`), against a real jobd process.

use std::path::PathBuf;
use std::time::Duration;

use cluster_tests::jobd::Jobd;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_session_through_sminez_client() {
    let jobd = Jobd::single().await.expect("jobd starts");
    let repo = cluster_tests::crate_dir().join("..");
    // Its own target directory: this test runs while cargo holds ours.
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo.join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = Command::new(cargo)
        .args(["run", "--quiet", "--locked", "--manifest-path"])
        .arg(repo.join("ninep/tests/sminez/Cargo.toml"))
        .args(["--", "jobd", &jobd.fs_addr.to_string()])
        .env("CARGO_TARGET_DIR", target.join("sminez-interop"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run).await.expect("finished in time").expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sminez-interop: all ok"),
        "{stdout}{}\njobd:\n{}",
        String::from_utf8_lossy(&out.stderr),
        jobd.log_tail()
    );
}
