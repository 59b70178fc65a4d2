//! Flink's interval join (`KeyedStream::intervalJoin`): joins each left element at time `t`
//! with the right elements of the same key whose timestamps lie in `[t + lower, t + upper]`,
//! and calls a [`ProcessJoinFunction`] per pair.
//!
//! As Flink's `IntervalJoinOperator`, both inputs are buffered per key in a `MapState` from
//! timestamp to the elements with that timestamp, so an element that arrives joins with
//! everything buffered on the other side, whatever the arrival order. An event-time timer per
//! buffered timestamp removes the bucket once the watermark shows no element of the other side
//! can join it any more. Elements behind the watermark are late: they are dropped, or sent to
//! the side output the program asked for.

use super::co::TwoInputOperator;
use super::KeySelector;
use crate::chain::OperatorContext;
use crate::error::OperatorError;
use crate::functions::{ProcessJoinContext, ProcessJoinFunction};
use crate::output::{Collector, Output, OutputTag};
use eddy_core::{Data, Key, StreamRecord, Watermark};
use eddy_state::{InternalTimerService, KeyedStateBackend, MapState, MapStateDescriptor};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::Arc;
use thiserror::Error;

/// The bounds of an interval join, relative to the left element's timestamp (ms): a right
/// element joins a left one at `t` if its timestamp is in `[t + lower, t + upper]`, each end
/// inclusive unless made exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalBounds {
    /// Lower bound (may be negative).
    pub lower: i64,
    /// Upper bound.
    pub upper: i64,
    /// Whether a right element exactly at `t + lower` joins.
    pub lower_inclusive: bool,
    /// Whether a right element exactly at `t + upper` joins.
    pub upper_inclusive: bool,
}

/// Interval join bounds with `lower > upper`: no pair could ever join.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error(
    "interval join: the lower bound ({lower} ms) must not be greater than the upper bound ({upper} ms)"
)]
pub struct InvalidIntervalBounds {
    /// The lower bound given.
    pub lower: i64,
    /// The upper bound given.
    pub upper: i64,
}

impl IntervalBounds {
    /// Inclusive bounds `[lower, upper]`.
    pub fn new(lower: i64, upper: i64) -> Self {
        IntervalBounds {
            lower,
            upper,
            lower_inclusive: true,
            upper_inclusive: true,
        }
    }

    /// Checks `lower <= upper`, as Flink does before exclusiveness is applied.
    pub fn validate(&self) -> Result<(), InvalidIntervalBounds> {
        if self.lower > self.upper {
            return Err(InvalidIntervalBounds {
                lower: self.lower,
                upper: self.upper,
            });
        }
        Ok(())
    }

    /// The bounds made inclusive (Flink moves an exclusive bound by one ms so the join and the
    /// cleanup never need to look at exclusiveness again).
    fn inclusive(&self) -> (i64, i64) {
        let lower = if self.lower_inclusive {
            self.lower
        } else {
            self.lower.saturating_add(1)
        };
        let upper = if self.upper_inclusive {
            self.upper
        } else {
            self.upper.saturating_sub(1)
        };
        (lower, upper)
    }
}

/// One buffered element (Flink's `BufferEntry`). `has_been_joined` is kept, always `false`, as
/// in Flink, where it is reserved for outer joins; the inner join never reads it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BufferEntry<T> {
    /// The element.
    pub element: T,
    /// Whether it has been joined (unused by the inner join).
    pub has_been_joined: bool,
}

/// Which buffer a cleanup timer empties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Side {
    Left,
    Right,
}

/// The namespace of a cleanup timer. Flink derives the bucket to remove back from the timer's
/// time; carrying the bucket instead keeps that exact even where `t + upper` saturates, and
/// still gives one timer per (key, side, bucket), as in Flink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Cleanup {
    side: Side,
    bucket: i64,
}

type Buffer<T> = MapState<i64, Vec<BufferEntry<T>>>;

/// Keyed state and timers of one subtask, created in `open`.
struct JoinState<K: Key, L, R> {
    backend: KeyedStateBackend<K>,
    timers: InternalTimerService<K, Cleanup>,
    left_buffer: Buffer<L>,
    right_buffer: Buffer<R>,
    watermark: i64,
}

/// How an element of one side joins: its buffer, the other side's buffer, and the bounds
/// relative to its own timestamp (for the right side: the left side's bounds negated and
/// swapped).
struct SideSpec<OUR, OTHER> {
    ours: Buffer<OUR>,
    other: Buffer<OTHER>,
    relative_lower: i64,
    relative_upper: i64,
    side: Side,
}

/// The interval join of two keyed inputs (Flink's `IntervalJoinOperator`).
pub struct IntervalJoinOperator<K: Key, L, R, O, F> {
    f: F,
    bounds: IntervalBounds,
    lower: i64,
    upper: i64,
    selector1: Arc<dyn KeySelector<L, K>>,
    selector2: Arc<dyn KeySelector<R, K>>,
    left_late: Option<OutputTag<L>>,
    right_late: Option<OutputTag<R>>,
    state: Option<JoinState<K, L, R>>,
    keys: Vec<K>,
    _t: PhantomData<fn(L, R) -> O>,
}

impl<K: Key, L, R, O, F> IntervalJoinOperator<K, L, R, O, F> {
    /// Joins with `bounds`, keying the inputs with `selector1` and `selector2`.
    pub fn new(
        f: F,
        bounds: IntervalBounds,
        selector1: Arc<dyn KeySelector<L, K>>,
        selector2: Arc<dyn KeySelector<R, K>>,
    ) -> Self {
        let (lower, upper) = bounds.inclusive();
        IntervalJoinOperator {
            f,
            bounds,
            lower,
            upper,
            selector1,
            selector2,
            left_late: None,
            right_late: None,
            state: None,
            keys: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Sends late left elements to side output `tag` instead of dropping them.
    pub fn with_left_late_data(mut self, tag: Option<OutputTag<L>>) -> Self {
        self.left_late = tag;
        self
    }

    /// Sends late right elements to side output `tag` instead of dropping them.
    pub fn with_right_late_data(mut self, tag: Option<OutputTag<R>>) -> Self {
        self.right_late = tag;
        self
    }
}

fn not_open() -> OperatorError {
    OperatorError::Internal("interval join used before open".into())
}

fn missing_timestamp(input: &str) -> OperatorError {
    OperatorError::BadInput(format!(
        "interval join needs event timestamps: call assign_timestamps_and_watermarks \
         (an element of the {input} input has no timestamp)"
    ))
}

/// Buffers one element and joins it with the other side's buffered elements in range, calling
/// `join(ours, other, our_ts, other_ts)` per pair (Flink's `processElement`).
fn join_element<K: Key, L, R, OUR: Data, OTHER: Data>(
    st: &mut JoinState<K, L, R>,
    spec: &SideSpec<OUR, OTHER>,
    key: K,
    value: OUR,
    ts: i64,
    mut join: impl FnMut(OUR, OTHER, i64, i64) -> Result<(), OperatorError>,
) -> Result<(), OperatorError> {
    st.backend.set_current_key(key.clone());
    let mut bucket = spec.ours.get(&mut st.backend, &ts)?.unwrap_or_default();
    bucket.push(BufferEntry {
        element: value.clone(),
        has_been_joined: false,
    });
    spec.ours.put(&mut st.backend, ts, bucket)?;

    let lo = ts.saturating_add(spec.relative_lower);
    let hi = ts.saturating_add(spec.relative_upper);
    let mut in_range: Vec<i64> = spec
        .other
        .keys(&mut st.backend)?
        .into_iter()
        .filter(|t| (lo..=hi).contains(t))
        .collect();
    // Map order is arbitrary; joining in timestamp order makes the output order reproducible.
    in_range.sort_unstable();
    for other_ts in in_range {
        for entry in spec
            .other
            .get(&mut st.backend, &other_ts)?
            .unwrap_or_default()
        {
            join(value.clone(), entry.element, ts, other_ts)?;
        }
    }

    // Flink's cleanup time: once the watermark passes it, no element of the other side that is
    // not late can fall in this element's range.
    let cleanup_time = if spec.relative_upper > 0 {
        ts.saturating_add(spec.relative_upper)
    } else {
        ts
    };
    st.timers.register_event_time_timer(
        key,
        Cleanup {
            side: spec.side,
            bucket: ts,
        },
        cleanup_time,
    );
    Ok(())
}

/// Calls the user function for one pair, stamping its output with the pair's timestamp.
fn emit<L, R, O, F: ProcessJoinFunction<L, R, O>>(
    f: &mut F,
    ctx: &mut ProcessJoinContext<'_>,
    out: &mut Collector<'_, O>,
    pair: (L, R),
    left_ts: i64,
    right_ts: i64,
) -> Result<(), OperatorError> {
    ctx.left_timestamp = left_ts;
    ctx.right_timestamp = right_ts;
    let ts = left_ts.max(right_ts);
    ctx.side.set_timestamp(ts);
    out.set_timestamp(ts);
    Ok(f.process_element(pair.0, pair.1, ctx, out)?)
}

/// Processes a batch of one input: `$tag` is that input's late-data tag, `$spec` its
/// [`SideSpec`], `$pair` orders `(ours, other)` into `(left, right)`.
macro_rules! join_batch {
    ($self:ident, $batch:ident, $out:ident, $selector:ident, $tag:ident, $input:literal,
     $spec:expr, |$a:ident, $b:ident, $ta:ident, $tb:ident| $pair:expr) => {{
        let st = $self.state.as_mut().ok_or_else(not_open)?;
        $self.keys.clear();
        $self.$selector.keys($batch, &mut $self.keys);
        let spec = ($spec)(st);
        let (mut c, side) = $out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = ProcessJoinContext {
            left_timestamp: StreamRecord::<O>::NO_TIMESTAMP,
            right_timestamp: StreamRecord::<O>::NO_TIMESTAMP,
            side,
        };
        let f = &mut $self.f;
        for (r, k) in $batch.drain(..).zip($self.keys.drain(..)) {
            if r.timestamp == StreamRecord::<O>::NO_TIMESTAMP {
                return Err(missing_timestamp($input));
            }
            if r.timestamp < st.watermark {
                if let Some(tag) = &$self.$tag {
                    ctx.side.set_timestamp(r.timestamp);
                    ctx.side.output(tag, r.value);
                }
                continue;
            }
            join_element(st, &spec, k, r.value, r.timestamp, |$a, $b, $ta, $tb| {
                let (pair, lt, rt) = $pair;
                emit(f, &mut ctx, &mut c, pair, lt, rt)
            })?;
        }
        Ok(())
    }};
}

impl<K, L, R, O, F> TwoInputOperator for IntervalJoinOperator<K, L, R, O, F>
where
    K: Key,
    L: Data,
    R: Data,
    O: Data,
    F: ProcessJoinFunction<L, R, O>,
{
    type In1 = L;
    type In2 = R;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        // The DataStream API reports bad bounds before the job runs; this guards direct use.
        self.bounds
            .validate()
            .map_err(|e| OperatorError::User(Box::new(e)))?;
        let mut backend = KeyedStateBackend::new(ctx.key_group_range, ctx.max_parallelism);
        let mut timers = InternalTimerService::new(ctx.key_group_range, ctx.max_parallelism);
        super::keyed::restore_keyed(ctx, &mut backend, Some(&mut timers))?;
        let left_buffer = backend.get_map_state(&MapStateDescriptor::new("LEFT_BUFFER"))?;
        let right_buffer = backend.get_map_state(&MapStateDescriptor::new("RIGHT_BUFFER"))?;
        self.state = Some(JoinState {
            backend,
            timers,
            left_buffer,
            right_buffer,
            watermark: i64::MIN,
        });
        Ok(self.f.open(&mut super::basic::plain_runtime_context(ctx))?)
    }

    fn process_batch1(
        &mut self,
        batch: &mut Vec<StreamRecord<L>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let (lower, upper) = (self.lower, self.upper);
        join_batch!(
            self,
            batch,
            out,
            selector1,
            left_late,
            "left",
            |st: &JoinState<K, L, R>| SideSpec {
                ours: st.left_buffer,
                other: st.right_buffer,
                relative_lower: lower,
                relative_upper: upper,
                side: Side::Left,
            },
            |l, r, lt, rt| ((l, r), lt, rt)
        )
    }

    fn process_batch2(
        &mut self,
        batch: &mut Vec<StreamRecord<R>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let (lower, upper) = (self.lower, self.upper);
        join_batch!(
            self,
            batch,
            out,
            selector2,
            right_late,
            "right",
            |st: &JoinState<K, L, R>| SideSpec {
                ours: st.right_buffer,
                other: st.left_buffer,
                relative_lower: upper.saturating_neg(),
                relative_upper: lower.saturating_neg(),
                side: Side::Right,
            },
            |r, l, rt, lt| ((l, r), lt, rt)
        )
    }

    fn process_watermark(&mut self, wm: Watermark, _: &mut Output<O>) -> Result<(), OperatorError> {
        let st = self.state.as_mut().ok_or_else(not_open)?;
        st.watermark = wm.timestamp;
        while let Some(t) = st.timers.poll_event_timer(wm.timestamp) {
            st.backend.set_current_key(t.key);
            match t.namespace.side {
                Side::Left => st
                    .left_buffer
                    .remove(&mut st.backend, &t.namespace.bucket)?,
                Side::Right => st
                    .right_buffer
                    .remove(&mut st.backend, &t.namespace.bucket)?,
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    fn snapshot_state(
        &mut self,
        _barrier: &crate::checkpoint::CheckpointBarrier,
    ) -> Result<crate::checkpoint::OperatorSubtaskState, OperatorError> {
        let st = self
            .state
            .as_mut()
            .ok_or_else(|| OperatorError::Internal("interval join used before open".into()))?;
        super::keyed::snapshot_keyed(&mut st.backend, Some(&st.timers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::CancelToken;
    use crate::environment::{SystemClock, TaskEnv};
    use crate::error::OperatorLabel;
    use crate::functions::FnProcessJoin;
    use crate::operators::FnKeySelector;
    use eddy_core::keygroup::KeyGroupRange;

    use crate::testing::{sink, Records, Sink};

    /// `(key, name)`.
    type El = (u32, String);
    /// `(left name, right name, left ts, right ts, ctx.timestamp())`.
    type Pair = (String, String, i64, i64, i64);
    type JoinFn = FnProcessJoin<
        fn(El, El, &mut ProcessJoinContext<'_>, &mut Collector<'_, Pair>) -> crate::FunctionResult,
    >;

    fn pair_up(
        l: El,
        r: El,
        ctx: &mut ProcessJoinContext<'_>,
        out: &mut Collector<'_, Pair>,
    ) -> crate::FunctionResult {
        out.collect((
            l.1,
            r.1,
            ctx.left_timestamp(),
            ctx.right_timestamp(),
            ctx.timestamp(),
        ));
        Ok(())
    }

    struct Harness {
        op: IntervalJoinOperator<u32, El, El, Pair, JoinFn>,
        out: Output<Pair>,
        joined: Records<Pair>,
        left_late: Records<El>,
        right_late: Records<El>,
    }

    fn harness(bounds: IntervalBounds) -> Result<Harness, OperatorError> {
        let key: Arc<dyn KeySelector<El, u32>> = Arc::new(FnKeySelector(|e: &El| e.0));
        let (left_tag, right_tag) = (OutputTag::new("left-late"), OutputTag::new("right-late"));
        let mut op =
            IntervalJoinOperator::new(FnProcessJoin(pair_up as _), bounds, key.clone(), key)
                .with_left_late_data(Some(left_tag))
                .with_right_late_data(Some(right_tag));
        let (left_late, left_out) = sink::<El>();
        let (right_late, right_out) = sink::<El>();
        let joined: Records<Pair> = Arc::default();
        let out = Output::new(
            vec![Box::new(Sink(joined.clone()))],
            Vec::new(),
            vec![
                ("left-late".to_string(), Box::new(left_out)),
                ("right-late".to_string(), Box::new(right_out)),
            ],
        );
        let env = TaskEnv {
            job_name: "j".into(),
            task_name: "Interval Join".into(),
            subtask: 0,
            parallelism: 1,
            clock: Arc::new(SystemClock),
            cancel: CancelToken::new(),
            buffer_timeout_ms: 0,
            auto_watermark_interval_ms: 200,
            watermarks: Arc::new(crate::environment::WatermarkGauge::default()),
            checkpointing: None,
            restore: None,
        };
        let label = OperatorLabel {
            name: "Interval Join".into(),
            subtask: 0,
            parallelism: 1,
        };
        op.open(&mut OperatorContext {
            env: &env,
            label: &label,
            max_parallelism: 128,
            key_group_range: KeyGroupRange::all(128),
            id: 0,
        })?;
        Ok(Harness {
            op,
            out,
            joined,
            left_late,
            right_late,
        })
    }

    impl Harness {
        fn left(&mut self, e: (u32, &str), ts: i64) -> Result<(), OperatorError> {
            let value = (e.0, e.1.to_string());
            let mut b = vec![StreamRecord {
                value,
                timestamp: ts,
            }];
            self.op.process_batch1(&mut b, &mut self.out)?;
            self.flush();
            Ok(())
        }
        fn right(&mut self, e: (u32, &str), ts: i64) -> Result<(), OperatorError> {
            let value = (e.0, e.1.to_string());
            let mut b = vec![StreamRecord {
                value,
                timestamp: ts,
            }];
            self.op.process_batch2(&mut b, &mut self.out)?;
            self.flush();
            Ok(())
        }
        fn watermark(&mut self, ts: i64) {
            self.op
                .process_watermark(Watermark::new(ts), &mut self.out)
                .expect("cleanup");
        }
        fn flush(&mut self) {
            self.out.flush_buffered().expect("flush");
        }
        /// Joined pairs as `left+right l<ts> r<ts> t<ctx ts> @<record ts>`, sorted.
        fn joined(&self) -> Vec<String> {
            let mut v: Vec<_> = self
                .joined
                .lock()
                .drain(..)
                .map(|r| {
                    let (l, rt, lts, rts, ts) = r.value;
                    format!("{l}+{rt} l{lts} r{rts} t{ts} @{}", r.timestamp)
                })
                .collect();
            v.sort();
            v
        }
        /// Buffered `(key, bucket)` entries over both buffers.
        fn buffered(&self) -> usize {
            self.op.state.as_ref().expect("open").backend.num_keys()
        }
        fn cleanup_timers(&self) -> usize {
            self.op
                .state
                .as_ref()
                .expect("open")
                .timers
                .num_event_timers()
        }
        fn bucket(&mut self, side: Side, key: u32, ts: i64) -> usize {
            let st = self.op.state.as_mut().expect("open");
            st.backend.set_current_key(key);
            match side {
                Side::Left => st
                    .left_buffer
                    .get(&mut st.backend, &ts)
                    .map(|b| b.map_or(0, |b| b.len())),
                Side::Right => st
                    .right_buffer
                    .get(&mut st.backend, &ts)
                    .map(|b| b.map_or(0, |b| b.len())),
            }
            .expect("state")
        }
    }

    #[test]
    fn joins_within_inclusive_bounds_in_both_arrival_orders() -> Result<(), OperatorError> {
        let mut h = harness(IntervalBounds::new(-1, 2))?;
        h.right((1, "early"), 8)?; // 8 - 10 = -2: outside
        h.right((1, "lo"), 9)?; // -1: the inclusive lower bound
        h.right((2, "other-key"), 10)?;
        h.left((1, "a"), 10)?;
        h.right((1, "hi"), 12)?; // +2: the inclusive upper bound
        h.right((1, "late-ish"), 13)?; // +3: outside
        assert_eq!(
            h.joined(),
            vec!["a+hi l10 r12 t12 @12", "a+lo l10 r9 t10 @10"]
        );
        Ok(())
    }

    #[test]
    fn exclusive_bounds_drop_the_edges() -> Result<(), OperatorError> {
        let mut h = harness(IntervalBounds {
            lower_inclusive: false,
            upper_inclusive: false,
            ..IntervalBounds::new(-1, 2)
        })?;
        h.left((1, "a"), 10)?;
        for (name, ts) in [("lo", 9), ("mid0", 10), ("mid1", 11), ("hi", 12)] {
            h.right((1, name), ts)?;
        }
        assert_eq!(
            h.joined(),
            vec!["a+mid0 l10 r10 t10 @10", "a+mid1 l10 r11 t11 @11"]
        );
        Ok(())
    }

    #[test]
    fn late_elements_go_to_the_side_outputs_and_are_not_buffered() -> Result<(), OperatorError> {
        let mut h = harness(IntervalBounds::new(-100, 100))?;
        h.left((1, "kept"), 100)?;
        h.watermark(100);
        h.left((1, "late-left"), 99)?;
        h.right((1, "late-right"), 50)?;
        // At the watermark is not behind it: Flink's `timestamp < watermark`.
        h.right((1, "on-time"), 100)?;
        assert_eq!(h.joined(), vec!["kept+on-time l100 r100 t100 @100"]);
        let late = |r: &Records<El>| {
            r.lock()
                .iter()
                .map(|r| (r.value.1.clone(), r.timestamp))
                .collect::<Vec<_>>()
        };
        assert_eq!(late(&h.left_late), vec![("late-left".to_string(), 99)]);
        assert_eq!(late(&h.right_late), vec![("late-right".to_string(), 50)]);
        assert_eq!(h.bucket(Side::Left, 1, 99), 0);
        assert_eq!(h.bucket(Side::Right, 1, 50), 0);
        Ok(())
    }

    #[test]
    fn late_elements_without_a_tag_are_dropped() -> Result<(), OperatorError> {
        let mut h = harness(IntervalBounds::new(0, 10))?;
        h.op.left_late = None;
        h.op.right_late = None;
        h.watermark(100);
        h.left((1, "late"), 5)?;
        h.right((1, "late"), 6)?;
        assert!(h.joined().is_empty());
        assert!(h.left_late.lock().is_empty() && h.right_late.lock().is_empty());
        assert_eq!(h.buffered(), 0);
        Ok(())
    }

    #[test]
    fn cleanup_follows_flinks_timer_times() -> Result<(), OperatorError> {
        // Left cleanup at t + upper (upper > 0); right cleanup at t - lower (lower < 0).
        let mut h = harness(IntervalBounds::new(-5, 10))?;
        h.left((1, "a"), 0)?;
        h.right((1, "x"), 0)?;
        h.right((2, "y"), 3)?;
        assert_eq!(h.buffered(), 3);
        assert_eq!(h.cleanup_timers(), 3);
        h.watermark(4);
        assert_eq!(h.buffered(), 3);
        h.watermark(5); // right@0 can only join lefts in [0 - 10, 0 + 5]
        assert_eq!(h.bucket(Side::Right, 1, 0), 0);
        assert_eq!(h.bucket(Side::Left, 1, 0), 1);
        // Not late, and the left element is still there to join it.
        h.right((1, "z"), 5)?;
        assert_eq!(h.joined().len(), 2);
        h.watermark(10);
        assert_eq!(h.bucket(Side::Left, 1, 0), 0);
        h.watermark(i64::MAX);
        assert_eq!(h.buffered(), 0, "every buffer is emptied");
        assert_eq!(h.cleanup_timers(), 0);
        Ok(())
    }

    #[test]
    fn cleanup_with_bounds_entirely_before_the_left_element() -> Result<(), OperatorError> {
        // upper <= 0: a left element is cleaned up at its own time; a right element waits for
        // lefts up to t - lower.
        let mut h = harness(IntervalBounds::new(-10, -2))?;
        h.left((1, "a"), 100)?;
        h.right((1, "x"), 100)?;
        h.watermark(100);
        assert_eq!(h.bucket(Side::Left, 1, 100), 0);
        assert_eq!(h.bucket(Side::Right, 1, 100), 1);
        h.left((1, "b"), 105)?; // 100 - 105 = -5: joins
        h.watermark(109);
        assert_eq!(h.bucket(Side::Right, 1, 100), 1);
        h.watermark(110);
        assert_eq!(h.buffered(), 0);
        assert_eq!(h.joined(), vec!["b+x l105 r100 t105 @105"]);
        Ok(())
    }

    #[test]
    fn element_without_timestamp_fails_with_a_clear_error() -> Result<(), OperatorError> {
        let mut h = harness(IntervalBounds::new(0, 1))?;
        let err = h
            .right((1, "x"), StreamRecord::<El>::NO_TIMESTAMP)
            .expect_err("no timestamp");
        let msg = err.to_string();
        assert!(
            msg.contains("interval join needs event timestamps"),
            "{msg}"
        );
        assert!(msg.contains("assign_timestamps_and_watermarks"), "{msg}");
        assert!(msg.contains("right input"), "{msg}");
        Ok(())
    }

    #[test]
    fn lower_above_upper_fails_at_open() {
        let err = harness(IntervalBounds::new(3, 2))
            .err()
            .expect("invalid bounds");
        assert!(err.to_string().contains("lower bound (3 ms)"), "{err}");
    }
}
