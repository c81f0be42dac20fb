//! The long chaos run: seeded faults against three jobd processes with a
//! working client and tick jobs, then the five checkers.
//!
//!     cargo run --release -p cluster-tests --bin soak -- --minutes 30
//!     cargo run --release -p cluster-tests --bin soak -- --minutes 30 --seed 1234   # replay
//!     cargo run --release -p cluster-tests --bin soak -- --minutes 5 --only kill-leader
//!
//! Prints the seed first, each fault as it is injected, then the report;
//! exits non-zero if any checker fails.

use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// How long to inject faults.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// The seed of the fault schedule and the client's choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Inject only this kind of fault (with the client and the tick jobs as usual).
    #[arg(long, value_enum)]
    only: Option<cluster_tests::chaos::nemesis::Fault>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64);
    let only = args.only.map(|f| format!(" --only {}", clap::ValueEnum::to_possible_value(&f).map_or(String::new(), |v| v.get_name().to_string()))).unwrap_or_default();
    println!("seed {seed} (replay: cargo run --release -p cluster-tests --bin soak -- --minutes {} --seed {seed}{only})", args.minutes);
    let mut plan = cluster_tests::chaos::Plan::chaos(Duration::from_secs_f64(args.minutes * 60.0));
    plan.only = args.only;
    let run = cluster_tests::chaos::run(seed, plan);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    // On SIGINT or SIGTERM the run is dropped, which ends its jobd
    // processes (they are killed on drop) before exiting.
    let outcome = tokio::select! {
        r = run => Some(r),
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
    };
    let Some(outcome) = outcome else {
        println!("seed {seed}: interrupted");
        std::process::exit(130);
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            if !report.passed() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            println!("seed {seed}: the run could not complete: {e:#}");
            std::process::exit(2);
        }
    }
}
