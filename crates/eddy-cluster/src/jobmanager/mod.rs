//! The jobmanager's roles (Flink's names): the [`dispatcher`] that takes submissions (and the
//! [`gateways`] the REST API and TaskExecutors reach it and its ResourceManager through), the
//! [`resource_manager`] with its slot bookkeeping, one [`job_master`] per job with its
//! [`execution_graph`] and its scheduler (`scheduler`: slots, placement, deployment through
//! the TaskExecutor gateway), [`checkpoint`] coordination, [`restart`] strategies and the
//! [`job_result_store`], and the gRPC services of the jobmanager process ([`rpc_services`]).

pub mod checkpoint;
pub mod dispatcher;
pub mod execution_graph;
pub mod gateways;
pub mod job_master;
pub mod job_result_store;
pub mod resource_manager;
pub mod restart;
pub mod rpc_services;
pub(crate) mod scheduler;

pub use rpc_services::{start_jobmanager, JobManagerHandle};
