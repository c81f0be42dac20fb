//! Test helpers: the ramfs example served in-process on port 0, and a raw
//! connection that sends and receives single frames.

#![allow(dead_code)]

#[path = "../../examples/ramfs.rs"]
#[allow(dead_code)]
pub mod ramfs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ninep::codec::split_header;
use ninep::{Dialect, Rmsg, Tmsg, NOFID, NOTAG};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// A ramfs served on 127.0.0.1:0 until dropped.
pub struct Server {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn ramfs() -> Server {
    ramfs_with(ninep::Config::default()).await
}

pub async fn ramfs_with(config: ninep::Config) -> Server {
    serve_fs(Arc::new(ramfs::RamFs::new()), config).await
}

pub async fn serve_fs<F: ninep::Filesystem>(fs: Arc<F>, config: ninep::Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(ninep::serve_with(listener, fs, config, async move {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

/// One connection, frame by frame.
pub struct Raw {
    pub stream: TcpStream,
    pub dialect: Dialect,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw { stream, dialect: Dialect::P2000 }
    }

    /// Connects, negotiates `dialect` and attaches fid 0 at the root.
    pub async fn session(addr: SocketAddr, dialect: Dialect) -> Raw {
        let mut c = Raw::connect(addr).await;
        let r = c.rpc(NOTAG, Tmsg::Version { msize: 8192, version: dialect.version_string().into() }).await;
        assert_eq!(r, Rmsg::Version { msize: 8192, version: dialect.version_string().into() });
        c.dialect = dialect;
        let attach = Tmsg::Attach { fid: 0, afid: NOFID, uname: "test".into(), aname: String::new(), n_uname: 0 };
        assert!(matches!(c.rpc(1, attach).await, Rmsg::Attach { .. }));
        c
    }

    pub async fn send(&mut self, tag: u16, m: Tmsg) {
        let bytes = m.encode(tag, self.dialect);
        self.send_bytes(&bytes).await;
    }

    pub async fn send_bytes(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.expect("write");
    }

    /// The next frame, or `None` if the server closed the connection.
    pub async fn recv_frame(&mut self) -> Option<Vec<u8>> {
        let read = async {
            let mut head = [0u8; 4];
            self.stream.read_exact(&mut head).await.ok()?;
            let size = u32::from_le_bytes(head) as usize;
            let mut buf = vec![0u8; size];
            buf[..4].copy_from_slice(&head);
            self.stream.read_exact(&mut buf[4..]).await.ok()?;
            Some(buf)
        };
        tokio::time::timeout(DEADLINE, read).await.expect("server answered within the deadline")
    }

    pub async fn recv(&mut self) -> (u16, Rmsg) {
        let frame = self.recv_frame().await.expect("a reply, not a closed connection");
        let (t, tag, body) = split_header(&frame).expect("header");
        (tag, Rmsg::decode(t, body, self.dialect).expect("decodable reply"))
    }

    pub async fn rpc(&mut self, tag: u16, m: Tmsg) -> Rmsg {
        self.send(tag, m).await;
        let (got, r) = self.recv().await;
        assert_eq!(got, tag, "reply carries the request's tag");
        r
    }

    pub async fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Rmsg {
        let wnames = names.iter().map(|s| s.to_string()).collect();
        self.rpc(1, Tmsg::Walk { fid, newfid, wnames }).await
    }

    /// True when the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        self.recv_frame().await.is_none()
    }
}

/// The error text of an Rerror (or errno of an Rlerror), for assertions.
pub fn error_of(r: &Rmsg) -> Option<(String, u32)> {
    match r {
        Rmsg::Error { ename, errno } => Some((ename.clone(), *errno)),
        Rmsg::Lerror { ecode } => Some((String::new(), *ecode)),
        _ => None,
    }
}

pub mod slowfs;

/// The outside programs these tests run (`deploy/dev-tools.txt`).
#[path = "../../../cluster-tests/src/tools.rs"]
pub mod tools;

/// How the workspace's tests wait (`cluster-tests/src/poll.rs`).
#[path = "../../../cluster-tests/src/poll.rs"]
pub mod poll;

/// Polls `cond` until it holds or the deadline passes.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    poll::poll(what, DEADLINE, Duration::from_millis(5), async || cond().then_some(())).await
}
