//! Operator chains: operators fused into one task call each other directly.
//!
//! [`Input`] is the one dynamic boundary between operators of a chain, and it is crossed once
//! per *batch* of records, never per record; inside an operator the per-record loop is
//! monomorphised over the user's function. A driver ([`OneInputDriver`]) wraps each operator:
//! it catches panics and errors and names the operator and subtask in them, and hands the
//! operator's output batch to the next operators.

use crate::channel::CancelToken;
use crate::checkpoint::state::RestoredOperatorState;
use crate::checkpoint::{
    CheckpointBarrier, CheckpointId, OperatorSubtaskState, TaskCheckpointing, TaskRestore,
};
use crate::error::{panic_message, OperatorError, OperatorLabel, TaskError};
use crate::output::{ErasedOutput, Output};
use eddy_core::keygroup::KeyGroupRange;
use eddy_core::{Data, OperatorId, StreamRecord, Watermark, WatermarkStatus};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Processing time, in ms since the epoch. One place so a test clock can replace it.
pub trait Clock: Send + Sync {
    /// Now, in ms.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// The current watermarks of one subtask, readable from other threads while the job runs
/// (Flink's `currentInputWatermark` / `currentOutputWatermark` task metrics).
#[derive(Debug)]
pub struct WatermarkGauge {
    input: AtomicI64,
    output: AtomicI64,
}

impl Default for WatermarkGauge {
    fn default() -> Self {
        WatermarkGauge {
            input: AtomicI64::new(i64::MIN),
            output: AtomicI64::new(i64::MIN),
        }
    }
}

impl WatermarkGauge {
    /// The watermark the task last forwarded into its chain (`i64::MIN` before any; sources
    /// have none).
    pub fn input_watermark(&self) -> i64 {
        self.input.load(Ordering::Acquire)
    }

    /// The watermark the end of the task's chain last emitted (`i64::MIN` before any).
    pub fn output_watermark(&self) -> i64 {
        self.output.load(Ordering::Acquire)
    }

    /// Records a new input watermark. Called after the chain processed it, with release
    /// ordering, so a reader that sees it also sees everything the chain did for it.
    pub fn set_input_watermark(&self, wm: i64) {
        self.input.store(wm, Ordering::Release);
    }

    /// Records a new output watermark.
    pub fn set_output_watermark(&self, wm: i64) {
        self.output.store(wm, Ordering::Release);
    }
}

/// What every operator of a task can see of its job and task.
#[derive(Clone)]
pub struct TaskEnv {
    /// Job name.
    pub job_name: String,
    /// Task name (the chain's name).
    pub task_name: String,
    /// 0-based subtask index.
    pub subtask: usize,
    /// Task parallelism.
    pub parallelism: usize,
    /// Processing-time clock.
    pub clock: Arc<dyn Clock>,
    /// Job-wide cancellation.
    pub cancel: Arc<CancelToken>,
    /// Flush partial buffers after this many ms (0: after every element, -1: never).
    pub buffer_timeout_ms: i64,
    /// Periodic watermark interval of strategies that set none (`pipeline.auto-watermark-interval`;
    /// 0: off).
    pub auto_watermark_interval_ms: i64,
    /// This subtask's current watermarks, updated by the task loop and the chain's tail.
    pub watermarks: Arc<WatermarkGauge>,
    /// Checkpointing of this task; `None` when the job does not checkpoint.
    pub checkpointing: Option<Arc<TaskCheckpointing>>,
    /// The state this subtask starts from, if the job was restored.
    pub restore: Option<Arc<TaskRestore>>,
}

impl TaskEnv {
    /// A task environment for tests and tools: wall clock, no checkpointing, no restore.
    pub fn standalone(job_name: &str, task_name: &str, subtask: usize, parallelism: usize) -> Self {
        TaskEnv {
            job_name: job_name.into(),
            task_name: task_name.into(),
            subtask,
            parallelism,
            clock: Arc::new(SystemClock),
            cancel: CancelToken::new(),
            buffer_timeout_ms: 100,
            auto_watermark_interval_ms: 200,
            watermarks: Arc::new(WatermarkGauge::default()),
            checkpointing: None,
            restore: None,
        }
    }

    /// Tells the JobMaster this task restored its state and opened its operators.
    pub fn report_running(&self) {
        if let Some(c) = &self.checkpointing {
            c.responder.task_running(c.task);
        }
    }

    /// The restored state of operator `op` in this subtask, if any.
    pub fn restored_state(&self, op: OperatorId) -> Option<&RestoredOperatorState> {
        self.restore.as_ref().and_then(|r| r.operators.get(&op))
    }
}

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

/// A chain element as seen by the operator (or task input) before it.
pub trait Input<T>: Send {
    /// Opens this operator and everything after it in the chain (tail first, as Flink).
    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError>;
    /// Processes and empties `batch`.
    fn process_batch(&mut self, batch: &mut Vec<StreamRecord<T>>) -> Result<(), TaskError>;
    /// A new input watermark.
    fn process_watermark(&mut self, wm: Watermark) -> Result<(), TaskError>;
    /// The input became idle or active again.
    fn process_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError>;
    /// Processing time reached `now`: fire due timers here and downstream.
    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError>;
    /// The earliest processing-time timer here or downstream.
    fn next_processing_time(&self) -> Option<i64>;
    /// Sends partially filled network buffers (buffer timeout).
    fn flush(&mut self) -> Result<(), TaskError>;
    /// End of input (Flink's `endInput` + `finish`): emit what is left, then finish
    /// downstream, whose network consumers get end of data.
    fn finish(&mut self) -> Result<(), TaskError>;
    /// Releases resources; called on success and on failure.
    fn close(&mut self);
    /// Snapshots this operator and the chain after it, appending `(operator, state)`.
    fn snapshot_state(
        &mut self,
        _barrier: &CheckpointBarrier,
        _out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        Ok(())
    }
    /// Forwards the barrier to every network consumer after this operator.
    fn emit_barrier(&mut self, _barrier: &CheckpointBarrier) -> Result<(), TaskError> {
        Ok(())
    }
    /// A checkpoint completed (`complete`) or was aborted.
    fn notify_checkpoint(&mut self, _id: CheckpointId, _complete: bool) -> Result<(), TaskError> {
        Ok(())
    }
    /// The task ends: network consumers after this operator get end of partition.
    fn end_partition(&mut self) -> Result<(), TaskError> {
        Ok(())
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
