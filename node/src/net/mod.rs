//! gRPC between nodes: the Raft RPCs (client and service) and write
//! forwarding. Only this module touches `proto`'s generated types.

pub mod forward;
pub mod raft_client;
pub mod raft_service;

/// The largest gRPC message accepted, large enough for the biggest
/// AppendEntries openraft sends with our `max_payload_entries` and for one
/// snapshot chunk.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(v)
}

pub(crate) fn decode<T: for<'de> serde::Deserialize<'de>>(b: &[u8]) -> Result<T, tonic::Status> {
    serde_json::from_slice(b).map_err(|e| tonic::Status::invalid_argument(format!("undecodable payload: {e}")))
}
