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
//!                         end (at most 16 MiB a request), or its last
//!                         ?tail=N bytes; with ?follow=1 the response stays
//!                         open and sends what is appended (`follow.rs`);
//!                         a directory's entries, one a line (a
//!                         directory's with a trailing /), or for /jobs/
//!                         with Accept: application/json each job's ctl and
//!                         expression as JSON (?limit=N, 10,000 at most,
//!                         then ?after=NAME for the next page)
//! GET    /                from a browser, the dashboard (`dashboard.rs`)
//! PUT    /PATH, POST      the body written at offset 0: 204
//! POST   /clone (or PUT)  creates a job: 201, its name, Location /jobs/NAME/
//! DELETE /jobs/NAME       deletes the job: 204
//! ```
//!
//! Bounded like the 9P server: at most `MAX_REQUESTS` requests at once
//! (503 beyond), a body within `--max-write` read within `BODY_TIMEOUT`;
//! and at the listener (`listen.rs`) a bound on connections and a time
//! limit on each request's head.
//!
//! Before any of that, every request passes `Guard::check`: its Host is
//! this node's (an IP address, `localhost`, or a name in `--http-hosts`:
//! a page on another site that resolves its own name to this address, DNS
//! rebinding, is refused), its Origin, if any, is its Host's (a page on
//! another site cannot drive jobd from a browser), and it carries the
//! token that its method needs (`--http-token` for changes, and with
//! `--http-read-token` for reads too).

mod dashboard;
mod follow;
mod guard;
mod listen;
mod range;
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
pub use listen::Bounds;
use status::{from_tree, refusal};

/// Requests served at once; more are refused (503) rather than queued, so
/// HTTP cannot take the memory and descriptors 9P and Raft need.
const MAX_REQUESTS: usize = 256;
/// How long a request's body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Jobs in one JSON listing; `?after=NAME` goes on.
const JSON_PAGE: usize = 10_000;
const JSON_PAGE_U64: u64 = JSON_PAGE as u64;

struct Shared<F> {
    fs: Arc<F>,
    guard: Guard,
    /// Largest body accepted (`--max-write`, as for a 9P write).
    max_body: usize,
    slots: Arc<tokio::sync::Semaphore>,
    /// Responses following a file (`?follow=1`), apart from `slots`:
    /// they last as long as their clients want.
    follows: Arc<tokio::sync::Semaphore>,
}

/// Serves `fs` over HTTP on `listener` until `shutdown` completes.
pub async fn serve<F: Filesystem>(
    listener: tokio::net::TcpListener,
    fs: Arc<F>,
    guard: Guard,
    max_body: usize,
    bounds: Bounds,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS));
    let follows = Arc::new(tokio::sync::Semaphore::new(follow::MAX_FOLLOWS));
    let shared = Arc::new(Shared {
        fs,
        guard,
        max_body,
        slots,
        follows,
    });
    let app = axum::Router::new().fallback(handle::<F>).with_state(shared);
    listen::serve(listener, app, bounds, shutdown).await
}

async fn handle<F: Filesystem>(State(s): State<Arc<Shared<F>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let reads = matches!(parts.method, Method::GET | Method::HEAD);
    if reads && (path.starts_with(dashboard::ASSETS) || dashboard::wants_page(path, &parts.headers))
    {
        // The page and its assets hold no data: no token (the page asks
        // for one when the tree does), but Host and Origin as always.
        return s
            .guard
            .check_origin(&parts)
            .map_or_else(|r| r, |()| dashboard::serve(path));
    }
    if let Err(r) = s.guard.check(&parts) {
        return r;
    }
    let Ok(_slot) = s.slots.clone().try_acquire_owned() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{MAX_REQUESTS} HTTP requests in progress; try again"),
        );
    };
    let names = match tree::names(parts.uri.path()) {
        Ok(n) => n,
        Err(e) => return from_tree(&e),
    };
    let fs = &*s.fs;
    match parts.method {
        Method::GET | Method::HEAD => {
            let range = parts.headers.get(header::RANGE).and_then(range::parse);
            let mut query = match Query::parse(parts.uri.query(), range) {
                Ok(q) => q,
                Err(e) => return from_tree(&e),
            };
            // A HEAD's body is never sent: nothing to follow.
            query.follow &= parts.method == Method::GET;
            let json = parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/json"));
            get(&s, names, &query, json)
                .await
                .unwrap_or_else(|e| from_tree(&e))
        }
        Method::PUT | Method::POST => {
            let too_big = || {
                refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("a body over {} bytes; at most --max-write", s.max_body),
                )
            };
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            if declared.is_some_and(|n| n > s.max_body) {
                return too_big();
            }
            let body = match tokio::time::timeout(BODY_TIMEOUT, to_bytes(body, s.max_body)).await {
                Ok(Ok(b)) => b,
                Ok(Err(_)) => return too_big(),
                Err(_) => {
                    return refusal(
                        StatusCode::REQUEST_TIMEOUT,
                        "the body did not arrive in time",
                    )
                }
            };
            put(fs, &names, &body)
                .await
                .unwrap_or_else(|e| from_tree(&e))
        }
        Method::DELETE => delete(fs, &names).await.unwrap_or_else(|e| from_tree(&e)),
        _ => {
            let mut r = refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                "the methods are GET, HEAD, PUT, POST and DELETE",
            );
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE"),
            );
            r
        }
    }
}

/// What a GET's query asks: `offset=N`, where a read starts (a logical
/// offset for `log`), or `tail=N`, its last N bytes; `follow=1`, stay
/// open for what is appended; `after=NAME` and `limit=N`, where a JSON
/// listing goes on and how many jobs it gives.
#[derive(Default)]
struct Query {
    offset: u64,
    tail: Option<usize>,
    follow: bool,
    after: Option<String>,
    limit: Option<usize>,
    /// The `Range` header's one byte range (`range.rs`).
    range: Option<range::ByteRange>,
}

impl Query {
    fn parse(query: Option<&str>, range: Option<range::ByteRange>) -> Result<Query, Error> {
        let mut q = Query {
            range,
            ..Query::default()
        };
        let number = |k: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| Error::new(errno::EINVAL, format!("{k} {v:?} is not a whole number")))
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("offset", v)) => q.offset = number("offset", v)?,
                Some(("tail", v)) => {
                    q.tail = Some(number("tail", v)?.min(tree::MAX_READ as u64) as usize)
                }
                Some(("follow", "1" | "true")) => q.follow = true,
                Some(("follow", "0" | "false")) => q.follow = false,
                Some(("after", v)) => q.after = Some(tree::names(v)?.concat()),
                Some(("limit", v)) => match number("limit", v)? {
                    n @ 1..=JSON_PAGE_U64 => q.limit = Some(n as usize),
                    _ => {
                        return Err(Error::new(
                            errno::EINVAL,
                            format!("limit {v} is not between 1 and {JSON_PAGE}"),
                        ))
                    }
                },
                _ => {
                    let known = "offset=N, tail=N, follow=1, after=NAME and limit=N";
                    return Err(Error::new(
                        errno::EINVAL,
                        format!("unknown query {pair:?}; there are {known}"),
                    ));
                }
            }
        }
        let starts = [q.tail.is_some(), q.offset != 0, q.range.is_some()];
        if starts.iter().filter(|s| **s).count() > 1 {
            return Err(Error::new(
                errno::EINVAL,
                "tail=N, offset=N and a Range header each say where a read starts; give one",
            ));
        }
        if q.follow && matches!(q.range, Some(range::ByteRange::From { end: Some(_), .. })) {
            return Err(Error::new(
                errno::EINVAL,
                "follow=1 goes on past any end: give a Range without one (bytes=N-)",
            ));
        }
        Ok(q)
    }
}

fn text(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn get<F: Filesystem>(
    s: &Shared<F>,
    names: Vec<String>,
    q: &Query,
    json: bool,
) -> Result<Response, Error> {
    let fs = &*s.fs;
    let w = tree::walk(fs, &names).await?;
    if w.is_dir {
        let page = q.limit.unwrap_or(JSON_PAGE);
        let out = listing(fs, &w, &names, json, q.after.as_deref(), page).await;
        tree::done(fs, w).await;
        let (body, more) = out?;
        if !json {
            return Ok(text(StatusCode::OK, body));
        }
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(last) = more.and_then(|l| HeaderValue::from_str(&l).ok()) {
            // More jobs than one page: ask again with ?after=THIS.
            r.headers_mut().insert("x-jobd-after", last);
        }
        return Ok(r);
    }
    // A log's end (a job record's read) only where it is needed.
    let end = if q.follow || q.range.is_some() { fs.logical_end(&w.fid) } else { None };
    if q.follow && end.is_none() {
        tree::done(fs, w).await;
        let why = "only a job's log and /events can be followed (they only grow); read other files again to see them change";
        return Err(Error::new(errno::EINVAL, why));
    }
    // Taken before the read, so a refused follow has read nothing.
    let follow = match q.follow {
        true => match s.follows.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                tree::done(fs, w).await;
                return Err(Error::new(
                    errno::EAGAIN,
                    format!(
                        "{} responses follow files already; try again",
                        follow::MAX_FOLLOWS
                    ),
                ));
            }
        },
        false => None,
    };
    let out = match (q.tail, q.range) {
        (Some(n), _) => tree::read_tail(fs, &w, n, true).await,
        (None, Some(range::ByteRange::Last(n))) => tree::read_tail(fs, &w, n as usize, false).await,
        (None, Some(range::ByteRange::From { start, end: None })) => {
            tree::read_file(fs, &w, start).await
        }
        (
            None,
            Some(range::ByteRange::From {
                start,
                end: Some(last),
            }),
        ) => {
            let len = last.saturating_sub(start).saturating_add(1);
            tree::read_upto(fs, &w, start, usize::try_from(len).unwrap_or(usize::MAX)).await
        }
        (None, None) => tree::read_file(fs, &w, q.offset).await,
    };
    let qid_path = w.qid_path;
    tree::done(fs, w).await;
    let (body, next) = out?;
    if let Some(slot) = follow {
        return Ok(follow::respond(
            s.fs.clone(),
            names,
            qid_path,
            body,
            next,
            slot,
        ));
    }
    if let Some(range) = q.range {
        return Ok(range::answer(range, body, next, end));
    }
    let mut r = text(StatusCode::OK, body);
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Where the next read of a growing file (a log) goes on from.
    r.headers_mut()
        .insert("x-jobd-next-offset", HeaderValue::from(next));
    Ok(r)
}

/// A directory's listing: text, or for `/jobs` in JSON each job's ctl
/// (`{"name": ..., "state": ..., "next": ..., ...}`, its keys as they
/// are), a page of `JSON_PAGE` after `after`; with the last name when
/// more follow.
async fn listing<F: Filesystem>(
    fs: &F,
    w: &tree::Walked<F>,
    names: &[String],
    json: bool,
    after: Option<&str>,
    page: usize,
) -> Result<(Vec<u8>, Option<String>), Error> {
    let mut entries = tree::list(fs, w).await?;
    if !json {
        let text: String = entries
            .iter()
            .map(|(n, dir)| {
                if *dir {
                    format!("{n}/\n")
                } else {
                    format!("{n}\n")
                }
            })
            .collect();
        return Ok((text.into_bytes(), None));
    }
    entries.sort();
    entries.retain(|(n, _)| after.is_none_or(|a| n.as_str() > a));
    let more = (entries.len() > page).then(|| entries[page - 1].0.clone());
    entries.truncate(page);
    let mut out = vec![];
    for (i, (name, is_dir)) in entries.into_iter().enumerate() {
        // A page of thousands of jobs is a few hundred ms of reads that
        // never wait: let the node's other tasks (Raft's heartbeats) in.
        if i % 256 == 255 {
            tokio::task::yield_now().await;
        }
        let mut obj = serde_json::Map::new();
        obj.insert("name".into(), name.clone().into());
        if names == ["jobs"] && is_dir {
            // A job deleted since the listing is left out.
            let Some(ctl) = read_small(fs, [&names[0], &name, "ctl"]).await? else {
                continue;
            };
            let Some(schedule) = read_small(fs, [&names[0], &name, "schedule"]).await? else {
                continue;
            };
            for line in ctl.lines() {
                if let Some((k, v)) = line.split_once(' ') {
                    obj.insert(k.into(), v.into());
                }
            }
            // The expression (the file's first line; the second is `next`).
            obj.insert(
                "schedule".into(),
                schedule.lines().next().unwrap_or("").into(),
            );
        } else {
            obj.insert("dir".into(), is_dir.into());
        }
        out.push(serde_json::Value::Object(obj));
    }
    let body = serde_json::to_vec(&out).map_err(|e| Error::new(errno::EIO, e.to_string()))?;
    Ok((body, more))
}

/// A small generated file's text, or `None` if it is gone (its job was
/// deleted); any other error (no leader to confirm a read with) fails the
/// whole listing rather than leave a job out of it.
async fn read_small<F: Filesystem>(fs: &F, path: [&str; 3]) -> Result<Option<String>, Error> {
    let path = path.map(String::from);
    let w = match tree::walk(fs, &path).await {
        Ok(w) => w,
        Err(e) if e.errno == errno::ENOENT => return Ok(None),
        Err(e) => return Err(e),
    };
    let read = tree::read_file(fs, &w, 0).await;
    tree::done(fs, w).await;
    match read {
        Ok((bytes, _)) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.errno == errno::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
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
    let out = if w.is_dir {
        fs.remove(&w.fid).await
    } else {
        Err(Error::new(
            errno::EINVAL,
            "only a job's directory can be deleted: DELETE /jobs/NAME",
        ))
    };
    tree::done(fs, w).await;
    out.map(|()| StatusCode::NO_CONTENT.into_response())
}
