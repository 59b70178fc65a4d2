//! Eddy's cluster side (DESIGN §1, §2, §8): the ExecutionGraph, the JobMaster, the embedded
//! MiniCluster, and the processes of a distributed cluster.
//!
//! Owns: expanding a JobGraph into subtasks and channels ([`execution_graph`]); the JobMaster's
//! supervision, checkpoint coordination and failover loop ([`jobmaster`]), shared by the
//! [`minicluster`] (tasks as threads of this process) and the distributed cluster: the
//! [`dispatcher`] and [`resource_manager`] of the jobmanager, the [`taskexecutor`] of a
//! taskmanager, what a deployment carries ([`deployment`]) and the gRPC control plane
//! between them ([`rpc`]). Must not touch: operator code or the state layout.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod deployment;
pub mod dispatcher;
pub mod execution_graph;
pub mod job_result_store;
pub mod jobmaster;
mod launch;
pub mod minicluster;
pub mod resource_manager;
pub mod restart;
pub mod rpc;
pub mod taskexecutor;

pub use minicluster::{
    JobClient, JobExecutionError, JobExecutionResult, JobFailure, JobStatus, MiniCluster,
    SubtaskWatermarks,
};
pub use restart::RestartBackoff;
