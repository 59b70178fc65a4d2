//! `KeyedStream`: a stream partitioned by key, with keyed state and timers downstream —
//! `process`, `reduce`, the rolling aggregations `sum`/`min`/`max`/`min_by`/`max_by`, and the
//! start of an `interval_join`.

use crate::interval_join::IntervalJoin;
use crate::stream::{per_subtask, DataStream, SingleOutputStreamOperator};
use eddy_core::partitioner::PartitionerKind;
use eddy_core::{Data, Key};
use eddy_runtime::factory::OneInputFactory;
use eddy_runtime::functions::KeyedProcessFunction;
use eddy_runtime::operators::keyed::{GroupedReduceOperator, KeyedProcessOperator};
use eddy_runtime::operators::local_reduce::{
    LocalReduceOperator, DEFAULT_LOCAL_REDUCE_KEYS, DEFAULT_LOCAL_REDUCE_LATENCY_MS,
};
use eddy_runtime::operators::KeyGroupStreamPartitioner;
use eddy_runtime::operators::KeySelector;
use eddy_runtime::output::KeyPartitioner;
use std::ops::{Add, Deref};
use std::sync::Arc;

/// Access to one field of a record, for the rolling aggregations: a non-capturing closure such
/// as `|t: &mut (String, i64)| &mut t.1`.
pub type Field<T, N> = fn(&mut T) -> &mut N;

/// A stream partitioned by key (Flink's `KeyedStream<T, K>`). Operations on it (including the
/// `DataStream` ones reached through `Deref`) read it hash-partitioned by key.
pub struct KeyedStream<T, K> {
    stream: DataStream<T>,
    /// The stream before the key partitioning, for operators that run ahead of the shuffle
    /// (the local phase of a two-phase aggregation).
    unpartitioned: DataStream<T>,
    pub(crate) selector: Arc<dyn KeySelector<T, K>>,
}

impl<T, K> Clone for KeyedStream<T, K> {
    fn clone(&self) -> Self {
        KeyedStream {
            stream: self.stream.clone(),
            unpartitioned: self.unpartitioned.clone(),
            selector: self.selector.clone(),
        }
    }
}

impl<T, K> Deref for KeyedStream<T, K> {
    type Target = DataStream<T>;
    fn deref(&self) -> &DataStream<T> {
        &self.stream
    }
}

impl<T: Data, K: Key> KeyedStream<T, K> {
    pub(crate) fn new(input: DataStream<T>, selector: Arc<dyn KeySelector<T, K>>) -> Self {
        let partitioner: Arc<dyn KeyPartitioner<T>> = Arc::new(KeyGroupStreamPartitioner {
            selector: selector.clone(),
        });
        KeyedStream {
            stream: input.with_partitioner(PartitionerKind::Hash, Some(Arc::new(partitioner))),
            unpartitioned: input,
            selector,
        }
    }

    /// The stream before it was keyed.
    pub(crate) fn unpartitioned(&self) -> &DataStream<T> {
        &self.unpartitioned
    }

    /// The key selector.
    pub fn key_selector(&self) -> Arc<dyn KeySelector<T, K>> {
        self.selector.clone()
    }

    /// Applies a [`KeyedProcessFunction`]: per-key state, timers and side outputs.
    pub fn process<O: Data, F: KeyedProcessFunction<K, T, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        let sel = self.selector.clone();
        let make = per_subtask(f, move |f| KeyedProcessOperator::new(f, sel.clone()));
        self.stream
            .transform("KeyedProcess", Arc::new(OneInputFactory::new(make)), true)
    }

    /// Starts an interval join with `other`, keyed by the same key type (Flink's
    /// `intervalJoin`): set the bounds with `between`, then `process` the pairs.
    pub fn interval_join<R: Data>(&self, other: &KeyedStream<R, K>) -> IntervalJoin<T, R, K> {
        IntervalJoin::new(self.clone(), other.clone())
    }

    /// Rolling reduce: after each record, emits the reduction of all records of its key so far.
    pub fn reduce<F: FnMut(T, T) -> T + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce_named("Keyed Reduce", f)
    }

    /// [`reduce`](Self::reduce) in two phases (Flink SQL's mini-batch local-global
    /// aggregation): a local phase chained before the shuffle reduces the records of each key it
    /// sees within a short batch (up to 16,384 keys or 100 ms of processing time, and never
    /// across a watermark or checkpoint barrier) and sends one record per key on; the keyed
    /// reduce after the shuffle combines those. Far fewer records cross the shuffle when keys
    /// repeat. The result stream carries fewer intermediate values than `reduce` (one per
    /// batch and key instead of one per record, stamped with the batch's latest record's
    /// time), and each key's latest value is the same, provided `f` is associative and
    /// commutative and returns a record with its inputs' key (a partial is routed by its own
    /// key; a changed key fails the job).
    pub fn reduce_two_phase<F: FnMut(T, T) -> T + Clone + Send + 'static>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<T> {
        let sel = self.selector.clone();
        let make = per_subtask(f.clone(), move |f| {
            LocalReduceOperator::new(
                sel.clone(),
                f,
                DEFAULT_LOCAL_REDUCE_KEYS,
                DEFAULT_LOCAL_REDUCE_LATENCY_MS,
            )
        });
        let local = self
            .unpartitioned()
            .transform_local_phase::<T>("LocalReduce", Arc::new(OneInputFactory::new(make)));
        KeyedStream::new((*local).clone(), self.selector.clone()).reduce_named("Keyed Reduce", f)
    }

    fn reduce_named<F: FnMut(T, T) -> T + Clone + Send + 'static>(
        &self,
        name: &str,
        f: F,
    ) -> SingleOutputStreamOperator<T> {
        let sel = self.selector.clone();
        let make = per_subtask(f, move |f| GroupedReduceOperator::new(f, sel.clone()));
        self.stream
            .transform(name, Arc::new(OneInputFactory::new(make)), true)
    }

    /// Rolling sum of a field; the other fields keep the values of the key's first record.
    pub fn sum<N: Add<Output = N> + Copy + Send + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce_named("Keyed Aggregation", move |mut acc: T, mut v: T| {
            let x = *field(&mut v);
            let f = field(&mut acc);
            *f = *f + x;
            acc
        })
    }

    /// Rolling minimum of a field; the other fields keep the values of the key's first record.
    pub fn min<N: PartialOrd + Copy + Send + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce_named("Keyed Aggregation", move |mut acc: T, mut v: T| {
            let x = *field(&mut v);
            let f = field(&mut acc);
            if x < *f {
                *f = x;
            }
            acc
        })
    }

    /// Rolling maximum of a field; the other fields keep the values of the key's first record.
    pub fn max<N: PartialOrd + Copy + Send + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce_named("Keyed Aggregation", move |mut acc: T, mut v: T| {
            let x = *field(&mut v);
            let f = field(&mut acc);
            if x > *f {
                *f = x;
            }
            acc
        })
    }

    /// The whole record with the smallest field value so far (the first one on ties).
    pub fn min_by<N: PartialOrd + Copy + Send + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce_named("Keyed Aggregation", move |mut acc: T, mut v: T| {
            if *field(&mut v) < *field(&mut acc) {
                v
            } else {
                acc
            }
        })
    }

    /// The whole record with the largest field value so far (the first one on ties).
    pub fn max_by<N: PartialOrd + Copy + Send + 'static>(
        &self,
        field: Field<T, N>,
    ) -> SingleOutputStreamOperator<T> {
        self.reduce_named("Keyed Aggregation", move |mut acc: T, mut v: T| {
            if *field(&mut v) > *field(&mut acc) {
                v
            } else {
                acc
            }
        })
    }
}
