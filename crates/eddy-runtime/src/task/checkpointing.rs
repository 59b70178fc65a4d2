//! The subtask side of a checkpoint (Flink's `SubtaskCheckpointCoordinator`): what every task
//! does for a checkpoint, whatever heads it — forward the barrier, snapshot the chain
//! synchronously, hand the snapshot to the upload pool (which stores it and acknowledges, or
//! declines), and pass completion and abort notifications on to the chain.

use crate::checkpoint::storage::{storage_for_location, StorageError};
use crate::checkpoint::{
    BarrierHandler, BarrierOutcome, CheckpointBarrier, CheckpointId, CheckpointLocation,
    CheckpointMail, CheckpointStorage, OperatorSubtaskState, StateHandle, SubtaskCheckpointMetrics,
    TaskAcknowledgement, TaskCheckpointing,
};
use crate::environment::TaskEnv;
use crate::error::TaskError;
use crate::operators::co::{TwoInputDriver, TwoInputOperator};
use crate::output::Input;
use eddy_core::{CheckpointingMode, Data, OperatorId};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a task's chain must do for checkpoints, whatever heads it.
pub(crate) trait SnapshotTarget {
    fn emit_barrier(&mut self, b: &CheckpointBarrier) -> Result<(), TaskError>;
    fn snapshot_state(
        &mut self,
        b: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError>;
    fn notify(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError>;
}

impl<T: Data> SnapshotTarget for Box<dyn Input<T>> {
    fn emit_barrier(&mut self, b: &CheckpointBarrier) -> Result<(), TaskError> {
        Input::emit_barrier(self.as_mut(), b)
    }
    fn snapshot_state(
        &mut self,
        b: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        Input::snapshot_state(self.as_mut(), b, out)
    }
    fn notify(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError> {
        Input::notify_checkpoint(self.as_mut(), id, complete)
    }
}

impl<Op: TwoInputOperator> SnapshotTarget for TwoInputDriver<Op> {
    fn emit_barrier(&mut self, b: &CheckpointBarrier) -> Result<(), TaskError> {
        TwoInputDriver::emit_barrier(self, b)
    }
    fn snapshot_state(
        &mut self,
        b: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        TwoInputDriver::snapshot_state(self, b, out)
    }
    fn notify(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError> {
        TwoInputDriver::notify_checkpoint(self, id, complete)
    }
}

/// A task's checkpoint bookkeeping (Flink's `SubtaskCheckpointCoordinator`): its part of the
/// protocol, whatever heads the task.
pub(crate) struct SubtaskCheckpointCoordinator {
    cp: Option<Arc<TaskCheckpointing>>,
    /// Snapshotted checkpoints not yet notified (completed or aborted).
    pending: BTreeSet<CheckpointId>,
}

impl SubtaskCheckpointCoordinator {
    pub(crate) fn new(env: &TaskEnv) -> Self {
        SubtaskCheckpointCoordinator {
            cp: env.checkpointing.clone(),
            pending: BTreeSet::new(),
        }
    }

    /// Whether snapshots wait for completion or abort (every snapshot was notified): a task
    /// whose input ended may stop only then.
    pub(crate) fn all_notified(&self) -> bool {
        self.pending.is_empty()
    }

    /// At the end of a source's input: with periodic checkpoints, tells the coordinator the
    /// source finished and returns true (the task then waits for its final checkpoint);
    /// without, returns false (the task ends at once).
    pub(crate) fn source_finished(&self) -> bool {
        match self.cp.as_ref().filter(|c| c.periodic) {
            Some(cp) => {
                cp.responder.source_finished(cp.task);
                true
            }
            None => false,
        }
    }

    pub(crate) fn mode(&self) -> CheckpointingMode {
        self.cp
            .as_ref()
            .map_or(CheckpointingMode::ExactlyOnce, |c| c.mode)
    }

    #[inline]
    pub(crate) fn mail(&self) -> Option<CheckpointMail> {
        self.cp.as_ref().and_then(|c| c.mailbox.take())
    }

    pub(crate) fn decline(&self, id: CheckpointId, reason: String) {
        if let Some(cp) = &self.cp {
            cp.responder.decline(id, cp.task, reason);
        }
    }

    /// Forwards the barrier, snapshots the chain (plus `head`, a source's own state) and
    /// submits the upload.
    pub(crate) fn take(
        &mut self,
        barrier: CheckpointBarrier,
        alignment: Duration,
        target: &mut dyn SnapshotTarget,
        head: Option<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        target.emit_barrier(&barrier)?;
        let Some(cp) = self.cp.clone() else {
            return Ok(());
        };
        let started = Instant::now();
        let mut states: Vec<(OperatorId, OperatorSubtaskState)> = head.into_iter().collect();
        target.snapshot_state(&barrier, &mut states)?;
        let sync_us = started.elapsed().as_micros() as u64;
        self.pending.insert(barrier.id);
        cp.uploader.clone().submit(move || {
            upload(&cp, &barrier, states, alignment, sync_us);
        });
        Ok(())
    }

    /// Handles completion and abort mail; returns the mail it did not handle (triggers).
    pub(crate) fn on_mail(
        &mut self,
        mail: CheckpointMail,
        target: &mut dyn SnapshotTarget,
        handler: Option<&mut BarrierHandler>,
    ) -> Result<Option<CheckpointBarrier>, TaskError> {
        match mail {
            CheckpointMail::Trigger(b) => Ok(Some(b)),
            CheckpointMail::Complete(id) => {
                self.pending.retain(|p| *p > id);
                target.notify(id, true)?;
                Ok(None)
            }
            CheckpointMail::Abort(id) => {
                self.pending.remove(&id);
                if let Some(h) = handler {
                    h.abort(id);
                }
                target.notify(id, false)?;
                Ok(None)
            }
        }
    }

    /// Acts on what a barrier or an ended channel meant.
    pub(crate) fn on_outcome(
        &mut self,
        o: BarrierOutcome,
        target: &mut dyn SnapshotTarget,
    ) -> Result<(), TaskError> {
        if let Some(old) = o.aborted {
            self.decline(
                old,
                "a newer checkpoint's barrier arrived before this one's alignment completed".into(),
            );
        }
        if let Some((b, alignment)) = o.trigger {
            self.take(b, alignment, target, None)?;
        }
        Ok(())
    }
}

/// The asynchronous part of a snapshot: encode, store, acknowledge (or decline on failure).
fn upload(
    cp: &TaskCheckpointing,
    barrier: &CheckpointBarrier,
    states: Vec<(OperatorId, OperatorSubtaskState)>,
    alignment: Duration,
    sync_us: u64,
) {
    let started = Instant::now();
    let stored = (|| -> Result<(Vec<(OperatorId, StateHandle)>, u64), StorageError> {
        let mut handles = Vec::new();
        let mut size = 0u64;
        if states.is_empty() {
            return Ok((handles, size));
        }
        let (storage, loc): (Arc<dyn CheckpointStorage>, CheckpointLocation) =
            match &barrier.savepoint_dir {
                Some(dir) => (
                    storage_for_location(dir),
                    CheckpointLocation { dir: dir.clone() },
                ),
                None => {
                    let loc = cp.storage.checkpoint_location(cp.job_id, barrier.id)?;
                    (cp.storage.clone(), loc)
                }
            };
        for (op, state) in states {
            let base = cp
                .operator_files
                .get(&op)
                .cloned()
                .unwrap_or_else(|| format!("op-{op}"));
            let file = format!("{base}-{}", cp.task.subtask);
            let h = storage.write_state_with(&loc, &file, &mut |out| state.write_to(&base, out))?;
            size += h.size;
            handles.push((op, h));
        }
        Ok((handles, size))
    })();
    match stored {
        Ok((states, state_size)) => cp.responder.acknowledge(TaskAcknowledgement {
            checkpoint_id: barrier.id,
            task: cp.task,
            states,
            metrics: SubtaskCheckpointMetrics {
                alignment_ms: alignment.as_millis() as u64,
                sync_us,
                async_us: started.elapsed().as_micros() as u64,
                state_size,
            },
        }),
        Err(reason) => cp.responder.decline(
            barrier.id,
            cp.task,
            format!("storing the snapshot failed: {reason}"),
        ),
    }
}
