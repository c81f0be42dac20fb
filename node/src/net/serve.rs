//! The node's gRPC server: the Raft service and the forward service on one
//! listener, behind the cluster token and (when configured) mutual TLS.

use std::sync::Arc;

use proto::raft::forward_server::ForwardServer;
use proto::raft::raft_server::RaftServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tracing::warn;

use crate::net::forward::ForwardService;
use crate::net::raft_service::RaftService;
use crate::net::tls::Tls;
use crate::net::{check_token, MAX_MESSAGE_BYTES};

/// The TLS configuration did not load into the server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServeError(String);

/// The server, configured before Raft starts (so a TLS setting that does
/// not fit fails the start before anything runs).
pub struct GrpcServer {
    builder: tonic::transport::Server,
    token: Option<Arc<str>>,
}

impl GrpcServer {
    pub fn new(tls: Option<&Tls>, token: Option<Arc<str>>) -> Result<GrpcServer, ServeError> {
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls.server.clone()).map_err(|e| ServeError(e.to_string()))?;
        }
        Ok(GrpcServer { builder, token })
    }

    /// Serves `raft` and `forward` on `listener` until `stop` turns true.
    pub fn spawn(self, listener: TcpListener, raft: RaftService, forward: ForwardService, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let GrpcServer { mut builder, token } = self;
        tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let res = builder
                .add_service(InterceptedService::new(
                    RaftServer::new(raft).max_decoding_message_size(MAX_MESSAGE_BYTES),
                    check_token(token.clone()),
                ))
                .add_service(InterceptedService::new(
                    ForwardServer::new(forward).max_decoding_message_size(MAX_MESSAGE_BYTES),
                    check_token(token),
                ))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = res {
                warn!("raft gRPC service ended: {e}");
            }
        })
    }
}
