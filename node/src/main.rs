//! `jobd`: parse flags, start tracing, run the node and serve its 9P tree
//! until SIGINT or SIGTERM, then drain within a bound. `jobd 9p ...` is
//! the client.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use node::cli::{Args, Sub};
use node::node::Node;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    match args.command.take() {
        Some(Sub::NineP(a)) => {
            if let Err(e) = node::client_cli::run(a).await {
                eprintln!("jobd 9p: {e}");
                std::process::exit(1);
            }
            return;
        }
        Some(Sub::Restore { from }) => {
            match node::store::backup::restore(&from, &args.dbdir, args.id, &args.raftaddr).await {
                Ok(r) => println!(
                    "restored {} state keys from {} into {}: a new cluster whose only member is node {} at {}",
                    r.keys,
                    from.display(),
                    args.dbdir.display(),
                    args.id,
                    args.raftaddr
                ),
                Err(e) => {
                    eprintln!("jobd restore: {e}");
                    std::process::exit(1);
                }
            }
            return;
        }
        None => {}
    }
    let default = if args.debug {
        "info,ninep=debug"
    } else {
        "info"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    // Colour only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match args.log_format {
        node::cli::LogFormat::Json => log.json().init(),
        node::cli::LogFormat::Text => log.init(),
    }
    if let Err(e) = run(args).await {
        error!("{e:#}");
        eprintln!("jobd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.node_config().map_err(anyhow::Error::msg)?;
    let http_guard = args.http_guard().map_err(anyhow::Error::msg)?;
    let raft_listener = tokio::net::TcpListener::bind(&config.raft_addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on --raftaddr {}: {e}", config.raft_addr))?;
    let fs_listener = tokio::net::TcpListener::bind(&args.fsaddr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on --fsaddr {}: {e}", args.fsaddr))?;
    let fs_addr = fs_listener.local_addr()?;
    if !fs_addr.ip().is_loopback() && !args.read_only {
        warn!(%fs_addr, "9P listens beyond loopback: anyone who reaches it can run commands as this user");
    }
    let http_listener = match args.http_listen_addr() {
        Some(a) => Some(
            tokio::net::TcpListener::bind(&a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on --http-addr {a}: {e}"))?,
        ),
        None => None,
    };
    let metrics_listener = match &args.metrics_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on --metrics-addr {a}: {e}"))?,
        ),
        None => None,
    };
    let node = Node::start(config, raft_listener).await?;
    let metrics = node.executor.metrics.clone();
    let metrics_task = metrics_listener.map(|l| {
        tokio::spawn(node::metrics::serve(
            l,
            metrics.clone(),
            node.raft.clone(),
            node.db.clone(),
            node.sm.clone(),
        ))
    });
    let mut fs = node.tree();
    fs.linearizable = args.linearizable_reads;
    fs.read_only = args.read_only;
    fs.max_write = args.max_write;
    let fs = Arc::new(fs);
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http = match http_listener {
        Some(l) => {
            let addr = l.local_addr()?;
            let guard = http_guard;
            if !addr.ip().is_loopback() && guard.token.is_none() && !args.read_only {
                warn!(%addr, "HTTP listens beyond loopback without --http-token: anyone who reaches it can run commands as this user");
            }
            info!(node = node.id, %addr, "serving the tree over HTTP");
            let shutdown = async {
                let _ = http_stopped.await;
            };
            Some(tokio::spawn(node::http::serve(
                l,
                fs.clone(),
                guard,
                args.max_write,
                node::http::Bounds::default(),
                shutdown,
            )))
        }
        None => None,
    };
    let (stop_9p, stopped) = oneshot::channel::<()>();
    let mut ninep_config = args.ninep_config();
    ninep_config.observer = Some(metrics);
    let server = tokio::spawn(ninep::serve_with(fs_listener, fs, ninep_config, async {
        let _ = stopped.await;
    }));
    info!(node = node.id, %fs_addr, "serving 9P");
    let mut metrics = node.raft.metrics();
    let outcome = tokio::select! {
        _ = wait_for_signal() => Ok(()),
        // Fail-stop: a storage error (failed sync, full disk, corrupt
        // record) stops Raft; the process must not linger half alive.
        fatal = metrics.wait_for(|m| m.running_state.is_err()) => {
            let reason = fatal.map(|m| format!("{:?}", m.running_state)).unwrap_or_else(|_| "raft stopped".into());
            Err(anyhow::anyhow!("raft stopped: {reason}; not acknowledging anything further"))
        }
    };
    info!("shutting down");
    if let Some(t) = metrics_task {
        t.abort();
    }
    let _ = stop_9p.send(());
    let _ = stop_http.send(());
    let drain = async {
        let _ = server.await;
        if let Some(h) = http {
            let _ = h.await;
        }
        node.shutdown().await;
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        error!("shutdown took longer than 10 s; exiting anyway");
    }
    outcome
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
