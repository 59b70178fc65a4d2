//! Loading a completed checkpoint or savepoint back into the state every subtask of a (possibly
//! rescaled, possibly changed) job starts from: state files are read and checked (size, CRC),
//! operators are matched by `uid` (or generated id), and each operator's state is
//! redistributed over its new parallelism.

use super::coordinator::CompletedCheckpoint;
use crate::jobmanager::job_master::JobStatus;
use crate::jobmanager::job_result_store::{FileJobResultStore, JobResult};
use eddy_core::jobgraph::JobGraph;
use eddy_core::keygroup::KeyGroupRange;
use eddy_runtime::checkpoint::metadata::operator_state_key;
use eddy_runtime::checkpoint::state::RestoredOperatorState;
use eddy_runtime::checkpoint::storage::{
    list_completed_checkpoints, resolve_restore_path, storage_for_location,
};
use eddy_runtime::checkpoint::{
    OperatorStateMeta, OperatorSubtaskState, StorageError, TaskRestore,
};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
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

/// The value of `execution.savepoint.path` (and `--restore`) that resumes the logical job:
/// see [`resolve_latest`].
pub const LATEST: &str = "latest";

/// What `latest` resolves to.
pub enum Latest {
    /// Nothing to resume: the job starts from empty state.
    Fresh,
    /// The newest readable checkpoint of the job, read.
    Restore(Box<LoadedCheckpoint>),
    /// The job's newest run finished after its last checkpoint: there is nothing left to do.
    AlreadyFinished(Box<JobResult>),
}

/// Resolves `latest` for the logical job `job_name` under the checkpoint directory `root`:
/// the newest completed checkpoint of a job of that name (any job id) that completed after
/// the newest FINISHED result of that name in the JobResultStore, falling back to older ones
/// of that span if one cannot be read. If such checkpoints exist and none can be read, it fails
/// naming each (it never starts over from empty state). Checkpoints older than a recorded
/// finish belong to runs that finished since (kept by NO_CLAIM): resuming them would replay
/// what the finished run committed, so a finished job with no newer checkpoint resolves to
/// [`Latest::AlreadyFinished`]. Unreadable `_metadata` files and job results are returned as
/// warnings.
pub fn resolve_latest(
    root: &Path,
    store: &FileJobResultStore,
    job_name: &str,
) -> Result<(Latest, Vec<String>), NoUsableCheckpoint> {
    let mut warnings = Vec::new();
    let (results, errors) = store.results();
    warnings.extend(errors.iter().map(|e| format!("skipping job result: {e}")));
    let finished = results
        .into_iter()
        .filter(|r| r.job_name == job_name && r.state == JobStatus::Finished)
        .max_by_key(|r| r.end_time_ms);
    let (found, errors) = list_completed_checkpoints(root, job_name);
    warnings.extend(errors.iter().map(|e| format!("skipping checkpoint: {e}")));
    let after = finished.as_ref().map_or(i64::MIN, |r| r.end_time_ms);
    let mut tried = Vec::new();
    for (loc, meta) in found
        .into_iter()
        .filter(|(_, m)| m.completion_timestamp > after)
    {
        match open_path(&loc.dir).and_then(|c| load(&c)) {
            Ok(l) => return Ok((Latest::Restore(Box::new(l)), warnings)),
            Err(e) => tried.push(FailedCandidate {
                id: meta.checkpoint_id,
                location: loc.dir.clone(),
                reason: e.to_string(),
            }),
        }
    }
    if !tried.is_empty() {
        return Err(NoUsableCheckpoint { tried });
    }
    Ok((
        match finished {
            Some(r) => Latest::AlreadyFinished(Box::new(r)),
            None => Latest::Fresh,
        },
        warnings,
    ))
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
    let storage = storage_for_location(&location.dir);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobmanager::job_result_store::JOB_RESULT_VERSION;
    use eddy_core::JobId;
    use eddy_runtime::checkpoint::storage::FileCheckpointStorage;
    use eddy_runtime::checkpoint::CheckpointStorage;
    use eddy_runtime::checkpoint::{
        CheckpointMetadata, SnapshotKind, StateHandle, METADATA_VERSION,
    };

    fn checkpoint(root: &Path, job: u128, id: u64, name: &str, done: i64, broken: bool) {
        let s = FileCheckpointStorage::new(root);
        let loc = s.checkpoint_location(JobId(job), id).unwrap();
        let handle: StateHandle = s
            .write_state_with(&loc, "op-x-0", &mut |out| {
                OperatorSubtaskState::default().write_to("x", out)
            })
            .unwrap();
        if broken {
            std::fs::write(Path::new(&loc.dir).join("op-x-0"), b"").unwrap();
        }
        let subtasks = vec![Some(handle)];
        let meta = CheckpointMetadata {
            version: METADATA_VERSION,
            job_id: JobId(job),
            job_name: name.into(),
            checkpoint_id: id,
            kind: SnapshotKind::Checkpoint,
            trigger_timestamp: done - 1,
            completion_timestamp: done,
            operators: vec![OperatorStateMeta {
                key: "x".into(),
                name: "x".into(),
                parallelism: 1,
                max_parallelism: 128,
                subtasks,
            }],
        };
        s.write_metadata(&loc, &meta).unwrap();
    }

    fn finished(store: &FileJobResultStore, job: u128, name: &str, end: i64) {
        store
            .create_dirty(&JobResult {
                version: JOB_RESULT_VERSION,
                job_id: JobId(job),
                job_name: name.into(),
                state: JobStatus::Finished,
                end_time_ms: end,
                error: None,
            })
            .unwrap();
    }

    fn resolve(root: &Path, store: &FileJobResultStore) -> Result<Latest, NoUsableCheckpoint> {
        resolve_latest(root, store, "job").map(|(l, _)| l)
    }

    #[test]
    fn latest_respects_finished_results_and_never_falls_back_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let store = FileJobResultStore::in_checkpoint_dir(root);
        assert!(matches!(resolve(root, &store), Ok(Latest::Fresh)));
        checkpoint(root, 1, 3, "job", 100, false);
        checkpoint(root, 1, 4, "job", 200, false);
        checkpoint(root, 9, 9, "other", 900, false);
        let Ok(Latest::Restore(l)) = resolve(root, &store) else {
            panic!("expected a restore")
        };
        assert_eq!(l.checkpoint.metadata.checkpoint_id, 4);
        // A run that finished after both: nothing to do, though they are still there.
        finished(&store, 2, "job", 300);
        let Ok(Latest::AlreadyFinished(r)) = resolve(root, &store) else {
            panic!("expected already finished")
        };
        assert_eq!(r.job_id, JobId(2));
        // A newer run of the same name checkpointed after that finish: it is resumed; if its
        // newest is damaged, the one before it.
        checkpoint(root, 5, 1, "job", 400, false);
        checkpoint(root, 5, 2, "job", 500, true);
        let Ok(Latest::Restore(l)) = resolve(root, &store) else {
            panic!("expected a restore")
        };
        assert_eq!(
            (
                l.checkpoint.metadata.job_id,
                l.checkpoint.metadata.checkpoint_id
            ),
            (JobId(5), 1)
        );
        // Every checkpoint since the finish damaged: an error naming each, never a fresh start.
        checkpoint(root, 5, 1, "job", 400, true);
        let Err(e) = resolve(root, &store) else {
            panic!("expected an error")
        };
        let text = e.to_string();
        assert_eq!(e.tried.len(), 2, "{text}");
        assert!(text.contains("chk-1") && text.contains("chk-2"), "{text}");
    }
}
