//! The named fault scenarios, one test each. Every one runs three real
//! jobd processes with every peer link through a proxy, three jobs firing
//! every second into a witness file, and a client creating, starting,
//! stopping and deleting jobs through random nodes; injects its fault (the
//! nemesis checks that it took effect: process reaped or stopped, proxy
//! refusing, term risen, skew seen, log purged); heals; and then all five
//! checkers must hold — P1 no lost acknowledged write, P2 no duplicate fire
//! (and no run before its time), P3 no silent miss, P4 run integrity, P5
//! convergence to one leader and one digest. Each prints its seed and
//! report; `JOBD_CHAOS_SEED=S` replays a seed.

use cluster_tests::chaos::{self, nemesis::Fault, Plan, Report};

async fn scenario(name: &str, plan: Plan) -> Report {
    let seed = chaos::seed();
    println!("{name}: seed {seed} (replay: JOBD_CHAOS_SEED={seed} cargo test --release -p cluster-tests --test scenarios {name})");
    let faults = plan.max_faults;
    let report = chaos::run(seed, plan).await.expect("the scenario runs to the end");
    println!("{report}");
    assert_eq!(report.faults.len(), faults, "every fault was injected");
    assert!(report.verdict.fires > 0 && report.ledger.acked > 0, "nothing happened:\n{report}");
    assert!(report.passed(), "{report}");
    report
}

/// Breaks: the leader, by SIGKILL, twice, restarted each time. Expects: a
/// new leader and its first fire within seconds (reported), the killed
/// node's running run marked lost, nothing run twice.
#[tokio::test(flavor = "multi_thread")]
async fn leader_sigkill_and_restart() {
    let r = scenario("leader_sigkill_and_restart", Plan::scenario(Fault::KillLeader, 2)).await;
    assert!(r.faults.iter().all(|f| f.to_leader.is_some()), "every kill was followed by a new leader: {r}");
}

/// Breaks: a follower, by SIGKILL, twice. Expects: the leader goes on
/// firing without a pause; the follower catches up when it returns.
#[tokio::test(flavor = "multi_thread")]
async fn follower_sigkill() {
    scenario("follower_sigkill", Plan::scenario(Fault::KillFollower, 2)).await;
}

/// Breaks: all three nodes at once, by SIGKILL, then all restarted on
/// their directories. Expects: every acknowledged write survives (it was
/// fsynced by a majority), firing resumes, the missed seconds are counted
/// by the catch-up policy.
#[tokio::test(flavor = "multi_thread")]
async fn all_three_sigkilled_and_restarted() {
    scenario("all_three_sigkilled_and_restarted", Plan::scenario(Fault::KillAll, 1)).await;
}

/// Breaks: the leader, by SIGSTOP for longer than the election timeout,
/// then SIGCONT. Expects: the others elect a leader and fire; the resumed
/// old leader begins no stale run (what it had accepted is past its start
/// deadline, and no scheduled run anywhere begins past that deadline).
#[tokio::test(flavor = "multi_thread")]
async fn leader_sigstop_then_sigcont() {
    scenario("leader_sigstop_then_sigcont", Plan::scenario(Fault::PauseLeader, 2)).await;
}

/// Breaks: every link into and out of the leader, leaving it in a minority
/// of one. Expects: the majority elects a leader and fires; the isolated
/// one begins no run while cut off (past what it had already accepted).
#[tokio::test(flavor = "multi_thread")]
async fn leader_isolated_in_a_minority() {
    scenario("leader_isolated_in_a_minority", Plan::scenario(Fault::IsolateLeader, 2)).await;
}

/// Breaks: every link of a follower, held until the leader has taken a
/// snapshot and purged its log past where the follower stopped. Expects:
/// after healing the follower catches up by snapshot (it then holds one
/// past that point) and every node ends with the same digest.
#[tokio::test(flavor = "multi_thread")]
async fn follower_isolated_past_the_snapshot_threshold() {
    scenario("follower_isolated_past_the_snapshot_threshold", Plan::scenario(Fault::IsolateFollower, 1)).await;
}

/// Breaks: one direction only — the leader cannot reach a follower, the
/// follower can reach it. Expects: firing goes on, no duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn one_way_partition() {
    scenario("one_way_partition", Plan::scenario(Fault::OneWay, 2)).await;
}

/// Breaks: the links between the leader and one follower; the third node
/// sees both. Expects: whoever leads, firing goes on, no duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn bridge_partition() {
    scenario("bridge_partition", Plan::scenario(Fault::Bridge, 2)).await;
}

/// Breaks: every link delayed 20–120 ms per chunk. openraft's RPC timeout
/// is the heartbeat interval, so these nodes run with a 250 ms heartbeat
/// (as an operator of such a network must). Expects: slower commits, the
/// same guarantees.
#[tokio::test(flavor = "multi_thread")]
async fn delayed_links() {
    let mut plan = Plan::scenario(Fault::Delay, 2);
    plan.env.extend([("JOBD_HEARTBEAT_MS", "250"), ("JOBD_ELECTION_MIN_MS", "750"), ("JOBD_ELECTION_MAX_MS", "1500")]);
    scenario("delayed_links", plan).await;
}

/// Breaks: the leader's wall clock, which jumps 30 s ahead or behind while
/// it runs, then back. Expects: the leader sees its skew (in /ctl) and
/// fires nothing while it lasts; no run anywhere begins before its
/// scheduled time by the witness's clock; the seconds it did not fire are
/// counted by the catch-up policy once its clock is right again.
#[tokio::test(flavor = "multi_thread")]
async fn leader_clock_skew() {
    scenario("leader_clock_skew", Plan::scenario(Fault::SkewLeader, 2)).await;
}

/// Breaks: membership, under load — a follower removed, its data wiped,
/// started empty under a new id, added as a learner, caught up, promoted.
/// Expects: the cluster keeps firing throughout and ends with the new id
/// as a voter holding the same state.
#[tokio::test(flavor = "multi_thread")]
async fn membership_change_under_load() {
    let r = scenario("membership_change_under_load", Plan::scenario(Fault::Replace, 1)).await;
    assert!(r.ids.iter().any(|id| *id > 3), "a node rejoined under a new id: {:?}", r.ids);
}

/// Breaks: each node in turn, by SIGTERM (it must drain and exit 0), as an
/// operator's upgrade does. Expects: firing goes on, nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn rolling_restart() {
    scenario("rolling_restart", Plan::scenario(Fault::RollingRestart, 1)).await;
}
