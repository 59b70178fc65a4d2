//! Two-input operators (`connect`): the [`TwoInputOperator`] trait, its driver, and the
//! co-process operators (keyed and not) that `ConnectedStreams::map/flat_map/process` use.

use super::keyed::KeyedCore;
use super::KeySelector;
use crate::chain::{guarded, OperatorContext};
use crate::checkpoint::{CheckpointBarrier, CheckpointId, OperatorSubtaskState};
use crate::environment::TaskEnv;
use crate::error::{OperatorError, OperatorLabel, TaskError};
use crate::functions::{CoProcessFunction, KeyedCoProcessFunction, ProcessContext};
use crate::output::{ErasedOutput, Output};
use eddy_core::keygroup::KeyGroupRange;
use eddy_core::{Data, Key, OperatorId, StreamRecord, Watermark, WatermarkStatus};
use std::marker::PhantomData;
use std::sync::Arc;

/// An operator with two inputs of different types (Flink's `TwoInputStreamOperator`).
pub trait TwoInputOperator: Send + 'static {
    /// First input type.
    type In1: Data;
    /// Second input type.
    type In2: Data;
    /// Output type.
    type Out: Data;
    /// Called once before any record.
    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError>;
    /// A batch of the first input.
    fn process_batch1(
        &mut self,
        batch: &mut Vec<StreamRecord<Self::In1>>,
        out: &mut Output<Self::Out>,
    ) -> Result<(), OperatorError>;
    /// A batch of the second input.
    fn process_batch2(
        &mut self,
        batch: &mut Vec<StreamRecord<Self::In2>>,
        out: &mut Output<Self::Out>,
    ) -> Result<(), OperatorError>;
    /// The combined watermark (minimum of both inputs) advanced.
    fn process_watermark(
        &mut self,
        wm: Watermark,
        _out: &mut Output<Self::Out>,
    ) -> Result<(), OperatorError> {
        let _ = wm;
        Ok(())
    }
    /// Processing time reached `now`.
    fn on_processing_time(
        &mut self,
        _now: i64,
        _out: &mut Output<Self::Out>,
    ) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Earliest processing-time timer.
    fn next_processing_time(&self) -> Option<i64> {
        None
    }
    /// Both inputs ended: emit final results.
    fn finish(&mut self, _out: &mut Output<Self::Out>) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Releases resources.
    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Takes the operator's part of a checkpoint (see [`crate::chain::OneInputOperator`]).
    fn snapshot_state(
        &mut self,
        _barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        Ok(OperatorSubtaskState::default())
    }
    /// Checkpoint `id` completed.
    fn notify_checkpoint_complete(&mut self, _id: CheckpointId) -> Result<(), OperatorError> {
        Ok(())
    }
    /// Checkpoint `id` was aborted.
    fn notify_checkpoint_aborted(&mut self, _id: CheckpointId) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Drives a [`TwoInputOperator`] at the head of a task: keeps each input's watermark and
/// status and forwards the minimum over the active inputs, as Flink's
/// `AbstractStreamOperator.processWatermark1/2` and `processWatermarkStatus` (an idle input does
/// not hold back the other; when both are idle the output is idle).
pub struct TwoInputDriver<Op: TwoInputOperator> {
    op: Op,
    out: Output<Op::Out>,
    label: OperatorLabel,
    max_parallelism: usize,
    key_group_range: KeyGroupRange,
    id: OperatorId,
    input_watermarks: [i64; 2],
    input_idle: [bool; 2],
    combined: i64,
}

impl<Op: TwoInputOperator> TwoInputDriver<Op> {
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
        TwoInputDriver {
            op,
            out,
            label,
            max_parallelism,
            key_group_range,
            id,
            input_watermarks: [i64::MIN; 2],
            input_idle: [false; 2],
            combined: i64::MIN,
        }
    }

    /// Opens the chain, tail first.
    pub fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
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

    /// A batch of the first input.
    pub fn process_batch1(&mut self, b: &mut Vec<StreamRecord<Op::In1>>) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.label, || op.process_batch1(b, out))?;
        self.out.flush_buffered()
    }

    /// A batch of the second input.
    pub fn process_batch2(&mut self, b: &mut Vec<StreamRecord<Op::In2>>) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.label, || op.process_batch2(b, out))?;
        self.out.flush_buffered()
    }

    /// The watermark of input `input` (0 or 1) advanced.
    pub fn process_watermark(&mut self, input: usize, wm: Watermark) -> Result<(), TaskError> {
        self.input_watermarks[input] = self.input_watermarks[input].max(wm.timestamp);
        self.advance_combined()
    }

    /// Input `input` (0 or 1) became idle or active.
    pub fn process_watermark_status(
        &mut self,
        input: usize,
        status: WatermarkStatus,
    ) -> Result<(), TaskError> {
        let was_idle = self.all_idle();
        self.input_idle[input] = status.is_idle();
        self.advance_combined()?;
        if was_idle != self.all_idle() {
            self.out.emit_watermark_status(status)?;
        }
        Ok(())
    }

    /// The watermark the operator last saw (minimum over active inputs).
    pub fn combined_watermark(&self) -> i64 {
        self.combined
    }

    fn all_idle(&self) -> bool {
        self.input_idle[0] && self.input_idle[1]
    }

    fn advance_combined(&mut self) -> Result<(), TaskError> {
        let combined = (0..2)
            .filter(|i| !self.input_idle[*i])
            .map(|i| self.input_watermarks[i])
            .min();
        match combined {
            Some(c) if c > self.combined => {
                self.combined = c;
                let w = Watermark::new(c);
                let (op, out) = (&mut self.op, &mut self.out);
                guarded(&self.label, || op.process_watermark(w, out))?;
                self.out.emit_watermark(w)
            }
            _ => Ok(()),
        }
    }

    /// Processing time reached `now`.
    pub fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError> {
        if self.op.next_processing_time().is_some_and(|t| t <= now) {
            let (op, out) = (&mut self.op, &mut self.out);
            guarded(&self.label, || op.on_processing_time(now, out))?;
            self.out.flush_buffered()?;
        }
        ErasedOutput::on_processing_time(&mut self.out, now)
    }

    /// Earliest processing-time timer in the chain.
    pub fn next_processing_time(&self) -> Option<i64> {
        match (
            self.op.next_processing_time(),
            self.out.next_processing_time(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends partial buffers.
    pub fn flush(&mut self) -> Result<(), TaskError> {
        ErasedOutput::flush(&mut self.out)
    }

    /// Both inputs ended.
    pub fn finish(&mut self) -> Result<(), TaskError> {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.label, || op.finish(out))?;
        ErasedOutput::finish(&mut self.out)
    }

    /// Releases resources.
    pub fn close(&mut self) {
        let op = &mut self.op;
        if let Err(e) = guarded(&self.label, || op.close()) {
            tracing::warn!("closing failed: {e}");
        }
        self.out.close();
    }

    /// Snapshots the operator and the chain after it.
    pub fn snapshot_state(
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

    /// Forwards the barrier downstream.
    pub fn emit_barrier(&mut self, barrier: &CheckpointBarrier) -> Result<(), TaskError> {
        ErasedOutput::emit_barrier(&mut self.out, barrier)
    }

    /// A checkpoint completed or was aborted.
    pub fn notify_checkpoint(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError> {
        // As the one-input driver does.
        let op = &mut self.op;
        if complete {
            guarded(&self.label, || op.notify_checkpoint_complete(id))?;
        } else {
            guarded(&self.label, || op.notify_checkpoint_aborted(id))?;
        }
        self.out.flush_buffered()?;
        ErasedOutput::notify_checkpoint(&mut self.out, id, complete)
    }

    /// The task ends.
    pub fn end_partition(&mut self) -> Result<(), TaskError> {
        ErasedOutput::end_partition(&mut self.out)
    }
}

/// `ConnectedStreams::process` (and `map`/`flat_map`) on non-keyed streams.
pub struct CoProcessOperator<I1, I2, O, F> {
    f: F,
    clock: Option<Arc<dyn crate::environment::Clock>>,
    watermark: i64,
    _t: PhantomData<fn(I1, I2) -> O>,
}

impl<I1, I2, O, F> CoProcessOperator<I1, I2, O, F> {
    /// Wraps the function.
    pub fn new(f: F) -> Self {
        CoProcessOperator {
            f,
            clock: None,
            watermark: i64::MIN,
            _t: PhantomData,
        }
    }
}

macro_rules! co_batch {
    ($self:ident, $batch:ident, $out:ident, $method:ident) => {{
        let now = super::now(&$self.clock);
        let (mut c, side) = $out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = ProcessContext {
            timestamp: StreamRecord::<O>::NO_TIMESTAMP,
            side,
            watermark: $self.watermark,
            now,
        };
        for r in $batch.drain(..) {
            c.set_timestamp(r.timestamp);
            ctx.side.set_timestamp(r.timestamp);
            ctx.timestamp = r.timestamp;
            $self.f.$method(r.value, &mut ctx, &mut c)?;
        }
        Ok(())
    }};
}

impl<I1: Data, I2: Data, O: Data, F: CoProcessFunction<I1, I2, O>> TwoInputOperator
    for CoProcessOperator<I1, I2, O, F>
{
    type In1 = I1;
    type In2 = I2;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        self.clock = Some(ctx.env.clock.clone());
        Ok(self.f.open(&mut super::basic::plain_runtime_context(ctx))?)
    }

    fn process_batch1(
        &mut self,
        batch: &mut Vec<StreamRecord<I1>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        co_batch!(self, batch, out, process_element1)
    }

    fn process_batch2(
        &mut self,
        batch: &mut Vec<StreamRecord<I2>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        co_batch!(self, batch, out, process_element2)
    }

    fn process_watermark(&mut self, wm: Watermark, _: &mut Output<O>) -> Result<(), OperatorError> {
        self.watermark = wm.timestamp;
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    super::function_checkpoint_hooks!(f);
}

/// `ConnectedStreams::process` on keyed connected streams: both inputs share key, state and
/// timers.
pub struct KeyedCoProcessOperator<K: Key, I1, I2, O, F> {
    f: F,
    selector1: Arc<dyn KeySelector<I1, K>>,
    selector2: Arc<dyn KeySelector<I2, K>>,
    core: Option<KeyedCore<K>>,
    _t: PhantomData<fn(I1, I2) -> O>,
}

impl<K: Key, I1, I2, O, F> KeyedCoProcessOperator<K, I1, I2, O, F> {
    /// Wraps the function with both inputs' key selectors.
    pub fn new(
        f: F,
        selector1: Arc<dyn KeySelector<I1, K>>,
        selector2: Arc<dyn KeySelector<I2, K>>,
    ) -> Self {
        KeyedCoProcessOperator {
            f,
            selector1,
            selector2,
            core: None,
            _t: PhantomData,
        }
    }
}

macro_rules! keyed_co_batch {
    ($self:ident, $batch:ident, $out:ident, $selector:ident, $method:ident) => {{
        let core = $self
            .core
            .as_mut()
            .ok_or_else(|| OperatorError::Internal("keyed operator used before open".into()))?;
        let f = &mut $self.f;
        core.process_elements($batch, $self.$selector.as_ref(), $out, |v, ctx, c| {
            Ok(f.$method(v, ctx, c)?)
        })
    }};
}

impl<K: Key, I1: Data, I2: Data, O: Data, F: KeyedCoProcessFunction<K, I1, I2, O>> TwoInputOperator
    for KeyedCoProcessOperator<K, I1, I2, O, F>
{
    type In1 = I1;
    type In2 = I2;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        let core = self.core.insert(KeyedCore::open(ctx)?);
        Ok(self.f.open(&mut core.runtime_context(ctx))?)
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        let mut state = self
            .core
            .as_mut()
            .ok_or_else(|| OperatorError::Internal("keyed operator used before open".into()))?
            .snapshot()?;
        let f = &mut self.f;
        crate::operator_state::snapshot_function(barrier, &mut state, |c| f.snapshot_state(c))?;
        Ok(state)
    }

    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        Ok(self.f.notify_checkpoint_complete(id)?)
    }

    fn process_batch1(
        &mut self,
        batch: &mut Vec<StreamRecord<I1>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        keyed_co_batch!(self, batch, out, selector1, process_element1)
    }

    fn process_batch2(
        &mut self,
        batch: &mut Vec<StreamRecord<I2>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        keyed_co_batch!(self, batch, out, selector2, process_element2)
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let f = &mut self.f;
        core.fire_event_timers(wm.timestamp, out, |ts, ctx, c| Ok(f.on_timer(ts, ctx, c)?))
    }

    fn on_processing_time(&mut self, now: i64, out: &mut Output<O>) -> Result<(), OperatorError> {
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let f = &mut self.f;
        core.fire_processing_timers(now, out, |ts, ctx, c| Ok(f.on_timer(ts, ctx, c)?))
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.core.as_ref()?.timers.next_processing_timer()
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }
}
