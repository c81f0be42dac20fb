//! The command line. Every flag also reads from a `JOBD_` environment
//! variable; names follow the original jobd where it had one (`--dbdir`,
//! `--fsaddr`, `--debug`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::net::tls::TlsFiles;
use crate::node::{defaults, Config, InitialState};
use crate::types::NodeId;

#[derive(Debug, Parser)]
#[command(name = "jobd", version, about = "cron as a replicated 9P file system")]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,

    /// This node's id in the cluster.
    #[arg(long, env = "JOBD_ID", default_value_t = 1)]
    pub id: NodeId,

    /// Where this node keeps its database.
    #[arg(long, env = "JOBD_DBDIR", default_value = "./jobd-data")]
    pub dbdir: PathBuf,

    /// Address of the 9P service.
    #[arg(long, env = "JOBD_FSADDR", default_value = "127.0.0.1:5640")]
    pub fsaddr: String,

    /// Address of the Raft (gRPC) service, as the other nodes reach it.
    #[arg(long, env = "JOBD_RAFTADDR", default_value = "127.0.0.1:5740")]
    pub raftaddr: String,

    /// The voters of a new cluster, this node included: ID=HOST:PORT,...
    /// Without it, jobd runs as a single-node cluster.
    #[arg(long, env = "JOBD_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    pub peers: Vec<(NodeId, String)>,

    /// With an empty --dbdir and --peers: form a new cluster (new) or join
    /// one as a learner (existing). Ignored when --dbdir holds state.
    #[arg(long, env = "JOBD_INITIAL_CLUSTER_STATE", value_enum)]
    pub initial_cluster_state: Option<InitialState>,

    /// Raft heartbeat interval, in milliseconds.
    #[arg(long, env = "JOBD_HEARTBEAT_MS", default_value_t = defaults::HEARTBEAT_MS)]
    pub heartbeat_ms: u64,

    /// Shortest election timeout, in milliseconds.
    #[arg(long, env = "JOBD_ELECTION_MIN_MS", default_value_t = defaults::ELECTION_MIN_MS)]
    pub election_min_ms: u64,

    /// Longest election timeout, in milliseconds.
    #[arg(long, env = "JOBD_ELECTION_MAX_MS", default_value_t = defaults::ELECTION_MAX_MS)]
    pub election_max_ms: u64,

    /// How long one snapshot chunk may take to install, in milliseconds.
    #[arg(long, env = "JOBD_INSTALL_SNAPSHOT_TIMEOUT_MS", default_value_t = defaults::INSTALL_SNAPSHOT_TIMEOUT_MS)]
    pub install_snapshot_timeout_ms: u64,

    /// Take a snapshot, and purge the log behind it, every this many entries.
    #[arg(long, env = "JOBD_SNAPSHOT_EVERY", default_value_t = defaults::SNAPSHOT_EVERY)]
    pub snapshot_every: u64,

    /// Also take a snapshot once this many bytes were appended to the Raft
    /// log since it was last purged (run output makes entries big). At
    /// least 1 MiB: a snapshot copies the whole state.
    #[arg(long, env = "JOBD_SNAPSHOT_LOG_BYTES", default_value_t = defaults::SNAPSHOT_LOG_BYTES,
          value_parser = clap::value_parser!(u64).range(1 << 20..))]
    pub snapshot_log_bytes: u64,

    /// How long a write may wait for its commit before failing, in milliseconds.
    #[arg(long, env = "JOBD_WRITE_TIMEOUT_MS", default_value_t = defaults::WRITE_TIMEOUT_MS)]
    pub write_timeout_ms: u64,

    /// What a 9P2000 (legacy) error carries: the one-line reason (for
    /// plan9port's tools) or the errno's standard text (for Linux mounts
    /// with version=9p2000, which show other text as "Unknown error 526").
    #[arg(long, env = "JOBD_LEGACY_ERRORS", value_enum, default_value = "reason")]
    pub legacy_errors: LegacyErrorsArg,

    /// A node whose clock differs from the quorum's median by more than
    /// this (milliseconds) does not fire.
    #[arg(long, env = "JOBD_MAX_CLOCK_SKEW_MS", default_value_t = defaults::MAX_CLOCK_SKEW_MS)]
    pub max_clock_skew_ms: i64,

    /// Serve linearizable reads: each read first confirms with the leader
    /// (a quorum round trip) and waits to apply what it had committed.
    /// Without it, a node serves its own applied state, which may lag.
    #[arg(long, env = "JOBD_LINEARIZABLE_READS")]
    pub linearizable_reads: bool,

    /// A shared secret every Raft and forwarding RPC between nodes must
    /// carry (the same on every node); without it, any process that reaches
    /// --raftaddr can vote, append or forward. Prefer the environment
    /// variable to the flag, which other users can see in ps.
    #[arg(long, env = "JOBD_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,

    /// This node's certificate (PEM) for mutual TLS between nodes; with
    /// --tls-key and --tls-ca, every peer link is TLS and a peer must
    /// present a certificate signed by the CA. Off when unset.
    #[arg(long, env = "JOBD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "JOBD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// The cluster CA (PEM): the only issuer accepted from peers.
    #[arg(long, env = "JOBD_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Run every job as this user and its primary group (jobd must run as
    /// root); the jobs' directory under --dbdir is given to the user.
    #[arg(long, env = "JOBD_RUN_AS")]
    pub run_as: Option<String>,

    /// Runs this node carries out at once; beyond it a due run waits for a
    /// slot, in order of scheduled time, up to its deadline. (The
    /// cluster-wide limits are replicated state: see `limit NAME VALUE` on
    /// /ctl.)
    #[arg(long, env = "JOBD_MAX_CONCURRENT_RUNS", default_value_t = defaults::MAX_CONCURRENT_RUNS as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_concurrent_runs: u64,

    /// What this node offers, as `key=value,...` (each key and value 1-63
    /// bytes of [A-Za-z0-9._-]): announced with its address, shown in
    /// /ctl's `labels` line.
    #[arg(long, env = "JOBD_LABELS", default_value = "", value_parser = parse_labels)]
    pub labels: Labels,

    /// Sign every webhook request (`notify` on a ctl) with HMAC-SHA256
    /// under this secret (header X-Jobd-Signature). Give every node the
    /// same one: whichever node leads sends. Prefer the environment
    /// variable: a flag shows in `ps`.
    #[arg(long, env = "JOBD_NOTIFY_SECRET", hide_env_values = true)]
    pub notify_secret: Option<String>,

    /// Serve the tree over HTTP on this address (GET reads, PUT and POST
    /// write, DELETE deletes a job); off when unset. A bare port means
    /// 127.0.0.1:PORT.
    #[arg(long, env = "JOBD_HTTP_ADDR")]
    pub http_addr: Option<String>,

    /// With --http-addr: every HTTP request that changes something needs
    /// `Authorization: Bearer TOKEN`.
    #[arg(long, env = "JOBD_HTTP_TOKEN", hide_env_values = true)]
    pub http_token: Option<String>,

    /// With --http-token: HTTP reads need this token (or the change token).
    #[arg(long, env = "JOBD_HTTP_READ_TOKEN", hide_env_values = true, requires = "http_token")]
    pub http_read_token: Option<String>,

    /// Host names HTTP requests may use for this node besides its IP
    /// addresses and localhost (comma-separated): others are refused, so a
    /// page elsewhere that points its own name here cannot drive jobd.
    #[arg(long, env = "JOBD_HTTP_HOSTS", value_delimiter = ',')]
    pub http_hosts: Vec<String>,

    /// Serve Prometheus metrics (text) on this address; off when unset.
    #[arg(long, env = "JOBD_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Largest single 9P write, or HTTP body, accepted, in bytes.
    #[arg(long, env = "JOBD_MAX_WRITE", default_value_t = crate::fs::MAX_WRITE)]
    pub max_write: usize,

    /// Refuse every change over 9P and HTTP (EROFS): a tree for monitoring mounts.
    #[arg(long, env = "JOBD_READ_ONLY")]
    pub read_only: bool,

    /// Log lines as text or as JSON objects (filter with RUST_LOG).
    #[arg(long, env = "JOBD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log every 9P message (one line each).
    #[arg(long, env = "JOBD_DEBUG")]
    pub debug: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LegacyErrorsArg {
    Reason,
    Errno,
}

impl Args {
    /// Where to serve HTTP, if anywhere: a bare port is on 127.0.0.1.
    pub fn http_listen_addr(&self) -> Option<String> {
        let a = self.http_addr.as_deref()?.trim();
        Some(if a.parse::<u16>().is_ok() { format!("127.0.0.1:{a}") } else { a.to_string() })
    }

    /// What every HTTP request must pass (`http::Guard`); an empty token
    /// is no token, and a read token without a change token is refused
    /// (it would leave changes open while reads are closed).
    pub fn http_guard(&self) -> Result<crate::http::Guard, String> {
        let token = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
        let guard = crate::http::Guard { token: token(&self.http_token), read_token: token(&self.http_read_token), hosts: self.http_hosts.clone() };
        if guard.read_token.is_some() && guard.token.is_none() {
            return Err("--http-read-token needs a non-empty --http-token".into());
        }
        Ok(guard)
    }

    pub fn ninep_config(&self) -> ninep::Config {
        let legacy_errors = match self.legacy_errors {
            LegacyErrorsArg::Reason => ninep::LegacyErrors::Reason,
            LegacyErrorsArg::Errno => ninep::LegacyErrors::Errno,
        };
        ninep::Config { legacy_errors, ..ninep::Config::default() }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// A 9P client for people with no 9P mount: ls, read, write, stat, rm.
    #[command(name = "9p")]
    NineP(crate::client_cli::NinePArgs),
    /// Start a new one-node cluster in --dbdir (new or empty) from a backup
    /// (a `backup` written to /ctl leaves one in DBDIR/backups/); its only
    /// member is --id at --raftaddr. Then run jobd on that --dbdir without
    /// --peers, and add members with /ctl `add` and `promote`.
    Restore {
        /// The backup directory.
        from: PathBuf,
    },
}

/// `--labels`, parsed and sorted (one value: a Vec would be many to clap).
#[derive(Debug, Clone, Default)]
pub struct Labels(pub Vec<(String, String)>);

fn parse_labels(s: &str) -> Result<Labels, String> {
    jobd_core::input::parse_labels(s).map(Labels)
}

fn parse_peer(s: &str) -> Result<(NodeId, String), String> {
    let (id, addr) = s.split_once('=').ok_or_else(|| format!("peer {s:?} is not ID=HOST:PORT"))?;
    let id = id.trim().parse().map_err(|_| format!("peer id {id:?} is not a number"))?;
    if !addr.contains(':') {
        return Err(format!("peer address {addr:?} is not HOST:PORT"));
    }
    Ok((id, addr.trim().to_string()))
}

impl Args {
    pub fn node_config(&self) -> Result<Config, String> {
        if self.election_min_ms <= self.heartbeat_ms || self.election_max_ms <= self.election_min_ms {
            return Err("need --heartbeat-ms < --election-min-ms < --election-max-ms".into());
        }
        if !self.peers.is_empty() && !self.peers.iter().any(|(id, _)| *id == self.id) {
            return Err(format!("--peers must include this node's id {}", self.id));
        }
        let mut c = Config::new(self.id, self.dbdir.clone(), self.raftaddr.clone(), self.fsaddr.clone());
        c.peers = self.peers.clone();
        c.initial_state = self.initial_cluster_state;
        c.heartbeat_ms = self.heartbeat_ms;
        c.election_min_ms = self.election_min_ms;
        c.election_max_ms = self.election_max_ms;
        c.install_snapshot_timeout_ms = self.install_snapshot_timeout_ms;
        c.snapshot_every = self.snapshot_every;
        c.snapshot_log_bytes = self.snapshot_log_bytes;
        c.write_timeout = Duration::from_millis(self.write_timeout_ms);
        c.max_clock_skew_ms = self.max_clock_skew_ms;
        c.cluster_token = self.cluster_token.clone();
        c.run_as = self.run_as.clone();
        c.max_concurrent_runs = self.max_concurrent_runs as usize;
        c.notify_secret = self.notify_secret.clone().filter(|s| !s.is_empty());
        c.labels = self.labels.0.clone();
        let files = TlsFiles::from_flags(self.tls_cert.as_deref(), self.tls_key.as_deref(), self.tls_ca.as_deref())
            .map_err(|e| e.to_string())?;
        c.tls = files.map(|f| f.load()).transpose().map_err(|e| e.to_string())?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_is_a_single_local_node() {
        let a = Args::try_parse_from(["jobd"]).unwrap();
        assert_eq!((a.fsaddr.as_str(), a.dbdir.to_str().unwrap()), ("127.0.0.1:5640", "./jobd-data"));
        assert!(a.peers.is_empty());
    }

    #[test]
    fn no_arguments_give_the_configs_defaults() {
        let from_flags = Args::try_parse_from(["jobd"]).unwrap().node_config().unwrap();
        let from_code = Config::new(1, "./jobd-data".into(), "127.0.0.1:5740".into(), "127.0.0.1:5640".into());
        assert_eq!(format!("{from_flags:?}"), format!("{from_code:?}"));
    }

    #[test]
    fn peers_parse_and_bad_ones_are_refused() {
        let a = Args::try_parse_from(["jobd", "--peers", "1=a:1,2=b:2,3=c:3"]).unwrap();
        assert_eq!(a.peers, vec![(1, "a:1".into()), (2, "b:2".into()), (3, "c:3".into())]);
        assert!(Args::try_parse_from(["jobd", "--peers", "x=a:1"]).is_err());
        assert!(Args::try_parse_from(["jobd", "--peers", "1=nohost"]).is_err());
        assert!(Args::try_parse_from(["jobd", "--initial-cluster-state", "maybe"]).is_err());
        assert!(Args::try_parse_from(["jobd", "--snapshot-log-bytes", "4096"]).is_err(), "a snapshot every 4 KiB");
        let a = Args::try_parse_from(["jobd", "--id", "4", "--peers", "1=a:1"]).unwrap();
        assert!(a.node_config().unwrap_err().contains("must include"));
    }
}
