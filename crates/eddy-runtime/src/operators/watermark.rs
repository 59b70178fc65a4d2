//! Event timestamps and watermarks (`assign_timestamps_and_watermarks`): Flink's
//! `WatermarkStrategy` with monotonous and bounded-out-of-orderness generators, emitted
//! periodically (every `pipeline.auto-watermark-interval`, 200 ms by default).

use crate::chain::{Clock, OneInputOperator, OperatorContext};
use crate::error::OperatorError;
use crate::output::Output;
use eddy_core::{Data, StreamRecord, Watermark};
use std::sync::Arc;
use std::time::Duration;

/// Assigns each record's event timestamp from its value and its previous timestamp.
pub type TimestampAssigner<T> = Arc<dyn Fn(&T, Option<i64>) -> i64 + Send + Sync>;

/// How to derive timestamps and watermarks (Flink's `WatermarkStrategy`).
pub struct WatermarkStrategy<T> {
    pub(crate) out_of_orderness_ms: Option<i64>,
    pub(crate) assigner: Option<TimestampAssigner<T>>,
    pub(crate) interval_ms: i64,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            out_of_orderness_ms: self.out_of_orderness_ms,
            assigner: self.assigner.clone(),
            interval_ms: self.interval_ms,
        }
    }
}

impl<T: Data> WatermarkStrategy<T> {
    /// Timestamps only ever increase: watermark = max timestamp − 1.
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_bounded_out_of_orderness(Duration::ZERO)
    }

    /// Records may be late by at most `d`: watermark = max timestamp − d − 1.
    pub fn for_bounded_out_of_orderness(d: Duration) -> Self {
        WatermarkStrategy {
            out_of_orderness_ms: Some(d.as_millis() as i64),
            assigner: None,
            interval_ms: 200,
        }
    }

    /// Timestamps but no watermarks.
    pub fn no_watermarks() -> Self {
        WatermarkStrategy {
            out_of_orderness_ms: None,
            assigner: None,
            interval_ms: 200,
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

    /// How often the watermark is emitted (Flink: `pipeline.auto-watermark-interval`).
    pub fn with_auto_watermark_interval(mut self, d: Duration) -> Self {
        self.interval_ms = (d.as_millis() as i64).max(1);
        self
    }
}

/// Assigns timestamps and emits periodic watermarks; swallows upstream watermarks except the
/// final one, as Flink's `TimestampsAndWatermarksOperator`.
pub struct TimestampsAndWatermarksOperator<T> {
    strategy: WatermarkStrategy<T>,
    max_timestamp: i64,
    emitted: i64,
    next_emit: Option<i64>,
    clock: Option<Arc<dyn Clock>>,
}

impl<T> TimestampsAndWatermarksOperator<T> {
    /// An operator for the strategy.
    pub fn new(strategy: WatermarkStrategy<T>) -> Self {
        TimestampsAndWatermarksOperator {
            strategy,
            max_timestamp: i64::MIN,
            emitted: i64::MIN,
            next_emit: None,
            clock: None,
        }
    }

    fn current(&self) -> Option<i64> {
        let d = self.strategy.out_of_orderness_ms?;
        (self.max_timestamp != i64::MIN).then(|| self.max_timestamp.saturating_sub(d + 1))
    }
}

impl<T: Data> OneInputOperator for TimestampsAndWatermarksOperator<T> {
    type In = T;
    type Out = T;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        let now = ctx.env.clock.now_ms();
        self.clock = Some(ctx.env.clock.clone());
        if self.strategy.out_of_orderness_ms.is_some() {
            self.next_emit = Some(now + self.strategy.interval_ms);
        }
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<T>,
    ) -> Result<(), OperatorError> {
        for mut r in batch.drain(..) {
            if let Some(a) = &self.strategy.assigner {
                r.timestamp = a(&r.value, r.timestamp());
            }
            if r.timestamp != StreamRecord::<T>::NO_TIMESTAMP && r.timestamp > self.max_timestamp {
                self.max_timestamp = r.timestamp;
            }
            out.push(r);
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        _out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        // Only the end-of-input watermark passes: this operator owns event time from here on.
        Ok((wm == Watermark::MAX).then_some(wm))
    }

    fn on_processing_time(
        &mut self,
        now: i64,
        _out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        self.next_emit = Some(now + self.strategy.interval_ms);
        match self.current() {
            Some(w) if w > self.emitted => {
                self.emitted = w;
                Ok(Some(Watermark::new(w)))
            }
            _ => Ok(None),
        }
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.next_emit
    }
}
