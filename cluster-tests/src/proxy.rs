//! A TCP proxy the harness puts on every peer link (node i dialling node
//! j), so a test can cut a link (one way: only i's connections to j), delay
//! it, or drop its connections — without root, on any machine. It counts
//! what it forwarded and what it refused, so a test can show its fault
//! took effect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    cut: AtomicBool,
    delay_ms: AtomicU64,
    bytes: AtomicU64,
    refused: AtomicU64,
    conns: Mutex<Vec<AbortHandle>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, state: Arc<State>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = state.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if state.cut.load(Ordering::Relaxed) || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        state.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards each connection to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let st = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if st.cut.load(Ordering::Relaxed) {
                    st.refused.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target).await else { continue };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let a = tokio::spawn(pump(cr, sw, st.clone()));
                let b = tokio::spawn(pump(sr, cw, st.clone()));
                let mut conns = st.conns.lock().unwrap_or_else(|p| p.into_inner());
                conns.retain(|h| !h.is_finished());
                conns.extend([a.abort_handle(), b.abort_handle()]);
            }
        })
        .abort_handle();
        Ok(Proxy { addr, state, accept })
    }

    /// Cuts the link (existing connections are dropped, new ones refused) or heals it.
    pub fn cut(&self, cut: bool) {
        self.state.cut.store(cut, Ordering::Relaxed);
        if cut {
            self.drop_connections();
        }
    }

    /// Holds every chunk this long before forwarding it.
    pub fn delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Drops the live connections (the peers reconnect).
    pub fn drop_connections(&self) {
        for h in self.state.conns.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            h.abort();
        }
    }

    pub fn bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::Relaxed)
    }

    /// Connections refused while cut.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::Relaxed)
    }
}
