//! Loading a completed checkpoint or savepoint back into the state every subtask of a (possibly
//! rescaled, possibly changed) job starts from: state files are read and checked (size, CRC),
//! operators are matched by `uid` (or generated id), and each operator's state is
//! redistributed over its new parallelism.

use super::coordinator::CompletedCheckpoint;
use eddy_core::jobgraph::JobGraph;
use eddy_core::keygroup::KeyGroupRange;
use eddy_runtime::checkpoint::metadata::operator_state_key;
use eddy_runtime::checkpoint::state::RestoredOperatorState;
use eddy_runtime::checkpoint::storage::{resolve_restore_path, FileCheckpointStorage};
use eddy_runtime::checkpoint::{
    CheckpointStorage, OperatorStateMeta, OperatorSubtaskState, StorageError, TaskRestore,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use thiserror::Error;

/// Why a checkpoint cannot be restored.
#[derive(Debug, Error)]
pub enum RestoreError {
    /// Reading the checkpoint failed (missing or corrupt files).
    #[error("cannot restore from {location}: {source}")]
    Storage {
        /// The checkpoint's directory.
        location: String,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// A state file does not decode.
    #[error("cannot restore from {location}: state of operator '{operator}' is corrupt: {reason}")]
    Corrupt {
        /// The checkpoint's directory.
        location: String,
        /// The operator.
        operator: String,
        /// Why.
        reason: String,
    },
    /// State of an operator that is not in the job.
    #[error(
        "cannot restore from {location}: it holds state of operator '{operator}' ({key}), which \
         matches no operator of the job; give operators stable uids, or allow non-restored \
         state to skip it"
    )]
    UnmatchedState {
        /// The checkpoint's directory.
        location: String,
        /// The operator's name in the checkpoint.
        operator: String,
        /// Its key (uid or generated id).
        key: String,
    },
    /// No retained checkpoint could be restored.
    #[error(transparent)]
    NoUsableCheckpoint(#[from] NoUsableCheckpoint),
    /// The max parallelism changed, so key groups do not line up.
    #[error(
        "cannot restore from {location}: operator '{operator}' had max parallelism {snapshot}, the \
         job has {job}; the max parallelism must not change"
    )]
    MaxParallelism {
        /// The checkpoint's directory.
        location: String,
        /// The operator.
        operator: String,
        /// In the checkpoint.
        snapshot: usize,
        /// In the job.
        job: usize,
    },
}

/// One retained checkpoint a restore could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCandidate {
    /// The checkpoint's id.
    pub id: u64,
    /// Its directory.
    pub location: String,
    /// Why it could not be restored.
    pub reason: String,
}

impl std::fmt::Display for FailedCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checkpoint {} ({}): {}",
            self.id, self.location, self.reason
        )
    }
}

/// Every retained checkpoint of a job that completed checkpoints failed to restore: the job
/// does not start over from empty state (its sinks would write committed output again).
#[derive(Debug, Error)]
#[error(
    "no retained checkpoint of the job can be restored, and a job that completed checkpoints \
     never starts over from empty state; tried {}",
    tried.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ")
)]
pub struct NoUsableCheckpoint {
    /// The checkpoints tried, newest first.
    pub tried: Vec<FailedCandidate>,
}

/// A checkpoint read into memory.
pub struct LoadedCheckpoint {
    /// The checkpoint.
    pub checkpoint: CompletedCheckpoint,
    /// Per operator key: its metadata and decoded subtask states.
    pub states: BTreeMap<String, (OperatorStateMeta, Vec<Option<OperatorSubtaskState>>)>,
}

/// Opens a restore path (a `chk-<n>` or savepoint directory, its `_metadata`, or a `file://`
/// URL) as a completed checkpoint.
pub fn open_path(path: &str) -> Result<CompletedCheckpoint, RestoreError> {
    let storage_err = |source| RestoreError::Storage {
        location: path.to_string(),
        source,
    };
    let location = resolve_restore_path(path).map_err(storage_err)?;
    let storage: Arc<dyn CheckpointStorage> = Arc::new(FileCheckpointStorage::new(&location.dir));
    let metadata = storage.read_metadata(&location).map_err(storage_err)?;
    Ok(CompletedCheckpoint {
        location,
        metadata,
        storage,
    })
}

/// Reads every state file of a checkpoint, checking sizes and checksums.
pub fn load(c: &CompletedCheckpoint) -> Result<LoadedCheckpoint, RestoreError> {
    let location = c.location.dir.clone();
    let mut states = BTreeMap::new();
    for op in &c.metadata.operators {
        let mut subtasks = Vec::with_capacity(op.subtasks.len());
        for h in &op.subtasks {
            let s = match h {
                None => None,
                Some(h) => {
                    let bytes = c.storage.read_state(&c.location, h).map_err(|source| {
                        RestoreError::Storage {
                            location: location.clone(),
                            source,
                        }
                    })?;
                    Some(
                        OperatorSubtaskState::from_bytes(&bytes, &op.name).map_err(|e| {
                            RestoreError::Corrupt {
                                location: location.clone(),
                                operator: op.name.clone(),
                                reason: format!("{}: {e}", h.file),
                            }
                        })?,
                    )
                }
            };
            subtasks.push(s);
        }
        states.insert(op.key.clone(), (op.clone(), subtasks));
    }
    Ok(LoadedCheckpoint {
        checkpoint: c.clone(),
        states,
    })
}

/// The restore state of every subtask of `job` (by vertex index and subtask), matching
/// operators by key. State matching no operator is an error unless `allow_non_restored`.
pub fn assign(
    loaded: &LoadedCheckpoint,
    job: &JobGraph,
    allow_non_restored: bool,
) -> Result<HashMap<(usize, usize), TaskRestore>, RestoreError> {
    let location = &loaded.checkpoint.location.dir;
    let mut matched = std::collections::BTreeSet::new();
    let mut out: HashMap<(usize, usize), TaskRestore> = HashMap::new();
    for (vi, v) in job.vertices.iter().enumerate() {
        for subtask in 0..v.parallelism {
            let mut r = TaskRestore {
                checkpoint_id: loaded.checkpoint.metadata.checkpoint_id,
                operators: BTreeMap::new(),
            };
            for &op_id in &v.operators {
                let Some(op) = job.operator(op_id) else {
                    continue;
                };
                let key = operator_state_key(op.uid.as_deref(), op.id);
                let Some((meta, old)) = loaded.states.get(&key) else {
                    continue;
                };
                if meta.max_parallelism != op.max_parallelism && op.keyed {
                    return Err(RestoreError::MaxParallelism {
                        location: location.clone(),
                        operator: op.name.clone(),
                        snapshot: meta.max_parallelism,
                        job: op.max_parallelism,
                    });
                }
                matched.insert(key);
                let range =
                    KeyGroupRange::for_operator_index(op.max_parallelism, op.parallelism, subtask);
                r.operators.insert(
                    op_id,
                    RestoredOperatorState::assign(old, subtask, op.parallelism, range),
                );
            }
            out.insert((vi, subtask), r);
        }
    }
    if !allow_non_restored {
        if let Some((key, (meta, _))) = loaded.states.iter().find(|(k, _)| !matched.contains(*k)) {
            return Err(RestoreError::UnmatchedState {
                location: location.clone(),
                operator: meta.name.clone(),
                key: key.clone(),
            });
        }
    }
    Ok(out)
}
