//! The local phase of a two-phase window aggregation (Flink SQL's local-global window
//! aggregate, `LocalSlicingWindowAggOperator`): chained before the shuffle, it folds the elements
//! of each `(key, slice)` into one accumulator and sends that partial accumulator on instead of
//! the elements, so the keyed window operator after the shuffle merges a few partials where it
//! would have added every element to every window.
//!
//! Results are those of the one-phase window operator: a slice's elements share all their
//! windows ([`TimeSlicing`]), the buffer is emitted before a watermark that could fire one
//! of its windows, before the input is marked idle (downstream stops waiting for its
//! watermarks), before every checkpoint barrier (so the operator has no state) and at the end
//! of input, and an element whose slice already lies in a fired window goes on at once, as it
//! would have without the local phase.

use super::assigner::{event_timestamp, TimeSlicing};
use crate::chain::OneInputOperator;
use crate::checkpoint::CheckpointBarrier;
use crate::error::OperatorError;
use crate::operators::KeySelector;
use crate::output::Output;
use eddy_core::keygroup::StableHasher;
use eddy_core::{Data, Key, StreamRecord, Watermark, WatermarkStatus};
use eddy_state::AggregateFunction;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;
use std::sync::Arc;

/// How many `(key, slice)` accumulators the local phase holds before it hands them all on.
pub const DEFAULT_LOCAL_BUFFER_ENTRIES: usize = 16_384;

/// Combines elements per `(key, slice)` and emits `(key, partial accumulator)` records stamped
/// with the slice's start.
pub struct LocalWindowAggregateOperator<T, K, ACC, V> {
    selector: Arc<dyn KeySelector<T, K>>,
    agg: Arc<dyn AggregateFunction<T, ACC, V>>,
    slicing: TimeSlicing,
    capacity: usize,
    buffer: HashMap<(K, i64), ACC, BuildHasherDefault<StableHasher>>,
    watermark: i64,
    /// The earliest `max_timestamp` of a window holding a buffered slice: a watermark that
    /// reaches it must find the buffer handed on.
    next_fire: i64,
}

impl<T, K: Key, ACC: Data, V> LocalWindowAggregateOperator<T, K, ACC, V> {
    /// A local phase for windows cut by `slicing`, holding at most `capacity` accumulators.
    pub fn new(
        selector: Arc<dyn KeySelector<T, K>>,
        agg: Arc<dyn AggregateFunction<T, ACC, V>>,
        slicing: TimeSlicing,
        capacity: usize,
    ) -> Self {
        LocalWindowAggregateOperator {
            selector,
            agg,
            slicing,
            capacity: capacity.max(1),
            buffer: HashMap::default(),
            watermark: i64::MIN,
            next_fire: i64::MAX,
        }
    }

    fn emit_buffer(&mut self, out: &mut Output<(K, ACC)>) {
        for ((key, slice), acc) in self.buffer.drain() {
            out.push(partial(key, acc, slice));
        }
        self.next_fire = i64::MAX;
    }
}

impl<T, K, ACC, V> OneInputOperator for LocalWindowAggregateOperator<T, K, ACC, V>
where
    T: Data,
    K: Key,
    ACC: Data,
    V: Send + 'static,
{
    type In = T;
    type Out = (K, ACC);

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<(K, ACC)>,
    ) -> Result<(), OperatorError> {
        for r in batch.drain(..) {
            let t = event_timestamp(r.timestamp).map_err(OperatorError::User)?;
            let slice = self.slicing.slice_start(t);
            let key = self.selector.get_key(&r.value);
            match self.buffer.entry((key, slice)) {
                Entry::Occupied(mut e) => self.agg.add(r.value, e.get_mut()),
                Entry::Vacant(v) => {
                    let mut acc = self.agg.create_accumulator();
                    self.agg.add(r.value, &mut acc);
                    let fire = self.slicing.first_window_max_timestamp(slice);
                    if fire <= self.watermark {
                        // A window of this slice has fired already: the element is late for
                        // it, and the window operator must see it before later watermarks.
                        out.push(partial(v.into_key().0, acc, slice));
                        continue;
                    }
                    v.insert(acc);
                    self.next_fire = self.next_fire.min(fire);
                    if self.buffer.len() >= self.capacity {
                        self.emit_buffer(out);
                    }
                }
            }
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<(K, ACC)>,
    ) -> Result<Option<Watermark>, OperatorError> {
        if wm.timestamp >= self.next_fire {
            self.emit_buffer(out);
        }
        self.watermark = self.watermark.max(wm.timestamp);
        Ok(Some(wm))
    }

    fn process_watermark_status(
        &mut self,
        status: WatermarkStatus,
        out: &mut Output<(K, ACC)>,
    ) -> Result<Option<WatermarkStatus>, OperatorError> {
        // An idle input stops holding back the window operator's watermark: what this phase
        // holds must get there first, as the elements would have without it.
        if status == WatermarkStatus::Idle {
            self.emit_buffer(out);
        }
        Ok(Some(status))
    }

    fn prepare_snapshot_pre_barrier(
        &mut self,
        _barrier: &CheckpointBarrier,
        out: &mut Output<(K, ACC)>,
    ) -> Result<(), OperatorError> {
        self.emit_buffer(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Output<(K, ACC)>) -> Result<(), OperatorError> {
        self.emit_buffer(out);
        Ok(())
    }
}

/// A partial accumulator record, stamped with its slice's start: any time of the slice gets
/// its windows, and the start is never `i64::MIN` (which means "no timestamp") unless the
/// slice is that one instant, which no element can be in.
fn partial<K, ACC>(key: K, acc: ACC, slice: i64) -> StreamRecord<(K, ACC)> {
    StreamRecord {
        value: (key, acc),
        timestamp: slice.max(i64::MIN + 1),
    }
}

/// The global phase's aggregate function: a partial accumulator is added by merging it, the
/// result is the user function's.
pub struct MergePartials<K, T, ACC, V> {
    agg: Arc<dyn AggregateFunction<T, ACC, V>>,
    _k: PhantomData<fn(K)>,
}

impl<K, T, ACC, V> MergePartials<K, T, ACC, V> {
    /// Merges partials of `agg`'s accumulators.
    pub fn new(agg: Arc<dyn AggregateFunction<T, ACC, V>>) -> Self {
        MergePartials {
            agg,
            _k: PhantomData,
        }
    }
}

impl<K, T, ACC, V> Clone for MergePartials<K, T, ACC, V> {
    fn clone(&self) -> Self {
        MergePartials::new(self.agg.clone())
    }
}

impl<K, T, ACC, V> AggregateFunction<(K, ACC), ACC, V> for MergePartials<K, T, ACC, V> {
    fn create_accumulator(&self) -> ACC {
        self.agg.create_accumulator()
    }
    fn add(&self, value: (K, ACC), accumulator: &mut ACC) {
        let old = std::mem::replace(accumulator, self.agg.create_accumulator());
        *accumulator = self.agg.merge(old, value.1);
    }
    fn get_result(&self, accumulator: &ACC) -> V {
        self.agg.get_result(accumulator)
    }
    fn merge(&self, a: ACC, b: ACC) -> ACC {
        self.agg.merge(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::FnKeySelector;
    use crate::testing::{barrier, sink, take_sorted};
    use crate::windowing::{SlidingEventTimeWindows, WindowAssigner};
    use std::time::Duration;

    struct Count;
    impl AggregateFunction<(u32, i64), u64, u64> for Count {
        fn create_accumulator(&self) -> u64 {
            0
        }
        fn add(&self, _: (u32, i64), acc: &mut u64) {
            *acc += 1;
        }
        fn get_result(&self, acc: &u64) -> u64 {
            *acc
        }
        fn merge(&self, a: u64, b: u64) -> u64 {
            a + b
        }
    }

    type Local = LocalWindowAggregateOperator<(u32, i64), u32, u64, u64>;

    /// Sliding 10 ms / 5 ms windows: slices of 5 ms.
    fn local(capacity: usize) -> Local {
        let assigner =
            SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(5));
        let slicing = WindowAssigner::<()>::time_slicing(&assigner).expect("aligned windows");
        LocalWindowAggregateOperator::new(
            Arc::new(FnKeySelector(|e: &(u32, i64)| e.0)),
            Arc::new(Count),
            slicing,
            capacity,
        )
    }

    fn batch(events: &[(u32, i64)]) -> Vec<StreamRecord<(u32, i64)>> {
        events
            .iter()
            .map(|&(k, t)| StreamRecord {
                value: (k, t),
                timestamp: t,
            })
            .collect()
    }

    #[test]
    fn combines_per_key_and_slice_and_hands_on_when_a_window_may_fire() {
        let (records, mut out) = sink::<(u32, u64)>();
        let mut op = local(100);
        let mut b = batch(&[(1, 10), (1, 12), (2, 11), (1, 16), (1, 14)]);
        op.process_batch(&mut b, &mut out).unwrap();
        // Nothing fires before 14 (the first window holding slice [10, 15) ends at 15).
        assert_eq!(
            op.process_watermark(Watermark::new(13), &mut out).unwrap(),
            Some(Watermark::new(13))
        );
        out.flush_buffered().unwrap();
        assert!(records.lock().is_empty());
        op.process_watermark(Watermark::new(14), &mut out).unwrap();
        out.flush_buffered().unwrap();
        let got = take_sorted(&records);
        assert_eq!(got, vec![((1, 1), 15), ((1, 3), 10), ((2, 1), 10)]);
    }

    #[test]
    fn a_late_element_goes_on_at_once() {
        let (records, mut out) = sink::<(u32, u64)>();
        let mut op = local(100);
        op.process_watermark(Watermark::new(20), &mut out).unwrap();
        // Slice [15, 20) is in window [10, 20), which fired at 19.
        op.process_batch(&mut batch(&[(3, 17)]), &mut out).unwrap();
        out.flush_buffered().unwrap();
        assert_eq!(take_sorted(&records), vec![((3, 1), 15)]);
    }

    #[test]
    fn idle_input_capacity_barrier_and_end_hand_the_buffer_on() {
        let (records, mut out) = sink::<(u32, u64)>();
        let mut op = local(3);
        op.process_batch(&mut batch(&[(1, 100)]), &mut out).unwrap();
        // Downstream stops waiting for an idle input: the buffer goes first.
        assert_eq!(
            op.process_watermark_status(WatermarkStatus::Idle, &mut out)
                .unwrap(),
            Some(WatermarkStatus::Idle)
        );
        out.flush_buffered().unwrap();
        assert_eq!(records.lock().drain(..).count(), 1);
        // Full at three entries.
        op.process_batch(&mut batch(&[(1, 100), (2, 100)]), &mut out)
            .unwrap();
        out.flush_buffered().unwrap();
        assert!(records.lock().is_empty());
        op.process_batch(&mut batch(&[(3, 100)]), &mut out).unwrap();
        out.flush_buffered().unwrap();
        assert_eq!(records.lock().drain(..).count(), 3);
        op.process_batch(&mut batch(&[(4, 100)]), &mut out).unwrap();
        op.prepare_snapshot_pre_barrier(&barrier(1), &mut out)
            .unwrap();
        out.flush_buffered().unwrap();
        assert_eq!(records.lock().drain(..).count(), 1);
        op.process_batch(&mut batch(&[(5, 100)]), &mut out).unwrap();
        op.finish(&mut out).unwrap();
        out.flush_buffered().unwrap();
        assert_eq!(records.lock().drain(..).count(), 1);
    }

    #[test]
    fn slices_at_the_ends_of_time_do_not_overflow() {
        let assigner =
            SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(4));
        let s = WindowAssigner::<()>::time_slicing(&assigner).expect("aligned windows");
        for t in [i64::MIN + 1, i64::MIN + 3, -1, 0, i64::MAX - 1, i64::MAX] {
            let start = s.slice_start(t);
            assert!(start <= t, "{t}");
            let fire = s.first_window_max_timestamp(start);
            assert!(fire >= start || fire == i64::MIN, "{t}: {fire}");
        }
        // A partial of the first slice of time still has a timestamp.
        assert_eq!(partial(1u32, 1u64, i64::MIN).timestamp, i64::MIN + 1);
    }
}
