//! The local phase of a two-phase window aggregation (Flink SQL's local-global window
//! aggregate, `LocalSlicingWindowAggOperator`): chained before the shuffle, it folds the elements
//! of each `(key, slice)` into one accumulator and sends that partial accumulator on instead of
//! the elements, so the keyed window operator after the shuffle merges a few partials where it
//! would have added every element to every window.
//!
//! Results are those of the one-phase window operator: a slice's elements share all their
//! windows ([`TimeSlicing`]), the buffer is handed on before a watermark that could fire one
//! of its windows, before every checkpoint barrier (so the operator has no state) and at the
//! end of input, and an element whose slice already lies in a fired window goes on at once,
//! as it would have without the local phase.

use super::assigner::{event_timestamp, TimeSlicing};
use crate::chain::OneInputOperator;
use crate::checkpoint::CheckpointBarrier;
use crate::error::OperatorError;
use crate::operators::KeySelector;
use crate::output::Output;
use eddy_core::keygroup::StableHasher;
use eddy_core::{Data, Key, StreamRecord, Watermark};
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

    fn hand_on(&mut self, out: &mut Output<(K, ACC)>) {
        for ((key, slice), acc) in self.buffer.drain() {
            out.push(StreamRecord {
                value: (key, acc),
                timestamp: slice,
            });
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
                        out.push(StreamRecord {
                            value: (v.into_key().0, acc),
                            timestamp: slice,
                        });
                        continue;
                    }
                    v.insert(acc);
                    self.next_fire = self.next_fire.min(fire);
                    if self.buffer.len() >= self.capacity {
                        self.hand_on(out);
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
            self.hand_on(out);
        }
        self.watermark = self.watermark.max(wm.timestamp);
        Ok(Some(wm))
    }

    fn prepare_snapshot_pre_barrier(
        &mut self,
        _barrier: &CheckpointBarrier,
        out: &mut Output<(K, ACC)>,
    ) -> Result<(), OperatorError> {
        self.hand_on(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Output<(K, ACC)>) -> Result<(), OperatorError> {
        self.hand_on(out);
        Ok(())
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
