//! jobd's wire types between nodes, generated from `proto/*.proto` at build
//! time. **Architecture invariant:** only node's gRPC adapters use these
//! types; everything else works with the domain types they carry.

pub mod raft {
    tonic::include_proto!("jobd.raft");
}
