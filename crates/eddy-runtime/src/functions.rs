//! The user-facing function traits (Flink's `ProcessFunction`, `KeyedProcessFunction`,
//! `CoProcessFunction`, `ProcessJoinFunction`, rich functions) and the contexts they are called
//! with.
//!
//! Keyed state is read and written through the context passed to each call
//! (`self.count.value(ctx)?`): a state handle is a small typed id obtained in `open`, so user
//! function structs stay `Send` and no lock or pointer chase is needed per access.

use crate::checkpoint::state::RestoredOperatorState;
use crate::checkpoint::{CheckpointId, OperatorStateMode};
use crate::environment::TaskEnv;
use crate::error::FunctionResult;
use crate::operator_state::restored_items;
pub use crate::operator_state::{BroadcastState, FunctionSnapshotContext};
use crate::output::{Collector, OutputTag, SideOutputs};
use eddy_core::{Data, Key, StreamRecord};
use eddy_state::{
    AggregatingState, AggregatingStateDescriptor, InternalTimerService, KeyedStateBackend,
    KeyedStateStore, ListState, ListStateDescriptor, MapState, MapStateDescriptor, ReducingState,
    ReducingStateDescriptor, StateError, ValueState, ValueStateDescriptor,
};

/// Which clock fired a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeDomain {
    /// Event time (watermarks).
    EventTime,
    /// Processing time (wall clock).
    ProcessingTime,
}

/// What a function sees in `open`: its task, and (on keyed streams) the keyed state to
/// register handles with (Flink's `RuntimeContext`).
pub struct RuntimeContext<'a, K: Key = ()> {
    pub(crate) env: &'a TaskEnv,
    pub(crate) operator_name: &'a str,
    pub(crate) max_parallelism: usize,
    pub(crate) backend: Option<&'a mut KeyedStateBackend<K>>,
    pub(crate) restored: Option<&'a RestoredOperatorState>,
}

impl<K: Key> RuntimeContext<'_, K> {
    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.env.job_name
    }
    /// The task's name (the chain's operators).
    pub fn task_name(&self) -> &str {
        &self.env.task_name
    }
    /// This operator's name.
    pub fn operator_name(&self) -> &str {
        self.operator_name
    }
    /// 0-based index of this parallel subtask.
    pub fn index_of_this_subtask(&self) -> usize {
        self.env.subtask
    }
    /// How many parallel subtasks the operator has.
    pub fn number_of_parallel_subtasks(&self) -> usize {
        self.env.parallelism
    }
    /// The operator's max parallelism (number of key groups).
    pub fn max_number_of_parallel_subtasks(&self) -> usize {
        self.max_parallelism
    }
    /// Flink's "Name (i/p)" task label.
    pub fn task_name_with_subtasks(&self) -> String {
        format!(
            "{} ({}/{})",
            self.env.task_name,
            self.env.subtask + 1,
            self.env.parallelism
        )
    }

    /// Whether the job was started from a checkpoint or savepoint (Flink's
    /// `FunctionInitializationContext.isRestored`).
    pub fn is_restored(&self) -> bool {
        self.env.restore.is_some()
    }

    /// This subtask's share of operator list state `name` as the function last wrote it in
    /// `snapshot_state` with [`FunctionSnapshotContext::update_list_state`] (Flink's
    /// `getOperatorStateStore().getListState`); empty when not restored.
    pub fn get_operator_list_state<T: Data>(&self, name: &str) -> Result<Vec<T>, StateError> {
        restored_items(self.restored, name, OperatorStateMode::Split)
    }

    /// All items of union list state `name`, written by every subtask with
    /// [`FunctionSnapshotContext::update_union_list_state`] (Flink's `getUnionListState`);
    /// empty when not restored.
    pub fn get_union_list_state<T: Data>(&self, name: &str) -> Result<Vec<T>, StateError> {
        restored_items(self.restored, name, OperatorStateMode::Union)
    }

    fn keyed(&mut self, name: &str) -> Result<&mut KeyedStateBackend<K>, StateError> {
        self.backend
            .as_deref_mut()
            .ok_or_else(|| StateError::NotKeyed {
                state: name.to_string(),
            })
    }

    /// Registers (or reconnects to) a `ValueState`. Only on a keyed stream.
    pub fn get_state<V: Data>(
        &mut self,
        d: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V>, StateError> {
        self.keyed(d.name())?.get_state(d)
    }
    /// Registers a `ListState`.
    pub fn get_list_state<V: Data>(
        &mut self,
        d: &ListStateDescriptor<V>,
    ) -> Result<ListState<V>, StateError> {
        self.keyed(d.name())?.get_list_state(d)
    }
    /// Registers a `MapState`.
    pub fn get_map_state<UK: Key, UV: Data>(
        &mut self,
        d: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV>, StateError> {
        self.keyed(d.name())?.get_map_state(d)
    }
    /// Registers a `ReducingState`.
    pub fn get_reducing_state<V: Data>(
        &mut self,
        d: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V>, StateError> {
        self.keyed(d.name())?.get_reducing_state(d)
    }
    /// Registers an `AggregatingState`.
    pub fn get_aggregating_state<IN, ACC: Data, OUT>(
        &mut self,
        d: &AggregatingStateDescriptor<IN, ACC, OUT>,
    ) -> Result<AggregatingState<IN, ACC, OUT>, StateError>
    where
        IN: 'static,
        OUT: 'static,
    {
        self.keyed(d.name())?.get_aggregating_state(d)
    }
}

/// Timers and clocks of a keyed function (Flink's `TimerService`).
pub struct TimerService<'a, K: Key> {
    timers: &'a mut InternalTimerService<K>,
    key: &'a K,
    watermark: i64,
    now: i64,
}

impl<K: Key> TimerService<'_, K> {
    /// Processing time now, in ms.
    pub fn current_processing_time(&self) -> i64 {
        self.now
    }
    /// The operator's current event-time watermark.
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }
    /// Fires `on_timer` for the current key when the watermark passes `time`. Deduplicated per
    /// (key, time).
    pub fn register_event_time_timer(&mut self, time: i64) {
        // The key is cloned only if the timer is new.
        self.timers
            .register_event_time_timer_ref(self.key, &(), time);
    }
    /// Fires `on_timer` for the current key when the wall clock passes `time`.
    pub fn register_processing_time_timer(&mut self, time: i64) {
        self.timers
            .register_processing_time_timer_ref(self.key, &(), time);
    }
    /// Removes an event-time timer of the current key.
    pub fn delete_event_time_timer(&mut self, time: i64) {
        self.timers.delete_event_time_timer(self.key, &(), time);
    }
    /// Removes a processing-time timer of the current key.
    pub fn delete_processing_time_timer(&mut self, time: i64) {
        self.timers
            .delete_processing_time_timer(self.key, &(), time);
    }
}

/// The context of a keyed function call: the current key, its state, timers, side outputs.
pub struct KeyedContext<'a, K: Key> {
    pub(crate) timestamp: i64,
    pub(crate) backend: &'a mut KeyedStateBackend<K>,
    pub(crate) timers: &'a mut InternalTimerService<K>,
    pub(crate) side: SideOutputs<'a>,
    pub(crate) watermark: i64,
    pub(crate) now: i64,
    pub(crate) time_domain: Option<TimeDomain>,
}

impl<K: Key> KeyedContext<'_, K> {
    /// The timestamp of the element being processed (or of the firing timer).
    pub fn timestamp(&self) -> Option<i64> {
        (self.timestamp != StreamRecord::<()>::NO_TIMESTAMP).then_some(self.timestamp)
    }
    /// The key of the element being processed (or of the firing timer).
    // The runtime builds a KeyedContext only after setting the element's or timer's key, and
    // users cannot build one: no input reaches this `expect`.
    #[allow(clippy::expect_used)]
    pub fn current_key(&self) -> &K {
        self.backend
            .current_key()
            .expect("a keyed context always has a current key")
    }
    /// In `on_timer`: which clock fired.
    pub fn time_domain(&self) -> Option<TimeDomain> {
        self.time_domain
    }
    /// Timers and clocks for the current key.
    #[allow(clippy::expect_used)] // as in `current_key`
    pub fn timer_service(&mut self) -> TimerService<'_, K> {
        let key = self
            .backend
            .current_key()
            .expect("a keyed context always has a current key");
        TimerService {
            timers: self.timers,
            key,
            watermark: self.watermark,
            now: self.now,
        }
    }
    /// Emits to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.side.output(tag, value)
    }
}

impl<K: Key> KeyedStateStore for KeyedContext<'_, K> {
    type Key = K;
    fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<K> {
        self.backend
    }
}

/// The context of a non-keyed function call.
pub struct ProcessContext<'a> {
    pub(crate) timestamp: i64,
    pub(crate) side: SideOutputs<'a>,
    pub(crate) watermark: i64,
    pub(crate) now: i64,
}

impl ProcessContext<'_> {
    /// The timestamp of the element being processed.
    pub fn timestamp(&self) -> Option<i64> {
        (self.timestamp != StreamRecord::<()>::NO_TIMESTAMP).then_some(self.timestamp)
    }
    /// Processing time now, in ms.
    pub fn current_processing_time(&self) -> i64 {
        self.now
    }
    /// The operator's current watermark.
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }
    /// Emits to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.side.output(tag, value)
    }
}

/// The checkpoint hooks every function trait has (Flink's `CheckpointedFunction.snapshotState`
/// and `CheckpointListener`), with defaults that do nothing.
macro_rules! checkpoint_hooks {
    () => {
        /// A checkpoint barrier passed: write the function's operator state (Flink's
        /// `CheckpointedFunction.snapshotState`); restore it in `open`.
        fn snapshot_state(&mut self, _ctx: &mut FunctionSnapshotContext<'_>) -> FunctionResult {
            Ok(())
        }
        /// Checkpoint `checkpoint_id` completed everywhere (Flink's `CheckpointListener`).
        fn notify_checkpoint_complete(&mut self, _checkpoint_id: CheckpointId) -> FunctionResult {
            Ok(())
        }
    };
}

/// Flink's `ProcessFunction`: one input, no keyed state or timers.
pub trait ProcessFunction<I, O>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// Called for every element.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `KeyedProcessFunction`: per-key state and timers.
pub trait KeyedProcessFunction<K: Key, I, O>: Send + 'static {
    /// Called once per subtask before any element; register state handles here.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_, K>) -> FunctionResult {
        Ok(())
    }
    /// Called for every element, with its key as the current key.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// Called when a timer of the current key fires.
    fn on_timer(
        &mut self,
        _timestamp: i64,
        _ctx: &mut KeyedContext<'_, K>,
        _out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        Ok(())
    }
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `CoProcessFunction`: two inputs of different types, no keyed state.
pub trait CoProcessFunction<I1, I2, O>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// An element of the first input.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// An element of the second input.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `KeyedCoProcessFunction`: two keyed inputs sharing key, state and timers.
pub trait KeyedCoProcessFunction<K: Key, I1, I2, O>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_, K>) -> FunctionResult {
        Ok(())
    }
    /// An element of the first input.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// An element of the second input.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// A timer of the current key fired.
    fn on_timer(
        &mut self,
        _timestamp: i64,
        _ctx: &mut KeyedContext<'_, K>,
        _out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        Ok(())
    }
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `RichMapFunction`: a map with `open`/`close`.
pub trait RichMapFunction<I, O>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// Maps one element.
    fn map(&mut self, value: I) -> O;
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `RichFlatMapFunction`.
pub trait RichFlatMapFunction<I, O>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// Emits zero or more elements for one input.
    fn flat_map(&mut self, value: I, out: &mut Collector<'_, O>);
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `RichFilterFunction`.
pub trait RichFilterFunction<I>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// Whether to keep the element.
    fn filter(&mut self, value: &I) -> bool;
    checkpoint_hooks!();
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Adapts a closure to [`RichMapFunction`].
#[derive(Clone)]
pub struct FnMap<F>(pub F);
impl<I, O, F: FnMut(I) -> O + Send + 'static> RichMapFunction<I, O> for FnMap<F> {
    #[inline]
    fn map(&mut self, value: I) -> O {
        (self.0)(value)
    }
}

/// Adapts a closure to [`RichFlatMapFunction`].
#[derive(Clone)]
pub struct FnFlatMap<F>(pub F);
impl<I, O, F: FnMut(I, &mut Collector<'_, O>) + Send + 'static> RichFlatMapFunction<I, O>
    for FnFlatMap<F>
{
    #[inline]
    fn flat_map(&mut self, value: I, out: &mut Collector<'_, O>) {
        (self.0)(value, out)
    }
}

/// Adapts a closure to [`RichFilterFunction`].
#[derive(Clone)]
pub struct FnFilter<F>(pub F);
impl<I, F: FnMut(&I) -> bool + Send + 'static> RichFilterFunction<I> for FnFilter<F> {
    #[inline]
    fn filter(&mut self, value: &I) -> bool {
        (self.0)(value)
    }
}

/// Adapts a closure `(value, ctx, out)` to [`ProcessFunction`].
#[derive(Clone)]
pub struct FnProcess<F>(pub F);
impl<I, O, F> ProcessFunction<I, O> for FnProcess<F>
where
    F: FnMut(I, &mut ProcessContext<'_>, &mut Collector<'_, O>) -> FunctionResult + Send + 'static,
{
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        (self.0)(value, ctx, out)
    }
}

/// What a [`ProcessJoinFunction`] sees of the pair being joined (Flink's
/// `ProcessJoinFunction.Context`): both elements' timestamps and the side outputs.
pub struct ProcessJoinContext<'a> {
    pub(crate) left_timestamp: i64,
    pub(crate) right_timestamp: i64,
    pub(crate) side: SideOutputs<'a>,
}

impl ProcessJoinContext<'_> {
    /// The timestamp of the left element of the pair.
    pub fn left_timestamp(&self) -> i64 {
        self.left_timestamp
    }
    /// The timestamp of the right element of the pair.
    pub fn right_timestamp(&self) -> i64 {
        self.right_timestamp
    }
    /// The timestamp of the joined pair: the larger of both, which is also the timestamp of
    /// what the function emits.
    pub fn timestamp(&self) -> i64 {
        self.left_timestamp.max(self.right_timestamp)
    }
    /// Emits to a side output, with the pair's timestamp.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.side.output(tag, value)
    }
}

/// Flink's `ProcessJoinFunction`: called once for every pair of a left and a right element of
/// the same key whose timestamps lie within the bounds of an interval join.
pub trait ProcessJoinFunction<L, R, O>: Send + 'static {
    /// Called once per subtask before any pair.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// One joined pair; what goes to `out` carries the pair's timestamp.
    fn process_element(
        &mut self,
        left: L,
        right: R,
        ctx: &mut ProcessJoinContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Adapts a closure `(left, right, ctx, out)` to [`ProcessJoinFunction`].
#[derive(Clone)]
pub struct FnProcessJoin<F>(pub F);
impl<L, R, O, F> ProcessJoinFunction<L, R, O> for FnProcessJoin<F>
where
    F: FnMut(L, R, &mut ProcessJoinContext<'_>, &mut Collector<'_, O>) -> FunctionResult
        + Send
        + 'static,
{
    fn process_element(
        &mut self,
        left: L,
        right: R,
        ctx: &mut ProcessJoinContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        (self.0)(left, right, ctx, out)
    }
}
