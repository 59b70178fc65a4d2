//! Checkpointing on the task side (DESIGN §6): barriers, what a subtask's snapshot contains,
//! where snapshots are stored, and how tasks talk to the CheckpointCoordinator (what a task
//! does for a checkpoint is `task::checkpointing`).
//!
//! Everything here is transport-agnostic: the MiniCluster wires the [`CheckpointResponder`] to
//! an in-process channel; the distributed cluster will wire it to RPC.

pub mod barrier;
pub mod metadata;
pub mod state;
pub mod storage;

pub use barrier::{BarrierHandler, BarrierOutcome};
pub use metadata::{CheckpointMetadata, OperatorStateMeta, StateHandle, METADATA_VERSION};
pub use state::{ListStateSnapshot, OperatorStateMode, OperatorSubtaskState, TaskRestore};
pub use storage::{CheckpointLocation, CheckpointStorage, StorageError};

use eddy_core::OperatorId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Checkpoint ids grow by one per trigger, savepoints included.
pub type CheckpointId = u64;

/// The reason a source declines a checkpoint that arrives after its input ended. Like Flink's
/// `CHECKPOINT_DECLINED_TASK_CLOSING`, such a decline aborts the checkpoint without counting
/// against the tolerable-failure threshold: it says nothing about the job's health.
pub const DECLINE_TASK_FINISHING: &str = "the source is finishing";

/// What a snapshot is for (Flink's `CheckpointType` / `SavepointType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// A periodic checkpoint, owned and cleaned up by the system.
    Checkpoint,
    /// A savepoint: triggered by the user, never deleted by the system.
    Savepoint,
    /// The savepoint of stop-with-savepoint: sources stop after it; with `drain` they first
    /// emit the final watermark and end their input, so every window fires.
    SavepointTerminate {
        /// Whether to flush all event time (`--drain`).
        drain: bool,
    },
}

impl SnapshotKind {
    /// Whether this is a savepoint of any kind.
    pub fn is_savepoint(self) -> bool {
        !matches!(self, SnapshotKind::Checkpoint)
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotKind::Checkpoint => write!(f, "checkpoint"),
            SnapshotKind::Savepoint => write!(f, "savepoint"),
            SnapshotKind::SavepointTerminate { drain: false } => write!(f, "stop-with-savepoint"),
            SnapshotKind::SavepointTerminate { drain: true } => {
                write!(f, "stop-with-savepoint (drain)")
            }
        }
    }
}

/// The barrier that separates the records of checkpoint n from those after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBarrier {
    /// Checkpoint id.
    pub id: CheckpointId,
    /// When the coordinator triggered it (ms since the epoch).
    pub timestamp: i64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// For savepoints: the directory the state goes to (checkpoints use the job's storage).
    pub savepoint_dir: Option<String>,
    /// Triggered after every source finished: a finished source takes part in every
    /// checkpoint but ends only once a final one completes (ending after an earlier one left
    /// the checkpoints after it waiting for a task that was gone).
    #[serde(default)]
    pub final_checkpoint: bool,
}

/// Identifies one subtask of a job: JobGraph vertex index and subtask index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubtaskKey {
    /// Index into `JobGraph::vertices`.
    pub vertex: usize,
    /// 0-based subtask index.
    pub subtask: usize,
}

/// Durations and size of one subtask's part of a checkpoint, for checkpoint statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskCheckpointMetrics {
    /// From the first barrier to the last one of this checkpoint at this task (ms).
    pub alignment_ms: u64,
    /// The synchronous part of the snapshot, on the task thread (µs).
    pub sync_us: u64,
    /// The asynchronous part (upload), off the task thread (µs).
    pub async_us: u64,
    /// Bytes of state written.
    pub state_size: u64,
}

/// A subtask's acknowledgement: its state handles by operator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskAcknowledgement {
    /// The checkpoint.
    pub checkpoint_id: CheckpointId,
    /// Which subtask.
    pub task: SubtaskKey,
    /// The stored state of each operator of the chain that had any.
    pub states: Vec<(OperatorId, StateHandle)>,
    /// Durations and size.
    pub metrics: SubtaskCheckpointMetrics,
}

/// How a task reaches the CheckpointCoordinator. Calls never block on the coordinator.
pub trait CheckpointResponder: Send + Sync {
    /// The subtask stored its state for the checkpoint.
    fn acknowledge(&self, ack: TaskAcknowledgement);
    /// The subtask cannot take part in the checkpoint; the checkpoint is aborted.
    fn decline(&self, checkpoint_id: CheckpointId, task: SubtaskKey, reason: String);
    /// A source subtask read all its input; once every source did, the coordinator triggers
    /// the final checkpoint right away (the job ends after it completes).
    fn source_finished(&self, task: SubtaskKey);
    /// The task restored its state and opened its operators: it runs (Flink's task state
    /// INITIALIZING → RUNNING). The JobMaster learns from it when a restart has recovered.
    fn task_running(&self, _task: SubtaskKey) {}
}

/// Messages to a task's mailbox from the coordinator side.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CheckpointMail {
    /// Sources only: take a snapshot and emit this barrier.
    Trigger(CheckpointBarrier),
    /// The checkpoint completed: commit what was pre-committed for it (and older ones).
    Complete(CheckpointId),
    /// The checkpoint was aborted: throw away what was prepared for it.
    Abort(CheckpointId),
}

/// A task's mailbox for checkpoint mail: written by the coordinator side, read by the task loop
/// between elements (one atomic load per turn when empty).
pub struct TaskMailbox {
    queue: parking_lot::Mutex<std::collections::VecDeque<CheckpointMail>>,
    has_mail: std::sync::atomic::AtomicBool,
    waker: std::sync::Arc<crate::waker::TaskWaker>,
}

impl TaskMailbox {
    /// A mailbox waking `waker` on delivery.
    pub fn new(waker: std::sync::Arc<crate::waker::TaskWaker>) -> Self {
        TaskMailbox {
            queue: Default::default(),
            has_mail: Default::default(),
            waker,
        }
    }

    /// Puts a mail in and wakes the task.
    pub fn deliver(&self, mail: CheckpointMail) {
        self.queue.lock().push_back(mail);
        self.has_mail
            .store(true, std::sync::atomic::Ordering::Release);
        self.waker.wake();
    }

    /// Takes the next mail, if any.
    #[inline]
    pub fn take(&self) -> Option<CheckpointMail> {
        if !self.has_mail.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let mut q = self.queue.lock();
        let m = q.pop_front();
        if q.is_empty() {
            self.has_mail
                .store(false, std::sync::atomic::Ordering::Release);
        }
        m
    }
}

type UploadJob = Box<dyn FnOnce() + Send>;

/// Runs the asynchronous part of snapshots (serialize and store) off the task threads, on a
/// small job-wide pool (Flink's async snapshot threads).
pub struct Uploader {
    tx: parking_lot::Mutex<Option<std::sync::mpsc::Sender<UploadJob>>>,
    threads: parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Uploader {
    /// A pool of `threads` upload threads.
    pub fn new(threads: usize) -> std::sync::Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<UploadJob>();
        let rx = std::sync::Arc::new(parking_lot::Mutex::new(rx));
        let handles = (0..threads.max(1))
            .filter_map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("checkpoint-upload-{i}"))
                    .spawn(move || loop {
                        let job = rx.lock().recv();
                        match job {
                            // A panicking upload (a bug) must not take the pool's thread with
                            // it; its checkpoint is never acknowledged and times out.
                            Ok(job) => {
                                if let Err(p) =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                                {
                                    tracing::error!(
                                        "a checkpoint upload panicked: {}",
                                        crate::error::panic_message(p.as_ref())
                                    );
                                }
                            }
                            Err(_) => return,
                        }
                    })
                    .ok()
            })
            .collect();
        std::sync::Arc::new(Uploader {
            tx: parking_lot::Mutex::new(Some(tx)),
            threads: parking_lot::Mutex::new(handles),
        })
    }

    /// Runs `job` on the pool (inline if the pool is shut down).
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let job: UploadJob = Box::new(job);
        let rejected = match &*self.tx.lock() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = rejected {
            job();
        }
    }

    /// Finishes queued uploads and stops the threads.
    pub fn shutdown(&self) {
        self.tx.lock().take();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }
}

/// What a task needs to take part in checkpoints.
pub struct TaskCheckpointing {
    /// Exactly-once (aligned) or at-least-once.
    pub mode: eddy_core::CheckpointingMode,
    /// This subtask.
    pub task: SubtaskKey,
    /// The job (checkpoint directories are per job).
    pub job_id: eddy_core::JobId,
    /// The coordinator.
    pub responder: std::sync::Arc<dyn CheckpointResponder>,
    /// Where checkpoint state goes.
    pub storage: std::sync::Arc<dyn CheckpointStorage>,
    /// The async snapshot pool.
    pub uploader: std::sync::Arc<Uploader>,
    /// Checkpoint mail from the coordinator.
    pub mailbox: std::sync::Arc<TaskMailbox>,
    /// Per operator of the chain: the name its state files get.
    pub operator_files: std::collections::BTreeMap<OperatorId, String>,
    /// Whether periodic checkpointing is on: then a task whose input ended waits for the final
    /// checkpoint, and transactional sinks commit only on checkpoint completion. Without it,
    /// tasks still take savepoints.
    pub periodic: bool,
}
