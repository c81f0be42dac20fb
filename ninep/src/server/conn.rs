//! One client connection: framing, the tag table, Tversion and Tflush, and
//! running requests concurrently, in order where they share a fid
//! (`order.rs`). Replies go out in completion order.
//!
//! Ordering of a flush: a request's task takes its tag out of the table and
//! queues its reply under one lock; Tflush takes the tag out under the same
//! lock and aborts the task. Whichever wins, the old request is answered
//! before the Rflush or not at all.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use crate::codec::{frame_size, split_header, HEADER_LEN};
use crate::dialect::{negotiate_msize, Dialect};
use crate::error::{errno, reason, strerror, Error};
use crate::fcall::{ty, Rmsg, Tmsg};
use crate::fs::Filesystem;
use crate::server::dispatch::Session;
use crate::server::fids::lock;
use crate::server::order::{fids_of, Order, Place};
use crate::server::unwind::{catch_unwind_async, panic_message};
use crate::server::{Config, LegacyErrors};
use crate::trace::Traced;
use crate::wire::DecodeError;

/// An encoded reply (a big read's data apart: `Rmsg::encode_split`) and
/// the queue slot it occupies until written.
type Outgoing = (Vec<u8>, Option<Vec<u8>>, OwnedSemaphorePermit);

/// The connection's read buffer (a Twrite bigger than it passes through).
/// Allocated per connection: 64 MiB at the default limit of 1024.
const READ_BUFFER: usize = 64 << 10;

struct InFlight {
    id: u64,
    task: JoinHandle<()>,
}

type Tags = Arc<Mutex<HashMap<u16, InFlight>>>;

struct Conn<F: Filesystem> {
    fs: Arc<F>,
    config: Arc<Config>,
    session: Option<Arc<Session<F>>>,
    tags: Tags,
    /// Which requests a new one must wait for (`order.rs`).
    order: Order,
    next_id: u64,
    out: mpsc::UnboundedSender<Outgoing>,
    /// Bounds requests read but not yet answered (including error replies),
    /// so a client that sends without reading cannot grow our memory.
    slots: Arc<Semaphore>,
}

/// The error reply for `dialect`: Rlerror in .L, Rerror (with errno in .u) otherwise.
pub fn error_reply(e: &Error, dialect: Dialect, legacy: LegacyErrors) -> Rmsg {
    match (dialect, legacy) {
        (Dialect::P2000L, _) => Rmsg::Lerror { ecode: e.errno },
        (Dialect::P2000, LegacyErrors::Errno) => Rmsg::Error { ename: strerror(e.errno).into(), errno: e.errno },
        _ => Rmsg::Error { ename: e.reason.to_string(), errno: e.errno },
    }
}

fn decode_error(e: DecodeError) -> Error {
    match e {
        DecodeError::UnknownType(_) => Error::new(errno::EOPNOTSUPP, e.to_string()),
        _ => Error::new(errno::EINVAL, e.to_string()),
    }
}

/// Reads one frame; `Ok(None)` at a clean end of stream. A size outside
/// `[7, msize]` cannot be resynchronised, so it ends the connection.
async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, msize: u32) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    match rd.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = frame_size(head);
    if (size as usize) < HEADER_LEN || size > msize {
        let msg = format!("frame size {size} outside [{HEADER_LEN}, {msize}]");
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
    }
    let mut buf = vec![0u8; size as usize];
    buf[..4].copy_from_slice(&head);
    rd.read_exact(&mut buf[4..]).await?;
    Ok(Some(buf))
}

/// Replies written with one `writev` at most (each is one or two parts;
/// Linux takes up to 1024 parts a call).
const MAX_REPLIES_PER_WRITE: usize = 256;

/// Writes every part of `batch` in order, as few `writev` calls as the
/// socket takes: a big read's header and data leave together (two writes
/// would send the 11-byte header as a packet of its own and wake the client
/// for it), and replies already queued share the call.
async fn write_batch<W: AsyncWrite + Unpin>(w: &mut W, batch: &[Outgoing]) -> std::io::Result<()> {
    let mut parts: Vec<IoSlice<'_>> =
        batch.iter().flat_map(|(head, data, _)| std::iter::once(head.as_slice()).chain(data.as_deref())).map(IoSlice::new).collect();
    let mut rest = &mut parts[..];
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    w.flush().await
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_REPLIES_PER_WRITE {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if write_batch(&mut w, &batch).await.is_err() {
            return;
        }
        // Frees the replies' queue slots.
        batch.clear();
    }
}

pub(crate) async fn run<F, S>(fs: Arc<F>, stream: S, config: Arc<Config>, mut shutdown: watch::Receiver<bool>)
where
    F: Filesystem,
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    // Requests are small: one read takes in as many as have arrived.
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let (out, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(wr, rx));
    let slots = Arc::new(Semaphore::new(config.max_outstanding * 2 + 2));
    let mut conn = Conn { fs, config, session: None, tags: Tags::default(), order: Order::default(), next_id: 0, out, slots };
    loop {
        let msize = conn.session.as_ref().map_or(conn.config.max_msize, |s| s.msize);
        let frame = tokio::select! {
            f = read_frame(&mut rd, msize) => f,
            _ = shutdown.changed() => break,
        };
        let slot = tokio::select! {
            s = conn.slots.clone().acquire_owned() => s,
            _ = shutdown.changed() => break,
        };
        match (frame, slot) {
            (Ok(Some(buf)), Ok(slot)) => conn.on_frame(&buf, slot).await,
            (Ok(None), _) => break,
            (Err(e), _) => {
                warn!("closing connection: {e}");
                break;
            }
            (_, Err(_)) => break, // the semaphore is never closed
        }
    }
    conn.reset().await;
    drop(conn);
    let _ = writer.await;
}

impl<F: Filesystem> Conn<F> {
    fn dialect(&self) -> Dialect {
        self.session.as_ref().map_or(Dialect::P2000, |s| s.dialect)
    }

    fn send(&self, tag: u16, reply: Rmsg, dialect: Dialect, slot: OwnedSemaphorePermit) {
        debug!("-> {}", Traced(tag, &reply));
        // A send fails only when the writer is gone, i.e. the connection is closing.
        let _ = self.out.send((reply.encode(tag, dialect), None, slot));
    }

    fn send_error(&self, tag: u16, e: &Error, slot: OwnedSemaphorePermit) {
        debug!("error tag {tag}: {}", e.reason);
        self.send(tag, error_reply(e, self.dialect(), self.config.legacy_errors), self.dialect(), slot);
    }

    async fn on_frame(&mut self, buf: &[u8], slot: OwnedSemaphorePermit) {
        let (type_byte, tag, body) = match split_header(buf) {
            Ok(h) => h,
            Err(_) => return, // read_frame guarantees a whole header
        };
        let dialect = self.dialect();
        let msg = match Tmsg::decode(type_byte, body, dialect) {
            Ok(m) => m,
            Err(e) => return self.send_error(tag, &decode_error(e), slot),
        };
        debug!("<- {}", Traced(tag, &msg));
        if type_byte == ty::TVERSION {
            if let Tmsg::Version { msize, version } = msg {
                return self.version(tag, msize, &version, slot).await;
            }
        }
        let Some(session) = self.session.clone() else {
            return self.send_error(tag, &Error::new(errno::EPROTO, reason::NO_VERSION), slot);
        };
        if let Tmsg::Flush { oldtag } = msg {
            return self.flush(tag, oldtag, slot);
        }
        let mut tags = lock(&self.tags);
        if tags.contains_key(&tag) {
            drop(tags);
            return self.send_error(tag, &Error::new(errno::EINVAL, reason::DUPLICATE_TAG), slot);
        }
        if tags.len() >= self.config.max_outstanding {
            drop(tags);
            return self.send_error(tag, &Error::new(errno::EAGAIN, reason::TOO_MANY_REQUESTS), slot);
        }
        self.next_id += 1;
        let id = self.next_id;
        let (out, tags_ref, legacy) = (self.out.clone(), self.tags.clone(), self.config.legacy_errors);
        let observer = self.config.observer.clone();
        let kind = msg.name();
        let (prior, turn) = self.order.enter(fids_of(&msg).as_slice());
        let mut place = Place::new(prior, turn, slot);
        let task = tokio::spawn(async move {
            place.ready().await;
            let started = std::time::Instant::now();
            let handled = catch_unwind_async(session.handle(msg)).await;
            // The fid table holds this request's effect: those behind it may go.
            place.done();
            let result = match handled {
                Ok(result) => result,
                Err(payload) => {
                    // A bug in a callback: answer it (so the client is not
                    // left waiting and the tag is freed) and say where.
                    error!(tag, request = kind, "file system panicked: {}; answered EIO", panic_message(&*payload));
                    Err(Error::new(errno::EIO, reason::INTERNAL))
                }
            };
            if let Some(o) = &observer {
                o.request(kind, started.elapsed(), result.as_ref().err().map(|e| e.errno));
            }
            let reply = match result {
                Ok(r) => r,
                Err(e) => {
                    debug!("error tag {tag}: {}", e.reason);
                    error_reply(&e, session.dialect, legacy)
                }
            };
            let trace = tracing::enabled!(tracing::Level::DEBUG).then(|| Traced(tag, &reply).to_string());
            let (head, data) = reply.encode_split(tag, session.dialect);
            let mut tags = lock(&tags_ref);
            // Still ours? Otherwise it was flushed, and must not be answered.
            if tags.get(&tag).is_some_and(|t| t.id == id) {
                tags.remove(&tag);
                if let Some(trace) = trace {
                    debug!("-> {trace}");
                }
                if let Some(slot) = place.take_slot() {
                    let _ = out.send((head, data, slot));
                }
            }
        });
        tags.insert(tag, InFlight { id, task });
    }

    /// Tflush: always Rflush, after the old request is answered or cancelled.
    fn flush(&self, tag: u16, oldtag: u16, slot: OwnedSemaphorePermit) {
        let old = if oldtag == tag { None } else { lock(&self.tags).remove(&oldtag) };
        // Aborted here, not in the task below: a Tversion read next must not
        // find the old request out of the tag table and still running.
        if let Some(old) = &old {
            old.task.abort();
        }
        let out = self.out.clone();
        let dialect = self.dialect();
        tokio::spawn(async move {
            if let Some(old) = old {
                let _ = old.task.await;
            }
            debug!("-> {}", Traced(tag, &Rmsg::Flush));
            let _ = out.send((Rmsg::Flush.encode(tag, dialect), None, slot));
        });
    }

    /// Tversion: abort outstanding requests, clunk every fid, start afresh.
    async fn version(&mut self, tag: u16, msize: u32, requested: &str, slot: OwnedSemaphorePermit) {
        self.reset().await;
        let msize = negotiate_msize(msize, self.config.max_msize);
        let version = match Dialect::negotiate(requested) {
            Some(d) => {
                let fs = self.fs.clone();
                self.session = Some(Arc::new(Session::new(fs, d, msize, self.config.max_fids)));
                d.version_string()
            }
            None => "unknown",
        };
        self.send(tag, Rmsg::Version { msize, version: version.into() }, Dialect::P2000, slot);
    }

    async fn reset(&mut self) {
        let outstanding: Vec<InFlight> = lock(&self.tags).drain().map(|(_, t)| t).collect();
        // Every task is aborted before any is awaited: a request waiting
        // behind another (`order.rs`) must not start in between.
        for t in &outstanding {
            t.task.abort();
        }
        for t in outstanding {
            let _ = t.task.await;
        }
        self.order.clear();
        if let Some(s) = self.session.take() {
            s.clunk_all().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// Takes at most 7 bytes a call, across slices if `vectored`.
    struct Trickle {
        got: Vec<u8>,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(7);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(mut self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(7 - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == 7 || !self.vectored {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_batch_arrives_whole_and_in_order_through_short_writes() {
        let slots = Arc::new(Semaphore::new(8));
        let mut batch: Vec<Outgoing> = vec![];
        let mut want = vec![];
        for (i, (head, data)) in [(5, Some(20)), (2, None), (1, Some(100)), (9, Some(3))].into_iter().enumerate() {
            let head = vec![i as u8; head];
            let data = data.map(|n| (0..n).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>());
            want.extend_from_slice(&head);
            want.extend(data.iter().flatten());
            batch.push((head, data, slots.clone().try_acquire_owned().unwrap()));
        }
        for vectored in [false, true] {
            let mut w = Trickle { got: vec![], vectored };
            write_batch(&mut w, &batch).await.unwrap();
            assert_eq!(w.got, want, "vectored: {vectored}");
        }
    }
}
