//! The jobd tree over HTTP (`--http-addr`, off by default), for the places
//! that cannot mount 9P: `curl` in a CI job, a laptop, a monitoring system.
//! The path of a URL is a path in the tree, and each method does what a 9P
//! client does with it, through the same `Filesystem` the node serves over
//! 9P (`tree.rs`), so every rule, limit and error is the same; an error's
//! errno class picks the status and its one-line reason is the body
//! (`status.rs`). It is not a second model of jobs.
//!
//! ```text
//! GET    /PATH            a file's bytes from ?offset=N (default 0) to its
//!                         end; a directory's entries, one a line (a
//!                         directory's with a trailing /), or for /jobs/ with
//!                         Accept: application/json each job's ctl as JSON
//! PUT    /PATH, POST      the body written at offset 0: 204
//! POST   /clone           creates a job: 201, its name, Location /jobs/NAME/
//! DELETE /jobs/NAME       deletes the job: 204
//! ```
//!
//! Before any of that, every request passes `Guard::check`: its Host is
//! this node's (an IP address, `localhost`, or a name in `--http-hosts`:
//! a page on another site that resolves its own name to this address, DNS
//! rebinding, is refused), its Origin, if any, is its Host's (a page on
//! another site cannot drive jobd from a browser), and it carries the
//! token that its method needs (`--http-token` for changes, and with
//! `--http-read-token` for reads too).

mod guard;
pub mod status;
pub mod tree;

use std::future::Future;
use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ninep::error::errno;
use ninep::{Error, Filesystem};

pub use guard::Guard;
use status::{from_tree, refusal};

struct Shared<F> {
    fs: Arc<F>,
    guard: Guard,
    /// Largest body accepted (`--max-write`, as for a 9P write).
    max_body: usize,
}

/// Serves `fs` over HTTP on `listener` until `shutdown` completes.
pub async fn serve<F: Filesystem>(
    listener: tokio::net::TcpListener,
    fs: Arc<F>,
    guard: Guard,
    max_body: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared { fs, guard, max_body });
    let app = axum::Router::new().fallback(handle::<F>).with_state(shared);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn handle<F: Filesystem>(State(s): State<Arc<Shared<F>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(r) = s.guard.check(&parts) {
        return r;
    }
    let names = match tree::names(parts.uri.path()) {
        Ok(n) => n,
        Err(e) => return from_tree(&e),
    };
    let fs = &*s.fs;
    match parts.method {
        Method::GET | Method::HEAD => {
            let offset = match query_offset(parts.uri.query()) {
                Ok(o) => o,
                Err(e) => return from_tree(&e),
            };
            let json = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
            get(fs, &names, offset, json).await.unwrap_or_else(|e| from_tree(&e))
        }
        Method::PUT | Method::POST => {
            let too_big = || refusal(StatusCode::PAYLOAD_TOO_LARGE, &format!("a body over {} bytes; at most --max-write", s.max_body));
            let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            if declared.is_some_and(|n| n > s.max_body) {
                return too_big();
            }
            let Ok(body) = to_bytes(body, s.max_body).await else { return too_big() };
            put(fs, &names, &body).await.unwrap_or_else(|e| from_tree(&e))
        }
        Method::DELETE => delete(fs, &names).await.unwrap_or_else(|e| from_tree(&e)),
        _ => {
            let mut r = refusal(StatusCode::METHOD_NOT_ALLOWED, "the methods are GET, HEAD, PUT, POST and DELETE");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE"));
            r
        }
    }
}

/// `?offset=N`: where a read starts (a logical offset for `log`).
fn query_offset(query: Option<&str>) -> Result<u64, Error> {
    let Some(q) = query else { return Ok(0) };
    for pair in q.split('&') {
        if let Some(v) = pair.strip_prefix("offset=") {
            return v.parse().map_err(|_| Error::new(errno::EINVAL, format!("offset {v:?} is not a number of bytes")));
        }
    }
    Ok(0)
}

fn text(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn get<F: Filesystem>(fs: &F, names: &[String], offset: u64, json: bool) -> Result<Response, Error> {
    let w = tree::walk(fs, names).await?;
    let out = if w.is_dir { listing(fs, &w, names, json).await } else { tree::read_file(fs, &w, offset).await.map(|b| (b, false)) };
    tree::done(fs, w).await;
    let (body, is_json) = out?;
    if is_json {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(r);
    }
    let next = offset + body.len() as u64;
    let mut r = text(StatusCode::OK, body);
    // Where the next read of a growing file (a log) goes on from.
    r.headers_mut().insert("x-jobd-next-offset", HeaderValue::from(next));
    Ok(r)
}

/// A directory's listing: text, or for `/jobs` in JSON each job's ctl
/// (`{"name": ..., "state": ..., "next": ..., ...}`, its keys as they are).
async fn listing<F: Filesystem>(fs: &F, w: &tree::Walked<F>, names: &[String], json: bool) -> Result<(Vec<u8>, bool), Error> {
    let entries = tree::list(fs, w).await?;
    if !json {
        let text: String = entries.iter().map(|(n, dir)| if *dir { format!("{n}/\n") } else { format!("{n}\n") }).collect();
        return Ok((text.into_bytes(), false));
    }
    let mut out = vec![];
    for (name, is_dir) in entries {
        let mut obj = serde_json::Map::new();
        obj.insert("name".into(), name.clone().into());
        if names == ["jobs"] && is_dir {
            let ctl = [names[0].clone(), name.clone(), "ctl".into()];
            // A job deleted since the listing is left out.
            let Ok(c) = tree::walk(fs, &ctl).await else { continue };
            let read = tree::read_file(fs, &c, 0).await;
            tree::done(fs, c).await;
            let Ok(read) = read else { continue };
            for line in String::from_utf8_lossy(&read).lines() {
                if let Some((k, v)) = line.split_once(' ') {
                    obj.insert(k.into(), v.into());
                }
            }
        } else {
            obj.insert("dir".into(), is_dir.into());
        }
        out.push(serde_json::Value::Object(obj));
    }
    let body = serde_json::to_vec(&out).map_err(|e| Error::new(errno::EIO, e.to_string()))?;
    Ok((body, true))
}

async fn put<F: Filesystem>(fs: &F, names: &[String], body: &[u8]) -> Result<Response, Error> {
    let clone = names == ["clone"];
    let w = tree::walk(fs, names).await?;
    let out = tree::write_file(fs, &w, body, clone).await;
    tree::done(fs, w).await;
    let read = out?;
    if !clone {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let name = String::from_utf8_lossy(&read).trim().to_string();
    let mut r = text(StatusCode::CREATED, format!("{name}\n").into_bytes());
    if let Ok(at) = HeaderValue::from_str(&format!("/jobs/{name}/")) {
        r.headers_mut().insert(header::LOCATION, at);
    }
    Ok(r)
}

async fn delete<F: Filesystem>(fs: &F, names: &[String]) -> Result<Response, Error> {
    let w = tree::walk(fs, names).await?;
    // A file's remove succeeds and does nothing (so `rm -r` works over 9P);
    // over HTTP that would answer 204 for nothing done.
    let out = if w.is_dir { fs.remove(&w.fid).await } else { Err(Error::new(errno::EINVAL, "only a job's directory can be deleted: DELETE /jobs/NAME")) };
    tree::done(fs, w).await;
    out.map(|()| StatusCode::NO_CONTENT.into_response())
}
