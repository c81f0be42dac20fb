//! The HTTP listener: accepts connections and serves each with hyper,
//! bounded so that clients that connect and then say nothing cannot take
//! the node's descriptors (axum's own `serve` has neither bound).
//!
//! - At most `max_connections` connections at once; one beyond is closed
//!   as soon as it is accepted.
//! - A request's head (request line and headers) must arrive within
//!   `header_timeout`, and an idle kept-alive connection is closed after
//!   the same time (hyper runs the one timer from when it waits for a
//!   request's head).
//! - TCP keepalive probes a connection idle for `KEEPALIVE`, so one whose
//!   client vanished without closing (a laptop put to sleep while its
//!   dashboard followed a log) is found and closed within about a minute.
//! - At shutdown, requests in progress get `DRAIN` to finish; followed
//!   logs, which never finish, are then cut.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tracing::warn;

/// Idle time before the first keepalive probe, and between probes (three
/// unanswered probes close the connection).
const KEEPALIVE: Duration = Duration::from_secs(20);

/// How long requests in progress may take to finish at shutdown (within
/// the node's 10 s for all of its shutdown).
const DRAIN: Duration = Duration::from_secs(3);

/// The listener's bounds (see the module).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Default for Bounds {
    fn default() -> Bounds {
        // 1,024 connections is beyond any dashboard or script a cluster
        // serves and well inside a default descriptor limit with 9P's
        // own; 10 s is generous for a head on any real link.
        Bounds {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    bounds: Bounds,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds.max_connections));
    let graceful = GracefulShutdown::new();
    // Set once the drain is over: every connection still open is cut.
    let (cut, cut_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most likely: wait for some to
                    // close rather than spin on the error.
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Dropped: closed at once, so the client learns now.
            continue;
        };
        // Small answers go out at once rather than wait for an ACK.
        let _ = stream.set_nodelay(true);
        let probes = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE)
            .with_interval(KEEPALIVE)
            .with_retries(3);
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&probes);
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(bounds.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        let mut cut_rx = cut_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                _ = cut_rx.wait_for(|cut| *cut) => {}
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("HTTP requests still in progress after {DRAIN:?} at shutdown (followed logs); cut");
        let _ = cut.send(true);
    }
    Ok(())
}
