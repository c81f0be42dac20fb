//! The async server: `serve(listener, fs, shutdown)` accepts connections
//! and runs each one (`conn.rs`), which decodes requests and hands them to
//! the session (`dispatch.rs`) that validates them and calls the
//! [`Filesystem`].

mod conn;
mod dirread;
mod dispatch;
mod fids;
mod order;
mod unwind;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info_span, warn, Instrument};

use crate::codec::split_header;
use crate::error::{errno, reason, Error};
use crate::fs::Filesystem;

pub use conn::error_reply;

/// Told of a server's traffic, for metrics. The library knows nothing of
/// what the numbers are for.
pub trait Observer: Send + Sync + 'static {
    fn connected(&self) {}
    fn disconnected(&self) {}
    /// One request answered: its T-message name (`"Twalk"`), how long it
    /// took, and the errno it was refused with, if it was.
    fn request(&self, _kind: &'static str, _took: Duration, _errno: Option<u32>) {}
}

/// Limits of a server; each breach is answered with an error.
#[derive(Clone)]
pub struct Config {
    /// The largest msize offered to clients.
    pub max_msize: u32,
    /// Fids one connection may hold.
    pub max_fids: usize,
    /// Requests one connection may have outstanding.
    pub max_outstanding: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// What a 9P2000 (legacy) Rerror carries; see [`LegacyErrors`].
    pub legacy_errors: LegacyErrors,
    pub observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("max_msize", &self.max_msize)
            .field("max_fids", &self.max_fids)
            .field("max_outstanding", &self.max_outstanding)
            .field("max_connections", &self.max_connections)
            .field("legacy_errors", &self.legacy_errors)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// 9P2000's Rerror has room for a string only. Plan 9 and plan9port show
/// it as is, so by default it is the one-line reason. The Linux kernel maps
/// it back to an errno through a fixed table and reports any other string
/// as "Unknown error 526"; `Errno` sends the errno's standard text
/// ("Invalid argument") for mounts that need that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegacyErrors {
    #[default]
    Reason,
    Errno,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_msize: 1 << 20,
            max_fids: 4096,
            max_outstanding: 256,
            max_connections: 1024,
            legacy_errors: LegacyErrors::Reason,
            observer: None,
        }
    }
}

/// Serves `fs` on `listener` with the default [`Config`] until `shutdown`
/// completes.
pub async fn serve<F: Filesystem>(
    listener: TcpListener,
    fs: Arc<F>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, fs, Config::default(), shutdown).await
}

/// Serves `fs` on `listener` until `shutdown` completes; then stops
/// accepting, closes every connection (cancelling their requests) and
/// returns once they are gone.
pub async fn serve_with<F: Filesystem>(
    listener: TcpListener,
    fs: Arc<F>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        while conns.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%peer, "refusing connection: {}", reason::TOO_MANY_CONNECTIONS);
            tokio::spawn(refuse(stream));
            continue;
        };
        let (fs, config, stop) = (fs.clone(), config.clone(), stop_rx.clone());
        conns.spawn(
            async move {
                debug!("connected");
                if let Some(o) = &config.observer {
                    o.connected();
                }
                conn::run(fs, stream, config.clone(), stop).await;
                if let Some(o) = &config.observer {
                    o.disconnected();
                }
                debug!("disconnected");
                drop(permit);
            }
            .instrument(info_span!("9p", %peer)),
        );
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Answers the first request of a connection over the limit with an error,
/// then closes it; a client that sends nothing is dropped after a while.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 7];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head)).await;
    if let (Ok(Ok(_)), Ok((_, tag, _))) = (read, split_header(&head)) {
        let e = Error::new(errno::EAGAIN, reason::TOO_MANY_CONNECTIONS);
        let reply = error_reply(&e, crate::Dialect::P2000, LegacyErrors::Reason).encode(tag, crate::Dialect::P2000);
        let _ = stream.write_all(&reply).await;
    }
}
