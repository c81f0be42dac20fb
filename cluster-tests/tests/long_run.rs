//! What it breaks: nothing — a run simply outlives the thread that created
//! its process. The parent-death signal that ties a run to its node fires
//! when the creating *thread* ends; runs used to be created on tokio's
//! blocking pool, whose idle threads end after 10 s, and every run longer
//! than that on a quiet node was SIGKILLed at 10.000 s.
//!
//! What it expects: a 13 s run on an otherwise idle node ends by itself,
//! `exit 0`, with its output.

use std::time::Duration;

use cluster_tests::jobd::Jobd;
use cluster_tests::wait_for;
use ninep::client::{Client, Options};

#[tokio::test(flavor = "multi_thread")]
async fn a_run_longer_than_ten_seconds_is_not_killed() {
    let j = Jobd::single().await.expect("jobd");
    let fs = Client::connect(j.fs_addr, Options::default()).await.unwrap();
    fs.write("clone", b"long:@yearly:sleep 13; echo done").await.unwrap();
    fs.write("jobs/long/ctl", b"run").await.unwrap();
    let runs = async || String::from_utf8(fs.read("jobs/long/runs").await.unwrap()).unwrap();
    wait_for("the run to end", Duration::from_secs(40), async || {
        let r = runs().await;
        !r.is_empty() && !r.trim_end().ends_with("running") && !r.trim_end().ends_with("pending")
    })
    .await;
    let r = runs().await;
    assert!(r.trim_end().ends_with(" exit 0"), "the run ended by itself: {r:?}\n{}", j.log_tail());
    let log = String::from_utf8(fs.read("jobs/long/log").await.unwrap()).unwrap();
    assert!(log.contains("UTC:done\n"), "{log:?}");
}
