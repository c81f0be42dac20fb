//! The long chaos run: seeded faults against three jobd processes with a
//! working client and tick jobs, then the five checkers.
//!
//!     cargo run --release -p cluster-tests --bin soak -- --minutes 30
//!     cargo run --release -p cluster-tests --bin soak -- --minutes 30 --seed 1234   # replay
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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64);
    println!("seed {seed} (replay: cargo run --release -p cluster-tests --bin soak -- --minutes {} --seed {seed})", args.minutes);
    match cluster_tests::chaos::run(seed, Duration::from_secs_f64(args.minutes * 60.0)).await {
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
