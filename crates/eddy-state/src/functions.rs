//! The user functions merging state needs: Flink's `ReduceFunction` (a plain closure here) and
//! `AggregateFunction`, which the window operators reuse.

use std::sync::Arc;

/// Combines two values into one (Flink's `ReduceFunction`), shared between descriptor clones.
pub type ReduceFn<V> = Arc<dyn Fn(V, V) -> V + Send + Sync + 'static>;

/// An incremental aggregation with an accumulator (Flink's `AggregateFunction`).
///
/// `IN` values are added one by one to an `ACC`, which is what `AggregatingState` stores and
/// snapshots; `OUT` is computed from the accumulator on read. `merge` combines the accumulators of
/// merged namespaces (session windows).
pub trait AggregateFunction<IN, ACC, OUT>: Send + Sync {
    /// A new, empty accumulator.
    fn create_accumulator(&self) -> ACC;
    /// Adds `value` to `accumulator`.
    fn add(&self, value: IN, accumulator: &mut ACC);
    /// The result for an accumulator.
    fn get_result(&self, accumulator: &ACC) -> OUT;
    /// Merges two accumulators into one.
    fn merge(&self, a: ACC, b: ACC) -> ACC;
}

impl<IN, ACC, OUT, T: AggregateFunction<IN, ACC, OUT> + ?Sized> AggregateFunction<IN, ACC, OUT>
    for Arc<T>
{
    fn create_accumulator(&self) -> ACC {
        (**self).create_accumulator()
    }
    fn add(&self, value: IN, accumulator: &mut ACC) {
        (**self).add(value, accumulator)
    }
    fn get_result(&self, accumulator: &ACC) -> OUT {
        (**self).get_result(accumulator)
    }
    fn merge(&self, a: ACC, b: ACC) -> ACC {
        (**self).merge(a, b)
    }
}
