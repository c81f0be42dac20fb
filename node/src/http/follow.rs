//! `?follow=1` on a job's `log` or on `/events` (the files that only grow): its bytes
//! from the asked offset as any GET gives them, then the response stays
//! open and what is appended later is sent as this node applies it, as
//! `tail -f` does on a mount, until the client goes away or the job does
//! (deleted, or deleted and created again under its name: the response
//! ends). A start past the log's end waits at its end. A client that
//! vanishes without closing (a laptop put to sleep) is found by the
//! listener's TCP keepalive.
//!
//! Plain chunked text, not server-sent events: `curl -N` prints it as it
//! comes, and a page reads it with `fetch` and a stream reader. The tree
//! has no "wait for a change" call a 9P client could make either, so the
//! stream reads on from where it stopped every `POLL`, through the same
//! `Filesystem` calls as every other request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ninep::error::errno;
use ninep::Filesystem;
use tokio::sync::OwnedSemaphorePermit;

use super::tree;

/// How often a followed file is read on from where it stopped.
const POLL: Duration = Duration::from_millis(250);
/// Responses following a file at once; more are refused (503), as they
/// hold a connection each for as long as the client keeps them.
pub const MAX_FOLLOWS: usize = 64;

/// The response to a follow of the log at `names` (whose qid path was
/// `qid_path`): `first` (the log from the asked offset up to `next`), then
/// each new stretch as it appears. `slot` is held for as long as the
/// response is.
pub fn respond<F: Filesystem>(
    fs: Arc<F>,
    names: Vec<String>,
    qid_path: u64,
    first: Vec<u8>,
    next: u64,
    slot: OwnedSemaphorePermit,
) -> Response {
    let start = Follow {
        fs,
        names,
        qid_path,
        at: next,
        first: Some(first),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(start, |mut f| async move {
        let bytes = f.next().await?;
        Some((Ok::<_, std::convert::Infallible>(bytes), f))
    });
    let mut r = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A reverse proxy (nginx) would otherwise hold lines back to fill a buffer.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

struct Follow<F: Filesystem> {
    fs: Arc<F>,
    names: Vec<String>,
    /// The followed job's log: a job created again under the name is
    /// another file.
    qid_path: u64,
    /// The logical offset the next read starts at.
    at: u64,
    /// What the request's own read gave, sent first.
    first: Option<Vec<u8>>,
    _slot: OwnedSemaphorePermit,
}

impl<F: Filesystem> Follow<F> {
    /// The next bytes to send, waiting until there are some; `None` when
    /// the file is gone.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take().filter(|b| !b.is_empty()) {
            return Some(first.into());
        }
        loop {
            tokio::time::sleep(POLL).await;
            let fs = &*self.fs;
            let w = match tree::walk(fs, &self.names).await {
                Ok(w) if w.qid_path == self.qid_path => w,
                Ok(w) => {
                    tree::done(fs, w).await;
                    return None;
                }
                Err(e) if e.errno == errno::ENOENT => return None,
                // No leader for a moment (a read that must confirm one):
                // the stream waits it out, as `tail -f` would.
                Err(_) => continue,
            };
            // Nothing there yet past the end: wait at the end.
            if let Some(end) = fs.logical_end(&w.fid) {
                self.at = self.at.min(end);
            }
            let read = tree::read_file(fs, &w, self.at).await;
            tree::done(fs, w).await;
            match read {
                Ok((bytes, next)) => {
                    self.at = next;
                    if !bytes.is_empty() {
                        return Some(bytes.into());
                    }
                }
                Err(e) if e.errno == errno::ENOENT => return None,
                Err(_) => {}
            }
        }
    }
}
