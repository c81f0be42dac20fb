//! Mutual TLS between nodes (rustls through tonic). With it, every peer
//! link is encrypted and both ends prove they hold a certificate signed by
//! the cluster's CA: a stranger can neither vote, append nor forward, and
//! cannot read the replicated commands on the wire.
//!
//! A node presents one certificate both as a server and as a client, so it
//! must be valid for both uses (`serverAuth` and `clientAuth`) and name the
//! host or IP that peers dial (the host in their `--peers` entry);
//! `deploy/make-certs.sh` makes such a set with openssl.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The three files that turn TLS on (all or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The cluster CA (PEM): the only issuer accepted from peers.
    pub ca: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS needs --tls-cert, --tls-key and --tls-ca together (missing {0})")]
    Incomplete(&'static str),
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds no PEM block")]
    NotPem { path: String },
}

/// Loaded TLS settings for both directions of the peer links.
#[derive(Clone, Debug)]
pub struct Tls {
    pub server: ServerTlsConfig,
    pub client: ClientTlsConfig,
}

impl TlsFiles {
    /// From the three optional flags: `Ok(None)` when none is given.
    pub fn from_flags(cert: Option<&Path>, key: Option<&Path>, ca: Option<&Path>) -> Result<Option<TlsFiles>, TlsError> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(c), Some(k), Some(a)) => Ok(Some(TlsFiles { cert: c.into(), key: k.into(), ca: a.into() })),
            (None, _, _) => Err(TlsError::Incomplete("--tls-cert")),
            (_, None, _) => Err(TlsError::Incomplete("--tls-key")),
            (_, _, None) => Err(TlsError::Incomplete("--tls-ca")),
        }
    }

    /// Reads the files. The server requires a client certificate from the
    /// CA (no anonymous peers); the client trusts only the CA, not the
    /// system's roots, and checks the peer's name against the dialed host.
    pub fn load(&self) -> Result<Tls, TlsError> {
        let cert = read_pem(&self.cert)?;
        let key = read_pem(&self.key)?;
        let ca = Certificate::from_pem(read_pem(&self.ca)?);
        let identity = Identity::from_pem(cert, key);
        Ok(Tls {
            server: ServerTlsConfig::new().identity(identity.clone()).client_ca_root(ca.clone()),
            client: ClientTlsConfig::new().identity(identity).ca_certificate(ca),
        })
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })?;
    // rustls would say "no certificates found" much later, at the first
    // handshake; a wrong file should stop the node at start instead.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::NotPem { path: path.display().to_string() });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_or_none() {
        let p = Some(Path::new("x"));
        assert!(TlsFiles::from_flags(None, None, None).unwrap().is_none());
        assert!(TlsFiles::from_flags(p, p, p).unwrap().is_some());
        let e = TlsFiles::from_flags(p, None, p).unwrap_err().to_string();
        assert!(e.contains("missing --tls-key"), "{e}");
    }

    #[test]
    fn missing_or_non_pem_files_are_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a certificate").unwrap();
        let files = TlsFiles { cert: junk.clone(), key: junk.clone(), ca: junk };
        assert!(matches!(files.load(), Err(TlsError::NotPem { .. })));
        let files = TlsFiles { cert: dir.path().join("nope"), key: "k".into(), ca: "c".into() };
        assert!(matches!(files.load(), Err(TlsError::Read { .. })));
    }
}
