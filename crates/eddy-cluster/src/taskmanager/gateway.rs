//! How the jobmanager reaches its taskmanagers (Flink's `TaskExecutorGateway`), by resource
//! id, whatever carries the calls: over gRPC this is the jobmanager's
//! `TaskManagerLinks`. Submission blocks until the taskmanager answered; the other commands are
//! queued per taskmanager and delivered in order.

use crate::deployment::TaskDeployment;
use eddy_core::JobId;
use eddy_runtime::checkpoint::CheckpointMail;
use eddy_runtime::TaskError;

/// Why a taskmanager did not take a deployment.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// It could not be reached (an external failure: the process or network).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// It answered no (wrong binary, slots taken, bad input).
    #[error("refused: {0}")]
    Refused(String),
    /// Building one of the tasks failed (its operator's code said why). In-process callers
    /// get it as is; over RPC it arrives as [`SubmitError::Refused`] with its message.
    #[error(transparent)]
    Task(TaskError),
}

/// The calls a JobMaster makes on the taskmanagers running its tasks.
pub(crate) trait TaskExecutorGateway: Send + Sync {
    /// Deploys tasks on taskmanager `rid` (blocking until it answers).
    fn submit(&self, rid: &str, d: &TaskDeployment) -> Result<(), SubmitError>;
    /// Checkpoint mail (trigger, complete, abort) for the job's attempt on `rid`.
    fn mail(&self, rid: &str, job: JobId, attempt: u64, mail: CheckpointMail);
    /// Cancels the attempt's tasks on `rid`.
    fn cancel(&self, rid: &str, job: JobId, attempt: u64);
    /// Frees the attempt's slots on `rid`.
    fn free(&self, rid: &str, job: JobId, attempt: u64);
    /// Forgets `rid` (it was lost): commands for it are dropped.
    fn remove(&self, rid: &str);
}
