//! The JobMaster side of checkpointing: the CheckpointCoordinator, its statistics, and loading
//! a completed checkpoint back into per-subtask restore state.

pub mod coordinator;
pub mod restore;
pub mod stats;

pub use coordinator::{
    CheckpointCoordinator, CompletedCheckpoint, CoordinatorAction, JobEnd, OperatorInfo,
    SavepointError,
};
pub use stats::{CheckpointStats, CheckpointStatsSnapshot, CheckpointStatus};
