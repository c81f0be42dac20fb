//! A webhook receiver: a real HTTP server on port 0 that records every
//! request jobd's `notify` makes, answers each as the test says (a status,
//! or never), and checks the signature with its own HMAC, not jobd's code.
//! Plain HTTP, or HTTPS with a certificate from `deploy/make-certs.sh`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

/// One request received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `X-Jobd-Delivery` (0 if missing).
    pub id: u64,
    pub attempt: u32,
    pub timestamp: i64,
    pub signature: Option<String>,
    pub body: String,
    /// When it arrived, Unix ms by this machine's clock.
    pub at_ms: i64,
    /// The status it was answered with (None: never answered).
    pub answered: Option<u16>,
}

impl Hit {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// How to answer a request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Hold the request open and never answer.
    Never,
}

type Answerer = dyn Fn(&Hit, usize) -> Answer + Send + Sync;

/// A running receiver; it stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
    scheme: &'static str,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Receiver {
    /// Starts a receiver; `answer(hit, seen)` decides each answer, where
    /// `seen` is how many requests for that delivery id came before.
    pub async fn start(answer: impl Fn(&Hit, usize) -> Answer + Send + Sync + 'static) -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let answer: Arc<Answerer> = Arc::new(answer);
        let task = tokio::spawn(serve(listener, hits.clone(), answer, None));
        Ok(Receiver { addr, hits, task, scheme: "http" })
    }

    /// A receiver over HTTPS, with the certificate chain and key in PEM
    /// files (`deploy/make-certs.sh` makes a CA and such a pair).
    pub async fn start_tls(cert: &Path, key: &Path, answer: impl Fn(&Hit, usize) -> Answer + Send + Sync + 'static) -> Result<Receiver> {
        use tokio_rustls::rustls;
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let answer: Arc<Answerer> = Arc::new(answer);
        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(serve(listener, hits.clone(), answer, Some(tls)));
        Ok(Receiver { addr, hits, task, scheme: "https" })
    }

    /// Answers 200 to everything.
    pub async fn ok() -> Result<Receiver> {
        Receiver::start(|_, _| Answer::Status(200)).await
    }

    /// The URL to give `notify`.
    pub fn url(&self) -> String {
        format!("{}://{}/hook", self.scheme, self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// For each delivery id, how many requests were answered 2xx.
    pub fn delivered(&self) -> HashMap<u64, usize> {
        let mut out = HashMap::new();
        for h in self.hits() {
            if h.answered.is_some_and(|s| (200..300).contains(&s)) {
                *out.entry(h.id).or_default() += 1;
            }
        }
        out
    }
}

/// Whether `hit` carries jobd's signature under `secret`:
/// `sha256=` HMAC-SHA256 over `ID.TIMESTAMP.BODY`, hex.
pub fn signed_with(secret: &[u8], hit: &Hit) -> bool {
    let Some(sig) = hit.signature.as_deref().and_then(|s| s.strip_prefix("sha256=")) else { return false };
    let Ok(want) = (0..sig.len()).step_by(2).map(|i| u8::from_str_radix(sig.get(i..i + 2).unwrap_or("zz"), 16)).collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else { return false };
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.body).as_bytes());
    mac.verify_slice(&want).is_ok()
}

async fn serve(listener: TcpListener, hits: Arc<Mutex<Vec<Hit>>>, answer: Arc<Answerer>, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (hits, answer, tls) = (hits.clone(), answer.clone(), tls.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(req, hits.clone(), answer.clone()));
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                // A handshake jobd refuses (an unknown CA) just ends here.
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

async fn handle(req: Request<hyper::body::Incoming>, hits: Arc<Mutex<Vec<Hit>>>, answer: Arc<Answerer>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut hit = Hit {
        id: header("x-jobd-delivery").and_then(|v| v.parse().ok()).unwrap_or(0),
        attempt: header("x-jobd-attempt").and_then(|v| v.parse().ok()).unwrap_or(0),
        timestamp: header("x-jobd-timestamp").and_then(|v| v.parse().ok()).unwrap_or(0),
        signature: header("x-jobd-signature"),
        body: String::new(),
        at_ms: 0,
        answered: None,
    };
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    hit.body = String::from_utf8_lossy(&body).into_owned();
    hit.at_ms = now_ms();
    let decision = {
        let mut hits = hits.lock().unwrap();
        let seen = hits.iter().filter(|h| h.id == hit.id).count();
        let a = answer(&hit, seen);
        if let Answer::Status(s) = a {
            hit.answered = Some(s);
        }
        hits.push(hit);
        a
    };
    match decision {
        Answer::Status(s) => {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok(resp)
        }
        Answer::Never => {
            // Held until jobd gives up on it (its timeout) or the test ends.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Response::new(Full::new(Bytes::new())))
        }
    }
}
