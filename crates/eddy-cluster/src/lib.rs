//! Eddy's cluster side (DESIGN §1, §2): the ExecutionGraph and the embedded MiniCluster.
//!
//! Owns: expanding a JobGraph into subtasks and channels ([`execution_graph`]), slot accounting,
//! deploying tasks as threads and supervising them ([`minicluster`]). Must not touch: operator
//! code or the state layout. The Dispatcher/ResourceManager/JobMaster processes of the
//! distributed cluster come in a later issue and reuse the ExecutionGraph.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod execution_graph;
pub mod minicluster;
pub mod restart;

pub use minicluster::{
    JobClient, JobExecutionError, JobExecutionResult, JobFailure, MiniCluster, SubtaskWatermarks,
};
pub use restart::RestartBackoff;
