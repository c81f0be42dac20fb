//! A short pass of the seeded combined chaos (the soak binary's run, about
//! 45 s of faults): every fault the nemesis knows, drawn by weight, with a
//! working client and tick jobs; all five checkers must hold. The seed is
//! printed; `JOBD_CHAOS_SEED` replays one.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn seeded_chaos_keeps_every_guarantee() {
    let seed = cluster_tests::chaos::seed();
    println!("seed {seed} (replay: JOBD_CHAOS_SEED={seed} cargo test --release -p cluster-tests --test chaos)");
    let report = cluster_tests::chaos::run(seed, cluster_tests::chaos::Plan::chaos(Duration::from_secs(45))).await.expect("the chaos run completes");
    println!("{report}");
    assert!(report.faults.len() >= 4, "too few faults injected: {}", report.faults.len());
    assert!(report.verdict.fires > 0 && report.ledger.acked > 0, "nothing happened:\n{report}");
    assert!(report.passed(), "{report}");
}
