//! Eddy's cluster side (DESIGN §1, §2, §8): the ExecutionGraph, the JobMaster, the embedded
//! MiniCluster, and the processes of a distributed cluster.
//!
//! Owns, by role as in Flink: the [`jobmanager`] (Dispatcher, ResourceManager, one JobMaster
//! per job with its ExecutionGraph, checkpoint coordination, restart strategies, the job
//! result store, and its gRPC services) and the [`taskmanager`] (TaskExecutor and its gRPC
//! services); what a deployment carries ([`deployment`]); slots as one type ([`slot`]);
//! what both sides of the control plane
//! share ([`rpc`]); the REST API's bodies ([`rest_api`]); and the embedded [`minicluster`] (the same Dispatcher, ResourceManager and
//! TaskExecutors in one process, behind in-process gateways). Must not touch: operator code or the state layout.
#![warn(missing_docs)]

pub mod deployment;
pub mod jobmanager;
pub mod minicluster;
pub mod rest_api;
pub mod rpc;
pub mod slot;
pub mod taskmanager;

pub use jobmanager::restart::RestartBackoff;
pub use minicluster::{
    JobClient, JobExecutionError, JobExecutionResult, JobFailure, JobStatus, MiniCluster,
    SubtaskWatermarks,
};
