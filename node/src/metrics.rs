//! Prometheus metrics, served as text on `--metrics-addr` (off by
//! default): firing (fires, lateness, skipped times, runs by outcome, run
//! durations), Raft (term, leader, commit, applied, apply lag, snapshot
//! and purge points), 9P (connections, requests by type, latency, errors
//! by errno) and RocksDB's size. Counters are this node's own; gauges are
//! read at scrape time.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::warn;

use crate::types::Raft;

pub struct Metrics {
    registry: Registry,
    pub fires: IntCounter,
    pub lateness_seconds: Histogram,
    pub skipped_times: IntCounter,
    pub runs: IntCounterVec,
    pub not_started: IntCounterVec,
    pub taken_over: IntCounter,
    pub retries: IntCounter,
    pub runs_running: IntGauge,
    pub runs_queued: IntGauge,
    pub run_seconds: Histogram,
    /// Webhook attempts this node made, by result.
    pub notify_attempts: IntCounterVec,
    /// The replicated deliveries' counts, read at scrape time.
    notify: IntGaugeVec,
    raft: IntGaugeVec,
    rocksdb_bytes: IntGaugeVec,
    ninep_connections: IntGauge,
    ninep_requests: IntCounterVec,
    ninep_seconds: Histogram,
    ninep_errors: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric name");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric name");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric name");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("a valid metric name");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new_custom(Some("jobd".into()), None).expect("a valid prefix");
        let raft = IntGaugeVec::new(Opts::new("raft", "Raft state: term, leader, commit, applied, apply_lag, snapshot, purged"), &["what"])
            .expect("a valid metric name");
        r.register(Box::new(raft.clone())).expect("registered once");
        let rocksdb_bytes = IntGaugeVec::new(Opts::new("rocksdb_bytes", "RocksDB size: sst files and memtables"), &["what"])
            .expect("a valid metric name");
        r.register(Box::new(rocksdb_bytes.clone())).expect("registered once");
        let notify = IntGaugeVec::new(
            Opts::new("notify", "webhook deliveries of the cluster (replicated): pending, delivered, dropped, given_up"),
            &["what"],
        )
        .expect("a valid metric name");
        r.register(Box::new(notify.clone())).expect("registered once");
        let ninep_connections = gauge(&r, "ninep_connections", "open 9P connections");
        // Up to a minute: a run that waited for a slot begins late, by design.
        let lateness_buckets = vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0];
        Arc::new(Metrics {
            fires: counter(&r, "fires_total", "scheduled fires this node proposed and had accepted"),
            lateness_seconds: histogram(&r, "fire_lateness_seconds", "process start minus scheduled time", lateness_buckets),
            skipped_times: counter(&r, "skipped_times_total", "scheduled times skipped by policy, as proposed here"),
            runs: counter_vec(&r, "runs_total", "runs this node carried out, by outcome", "outcome"),
            not_started: counter_vec(&r, "runs_not_started_total", "accepted runs this node did not begin, by reason", "reason"),
            taken_over: counter(&r, "runs_taken_over_total", "accepted runs of other nodes this node claimed as a new leader and began itself"),
            retries: counter(&r, "retries_fired_total", "retry attempts this node fired as leader (retry, onlost rerun)"),
            runs_running: gauge(&r, "runs_running", "runs holding a slot under --max-concurrent-runs here (starting, waiting for their time, running)"),
            runs_queued: gauge(&r, "runs_queued", "runs waiting for a slot under --max-concurrent-runs here"),
            run_seconds: histogram(&r, "run_seconds", "run duration", prometheus::exponential_buckets(0.01, 4.0, 10).expect("buckets")),
            notify_attempts: counter_vec(&r, "notify_attempts_total", "webhook attempts this node made as leader, by result", "result"),
            notify,
            raft,
            rocksdb_bytes,
            ninep_connections,
            ninep_requests: counter_vec(&r, "ninep_requests_total", "9P requests, by message type", "type"),
            ninep_seconds: histogram(&r, "ninep_request_seconds", "9P request latency", prometheus::exponential_buckets(0.0001, 4.0, 10).expect("buckets")),
            ninep_errors: counter_vec(&r, "ninep_errors_total", "9P refusals, by errno", "errno"),
            registry: r,
        })
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, raft: &Raft, db: &rocksdb::DB, sm: &crate::store::state_machine::StateMachine) -> Vec<u8> {
        let m = raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index) as i64;
        let commit = (crate::store::committed_index(db).unwrap_or(0) as i64).max(applied);
        for (what, v) in [
            ("term", m.current_term as i64),
            ("leader", m.current_leader.map_or(0, |l| l as i64)),
            ("commit", commit),
            ("applied", applied),
            ("apply_lag", commit - applied),
            ("snapshot", m.snapshot.map_or(0, |l| l.index) as i64),
            ("purged", m.purged.map_or(0, |l| l.index) as i64),
        ] {
            self.raft.with_label_values(&[what]).set(v);
        }
        for (what, prop) in [("sst", "rocksdb.total-sst-files-size"), ("memtables", "rocksdb.size-all-mem-tables")] {
            let v = db.property_int_value(prop).ok().flatten().unwrap_or(0);
            self.rocksdb_bytes.with_label_values(&[what]).set(v as i64);
        }
        if let Ok(n) = crate::state::notify::load_state(sm) {
            for (what, v) in [("pending", n.pending), ("delivered", n.delivered), ("dropped", n.dropped), ("given_up", n.given_up)] {
                self.notify.with_label_values(&[what]).set(v as i64);
            }
        }
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out.extend_from_slice(write_stages().as_bytes());
        out
    }
}

/// The write stages' totals (`stages.rs`) as a summary without quantiles.
fn write_stages() -> String {
    let name = "jobd_write_stage_seconds";
    let mut out = format!("# HELP {name} time this node spent in each stage of a write (stages.rs)\n# TYPE {name} summary\n");
    for (stage, count, secs) in crate::stages::totals() {
        let stage = stage.name();
        out.push_str(&format!("{name}_sum{{stage=\"{stage}\"}} {secs}\n{name}_count{{stage=\"{stage}\"}} {count}\n"));
    }
    out
}

impl ninep::Observer for Metrics {
    fn connected(&self) {
        self.ninep_connections.inc();
    }
    fn disconnected(&self) {
        self.ninep_connections.dec();
    }
    fn request(&self, kind: &'static str, took: Duration, errno: Option<u32>) {
        self.ninep_requests.with_label_values(&[kind]).inc();
        self.ninep_seconds.observe(took.as_secs_f64());
        if let Some(e) = errno {
            self.ninep_errors.with_label_values(&[&e.to_string()]).inc();
        }
    }
}

/// Serves `GET /metrics` (any path) until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, raft: Raft, db: Arc<rocksdb::DB>, sm: crate::store::state_machine::StateMachine) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        let (metrics, raft, db, sm) = (metrics.clone(), raft.clone(), db.clone(), sm.clone());
        tokio::spawn(async move {
            // Read the request head (bounded), whatever it asks for.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let body = metrics.render(&raft, &db, &sm);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if s.write_all(header.as_bytes()).await.is_err() || s.write_all(&body).await.is_err() {
                warn!("metrics: client went away");
            }
        });
    }
}
