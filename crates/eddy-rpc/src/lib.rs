//! Eddy's control plane: the gRPC services of the ResourceManager, the JobMaster and the
//! TaskExecutor (DESIGN §8), generated from `proto/eddy.proto`. Only the wire types and stubs
//! live here; the logic behind them is in `eddy-cluster`.
#![allow(missing_docs)]

/// Generated messages, clients and servers of `eddy.rpc.v1`.
#[allow(unused_qualifications, clippy::unwrap_used, clippy::expect_used)]
pub mod v1 {
    tonic::include_proto!("eddy.rpc.v1");
}

pub use tonic;
