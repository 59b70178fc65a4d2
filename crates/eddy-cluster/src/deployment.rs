//! What crosses from the jobmanager to taskmanagers to run a job (DESIGN §1, application
//! mode): not code, but the name of a job built into the binary, its arguments and settings.
//! Every process rebuilds the same [`JobProgram`] through its [`ProgramBuilder`] and checks the
//! job graph fingerprint, so a taskmanager running a different binary refuses the task with a
//! clear error instead of computing something else.

use crate::slot::AllocatedSlot;
use eddy_core::{CoreError, JobId};
use eddy_runtime::checkpoint::storage::CheckpointStorage;
use eddy_runtime::checkpoint::TaskRestore;
use eddy_runtime::factory::JobProgram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A job as the client submits it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSubmission {
    /// The job's id (assigned by the dispatcher).
    pub job_id: JobId,
    /// The name of the job in the binary's registry (e.g. `word_count`).
    pub entry: String,
    /// The job's own arguments.
    pub args: Vec<String>,
    /// Job settings (`parallelism.default`, `execution.checkpointing.interval`, …) on top of
    /// the cluster's configuration.
    pub settings: BTreeMap<String, String>,
    /// The fingerprint of the graph the dispatcher built; filled in by the dispatcher.
    #[serde(default)]
    pub fingerprint: String,
}

/// Why a submitted job's program could not be built. All but the fingerprint mismatch are
/// caused by the submission (the user); a mismatch means the processes run different
/// binaries (whoever deployed them).
#[derive(Debug, thiserror::Error)]
pub enum ProgramBuildError {
    /// The binary has no job of this name.
    #[error("unknown job '{entry}'; this binary has: {}", .known.join(", "))]
    UnknownJob {
        /// The name asked for.
        entry: String,
        /// The jobs the binary has.
        known: Vec<String>,
    },
    /// A setting of the submission is unknown or has a bad value.
    #[error(transparent)]
    InvalidSettings(CoreError),
    /// The job's own code rejected its arguments.
    #[error("{entry}: {message}\nusage: {entry} {usage}")]
    BadArguments {
        /// The job.
        entry: String,
        /// What the job said.
        message: String,
        /// Its usage line.
        usage: String,
    },
    /// The program the job built is not a valid job.
    #[error("invalid job: {0}")]
    InvalidJob(CoreError),
    /// A MiniCluster runs only the programs handed to it (a program's closures cannot be
    /// submitted by name).
    #[error("job {0} was not handed to this MiniCluster (it runs only programs handed to it)")]
    NotHandedOver(JobId),
    /// This process built another graph than the jobmanager did.
    #[error(
        "job graph fingerprint mismatch for job '{entry}' ({job_id}): this binary builds {ours}, \
         the jobmanager built {theirs}. Jobmanager and taskmanagers must run the same binary."
    )]
    FingerprintMismatch {
        /// The job.
        entry: String,
        /// Its id.
        job_id: JobId,
        /// The fingerprint built here.
        ours: String,
        /// The jobmanager's.
        theirs: String,
    },
}

/// Builds the program of a submitted job; the binary's job registry implements it.
pub trait ProgramBuilder: Send + Sync {
    /// Builds the program (the same in every process for the same submission).
    fn build(&self, submission: &JobSubmission) -> Result<JobProgram, ProgramBuildError>;

    /// Names of the jobs this binary carries, for error messages.
    fn job_names(&self) -> Vec<String>;
}

/// Builds the program and checks it against the fingerprint the dispatcher computed.
pub fn build_checked(
    builder: &dyn ProgramBuilder,
    submission: &JobSubmission,
) -> Result<JobProgram, ProgramBuildError> {
    let mut program = builder.build(submission)?;
    program.job_graph.job_id = submission.job_id;
    if submission.fingerprint.is_empty() {
        return Ok(program);
    }
    let fp = program.fingerprint();
    if fp != submission.fingerprint {
        return Err(ProgramBuildError::FingerprintMismatch {
            entry: submission.entry.clone(),
            job_id: submission.job_id,
            ours: fp,
            theirs: submission.fingerprint.clone(),
        });
    }
    Ok(program)
}

/// A taskmanager, as deployments name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerLocation {
    /// Its resource id.
    pub resource_id: String,
    /// Its data port (network stack), `host:port`.
    pub data_address: String,
}

/// The tasks of one attempt that one taskmanager runs, and where everything else runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDeployment {
    /// The job.
    pub submission: JobSubmission,
    /// The attempt (1 for the first deployment, +1 per restart).
    pub attempt: u64,
    /// The slots of this taskmanager the attempt uses, with the subtasks to run in each.
    pub slots: Vec<AllocatedSlot>,
    /// For every vertex and subtask: the index into `taskmanagers` that runs it.
    pub placement: Vec<Vec<usize>>,
    /// Every taskmanager of the attempt.
    pub taskmanagers: Vec<TaskManagerLocation>,
    /// The checkpoint or savepoint directory to restore from.
    pub restore_from: Option<String>,
    /// Whether state of operators no longer in the job may be skipped.
    pub allow_non_restored_state: bool,
    /// Set only when the jobmanager runs in the same process (the MiniCluster): what it
    /// already holds, handed over instead of sent. Never on the wire.
    #[serde(skip)]
    pub in_process: Option<InProcessHandover>,
}

/// The state of each subtask to restore, by (vertex index, subtask index).
pub type SubtaskStates = HashMap<(usize, usize), TaskRestore>;

impl TaskDeployment {
    /// The subtasks to run here: (vertex index, subtask index).
    pub fn tasks(&self) -> BTreeSet<(usize, usize)> {
        self.slots
            .iter()
            .flat_map(|s| &s.shared.subtasks)
            .map(|k| (k.vertex, k.subtask))
            .collect()
    }
}

/// What a jobmanager hands a TaskExecutor of its own process directly: the state the JobMaster
/// already read and matched to the subtasks (instead of every taskmanager reading
/// `restore_from` again), and the checkpoint storage of the job's coordinator (in-memory
/// checkpoint storage is reachable only through the same object).
#[derive(Clone)]
pub struct InProcessHandover {
    /// Per subtask (vertex index, subtask index): its state.
    pub states: Arc<SubtaskStates>,
    /// The coordinator's checkpoint storage.
    pub storage: Arc<dyn CheckpointStorage>,
}

impl std::fmt::Debug for InProcessHandover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessHandover")
            .field("states", &self.states.len())
            .field("storage", &self.storage.url())
            .finish()
    }
}
