//! `KeyedStream::interval_join`: Flink's interval join of two keyed streams, built as
//! `left.interval_join(&right).between(lower_ms, upper_ms).process(f)`.
//!
//! A left element at time `t` joins every right element of the same key with a timestamp in
//! `[t + lower_ms, t + upper_ms]`. Both inputs need event timestamps and watermarks
//! (`assign_timestamps_and_watermarks`): buffered elements are dropped once the watermark
//! passes the end of their range, and elements behind the watermark are late.

use crate::connected::two_input;
use crate::keyed::KeyedStream;
use crate::stream::{per_subtask, SingleOutputStreamOperator};
use eddy_core::{Data, Key};
use eddy_runtime::factory::TwoInputFactory;
use eddy_runtime::functions::{FnProcessJoin, ProcessJoinContext, ProcessJoinFunction};
use eddy_runtime::operators::interval_join::{IntervalBounds, IntervalJoinOperator};
use eddy_runtime::operators::KeySelector;
use eddy_runtime::output::{Collector, OutputTag};
use eddy_runtime::FunctionResult;
use std::sync::Arc;

/// Two keyed streams about to be interval-joined (Flink's `KeyedStream.IntervalJoin`); set the
/// bounds with [`between`](IntervalJoin::between).
pub struct IntervalJoin<L, R, K> {
    left: KeyedStream<L, K>,
    right: KeyedStream<R, K>,
}

impl<L: Data, R: Data, K: Key> IntervalJoin<L, R, K> {
    pub(crate) fn new(left: KeyedStream<L, K>, right: KeyedStream<R, K>) -> Self {
        IntervalJoin { left, right }
    }

    /// Joins on event time, the only time characteristic interval joins support (as in Flink,
    /// where it is also the default).
    pub fn in_event_time(self) -> Self {
        self
    }

    /// A right element joins a left element at `t` if its timestamp is in
    /// `[t + lower_ms, t + upper_ms]`. `lower_ms > upper_ms` is a program mistake that
    /// `execute` reports before anything runs.
    pub fn between(self, lower_ms: i64, upper_ms: i64) -> IntervalJoined<L, R, K> {
        let bounds = IntervalBounds::new(lower_ms, upper_ms);
        if let Err(e) = bounds.validate() {
            self.left.execution_environment().error(e.to_string());
        }
        IntervalJoined {
            left: self.left,
            right: self.right,
            bounds,
            left_late: None,
            right_late: None,
        }
    }
}

/// An interval join with its bounds set (Flink's `KeyedStream.IntervalJoined`): adjust the
/// bounds' exclusiveness and late-data side outputs, then [`process`](IntervalJoined::process).
pub struct IntervalJoined<L, R, K> {
    left: KeyedStream<L, K>,
    right: KeyedStream<R, K>,
    bounds: IntervalBounds,
    left_late: Option<OutputTag<L>>,
    right_late: Option<OutputTag<R>>,
}

impl<L: Data, R: Data, K: Key> IntervalJoined<L, R, K> {
    /// A right element exactly at `t + lower_ms` does not join.
    pub fn lower_bound_exclusive(mut self) -> Self {
        self.bounds.lower_inclusive = false;
        self
    }

    /// A right element exactly at `t + upper_ms` does not join.
    pub fn upper_bound_exclusive(mut self) -> Self {
        self.bounds.upper_inclusive = false;
        self
    }

    /// Left elements that arrive behind the watermark go to side output `tag` (read it with
    /// `get_side_output` on the joined stream) instead of being dropped.
    pub fn side_output_left_late_data(mut self, tag: &OutputTag<L>) -> Self {
        self.left_late = Some(tag.clone());
        self
    }

    /// Right elements that arrive behind the watermark go to side output `tag` instead of
    /// being dropped.
    pub fn side_output_right_late_data(mut self, tag: &OutputTag<R>) -> Self {
        self.right_late = Some(tag.clone());
        self
    }

    /// Calls a [`ProcessJoinFunction`] for every joined pair; what it emits carries the larger
    /// of both elements' timestamps.
    pub fn process<O: Data, F: ProcessJoinFunction<L, R, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let s1: Arc<dyn KeySelector<L, K>> = self.left.key_selector();
        let s2: Arc<dyn KeySelector<R, K>> = self.right.key_selector();
        let (bounds, left_late, right_late) =
            (self.bounds, self.left_late.clone(), self.right_late.clone());
        let make = per_subtask(f, move |f| {
            IntervalJoinOperator::new(f, bounds, s1.clone(), s2.clone())
                .with_left_late_data(left_late.clone())
                .with_right_late_data(right_late.clone())
        });
        two_input(
            &self.left,
            &self.right,
            "Interval Join",
            Arc::new(TwoInputFactory::new(make)),
            true,
        )
    }

    /// `process` with a closure `(left, right, ctx, out)`.
    pub fn process_fn<O: Data, F>(&self, f: F) -> SingleOutputStreamOperator<O>
    where
        F: FnMut(L, R, &mut ProcessJoinContext<'_>, &mut Collector<'_, O>) -> FunctionResult
            + Clone
            + Send
            + 'static,
    {
        self.process(FnProcessJoin(f))
    }
}
