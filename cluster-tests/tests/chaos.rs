//! A short pass of the seeded combined chaos (the soak binary's run, about
//! 45 s of faults): leader and follower kills, pauses, isolation, one-way
//! and bridge partitions, delays, with a working client and tick jobs; all
//! five checkers must hold. The seed is printed; `JOBD_CHAOS_SEED` replays
//! one.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn seeded_chaos_keeps_every_guarantee() {
    let seed = std::env::var("JOBD_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("seed {seed} (replay: JOBD_CHAOS_SEED={seed} cargo test --release -p cluster-tests --test chaos)");
    let report = cluster_tests::chaos::run(seed, cluster_tests::chaos::Plan::chaos(Duration::from_secs(45))).await.expect("the chaos run completes");
    println!("{report}");
    assert!(report.faults.len() >= 4, "too few faults injected: {}", report.faults.len());
    assert!(report.verdict.fires > 0 && report.ledger.acked > 0, "nothing happened:\n{report}");
    assert!(report.passed(), "{report}");
}
