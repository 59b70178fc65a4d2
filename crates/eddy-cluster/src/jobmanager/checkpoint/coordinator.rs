//! The CheckpointCoordinator (JobMaster side, DESIGN §6): decides when checkpoint n is
//! triggered, collects the acknowledgements, completes (writes `_metadata`) or aborts, retains
//! and subsumes completed checkpoints, and counts failures against the tolerance.
//!
//! It is transport-agnostic: it never talks to tasks. Every method returns the
//! [`CoordinatorAction`]s (trigger these sources, notify everyone) that the caller delivers —
//! the MiniCluster through in-process mailboxes, the distributed cluster later through RPC.
//! Storage is reached through the [`CheckpointStorage`] trait; time comes in as arguments, so
//! the logic is tested without clocks or threads.

use super::stats::{CheckpointStatsSnapshot, CheckpointStatsTracker, RestoredCheckpointStats};
use eddy_core::{CheckpointConfig, JobId, OperatorId, RecoveryClaimMode};
use eddy_runtime::checkpoint::metadata::operator_state_key;
use eddy_runtime::checkpoint::storage::{savepoint_location, storage_for_location, StorageError};
use eddy_runtime::checkpoint::{
    CheckpointBarrier, CheckpointId, CheckpointLocation, CheckpointMetadata, CheckpointStorage,
    OperatorStateMeta, SnapshotKind, SubtaskKey, TaskAcknowledgement, METADATA_VERSION,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// What the caller must do after a coordinator call.
#[derive(Clone, Debug, PartialEq)]
pub enum CoordinatorAction {
    /// Deliver the trigger to every source subtask.
    TriggerSources(CheckpointBarrier),
    /// Tell every task the checkpoint completed (sinks commit).
    NotifyComplete(CheckpointId),
    /// Tell every task the checkpoint was aborted.
    NotifyAborted(CheckpointId),
    /// More consecutive checkpoint failures than tolerated: fail the job with this reason.
    FailJob(String),
    /// A savepoint request ended: its directory, or why it failed.
    SavepointDone {
        /// The request's id (from [`CheckpointCoordinator::trigger_savepoint`]).
        request: u64,
        /// The savepoint's directory, or the failure.
        result: Result<String, SavepointError>,
    },
}

/// Why a savepoint was not taken, grouped by who caused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SavepointError {
    /// The user gave no directory and the job has no `state.savepoints.dir`.
    #[error("no savepoint directory given and state.savepoints.dir is not set")]
    NoTargetDirectory,
    /// The job cannot take one now (restarting, ending, ended, another stop in progress):
    /// asked at the wrong moment.
    #[error("{0}")]
    NotNow(&'static str),
    /// The savepoint's storage could not be prepared (an external system failed).
    #[error("{0}")]
    Storage(String),
    /// The checkpoint behind it was aborted (declined by a task, timed out, a failover).
    #[error("{0}")]
    Aborted(String),
}

/// One operator of the job, as the coordinator records its state.
#[derive(Clone, Debug)]
pub struct OperatorInfo {
    /// Operator id.
    pub id: OperatorId,
    /// `uid`, if set.
    pub uid: Option<String>,
    /// Name for messages.
    pub name: String,
    /// Parallelism.
    pub parallelism: usize,
    /// Max parallelism.
    pub max_parallelism: usize,
}

/// A completed checkpoint the coordinator keeps for recovery.
#[derive(Clone)]
pub struct CompletedCheckpoint {
    /// Where it is.
    pub location: CheckpointLocation,
    /// What it holds.
    pub metadata: CheckpointMetadata,
    /// How to read it.
    pub storage: Arc<dyn CheckpointStorage>,
}

impl std::fmt::Debug for CompletedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletedCheckpoint")
            .field("id", &self.metadata.checkpoint_id)
            .field("location", &self.location)
            .finish()
    }
}

struct Pending {
    barrier: CheckpointBarrier,
    trigger_ms: i64,
    waiting: BTreeSet<SubtaskKey>,
    acks: Vec<TaskAcknowledgement>,
    savepoint_request: Option<u64>,
    /// Triggered after every source finished: the job ends once it completes.
    is_final: bool,
}

/// How the job ended, for the retention of its checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEnd {
    /// Every task finished.
    Finished,
    /// The user cancelled it.
    Cancelled,
    /// It failed for good (restarts exhausted).
    Failed,
}

/// The coordinator of one job.
pub struct CheckpointCoordinator {
    cfg: CheckpointConfig,
    job_id: JobId,
    job_name: String,
    storage: Arc<dyn CheckpointStorage>,
    tasks: BTreeSet<SubtaskKey>,
    sources: BTreeSet<SubtaskKey>,
    operators: BTreeMap<OperatorId, OperatorInfo>,
    next_id: CheckpointId,
    next_request: u64,
    pending: BTreeMap<CheckpointId, Pending>,
    completed: VecDeque<CompletedCheckpoint>,
    last_trigger_ms: Option<i64>,
    last_completion_ms: Option<i64>,
    consecutive_failures: usize,
    finished_sources: BTreeSet<SubtaskKey>,
    /// A stop-with-savepoint is in flight: no periodic checkpoints meanwhile.
    terminating: bool,
    /// Directories of restored snapshots the job claimed (`CLAIM`): deleted like its own.
    claimed: BTreeSet<String>,
    stats: CheckpointStatsTracker,
}

impl CheckpointCoordinator {
    /// A coordinator for a job whose subtasks are `tasks` (of which `sources` are triggered).
    /// Ids start at `first_id` (one past a restored checkpoint's).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: CheckpointConfig,
        job_id: JobId,
        job_name: String,
        storage: Arc<dyn CheckpointStorage>,
        tasks: BTreeSet<SubtaskKey>,
        sources: BTreeSet<SubtaskKey>,
        operators: Vec<OperatorInfo>,
        first_id: CheckpointId,
    ) -> Self {
        CheckpointCoordinator {
            cfg,
            job_id,
            job_name,
            storage,
            tasks,
            sources,
            operators: operators.into_iter().map(|o| (o.id, o)).collect(),
            next_id: first_id.max(1),
            next_request: 1,
            pending: BTreeMap::new(),
            completed: VecDeque::new(),
            last_trigger_ms: None,
            last_completion_ms: None,
            consecutive_failures: 0,
            finished_sources: BTreeSet::new(),
            terminating: false,
            claimed: BTreeSet::new(),
            stats: CheckpointStatsTracker::default(),
        }
    }

    /// The checkpoint storage.
    pub fn storage(&self) -> &Arc<dyn CheckpointStorage> {
        &self.storage
    }

    /// Completed checkpoints kept for recovery, newest first.
    pub fn completed_checkpoints(&self) -> impl Iterator<Item = &CompletedCheckpoint> {
        self.completed.iter().rev()
    }

    /// Adds a checkpoint the job was restored from, so a failover before the first new
    /// checkpoint goes back to it. Under `NO_CLAIM` it is never discarded by this job; under
    /// `CLAIM` it is the job's own, discarded once subsumed or when the job's checkpoints are.
    pub fn add_restored(&mut self, c: CompletedCheckpoint, claim: RecoveryClaimMode, now: i64) {
        self.record_restore(&c, now);
        self.next_id = self.next_id.max(c.metadata.checkpoint_id + 1);
        if claim == RecoveryClaimMode::Claim {
            self.claimed.insert(c.location.dir.clone());
        }
        self.completed.push_back(c);
    }

    /// Whether this job may delete a completed checkpoint: its own, or one it claimed.
    fn owns(&self, c: &CompletedCheckpoint) -> bool {
        c.metadata.job_id == self.job_id || self.claimed.contains(&c.location.dir)
    }

    /// Deletes a checkpoint this job owns; a claimed `chk-<n>` of another job also takes that
    /// job's directory with it once nothing else is left in it.
    fn discard_owned(&self, c: &CompletedCheckpoint) {
        if let Err(e) = c.storage.discard(&c.location) {
            tracing::warn!("could not discard checkpoint {}: {e}", c.location);
        }
        if c.metadata.job_id != self.job_id {
            let dir = Path::new(&c.location.dir);
            if dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("chk-"))
            {
                if let Some(job_dir) = dir.parent() {
                    let _ = std::fs::remove_dir(job_dir);
                }
            }
        }
    }

    /// Statistics.
    pub fn stats(&self) -> CheckpointStatsSnapshot {
        self.stats.snapshot()
    }

    /// Records a restore after a failover.
    pub fn record_restore(&mut self, c: &CompletedCheckpoint, now: i64) {
        self.stats.restored(RestoredCheckpointStats {
            id: c.metadata.checkpoint_id,
            external_path: c.location.dir.clone(),
            restore_timestamp: now,
            is_savepoint: c.metadata.kind.is_savepoint(),
        });
    }

    /// Whether periodic checkpoints are due and allowed at `now`.
    fn periodic_due(&self, now: i64) -> bool {
        let Some(interval) = self.cfg.interval_ms else {
            return false;
        };
        if self.terminating || self.all_sources_finished() {
            return false;
        }
        let open_checkpoints = self
            .pending
            .values()
            .filter(|p| p.savepoint_request.is_none())
            .count();
        if open_checkpoints >= self.cfg.max_concurrent.max(1) {
            return false;
        }
        if let Some(t) = self.last_trigger_ms {
            if now < t + interval as i64 {
                return false;
            }
        }
        if let Some(c) = self.last_completion_ms {
            if now < c + self.cfg.min_pause_ms as i64 {
                return false;
            }
        }
        // With a minimum pause, no new checkpoint while one is open (Flink).
        !(self.cfg.min_pause_ms > 0 && open_checkpoints > 0)
    }

    fn all_sources_finished(&self) -> bool {
        !self.sources.is_empty() && self.finished_sources.len() == self.sources.len()
    }

    /// Advances time: aborts timed-out checkpoints, triggers due ones (periodic, and the final
    /// checkpoint once every source finished).
    pub fn tick(&mut self, now: i64) -> Vec<CoordinatorAction> {
        let mut actions = Vec::new();
        let timeout = self.cfg.timeout_ms as i64;
        let expired: Vec<CheckpointId> = self
            .pending
            .iter()
            .filter(|(_, p)| now - p.trigger_ms >= timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let reason = format!(
                "checkpoint {id} expired before completing (timeout {} ms)",
                self.cfg.timeout_ms
            );
            actions.extend(self.abort(id, reason, now));
        }
        // The final checkpoint (every source finished) ignores interval and pause.
        let final_due = self.all_sources_finished() && !self.pending.values().any(|p| p.is_final);
        if final_due || self.periodic_due(now) {
            actions.extend(self.trigger(now, SnapshotKind::Checkpoint, None, None));
        }
        actions
    }

    /// When the next [`CheckpointCoordinator::tick`] may have something to do.
    pub fn next_tick(&self, now: i64) -> i64 {
        let mut t = now + 1000;
        if let Some(i) = self.cfg.interval_ms {
            let base = self.last_trigger_ms.map_or(now, |l| l + i as i64);
            t = t.min(base.max(now));
        }
        for p in self.pending.values() {
            t = t.min(p.trigger_ms + self.cfg.timeout_ms as i64);
        }
        t.max(now)
    }

    /// Triggers a savepoint (`kind` is a savepoint kind) into a fresh directory under
    /// `target`. Returns the request id the [`CoordinatorAction::SavepointDone`] names.
    pub fn trigger_savepoint(
        &mut self,
        now: i64,
        kind: SnapshotKind,
        target: &Path,
    ) -> (u64, Vec<CoordinatorAction>) {
        let request = self.next_request;
        self.next_request += 1;
        if self.terminating {
            return (
                request,
                vec![CoordinatorAction::SavepointDone {
                    request,
                    result: Err(SavepointError::NotNow(
                        "a stop-with-savepoint is already in progress",
                    )),
                }],
            );
        }
        if self.all_sources_finished() {
            return (
                request,
                vec![CoordinatorAction::SavepointDone {
                    request,
                    result: Err(SavepointError::NotNow(
                        "the job's sources have finished; it is ending",
                    )),
                }],
            );
        }
        let loc = match savepoint_location(target, self.job_id) {
            Ok(l) => l,
            Err(e) => {
                return (
                    request,
                    vec![CoordinatorAction::SavepointDone {
                        request,
                        result: Err(SavepointError::Storage(e.to_string())),
                    }],
                )
            }
        };
        if matches!(kind, SnapshotKind::SavepointTerminate { .. }) {
            self.terminating = true;
        }
        let actions = self.trigger(now, kind, Some(loc.dir), Some(request));
        (request, actions)
    }

    fn trigger(
        &mut self,
        now: i64,
        kind: SnapshotKind,
        savepoint_dir: Option<String>,
        savepoint_request: Option<u64>,
    ) -> Vec<CoordinatorAction> {
        let id = self.next_id;
        self.next_id += 1;
        let is_final = self.all_sources_finished();
        let barrier = CheckpointBarrier {
            id,
            timestamp: now,
            kind,
            savepoint_dir,
            final_checkpoint: is_final,
        };
        if savepoint_request.is_none() {
            self.last_trigger_ms = Some(now);
        }
        self.stats.triggered(id, kind, now, self.tasks.len());
        self.pending.insert(
            id,
            Pending {
                barrier: barrier.clone(),
                trigger_ms: now,
                waiting: self.tasks.clone(),
                acks: Vec::new(),
                savepoint_request,
                is_final,
            },
        );
        vec![CoordinatorAction::TriggerSources(barrier)]
    }

    /// A source subtask read all its input.
    pub fn source_finished(&mut self, task: SubtaskKey, now: i64) -> Vec<CoordinatorAction> {
        self.finished_sources.insert(task);
        self.tick(now)
    }

    /// A subtask acknowledged.
    pub fn acknowledge(&mut self, ack: TaskAcknowledgement, now: i64) -> Vec<CoordinatorAction> {
        let id = ack.checkpoint_id;
        let Some(p) = self.pending.get_mut(&id) else {
            // Late acknowledgement of an aborted checkpoint: its files may have been written
            // after the abort cleaned up; clean up again.
            if !ack.states.is_empty() && id < self.next_id && self.is_discarded(id) {
                if let Ok(loc) = self.storage.checkpoint_location(self.job_id, id) {
                    let _ = self.storage.discard(&loc);
                }
            }
            return Vec::new();
        };
        if !p.waiting.remove(&ack.task) {
            return Vec::new();
        }
        self.stats.acknowledged(id, ack.task, ack.metrics, now);
        p.acks.push(ack);
        if p.waiting.is_empty() {
            self.complete(id, now)
        } else {
            Vec::new()
        }
    }

    fn is_discarded(&self, id: CheckpointId) -> bool {
        !self
            .completed
            .iter()
            .any(|c| c.metadata.checkpoint_id == id)
    }

    /// A subtask declined: the checkpoint is aborted.
    pub fn decline(
        &mut self,
        id: CheckpointId,
        task: SubtaskKey,
        reason: &str,
        now: i64,
    ) -> Vec<CoordinatorAction> {
        if !self.pending.contains_key(&id) {
            return Vec::new();
        }
        let counts = reason != eddy_runtime::checkpoint::DECLINE_TASK_FINISHING;
        self.abort_counting(
            id,
            format!(
                "declined by subtask {} of vertex {}: {reason}",
                task.subtask + 1,
                task.vertex
            ),
            now,
            counts,
        )
    }

    fn complete(&mut self, id: CheckpointId, now: i64) -> Vec<CoordinatorAction> {
        let Some(p) = self.pending.remove(&id) else {
            return Vec::new();
        };
        let mut by_op: BTreeMap<OperatorId, OperatorStateMeta> = BTreeMap::new();
        for ack in &p.acks {
            for (op, handle) in &ack.states {
                let Some(info) = self.operators.get(op) else {
                    continue;
                };
                let e = by_op.entry(*op).or_insert_with(|| OperatorStateMeta {
                    key: operator_state_key(info.uid.as_deref(), info.id),
                    name: info.name.clone(),
                    parallelism: info.parallelism,
                    max_parallelism: info.max_parallelism,
                    subtasks: vec![None; info.parallelism],
                });
                if let Some(slot) = e.subtasks.get_mut(ack.task.subtask) {
                    *slot = Some(handle.clone());
                }
            }
        }
        let metadata = CheckpointMetadata {
            version: METADATA_VERSION,
            job_id: self.job_id,
            job_name: self.job_name.clone(),
            checkpoint_id: id,
            kind: p.barrier.kind,
            trigger_timestamp: p.trigger_ms,
            completion_timestamp: now,
            operators: by_op.into_values().collect(),
        };
        let (storage, loc): (
            Arc<dyn CheckpointStorage>,
            Result<CheckpointLocation, StorageError>,
        ) = match &p.barrier.savepoint_dir {
            Some(dir) => (
                storage_for_location(dir),
                Ok(CheckpointLocation { dir: dir.clone() }),
            ),
            None => (
                self.storage.clone(),
                self.storage.checkpoint_location(self.job_id, id),
            ),
        };
        let written = loc.and_then(|loc| storage.write_metadata(&loc, &metadata).map(|()| loc));
        let loc = match written {
            Ok(l) => l,
            Err(e) => {
                // Put it back so `abort` cleans up and counts it.
                self.pending.insert(id, p);
                return self.abort(
                    id,
                    format!("writing the checkpoint metadata failed: {e}"),
                    now,
                );
            }
        };
        tracing::info!(
            job = %self.job_id,
            checkpoint = id,
            kind = %metadata.kind,
            size = metadata.state_size(),
            ms = now - p.trigger_ms,
            "completed checkpoint"
        );
        self.stats.completed(id, now, loc.dir.clone());
        let mut actions = Vec::new();
        let kind = metadata.kind;
        if kind == SnapshotKind::Checkpoint {
            self.last_completion_ms = Some(now);
            self.consecutive_failures = 0;
            self.completed.push_back(CompletedCheckpoint {
                location: loc.clone(),
                metadata,
                storage,
            });
            self.subsume();
        }
        // Older pending checkpoints can no longer matter: this one subsumes them.
        let older: Vec<CheckpointId> = self
            .pending
            .iter()
            .filter(|(k, q)| **k < id && q.savepoint_request.is_none())
            .map(|(k, _)| *k)
            .collect();
        for o in older {
            actions.extend(self.abort_quietly(o, "subsumed by a newer completed checkpoint", now));
        }
        // Intermediate savepoints do not commit side effects (Flink 1.15+): a failover goes back
        // to the latest checkpoint, which must not find the savepoint's data committed.
        if kind != SnapshotKind::Savepoint {
            actions.push(CoordinatorAction::NotifyComplete(id));
        }
        if let Some(request) = p.savepoint_request {
            actions.push(CoordinatorAction::SavepointDone {
                request,
                result: Ok(loc.dir),
            });
        }
        actions
    }

    fn subsume(&mut self) {
        let keep = self.cfg.num_retained.max(1);
        while self.completed.len() > keep {
            if let Some(old) = self.completed.pop_front() {
                // Checkpoints of another job (restored from) are not ours to delete, unless
                // claimed.
                if self.owns(&old) {
                    self.discard_owned(&old);
                }
            }
        }
    }

    fn abort_quietly(
        &mut self,
        id: CheckpointId,
        reason: &str,
        now: i64,
    ) -> Vec<CoordinatorAction> {
        let Some(p) = self.pending.remove(&id) else {
            return Vec::new();
        };
        self.discard_pending(&p);
        self.stats.failed(id, now, reason.to_string());
        vec![CoordinatorAction::NotifyAborted(id)]
    }

    fn discard_pending(&self, p: &Pending) {
        match &p.barrier.savepoint_dir {
            Some(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            None => {
                if let Ok(loc) = self.storage.checkpoint_location(self.job_id, p.barrier.id) {
                    let _ = self.storage.discard(&loc);
                }
            }
        }
    }

    /// Aborts checkpoint `id`, counting the failure.
    pub fn abort(&mut self, id: CheckpointId, reason: String, now: i64) -> Vec<CoordinatorAction> {
        self.abort_counting(id, reason, now, true)
    }

    /// Aborts checkpoint `id`; `counts` says whether the failure counts against the
    /// tolerable-failure threshold.
    fn abort_counting(
        &mut self,
        id: CheckpointId,
        reason: String,
        now: i64,
        counts: bool,
    ) -> Vec<CoordinatorAction> {
        let Some(p) = self.pending.remove(&id) else {
            return Vec::new();
        };
        tracing::warn!(job = %self.job_id, checkpoint = id, "checkpoint failed: {reason}");
        self.discard_pending(&p);
        self.stats.failed(id, now, reason.clone());
        let mut actions = vec![CoordinatorAction::NotifyAborted(id)];
        if let Some(request) = p.savepoint_request {
            if matches!(p.barrier.kind, SnapshotKind::SavepointTerminate { .. }) {
                self.terminating = false;
            }
            actions.push(CoordinatorAction::SavepointDone {
                request,
                result: Err(SavepointError::Aborted(reason)),
            });
        } else if counts {
            self.consecutive_failures += 1;
            if self.consecutive_failures > self.cfg.tolerable_failed {
                actions.push(CoordinatorAction::FailJob(format!(
                    "exceeded checkpoint tolerable failure threshold ({}): {reason}",
                    self.cfg.tolerable_failed
                )));
            }
        }
        actions
    }

    /// The job is restarting: every pending checkpoint is aborted (without counting against
    /// the tolerance), sources start over.
    pub fn reset_for_restart(&mut self, now: i64) -> Vec<CoordinatorAction> {
        let ids: Vec<_> = self.pending.keys().copied().collect();
        let mut actions = Vec::new();
        for id in ids {
            if let Some(p) = self.pending.remove(&id) {
                self.discard_pending(&p);
                self.stats.failed(id, now, "the job restarted".into());
                if let Some(request) = p.savepoint_request {
                    actions.push(CoordinatorAction::SavepointDone {
                        request,
                        result: Err(SavepointError::Aborted(
                            "the job failed and restarted while the savepoint was taken".into(),
                        )),
                    });
                }
            }
        }
        self.terminating = false;
        self.finished_sources.clear();
        self.consecutive_failures = 0;
        self.last_trigger_ms = Some(now);
        actions
    }

    /// The job ended: discards pending checkpoints and, by the retention policy, completed ones.
    pub fn on_job_end(&mut self, end: JobEnd) {
        use eddy_core::ExternalizedCheckpointRetention as R;
        let keep = match end {
            JobEnd::Finished => false,
            JobEnd::Cancelled => self.cfg.retention == R::RetainOnCancellation,
            JobEnd::Failed => self.cfg.retention != R::NoExternalizedCheckpoints,
        };
        self.end(keep);
    }

    /// The job ended, but its completed checkpoints stay whatever the retention policy (its
    /// result could not be recorded: a restart must find its final state).
    pub fn on_job_end_retaining(&mut self) {
        self.end(true);
    }

    fn end(&mut self, keep: bool) {
        let pending: Vec<_> = std::mem::take(&mut self.pending).into_values().collect();
        for p in &pending {
            self.discard_pending(p);
        }
        if !keep {
            // Oldest first: a crash in between leaves the newest, the one a restart wants.
            let completed: Vec<CompletedCheckpoint> = self.completed.drain(..).collect();
            for c in completed {
                if self.owns(&c) {
                    self.discard_owned(&c);
                }
            }
            self.storage.discard_job_dir_if_empty(self.job_id);
        }
    }
}
