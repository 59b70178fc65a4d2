//! Operator chains: operators fused into one task call each other directly.
//!
//! [`Input`] is the one dynamic boundary between operators of a chain, and it is crossed once
//! per *batch* of records, never per record; inside an operator the per-record loop is
//! monomorphised over the user's function. A driver ([`OneInputDriver`]) wraps each operator:
//! it catches panics and errors and names the operator and subtask in them, and hands the
//! operator's output batch to the next operators.

use crate::checkpoint::state::RestoredOperatorState;
use crate::checkpoint::{CheckpointBarrier, CheckpointId, OperatorSubtaskState};
use crate::environment::TaskEnv;
use crate::error::{panic_message, OperatorError, OperatorLabel, TaskError};
use crate::output::{ErasedOutput, Input, Output};
use eddy_core::keygroup::KeyGroupRange;
use eddy_core::{Data, OperatorId, StreamRecord, Watermark, WatermarkStatus};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What one operator sees when it opens.
pub struct OperatorContext<'a> {
    /// The task.
    pub env: &'a TaskEnv,
    /// The operator's name and subtask.
    pub label: &'a OperatorLabel,
    /// Max parallelism of the operator (number of key groups).
    pub max_parallelism: usize,
    /// The key groups this subtask owns.
    pub key_group_range: KeyGroupRange,
    /// The operator's id in the job.
    pub id: OperatorId,
}

impl OperatorContext<'_> {
    /// The state this operator restores from (Flink's `initializeState` with
    /// `isRestored() == true`), if the job started from a checkpoint or savepoint.
    pub fn restored(&self) -> Option<&RestoredOperatorState> {
        self.env.restored_state(self.id)
    }

    /// Whether the job takes checkpoints (a transactional sink commits on checkpoint
    /// completion then, and at the end of input otherwise).
    pub fn checkpointing(&self) -> bool {
        self.env.checkpointing.as_ref().is_some_and(|c| c.periodic)
    }
}

/// An operator with one input (Flink's `OneInputStreamOperator`), batch at a time.
pub trait OneInputOperator: Send + 'static {
    /// Input record type.
    type In: Data;
    /// Output record type.
    type Out: Data;

    /// Called once before any record, on the task thread.
    fn open(&mut self, _ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Processes (and empties) a batch, pushing results into `out`.
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<Self::In>>,
        out: &mut Output<Self::Out>,
    ) -> Result<(), OperatorError>;
    /// A new watermark; returns the watermark to forward (`None` swallows it).
    fn process_watermark(
        &mut self,
        wm: Watermark,
        _out: &mut Output<Self::Out>,
    ) -> Result<Option<Watermark>, OperatorError> {
        Ok(Some(wm))
    }
    /// The input became idle or active; returns the status to forward (`None` swallows it).
    /// Only operators that generate their own watermarks need to look at it.
    fn process_watermark_status(
        &mut self,
        status: WatermarkStatus,
        _out: &mut Output<Self::Out>,
    ) -> Result<Option<WatermarkStatus>, OperatorError> {
        Ok(Some(status))
    }
    /// Processing time reached `now`; may return a watermark to emit.
    fn on_processing_time(
        &mut self,
        _now: i64,
        _out: &mut Output<Self::Out>,
    ) -> Result<Option<Watermark>, OperatorError> {
        Ok(None)
    }
    /// The earliest processing-time timer this operator wants.
    fn next_processing_time(&self) -> Option<i64> {
        None
    }
    /// End of input: emit final results.
    fn finish(&mut self, _out: &mut Output<Self::Out>) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Releases resources.
    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Checkpoint `barrier.id` is about to be taken: emit what must reach downstream ahead of
    /// the barrier (Flink's `prepareSnapshotPreBarrier`; a local pre-aggregation flushes its
    /// buffer here and so has no state of its own). Chained operators after this one process
    /// what it emits before they snapshot.
    fn prepare_snapshot_pre_barrier(
        &mut self,
        _barrier: &CheckpointBarrier,
        _out: &mut Output<Self::Out>,
    ) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Takes the operator's part of checkpoint `barrier.id` (the synchronous part: copy what
    /// must not change; the caller stores it off the task thread). Records before the barrier
    /// are all processed, none after it.
    fn snapshot_state(
        &mut self,
        _barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        Ok(OperatorSubtaskState::default())
    }
    /// Checkpoint `id` completed everywhere (commit what was pre-committed for it and before).
    fn notify_checkpoint_complete(&mut self, _id: CheckpointId) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Checkpoint `id` was aborted.
    fn notify_checkpoint_aborted(&mut self, _id: CheckpointId) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Runs `f`, turning a panic or an error into a [`TaskError`] naming the operator.
#[inline]
pub fn guarded<R>(
    label: &OperatorLabel,
    f: impl FnOnce() -> Result<R, OperatorError>,
) -> Result<R, TaskError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(label.error(e)),
        Err(p) => Err(label.error(OperatorError::Panic(panic_message(p.as_ref())))),
    }
}

/// Wraps a [`OneInputOperator`] as a chain element.
pub struct OneInputDriver<Op: OneInputOperator> {
    op: Op,
    out: Output<Op::Out>,
    label: OperatorLabel,
    max_parallelism: usize,
    key_group_range: KeyGroupRange,
    id: OperatorId,
}

impl<Op: OneInputOperator> OneInputDriver<Op> {
    /// A driver for `op` writing into `out`.
    pub fn new(
        op: Op,
        mut out: Output<Op::Out>,
        label: OperatorLabel,
        max_parallelism: usize,
        key_group_range: KeyGroupRange,
        id: OperatorId,
    ) -> Self {
        out.set_label(label.clone());
        OneInputDriver {
            op,
            out,
            label,
            max_parallelism,
            key_group_range,
            id,
        }
    }
}

impl<Op: OneInputOperator> Input<Op::In> for OneInputDriver<Op> {
    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        self.out.open(env)?;
        let mut ctx = OperatorContext {
            env,
            label: &self.label,
            max_parallelism: self.max_parallelism,
            key_group_range: self.key_group_range,
            id: self.id,
        };
        let op = &mut self.op;
        guarded(&self.label, || op.open(&mut ctx))
    }

    #[inline]
    fn process_batch(&mut self, batch: &mut Vec<StreamRecord<Op::In>>) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.label, || op.process_batch(batch, out))?;
        self.out.flush_buffered()
    }

    fn process_watermark(&mut self, wm: Watermark) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        let fwd = guarded(&self.label, || op.process_watermark(wm, out))?;
        match fwd {
            Some(w) => self.out.emit_watermark(w),
            None => self.out.flush_buffered(),
        }
    }

    fn process_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        let fwd = guarded(&self.label, || op.process_watermark_status(status, out))?;
        match fwd {
            Some(s) => self.out.emit_watermark_status(s),
            None => self.out.flush_buffered(),
        }
    }

    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError> {
        if self.op.next_processing_time().is_some_and(|t| t <= now) {
            let (op, out) = (&mut self.op, &mut self.out);
            let wm = guarded(&self.label, || op.on_processing_time(now, out))?;
            match wm {
                Some(w) => self.out.emit_watermark(w)?,
                None => self.out.flush_buffered()?,
            }
        }
        ErasedOutput::on_processing_time(&mut self.out, now)
    }

    fn next_processing_time(&self) -> Option<i64> {
        match (
            self.op.next_processing_time(),
            self.out.next_processing_time(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        ErasedOutput::flush(&mut self.out)
    }

    fn finish(&mut self) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.label, || op.finish(out))?;
        ErasedOutput::finish(&mut self.out)
    }

    fn close(&mut self) {
        let op = &mut self.op;
        if let Err(e) = guarded(&self.label, || op.close()) {
            tracing::warn!("closing failed: {e}");
        }
        self.out.close();
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        let op = &mut self.op;
        let s = guarded(&self.label, || op.snapshot_state(barrier))?;
        if !s.is_empty() {
            out.push((self.id, s));
        }
        ErasedOutput::snapshot_state(&mut self.out, barrier, out)
    }

    /// The operator emits what must precede the barrier, then the barrier follows it to every
    /// chained operator (which does the same) and network consumer.
    fn emit_barrier(&mut self, barrier: &CheckpointBarrier) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.label, || {
            op.prepare_snapshot_pre_barrier(barrier, out)
        })?;
        ErasedOutput::emit_barrier(&mut self.out, barrier)
    }

    fn notify_checkpoint(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError> {
        let op = &mut self.op;
        if complete {
            guarded(&self.label, || op.notify_checkpoint_complete(id))?;
        } else {
            guarded(&self.label, || op.notify_checkpoint_aborted(id))?;
        }
        // A commit may emit (e.g. a sink's bookkeeping); hand it on.
        self.out.flush_buffered()?;
        ErasedOutput::notify_checkpoint(&mut self.out, id, complete)
    }

    fn end_partition(&mut self) -> Result<(), TaskError> {
        ErasedOutput::end_partition(&mut self.out)
    }
}
