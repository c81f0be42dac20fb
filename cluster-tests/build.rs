//! The etcd client the benchmarks compare against, generated with protox
//! (pure Rust, no system protoc), as the project's own protos are.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/etcd_kv.proto");
    let descriptors = protox::compile(["proto/etcd_kv.proto"], ["proto"])?;
    tonic_prost_build::configure().build_server(false).compile_fds(descriptors)?;
    Ok(())
}
