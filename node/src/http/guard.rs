//! What every HTTP request must pass before the tree sees it: its Host,
//! its Origin and its token (see the module above for why each).

use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::status::refusal;

#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Needed, as `Authorization: Bearer TOKEN`, by every request that
    /// changes something (and it reads too).
    pub token: Option<String>,
    /// Needed by reads, if set (only beside `token`).
    pub read_token: Option<String>,
    /// Host names a request may name, beyond IP addresses and `localhost`
    /// (the name a reverse proxy or a DNS record gives this node).
    pub hosts: Vec<String>,
}

impl Guard {
    /// Everything a request to the tree must pass: `check_origin`, then
    /// the token its method needs.
    pub fn check(&self, req: &Parts) -> Result<(), Response> {
        self.check_origin(req)?;
        self.check_token(req)
    }

    /// Host, Origin and `Sec-Fetch-Site` only: what the dashboard's own
    /// page, script and style (no data, the same in every binary) need;
    /// the page then asks for a token if the tree wants one.
    pub fn check_origin(&self, req: &Parts) -> Result<(), Response> {
        // HTTP/1.1 requires Host; every browser sends it.
        let Some(host) = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "a request needs a Host header",
            ));
        };
        if !self.host_allowed(host) {
            let why =
                format!("host {host:?} is not one of this node's names; add it with --http-hosts");
            return Err(refusal(StatusCode::FORBIDDEN, &why));
        }
        let reads = matches!(req.method, Method::GET | Method::HEAD);
        if let Some(origin) = req.headers.get(header::ORIGIN) {
            // A browser names the page's origin; only a page this node
            // served (same scheme-less authority as Host) may drive it.
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .is_some_and(|(_, authority)| authority == host);
            if !same {
                return Err(refusal(
                    StatusCode::FORBIDDEN,
                    "a request from a page on another origin is refused",
                ));
            }
        }
        // Browsers that leave Origin out of a form's POST still say where
        // the request comes from.
        let cross_site = req
            .headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site");
        // A read from another site is refused too unless the user went
        // there (a link followed): a page elsewhere could otherwise make
        // the browser load a log or follow one, unseen, as often as it likes.
        let navigation = req
            .headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v.as_bytes() == b"navigate");
        if cross_site && (!reads || !navigation) {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                "a request from a page on another site is refused",
            ));
        }
        Ok(())
    }

    fn check_token(&self, req: &Parts) -> Result<(), Response> {
        let reads = matches!(req.method, Method::GET | Method::HEAD);
        let needed: Vec<&str> = match (reads, &self.token, &self.read_token) {
            (false, Some(t), _) => vec![t],
            (true, Some(t), Some(r)) => vec![t, r],
            _ => vec![],
        };
        if needed.is_empty() {
            return Ok(());
        }
        let given = req
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.is_some_and(|g| needed.iter().any(|t| same_token(g, t))) {
            return Ok(());
        }
        let what = if reads { "reads" } else { "changes" };
        let mut r = refusal(
            StatusCode::UNAUTHORIZED,
            &format!("{what} need Authorization: Bearer TOKEN (--http-token)"),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"jobd\""),
        );
        Err(r)
    }

    fn host_allowed(&self, host: &str) -> bool {
        // `[::1]:8080`, `127.0.0.1:8080`, `name:8080`, each port optional.
        let port_ok = |p: Option<&str>| p.is_none_or(|p| p.parse::<u16>().is_ok());
        if let Some(rest) = host.strip_prefix('[') {
            let Some((addr, after)) = rest.split_once(']') else {
                return false;
            };
            let port = if after.is_empty() {
                Some(None)
            } else {
                after.strip_prefix(':').map(Some)
            };
            return addr.parse::<std::net::Ipv6Addr>().is_ok() && port.is_some_and(port_ok);
        }
        let (name, port) = host
            .rsplit_once(':')
            .map_or((host, None), |(n, p)| (n, Some(p)));
        let named = name.parse::<std::net::Ipv4Addr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name));
        named && port_ok(port)
    }
}

/// Compares in time that does not depend on where the two first differ.
fn same_token(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    /// A request with `headers`, and Host 127.0.0.1:5641 unless they name one.
    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri("/jobs/");
        if !headers.iter().any(|(k, _)| *k == "host") {
            b = b.header("host", "127.0.0.1:5641");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn status(g: &Guard, p: &Parts) -> u16 {
        g.check(p).err().map_or(200, |r| r.status().as_u16())
    }

    #[test]
    fn hosts_and_origins_from_elsewhere_are_refused() {
        let g = Guard {
            hosts: vec!["jobd.example".into()],
            ..Guard::default()
        };
        for ok in [
            "127.0.0.1:5641",
            "localhost:5641",
            "[::1]:5641",
            "10.0.0.5",
            "JOBD.example:80",
        ] {
            assert_eq!(status(&g, &parts("GET", &[("host", ok)])), 200, "{ok}");
        }
        assert_eq!(
            status(&g, &parts("GET", &[("host", "evil.example:5641")])),
            403,
            "DNS rebinding"
        );
        let same = parts(
            "POST",
            &[
                ("host", "127.0.0.1:5641"),
                ("origin", "http://127.0.0.1:5641"),
            ],
        );
        assert_eq!(status(&g, &same), 200);
        let other = parts(
            "POST",
            &[
                ("host", "127.0.0.1:5641"),
                ("origin", "http://evil.example"),
            ],
        );
        assert_eq!(status(&g, &other), 403, "cross-origin");
        assert_eq!(
            status(
                &g,
                &parts("POST", &[("host", "127.0.0.1:5641"), ("origin", "null")])
            ),
            403
        );
        assert_eq!(
            status(&g, &parts("POST", &[("sec-fetch-site", "cross-site")])),
            403
        );
        assert_eq!(
            status(&g, &parts("POST", &[("sec-fetch-site", "same-origin")])),
            200
        );
        // A read from elsewhere: a link the user followed, yes; a page's
        // image or script pointed at a log, no.
        let cross = |mode: &'static str| {
            parts(
                "GET",
                &[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", mode)],
            )
        };
        assert_eq!(status(&g, &cross("navigate")), 200);
        assert_eq!(status(&g, &cross("no-cors")), 403);
        for tricky in [
            "127.0.0.1.evil.example",
            "user@127.0.0.1",
            "::1",
            "[::1].evil",
        ] {
            assert_eq!(
                status(&g, &parts("GET", &[("host", tricky)])),
                403,
                "{tricky}"
            );
        }
        let no_host = Request::builder().uri("/").body(()).unwrap().into_parts().0;
        assert_eq!(status(&g, &no_host), 400);
    }

    #[test]
    fn tokens_are_asked_of_changes_and_with_a_read_token_of_reads() {
        let g = Guard {
            token: Some("w".into()),
            ..Guard::default()
        };
        assert_eq!(status(&g, &parts("GET", &[])), 200);
        assert_eq!(status(&g, &parts("POST", &[])), 401);
        assert_eq!(
            status(&g, &parts("POST", &[("authorization", "Bearer x")])),
            401
        );
        assert_eq!(
            status(&g, &parts("DELETE", &[("authorization", "Bearer w")])),
            200
        );
        let g = Guard {
            token: Some("w".into()),
            read_token: Some("r".into()),
            ..Guard::default()
        };
        assert_eq!(status(&g, &parts("GET", &[])), 401);
        assert_eq!(
            status(&g, &parts("GET", &[("authorization", "Bearer r")])),
            200
        );
        assert_eq!(
            status(&g, &parts("GET", &[("authorization", "Bearer w")])),
            200
        );
        assert_eq!(
            status(&g, &parts("PUT", &[("authorization", "Bearer r")])),
            401,
            "the read token changes nothing"
        );
    }
}
