//! jobd's benchmarks, each beside its peer in the same invocation, printed
//! as a table and as `figure NAME VALUE UNIT` lines. The benchmarks
//! themselves are in `cluster_tests::bench`.
//!
//!     cargo run --release -p cluster-tests --bin bench -- create
//!     cargo run --release -p cluster-tests --bin bench -- all

use clap::Parser;
use cluster_tests::bench;

#[derive(Parser)]
struct Args {
    /// create | create-stages | create-clients | lateness | events | notify | herd | failover | scale | serve9p | growth | http | all
    bench: String,
    /// create, http: concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// create, serve9p, http: seconds of load per system and setting.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// lateness: started jobs per round (each fires every 5 s) [default: 50,250,1000];
    /// herd: jobs due at the same instant per round [default: 500,2000,10000].
    #[arg(long, value_delimiter = ',')]
    jobs: Vec<usize>,
    /// lateness: seconds of firing measured per round [default: 60; 30 under `all`].
    #[arg(long)]
    window: Option<u64>,
    /// failover: leader kills, each for jobd and for etcd [default: 20; 10 under `all`].
    #[arg(long)]
    kills: Option<usize>,
    /// scale: jobs created (a tenth started).
    #[arg(long, default_value_t = 100_000)]
    scale_jobs: usize,
    /// growth: output-heavy jobs.
    #[arg(long, default_value_t = 100)]
    growth_jobs: usize,
    /// growth: minutes of running.
    #[arg(long, default_value_t = 2.0)]
    growth_minutes: f64,
    /// growth: each job's log retention (`limit log-bytes`) [default: jobd's, 1 MiB].
    #[arg(long)]
    growth_log_bytes: Option<u64>,
    /// create, serve9p, http: alternated rounds per setting; failover: rounds
    /// the kills are split into, alternating jobd and etcd; create-stages: rounds
    /// through the leader and through a follower.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// http: jobs listed when the dashboard's first load is timed.
    #[arg(long, default_value_t = 10_000)]
    dashboard_jobs: usize,
    /// failover: the seed of the chaos harness it runs on.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const ALL: [&str; 8] = [
    "create", "lateness", "herd", "failover", "scale", "serve9p", "growth", "http",
];

/// `--jobs`, or the benchmark's own default.
fn jobs_or(args: &Args, default: &[usize]) -> Vec<usize> {
    if args.jobs.is_empty() {
        default.to_vec()
    } else {
        args.jobs.clone()
    }
}

/// Runs benchmark `name`; `all` picks shorter defaults so the suite takes
/// about ten minutes.
async fn one(name: &str, args: &Args, all: bool) -> anyhow::Result<()> {
    match name {
        "create" => bench::create::run(&args.clients, args.seconds, args.rounds).await,
        "create-stages" => bench::stages::run(args.rounds).await,
        "events" => bench::events::run(args.jobs.first().copied().unwrap_or(1000), args.window.unwrap_or(30), args.rounds).await,
        "notify" => bench::notify::run(args.jobs.first().copied().unwrap_or(1000), args.window.unwrap_or(30), args.rounds).await,
        "create-clients" => bench::clients::run(args.rounds).await,
        "serve9p" => bench::serve9p::run(args.seconds, args.rounds).await,
        "lateness" => {
            bench::lateness::run(
                &jobs_or(args, &[50, 250, 1000]),
                args.window.unwrap_or(if all { 30 } else { 60 }),
            )
            .await
        }
        "herd" => {
            bench::herd::run(&jobs_or(
                args,
                if all {
                    &[500, 2000]
                } else {
                    &[500, 2000, 10_000]
                },
            ))
            .await
        }
        "failover" => {
            bench::failover::run(args.kills.unwrap_or(if all { 10 } else { 20 }), args.seed, args.rounds).await
        }
        "scale" => bench::scale::run(args.scale_jobs).await,
        "http" => {
            // Under `all`, the reads and creates at 1 and 64 clients only.
            let clients = if all {
                vec![1, 64]
            } else {
                args.clients.clone()
            };
            bench::http::run(&clients, args.seconds, args.rounds, args.dashboard_jobs).await
        }
        "growth" => {
            bench::growth::run(args.growth_jobs, args.growth_minutes, args.growth_log_bytes).await
        }
        b => anyhow::bail!("unknown benchmark {b:?}; one of {}, create-stages, create-clients or all", ALL.join(", ")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "reproduce: cargo run --release -p cluster-tests --bin bench -- {}",
        cmdline.join(" ")
    );
    if args.bench != "all" {
        return one(&args.bench, &args, false).await;
    }
    let mut failed = vec![];
    for b in ALL {
        if let Err(e) = one(b, &args, true).await {
            println!("{b}: {e:#}");
            failed.push(b);
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("did not complete: {}", failed.join(", "));
    }
    Ok(())
}
