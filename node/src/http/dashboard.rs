//! The dashboard: one page, its script and its style, compiled into the
//! binary (a node on a machine with no internet serves all of it). The
//! page is a client of the HTTP tree like `curl` (it reads `/ctl` and
//! `/jobs/`, follows a log, writes ctl verbs), so it can do nothing a
//! request to the tree could not, under the same guard.
//!
//! `GET /` from a browser (its `Accept` names `text/html`) is the page;
//! from anything else it is the root's listing, as before. The script
//! and style are at `/-/app.js` and `/-/style.css`: `-` is no name at the
//! tree's root, so they shadow nothing.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// Where the script and style are served from.
pub const ASSETS: &str = "/-/";

/// Whether a GET of `path` is for the page: the root, asked by a browser.
pub fn wants_page(path: &str, headers: &HeaderMap) -> bool {
    path == "/"
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The page (`path` = `/`) or one of its assets, or 404.
pub fn serve(path: &str) -> Response {
    let (body, kind) = match path {
        "/" => (PAGE, "text/html; charset=utf-8"),
        "/-/app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/-/style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => {
            return super::status::refusal(
                StatusCode::NOT_FOUND,
                "no such dashboard file; the dashboard is at /",
            )
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Only this node's own script, style and requests: an injected
    // string (a job's name or output) can never run as script, and no
    // other site may frame the page to trick a click on a button.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Asked again after every upgrade of the node, never stale.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_assets_that_are_served() {
        for asset in ["/-/app.js", "/-/style.css"] {
            assert!(PAGE.contains(asset), "{asset}");
            assert_eq!(serve(asset).status(), StatusCode::OK);
        }
        assert_eq!(serve("/-/nothing").status(), StatusCode::NOT_FOUND);
        let mut browser = HeaderMap::new();
        browser.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_page("/", &browser));
        assert!(!wants_page("/ctl", &browser));
        assert!(
            !wants_page("/", &HeaderMap::new()),
            "curl gets the root's listing"
        );
    }
}
