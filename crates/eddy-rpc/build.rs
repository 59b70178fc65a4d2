//! Generates the gRPC code from `proto/eddy.proto` with `protox`, a protobuf compiler in pure
//! Rust, so building needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/eddy.proto");
    let fds = protox::compile(["proto/eddy.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
