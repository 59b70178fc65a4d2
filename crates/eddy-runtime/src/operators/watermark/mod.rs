//! Event timestamps and watermarks (`assign_timestamps_and_watermarks`): Flink's
//! `WatermarkStrategy` and `TimestampsAndWatermarksOperator`.
//!
//! A strategy names a [`WatermarkGenerator`] (one per subtask), an optional timestamp
//! assigner, an optional idleness timeout and an optional periodic interval (by default
//! `pipeline.auto-watermark-interval`, 200 ms; 0 turns periodic emission off). Watermarks a
//! generator emits from `on_event` go out right after the record that caused them.

pub mod generator;

pub use generator::{
    AscendingTimestampsWatermarks, BoundedOutOfOrdernessWatermarks, NoWatermarksGenerator,
    WatermarkGenerator, WatermarkOutput, WatermarksWithIdleness,
};

use crate::chain::{OneInputOperator, OperatorContext};
use crate::error::OperatorError;
use crate::output::Output;
use eddy_core::{Data, StreamRecord, Watermark, WatermarkStatus};
use generator::{Emitted, WatermarkOutputState};
use std::sync::Arc;
use std::time::Duration;

/// Assigns each record's event timestamp from its value and its previous timestamp.
pub type TimestampAssigner<T> = Arc<dyn Fn(&T, Option<i64>) -> i64 + Send + Sync>;

/// Creates one watermark generator per subtask.
pub type WatermarkGeneratorSupplier<T> =
    Arc<dyn Fn() -> Box<dyn WatermarkGenerator<T>> + Send + Sync>;

/// How to derive timestamps and watermarks (Flink's `WatermarkStrategy`).
pub struct WatermarkStrategy<T> {
    pub(crate) generator: WatermarkGeneratorSupplier<T>,
    /// Whether the generator is asked periodically at all (not for `no_watermarks`).
    pub(crate) periodic: bool,
    pub(crate) assigner: Option<TimestampAssigner<T>>,
    /// `None`: the job's `pipeline.auto-watermark-interval`.
    pub(crate) interval_ms: Option<i64>,
    pub(crate) idle_timeout: Option<Duration>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            generator: self.generator.clone(),
            periodic: self.periodic,
            assigner: self.assigner.clone(),
            interval_ms: self.interval_ms,
            idle_timeout: self.idle_timeout,
        }
    }
}

impl<T: Data> WatermarkStrategy<T> {
    /// Watermarks from a custom generator, one per subtask.
    pub fn for_generator<G: WatermarkGenerator<T>>(
        f: impl Fn() -> G + Send + Sync + 'static,
    ) -> Self {
        WatermarkStrategy {
            generator: Arc::new(move || Box::new(f()) as Box<dyn WatermarkGenerator<T>>),
            periodic: true,
            assigner: None,
            interval_ms: None,
            idle_timeout: None,
        }
    }

    /// Timestamps only ever increase: watermark = max timestamp − 1.
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_generator(AscendingTimestampsWatermarks::new)
    }

    /// Records may be late by at most `d`: watermark = max timestamp − d − 1.
    pub fn for_bounded_out_of_orderness(d: Duration) -> Self {
        Self::for_generator(move || BoundedOutOfOrdernessWatermarks::new(d))
    }

    /// Timestamps but no watermarks.
    pub fn no_watermarks() -> Self {
        WatermarkStrategy {
            periodic: false,
            ..Self::for_generator(|| NoWatermarksGenerator)
        }
    }

    /// Takes the event timestamp (ms) from the record.
    pub fn with_timestamp_assigner(
        mut self,
        f: impl Fn(&T, Option<i64>) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.assigner = Some(Arc::new(f));
        self
    }

    /// How often the generator is asked for a watermark, overriding the job's
    /// `pipeline.auto-watermark-interval`; zero turns periodic emission off.
    pub fn with_auto_watermark_interval(mut self, d: Duration) -> Self {
        self.interval_ms = Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// Marks the stream idle when no record arrived for `timeout` (processing time, checked
    /// on each periodic emit), so consumers do not wait for its watermarks; the next record
    /// makes it active again (Flink's `withIdleness`).
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self.periodic = true;
        self
    }
}

/// Assigns timestamps and emits the generator's watermarks and idleness; swallows upstream
/// watermarks (except the final one) and upstream status, as Flink's
/// `TimestampsAndWatermarksOperator`: this operator owns event time from here on.
pub struct TimestampsAndWatermarksOperator<T> {
    strategy: WatermarkStrategy<T>,
    // One dynamic call per record, like the assigner; the strategy stays one type whatever
    // the generator.
    generator: Option<Box<dyn WatermarkGenerator<T>>>,
    output: WatermarkOutputState,
    interval_ms: i64,
    next_emit: Option<i64>,
    /// A watermark restored from a checkpoint, emitted before the first record after restore.
    restored: Option<i64>,
}

/// The operator-state name of the last emitted watermark.
const WATERMARK_STATE: &str = "current-watermark";

impl<T> TimestampsAndWatermarksOperator<T> {
    /// An operator for the strategy.
    pub fn new(strategy: WatermarkStrategy<T>) -> Self {
        TimestampsAndWatermarksOperator {
            strategy,
            generator: None,
            output: WatermarkOutputState::default(),
            interval_ms: 0,
            next_emit: None,
            restored: None,
        }
    }
}

/// Hands what the generator emitted to the operator's output, after the records so far.
fn drain_pending<T: Data>(state: &mut WatermarkOutputState, out: &mut Output<T>) {
    for e in state.pending.drain(..) {
        match e {
            Emitted::Watermark(w) => out.push_watermark(w),
            Emitted::Status(s) => out.push_watermark_status(s),
        }
    }
}

impl<T: Data> OneInputOperator for TimestampsAndWatermarksOperator<T> {
    type In = T;
    type Out = T;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        let mut g = (self.strategy.generator)();
        if let Some(timeout) = self.strategy.idle_timeout {
            g = Box::new(WatermarksWithIdleness::new(
                g,
                timeout,
                ctx.env.clock.clone(),
            ));
        }
        self.generator = Some(g);
        // Watermarks never go back, not even across a restore: the generator starts afresh, so
        // the watermark of the snapshot is where the output resumes (the minimum over the old
        // subtasks when rescaled). Lateness downstream is then decided as in a run that never
        // failed.
        if let Some((_, items)) = ctx.restored().and_then(|r| r.operator.get(WATERMARK_STATE)) {
            let wm = items
                .iter()
                .filter_map(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(i64::from_le_bytes)
                .min();
            if let Some(wm) = wm.filter(|w| *w > i64::MIN) {
                self.output.max_watermark = wm;
                self.restored = Some(wm);
            }
        }
        self.interval_ms = self
            .strategy
            .interval_ms
            .unwrap_or(ctx.env.auto_watermark_interval_ms);
        if self.strategy.periodic && self.interval_ms > 0 {
            self.next_emit = Some(ctx.env.clock.now_ms().saturating_add(self.interval_ms));
        }
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<T>,
    ) -> Result<(), OperatorError> {
        let g = self.generator.as_mut().ok_or_else(|| {
            OperatorError::Internal("timestamps operator used before open".into())
        })?;
        if let Some(wm) = self.restored.take() {
            out.push_watermark(Watermark::new(wm));
        }
        for mut r in batch.drain(..) {
            if let Some(a) = &self.strategy.assigner {
                r.timestamp = a(&r.value, r.timestamp());
            }
            g.on_event(
                &r.value,
                r.timestamp,
                &mut WatermarkOutput::new(&mut self.output),
            );
            out.push(r);
            if !self.output.pending.is_empty() {
                drain_pending(&mut self.output, out);
            }
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        // Only the end-of-input watermark passes, once.
        if wm != Watermark::MAX || self.output.max_watermark == i64::MAX {
            return Ok(None);
        }
        if self.output.idle {
            // An idle output's watermarks are ignored downstream: wake it for the last one.
            self.output.idle = false;
            out.push_watermark_status(WatermarkStatus::Active);
        }
        self.output.max_watermark = i64::MAX;
        Ok(Some(wm))
    }

    fn process_watermark_status(
        &mut self,
        _status: WatermarkStatus,
        _out: &mut Output<T>,
    ) -> Result<Option<WatermarkStatus>, OperatorError> {
        Ok(None)
    }

    fn on_processing_time(
        &mut self,
        now: i64,
        out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        self.next_emit = Some(now.saturating_add(self.interval_ms));
        if let Some(g) = self.generator.as_mut() {
            g.on_periodic_emit(&mut WatermarkOutput::new(&mut self.output));
            drain_pending(&mut self.output, out);
        }
        Ok(None)
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.next_emit
    }

    fn snapshot_state(
        &mut self,
        _barrier: &crate::checkpoint::CheckpointBarrier,
    ) -> Result<crate::checkpoint::OperatorSubtaskState, OperatorError> {
        let wm = self.restored.unwrap_or(self.output.max_watermark);
        Ok(crate::checkpoint::OperatorSubtaskState {
            operator: vec![crate::checkpoint::ListStateSnapshot {
                name: WATERMARK_STATE.into(),
                mode: crate::checkpoint::OperatorStateMode::Union,
                items: vec![wm.to_le_bytes().to_vec()],
            }],
            ..Default::default()
        })
    }
}
