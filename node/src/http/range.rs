//! The `Range` header on a file's GET, the standard spelling of
//! `?offset=` and `?tail=`: `bytes=N-` (from N to the end), `bytes=N-M`
//! (N to M, inclusive) and `bytes=-N` (the last N bytes). Offsets are
//! logical for `log`, as `?offset=` is. The answer is `206` with
//! `Content-Range: bytes FIRST-LAST/*` (a growing file has no complete
//! length to give), or `416` when nothing is there yet, with
//! `Content-Range: bytes */END`. Several ranges in one header, or a
//! unit other than bytes, are ignored and the whole file is served, as
//! HTTP lets a server do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    From { start: u64, end: Option<u64> },
    Last(u64),
}

/// The one byte range a header asks for, or `None` to serve the whole.
pub fn parse(v: &HeaderValue) -> Option<ByteRange> {
    let spec = v.to_str().ok()?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(ByteRange::Last(b.parse().ok()?));
    }
    let start = a.parse().ok()?;
    let end = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(ByteRange::From { start, end })
}

/// The answer to a ranged GET: `body`, the bytes read ending at logical
/// offset `next`, cut to `range`'s end; `file_end` is the file's logical
/// end when it knows one (a log), else the end of what was read.
pub fn answer(range: ByteRange, mut body: Vec<u8>, next: u64, file_end: Option<u64>) -> Response {
    // A trimmed log serves from its oldest kept line, which may be past
    // the start asked for: the bytes served say where they begin.
    let start = next.saturating_sub(body.len() as u64);
    if let ByteRange::From { end: Some(end), .. } = range {
        let keep = end.saturating_add(1).saturating_sub(start);
        body.truncate(usize::try_from(keep).unwrap_or(usize::MAX).min(body.len()));
    }
    if body.is_empty() {
        let file_end = file_end.unwrap_or(next);
        let why = match range {
            ByteRange::From { end: Some(end), .. } if end < start => {
                format!(
                    "those bytes were trimmed from the log; it keeps bytes {start} to {file_end}"
                )
            }
            _ => format!("nothing there: the file ends at {file_end}"),
        };
        let mut r = super::status::refusal(StatusCode::RANGE_NOT_SATISFIABLE, &why);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{file_end}")) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        r.headers_mut()
            .insert("x-jobd-next-offset", HeaderValue::from(file_end));
        return r;
    }
    let last = start + body.len() as u64 - 1;
    let mut r = (StatusCode::PARTIAL_CONTENT, body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{last}/*")) {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert("x-jobd-next-offset", HeaderValue::from(last + 1));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn one_byte_range_is_understood_and_anything_else_ignored() {
        assert_eq!(
            parse(&h("bytes=5-")),
            Some(ByteRange::From {
                start: 5,
                end: None
            })
        );
        assert_eq!(
            parse(&h("bytes=5-9")),
            Some(ByteRange::From {
                start: 5,
                end: Some(9)
            })
        );
        assert_eq!(parse(&h("bytes=-100")), Some(ByteRange::Last(100)));
        for ignored in [
            "bytes=0-1,5-9",
            "lines=1-2",
            "bytes=9-5",
            "bytes=x-",
            "bytes=-",
            "bytes",
        ] {
            assert_eq!(parse(&h(ignored)), None, "{ignored}");
        }
    }

    #[test]
    fn the_answer_says_which_bytes_it_holds() {
        // "hello world" read from logical offset 10 (so it ends at 21).
        let r = answer(
            ByteRange::From {
                start: 10,
                end: Some(14),
            },
            b"hello world".to_vec(),
            21,
            Some(21),
        );
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 10-14/*");
        assert_eq!(r.headers()["x-jobd-next-offset"], "15");
        // As a read past the end gives it: nothing, "ending" where it began.
        let r = answer(
            ByteRange::From {
                start: 30,
                end: None,
            },
            vec![],
            30,
            Some(21),
        );
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            r.headers()[header::CONTENT_RANGE],
            "bytes */21",
            "the file's end, not the start asked"
        );
        // The largest end there is does not overflow.
        let r = answer(
            ByteRange::From {
                start: 0,
                end: Some(u64::MAX),
            },
            b"abc".to_vec(),
            3,
            Some(3),
        );
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 0-2/*");
    }
}
