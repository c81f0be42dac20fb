//! gRPC between nodes: the Raft RPCs (client and service) and write
//! forwarding. Only this module touches `proto`'s generated types.

pub mod forward;
pub mod raft_client;
pub mod raft_service;
pub mod serve;
pub mod stand;
pub mod tls;

/// The largest gRPC message accepted, large enough for the biggest
/// AppendEntries openraft sends with our `max_payload_entries` and for one
/// snapshot chunk.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The gRPC metadata key that carries the cluster token.
pub const TOKEN_HEADER: &str = "x-jobd-token";

/// Adds the cluster token (if any) to an outgoing request.
pub fn with_token<T>(mut req: tonic::Request<T>, token: Option<&str>) -> tonic::Request<T> {
    if let Some(t) = token.and_then(|t| t.parse().ok()) {
        req.metadata_mut().insert(TOKEN_HEADER, t);
    }
    req
}

/// A server-side check: with a token configured, a request without it (or
/// with another) is refused before it reaches Raft.
pub fn check_token(expected: Option<std::sync::Arc<str>>) -> impl Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req: tonic::Request<()>| {
        let Some(want) = &expected else { return Ok(req) };
        let got = req.metadata().get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
        // Compare without an early exit on the first differing byte.
        let same = got.is_some_and(|g| g.len() == want.len() && g.bytes().zip(want.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0);
        if same {
            Ok(req)
        } else {
            Err(tonic::Status::unauthenticated("wrong or missing cluster token"))
        }
    }
}

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(v)
}

pub(crate) fn decode<T: for<'de> serde::Deserialize<'de>>(b: &[u8]) -> Result<T, tonic::Status> {
    serde_json::from_slice(b).map_err(|e| tonic::Status::invalid_argument(format!("undecodable payload: {e}")))
}
