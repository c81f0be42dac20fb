//! Mutual TLS between nodes, with certificates made by the documented
//! recipe (`deploy/make-certs.sh`, openssl): members form a cluster and
//! forward writes over TLS; a plaintext peer, a peer without a client
//! certificate and a peer whose certificate another CA signed are refused.

mod common;

use std::path::Path;
use std::process::Command as Process;

use common::{create, Cluster};
use node::command::Response;
use node::net::tls::TlsFiles;
use proto::raft::raft_client::RaftClient;
use proto::raft::RaftRequest;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn make_certs(dir: &Path, names: &[&str]) {
    common::tools::require_tool("openssl");
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    let script = Path::new(&manifest).join("../deploy/make-certs.sh");
    let out = Process::new(script).arg(dir).args(names).output().expect("run deploy/make-certs.sh");
    assert!(out.status.success(), "make-certs: {}", String::from_utf8_lossy(&out.stderr));
}

fn files(dir: &Path, name: &str) -> TlsFiles {
    TlsFiles { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}-key.pem")), ca: dir.join("ca.pem") }
}

fn vote() -> tonic::Request<RaftRequest> {
    tonic::Request::new(RaftRequest { payload: b"{}".to_vec(), sent_at_unix_ms: 0, from_node: 9 })
}

/// A vote from a client with `tls` (or plaintext): Ok(code) if the request
/// reached the Raft service, Err(text) if the connection was refused.
async fn try_vote(addr: &str, tls: Option<ClientTlsConfig>) -> Result<tonic::Code, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut e = Endpoint::from_shared(format!("{scheme}://{addr}")).unwrap();
    if let Some(t) = tls {
        e = e.tls_config(t).unwrap();
    }
    let channel = e.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    match RaftClient::new(channel).vote(vote()).await {
        Ok(_) => Ok(tonic::Code::Ok),
        // The payload is not a real vote: the service answering
        // InvalidArgument shows the request got through TLS.
        Err(s) if s.code() == tonic::Code::InvalidArgument => Ok(s.code()),
        Err(s) => Err(format!("{s:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_talk_over_mutual_tls_and_strangers_are_refused() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path(), &["node", "member"]);
    let other_ca = tempfile::tempdir().unwrap();
    make_certs(other_ca.path(), &["intruder"]);

    let tls = files(certs.path(), "node").load().unwrap();
    let c = Cluster::start_with(3, 10_000, |cfg| cfg.tls = Some(tls.clone())).await;
    let leader = c.leader().await;
    let follower = (leader + 1) % 3;
    // Election, replication and forwarding from a follower all ran over TLS.
    assert!(matches!(c.node(follower).write(create("over-tls")).await, Ok(Response::Created { .. })));
    let addr = c.configs[leader].raft_addr.clone();

    // A member's certificate from the same CA is accepted.
    let member = files(certs.path(), "member").load().unwrap();
    assert_eq!(try_vote(&addr, Some(member.client)).await, Ok(tonic::Code::InvalidArgument));

    // Plaintext HTTP/2 gets no answer from a TLS listener.
    assert!(try_vote(&addr, None).await.is_err(), "plaintext accepted");
    // TLS that trusts our CA but shows no client certificate.
    let ca = Certificate::from_pem(std::fs::read(certs.path().join("ca.pem")).unwrap());
    let anonymous = ClientTlsConfig::new().ca_certificate(ca.clone());
    assert!(try_vote(&addr, Some(anonymous)).await.is_err(), "peer without a client certificate accepted");
    // A client certificate signed by another CA.
    let read = |n: &str| std::fs::read(other_ca.path().join(n)).unwrap();
    let intruder = ClientTlsConfig::new().ca_certificate(ca).identity(Identity::from_pem(read("intruder.pem"), read("intruder-key.pem")));
    assert!(try_vote(&addr, Some(intruder)).await.is_err(), "certificate from another CA accepted");

    // The cluster still works after the refused attempts.
    assert!(matches!(c.node(follower).write(create("still-over-tls")).await, Ok(Response::Created { .. })));
}
