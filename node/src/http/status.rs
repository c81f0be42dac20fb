//! The one mapping from the tree's errors (an errno class and a one-line
//! reason, as 9P carries them) to HTTP: a status for the class, the reason
//! as the body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ninep::error::errno;

/// The status for an errno class.
pub fn status_of(e: u32) -> StatusCode {
    match e {
        errno::EINVAL | errno::EISDIR | errno::ENOTDIR | errno::ENAMETOOLONG => StatusCode::BAD_REQUEST,
        errno::ENOENT => StatusCode::NOT_FOUND,
        errno::EEXIST | errno::EBUSY | errno::ENOTEMPTY => StatusCode::CONFLICT,
        errno::EROFS | errno::EPERM | errno::EACCES => StatusCode::FORBIDDEN,
        errno::EAGAIN => StatusCode::SERVICE_UNAVAILABLE,
        errno::ETIMEDOUT => StatusCode::GATEWAY_TIMEOUT,
        errno::EFBIG | errno::EMSGSIZE => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal: its status, and its reason as a line of text.
pub fn refusal(status: StatusCode, reason: &str) -> Response {
    let mut r = (status, format!("{reason}\n")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // No leader or no quorum, nothing done: an election takes about a second.
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// A refusal from the tree.
pub fn from_tree(e: &ninep::Error) -> Response {
    refusal(status_of(e.errno), &e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_errno_class_has_its_status() {
        for (e, s) in [
            (errno::EINVAL, 400),
            (errno::EISDIR, 400),
            (errno::ENOTDIR, 400),
            (errno::ENOENT, 404),
            (errno::EEXIST, 409),
            (errno::EBUSY, 409),
            (errno::EROFS, 403),
            (errno::EPERM, 403),
            (errno::EAGAIN, 503),
            (errno::ETIMEDOUT, 504),
            (errno::EIO, 500),
        ] {
            assert_eq!(status_of(e).as_u16(), s, "errno {e}");
        }
        let r = refusal(StatusCode::SERVICE_UNAVAILABLE, "no leader");
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
