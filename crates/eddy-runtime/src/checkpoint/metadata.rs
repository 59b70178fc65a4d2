//! The `_metadata` file that makes a checkpoint or savepoint self-describing: which job and
//! checkpoint it is, and for every operator (by `uid`, or by its generated id) its parallelism,
//! max parallelism and one state handle per subtask. JSON with a format version, so a person
//! can read it and a later Eddy can refuse a format it does not know.

use super::{CheckpointId, SnapshotKind};
use eddy_core::JobId;
use serde::{Deserialize, Serialize};

/// Version of the `_metadata` format; bump on incompatible change.
pub const METADATA_VERSION: u32 = 1;

/// A stored piece of state: a file relative to the checkpoint directory, its size and CRC-32,
/// checked when it is read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHandle {
    /// File name inside the checkpoint directory.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-32 (IEEE) of the contents.
    pub crc32: u32,
}

/// The state of one operator across its subtasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorStateMeta {
    /// The key state is matched by: the operator's `uid`, or `auto-<id>` without one.
    pub key: String,
    /// The operator's name, for messages.
    pub name: String,
    /// Parallelism when the snapshot was taken.
    pub parallelism: usize,
    /// Max parallelism (number of key groups); must match on restore.
    pub max_parallelism: usize,
    /// Per subtask (index = subtask), the handle of its state, if it had any.
    pub subtasks: Vec<Option<StateHandle>>,
}

/// The contents of `_metadata`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// Format version ([`METADATA_VERSION`]).
    pub version: u32,
    /// The job that took it.
    pub job_id: JobId,
    /// The job's name (`--restore latest` picks by name).
    pub job_name: String,
    /// Checkpoint id.
    pub checkpoint_id: CheckpointId,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// When it was triggered (ms since the epoch).
    pub trigger_timestamp: i64,
    /// When it completed (ms since the epoch).
    pub completion_timestamp: i64,
    /// Every operator that has state.
    pub operators: Vec<OperatorStateMeta>,
}

impl CheckpointMetadata {
    /// Total bytes of state.
    pub fn state_size(&self) -> u64 {
        self.operators
            .iter()
            .flat_map(|o| o.subtasks.iter().flatten())
            .map(|h| h.size)
            .sum()
    }
}

/// The key an operator's state is stored under.
pub fn operator_state_key(uid: Option<&str>, id: eddy_core::OperatorId) -> String {
    match uid {
        Some(u) => u.to_string(),
        None => format!("auto-{id}"),
    }
}
