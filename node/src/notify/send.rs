//! One attempt at a delivery: a POST of its document, signed when the
//! node has a `--notify-secret`, with a timeout. Any answer but a 2xx,
//! and any failure to get one, is the attempt's error (one line).
//!
//! Headers a receiver reads:
//! - `X-Jobd-Delivery`: the delivery's id (its run's), the same on every
//!   attempt, so a receiver can drop a duplicate;
//! - `X-Jobd-Attempt`: 1 for the first attempt;
//! - `X-Jobd-Timestamp`: this attempt's Unix time in seconds;
//! - `X-Jobd-Signature: sha256=HEX`, with a secret: HMAC-SHA256 over
//!   `ID.TIMESTAMP.BODY`, so a receiver checks who sent it and, with the
//!   timestamp, that it is not an old request replayed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long an attempt may take, connecting included...
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// ...and connecting alone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client every attempt of this node uses: pooled connections, no
/// redirects (a POST redirected would become a GET: a 3xx is an error).
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jobd/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `sha256=HEX` of HMAC-SHA256(secret, `ID.TIMESTAMP.BODY`).
pub fn signature(secret: &[u8], id: u64, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// What one attempt sends.
pub struct Attempt<'a> {
    pub url: &'a str,
    pub id: u64,
    /// 1 for the first.
    pub attempt: u32,
    pub body: &'a str,
    pub timestamp: i64,
}

/// Sends one attempt; `Err` is why it failed, in one line.
pub async fn post(client: &reqwest::Client, secret: Option<&[u8]>, a: Attempt<'_>) -> Result<(), String> {
    let mut req = client
        .post(a.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Jobd-Delivery", a.id)
        .header("X-Jobd-Attempt", a.attempt)
        .header("X-Jobd-Timestamp", a.timestamp)
        .body(a.body.to_string());
    if let Some(secret) = secret {
        req = req.header("X-Jobd-Signature", signature(secret, a.id, a.timestamp, a.body));
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status())),
        Err(e) => Err(one_line(&e)),
    }
}

/// An error and its causes, on one line (reqwest's own text is only the
/// outermost: "error sending request").
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_id_timestamp_and_body() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"Jefe", b"42.1796230800.{\"job\":\"a\"}", hashlib.sha256).hexdigest())'
        let want = "sha256=381be5463953fb0530c807078de4a3b2840027f6041d26de6bf2cf4025adb703";
        assert_eq!(signature(b"Jefe", 42, 1_796_230_800, r#"{"job":"a"}"#), want);
    }
}
