//! Checkpoint statistics (Flink's `CheckpointStatsTracker`): counts, the recent history with
//! per-subtask durations and sizes, and the latest completed, failed, savepoint and restored
//! checkpoints — what the REST API's `/jobs/:id/checkpoints` will show.

use eddy_runtime::checkpoint::{CheckpointId, SnapshotKind, SubtaskCheckpointMetrics, SubtaskKey};
use serde::Serialize;
use std::collections::VecDeque;

/// How many finished checkpoints the history keeps (Flink's `web.checkpoints.history`).
pub const HISTORY_SIZE: usize = 10;

/// Where a checkpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointStatus {
    /// Triggered, not every subtask acknowledged yet.
    InProgress,
    /// Complete: `_metadata` written.
    Completed,
    /// Aborted (declined, timed out, storage failure, job failover).
    Failed,
}

/// One checkpoint's statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckpointStats {
    /// Checkpoint id.
    pub id: CheckpointId,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// Status.
    pub status: CheckpointStatus,
    /// Trigger time (ms since the epoch).
    pub trigger_timestamp: i64,
    /// Time of the latest acknowledgement.
    pub latest_ack_timestamp: Option<i64>,
    /// Trigger to completion (or failure), ms.
    pub end_to_end_duration_ms: Option<u64>,
    /// Bytes of state stored.
    pub state_size: u64,
    /// Subtasks that acknowledged.
    pub num_acknowledged_subtasks: usize,
    /// Subtasks taking part.
    pub num_subtasks: usize,
    /// Per acknowledged subtask: alignment, sync and async durations, size.
    pub subtasks: Vec<(SubtaskKey, SubtaskCheckpointMetrics)>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Where it is stored once complete.
    pub external_path: Option<String>,
}

/// The checkpoint a job (attempt) was restored from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestoredCheckpointStats {
    /// Its id.
    pub id: CheckpointId,
    /// Its directory.
    pub external_path: String,
    /// When the restore happened (ms since the epoch).
    pub restore_timestamp: i64,
    /// Whether it was a savepoint.
    pub is_savepoint: bool,
}

/// Counts of checkpoints by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointCounts {
    /// Restores from a checkpoint (failovers and starts from a savepoint).
    pub restored: u64,
    /// Checkpoints triggered.
    pub total: u64,
    /// In progress now.
    pub in_progress: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
}

/// Everything the statistics API returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CheckpointStatsSnapshot {
    /// Counts.
    pub counts: CheckpointCounts,
    /// In-progress and recent checkpoints, newest first.
    pub history: Vec<CheckpointStats>,
    /// The latest completed checkpoint.
    pub latest_completed: Option<CheckpointStats>,
    /// The latest completed savepoint.
    pub latest_savepoint: Option<CheckpointStats>,
    /// The latest failed checkpoint.
    pub latest_failed: Option<CheckpointStats>,
    /// The latest restore.
    pub latest_restored: Option<RestoredCheckpointStats>,
}

/// Collects statistics as the coordinator works.
#[derive(Debug, Default)]
pub struct CheckpointStatsTracker {
    in_progress: Vec<CheckpointStats>,
    history: VecDeque<CheckpointStats>,
    snapshot: CheckpointStatsSnapshot,
}

impl CheckpointStatsTracker {
    /// A checkpoint was triggered.
    pub fn triggered(&mut self, id: CheckpointId, kind: SnapshotKind, now: i64, subtasks: usize) {
        self.snapshot.counts.total += 1;
        self.in_progress.push(CheckpointStats {
            id,
            kind,
            status: CheckpointStatus::InProgress,
            trigger_timestamp: now,
            latest_ack_timestamp: None,
            end_to_end_duration_ms: None,
            state_size: 0,
            num_acknowledged_subtasks: 0,
            num_subtasks: subtasks,
            subtasks: Vec::new(),
            failure_reason: None,
            external_path: None,
        });
    }

    /// A subtask acknowledged.
    pub fn acknowledged(
        &mut self,
        id: CheckpointId,
        task: SubtaskKey,
        m: SubtaskCheckpointMetrics,
        now: i64,
    ) {
        if let Some(s) = self.in_progress.iter_mut().find(|s| s.id == id) {
            s.latest_ack_timestamp = Some(now);
            s.num_acknowledged_subtasks += 1;
            s.state_size += m.state_size;
            s.subtasks.push((task, m));
        }
    }

    fn finish(&mut self, id: CheckpointId, now: i64) -> Option<CheckpointStats> {
        let i = self.in_progress.iter().position(|s| s.id == id)?;
        let mut s = self.in_progress.remove(i);
        s.end_to_end_duration_ms = Some((now - s.trigger_timestamp).max(0) as u64);
        Some(s)
    }

    fn record(&mut self, s: CheckpointStats) {
        self.history.push_front(s);
        self.history.truncate(HISTORY_SIZE);
    }

    /// The checkpoint completed at `path`.
    pub fn completed(&mut self, id: CheckpointId, now: i64, path: String) {
        if let Some(mut s) = self.finish(id, now) {
            s.status = CheckpointStatus::Completed;
            s.external_path = Some(path);
            self.snapshot.counts.completed += 1;
            if s.kind.is_savepoint() {
                self.snapshot.latest_savepoint = Some(s.clone());
            } else {
                self.snapshot.latest_completed = Some(s.clone());
            }
            self.record(s);
        }
    }

    /// The checkpoint failed.
    pub fn failed(&mut self, id: CheckpointId, now: i64, reason: String) {
        if let Some(mut s) = self.finish(id, now) {
            s.status = CheckpointStatus::Failed;
            s.failure_reason = Some(reason);
            self.snapshot.counts.failed += 1;
            self.snapshot.latest_failed = Some(s.clone());
            self.record(s);
        }
    }

    /// The job was restored from a checkpoint or savepoint.
    pub fn restored(&mut self, r: RestoredCheckpointStats) {
        self.snapshot.counts.restored += 1;
        self.snapshot.latest_restored = Some(r);
    }

    /// The current statistics.
    pub fn snapshot(&self) -> CheckpointStatsSnapshot {
        let mut s = self.snapshot.clone();
        s.counts.in_progress = self.in_progress.len() as u64;
        s.history = self
            .in_progress
            .iter()
            .rev()
            .cloned()
            .chain(self.history.iter().cloned())
            .collect();
        s
    }
}
