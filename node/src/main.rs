//! `jobd`: parse flags, start tracing, run the node until SIGINT or SIGTERM,
//! then drain within a bound.

use std::time::Duration;

use clap::Parser;
use node::cli::Args;
use node::node::Node;
use tracing::{error, info};

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let default = if args.debug { "info,ninep=debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if let Err(e) = run(args).await {
        error!("{e:#}");
        eprintln!("jobd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.node_config().map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&config.raft_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on --raftaddr {}: {e}", config.raft_addr))?;
    let node = Node::start(config, listener).await?;
    info!(node = node.id, "raft running; the 9P job tree is not served yet");
    let mut metrics = node.raft.metrics();
    tokio::select! {
        _ = wait_for_signal() => {}
        // Fail-stop: a storage error (failed sync, full disk, corrupt
        // record) stops Raft; the process must not linger half alive.
        fatal = metrics.wait_for(|m| m.running_state.is_err()) => {
            let reason = fatal.map(|m| format!("{:?}", m.running_state)).unwrap_or_else(|_| "raft stopped".into());
            anyhow::bail!("raft stopped: {reason}; not acknowledging anything further");
        }
    }
    info!("shutting down");
    if tokio::time::timeout(Duration::from_secs(10), node.shutdown()).await.is_err() {
        error!("shutdown took longer than 10 s; exiting anyway");
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
