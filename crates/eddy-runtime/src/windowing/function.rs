//! Window functions: [`ProcessWindowFunction`] (key, window, all elements or the incremental
//! result, per-window and global state, side outputs), its all-window form, closure adapters,
//! and the pass-through used by plain `reduce`/`aggregate`.

use super::window::Window;
use crate::error::FunctionResult;
use crate::functions::RuntimeContext;
use crate::output::{Collector, OutputTag, SideOutputs};
use eddy_core::{Data, Key};
use eddy_state::{
    KeyedStateBackend, KeyedStateStore, ListState, ListStateDescriptor, MapState,
    MapStateDescriptor, ReducingState, ReducingStateDescriptor, StateError, ValueState,
    ValueStateDescriptor,
};
use std::marker::PhantomData;

/// What a window function sees besides the elements (Flink's `ProcessWindowFunction.Context`).
pub struct WindowContext<'a, K: Key, W: Window> {
    pub(crate) window: W,
    pub(crate) backend: &'a mut KeyedStateBackend<K>,
    pub(crate) side: SideOutputs<'a>,
    pub(crate) watermark: i64,
    pub(crate) now: i64,
}

impl<K: Key, W: Window> WindowContext<'_, K, W> {
    /// The window being evaluated.
    pub fn window(&self) -> &W {
        &self.window
    }
    /// The key being evaluated.
    pub fn current_key(&self) -> Option<&K> {
        self.backend.current_key()
    }
    /// The operator's current watermark.
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }
    /// Processing time now, ms.
    pub fn current_processing_time(&self) -> i64 {
        self.now
    }
    /// State of this key scoped to this window (Flink's `windowState()`): use it with the `_in`
    /// methods and [`window`](Self::window). Clear it in
    /// [`ProcessWindowFunction::clear`].
    pub fn get_window_state<V: Data>(
        &mut self,
        d: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V, W>, StateError> {
        self.backend.get_state_ns(d)
    }
    /// List state scoped to key and window.
    pub fn get_window_list_state<V: Data>(
        &mut self,
        d: &ListStateDescriptor<V>,
    ) -> Result<ListState<V, W>, StateError> {
        self.backend.get_list_state_ns(d)
    }
    /// Reducing state scoped to key and window.
    pub fn get_window_reducing_state<V: Data>(
        &mut self,
        d: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V, W>, StateError> {
        self.backend.get_reducing_state_ns(d)
    }
    /// State of this key across all its windows (Flink's `globalState()`).
    pub fn get_global_state<V: Data>(
        &mut self,
        d: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V>, StateError> {
        self.backend.get_state(d)
    }
    /// List state of this key across windows.
    pub fn get_global_list_state<V: Data>(
        &mut self,
        d: &ListStateDescriptor<V>,
    ) -> Result<ListState<V>, StateError> {
        self.backend.get_list_state(d)
    }
    /// Map state of this key across windows.
    pub fn get_global_map_state<UK: Key, UV: Data>(
        &mut self,
        d: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV>, StateError> {
        self.backend.get_map_state(d)
    }
    /// Emits to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.side.output(tag, value)
    }
}

impl<K: Key, W: Window> KeyedStateStore for WindowContext<'_, K, W> {
    type Key = K;
    fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<K> {
        self.backend
    }
}

/// Evaluates a fired window (Flink's `ProcessWindowFunction`). `elements` are the window's
/// elements, or the single pre-aggregated value when combined with `reduce`/`aggregate`.
pub trait ProcessWindowFunction<IN, OUT, K: Key, W: Window>: Send + 'static {
    /// Called once per subtask before any window (keyed state handles can be made here).
    fn open(&mut self, _ctx: &mut RuntimeContext<'_, K>) -> FunctionResult {
        Ok(())
    }
    /// Evaluates one window firing.
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, K, W>,
        elements: Vec<IN>,
        out: &mut Collector<'_, OUT>,
    ) -> FunctionResult;
    /// The window is purged for good: drop its per-window state.
    fn clear(&mut self, _ctx: &mut WindowContext<'_, K, W>) -> FunctionResult {
        Ok(())
    }
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Emits the pre-aggregated value as is (plain `reduce`/`aggregate`).
pub struct PassThroughWindowFunction<T>(PhantomData<fn(T)>);

impl<T> Default for PassThroughWindowFunction<T> {
    fn default() -> Self {
        PassThroughWindowFunction(PhantomData)
    }
}

impl<T> Clone for PassThroughWindowFunction<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<T: Data, K: Key, W: Window> ProcessWindowFunction<T, T, K, W>
    for PassThroughWindowFunction<T>
{
    fn process(
        &mut self,
        _key: &K,
        _ctx: &mut WindowContext<'_, K, W>,
        elements: Vec<T>,
        out: &mut Collector<'_, T>,
    ) -> FunctionResult {
        for e in elements {
            out.collect(e);
        }
        Ok(())
    }
}

/// A closure `(key, ctx, elements, out)` as a [`ProcessWindowFunction`].
#[derive(Clone)]
pub struct FnProcessWindow<F>(pub F);

impl<IN, OUT, K: Key, W: Window, F> ProcessWindowFunction<IN, OUT, K, W> for FnProcessWindow<F>
where
    F: FnMut(&K, &mut WindowContext<'_, K, W>, Vec<IN>, &mut Collector<'_, OUT>) -> FunctionResult
        + Send
        + 'static,
{
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, K, W>,
        elements: Vec<IN>,
        out: &mut Collector<'_, OUT>,
    ) -> FunctionResult {
        (self.0)(key, ctx, elements, out)
    }
}

/// A closure `(key, window, elements, out)` as a window function (Flink's `WindowFunction`,
/// used by `apply`).
#[derive(Clone)]
pub struct FnWindow<F>(pub F);

impl<IN, OUT, K: Key, W: Window, F> ProcessWindowFunction<IN, OUT, K, W> for FnWindow<F>
where
    F: FnMut(&K, &W, Vec<IN>, &mut Collector<'_, OUT>) -> FunctionResult + Send + 'static,
{
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, K, W>,
        elements: Vec<IN>,
        out: &mut Collector<'_, OUT>,
    ) -> FunctionResult {
        (self.0)(key, &ctx.window, elements, out)
    }
}

/// Evaluates a fired window of a non-keyed stream (`window_all`; Flink's
/// `ProcessAllWindowFunction`).
pub trait ProcessAllWindowFunction<IN, OUT, W: Window>: Send + 'static {
    /// Evaluates one window firing.
    fn process(
        &mut self,
        ctx: &mut WindowContext<'_, (), W>,
        elements: Vec<IN>,
        out: &mut Collector<'_, OUT>,
    ) -> FunctionResult;
    /// The window is purged for good.
    fn clear(&mut self, _ctx: &mut WindowContext<'_, (), W>) -> FunctionResult {
        Ok(())
    }
}

/// Runs a [`ProcessAllWindowFunction`] as the keyed function of the single `()` key.
#[derive(Clone)]
pub struct AllWindowAdapter<P>(pub P);

impl<IN, OUT, W: Window, P: ProcessAllWindowFunction<IN, OUT, W>>
    ProcessWindowFunction<IN, OUT, (), W> for AllWindowAdapter<P>
{
    fn process(
        &mut self,
        _key: &(),
        ctx: &mut WindowContext<'_, (), W>,
        elements: Vec<IN>,
        out: &mut Collector<'_, OUT>,
    ) -> FunctionResult {
        self.0.process(ctx, elements, out)
    }
    fn clear(&mut self, ctx: &mut WindowContext<'_, (), W>) -> FunctionResult {
        self.0.clear(ctx)
    }
}

/// A closure `(ctx, elements, out)` as a [`ProcessAllWindowFunction`].
#[derive(Clone)]
pub struct FnProcessAllWindow<F>(pub F);

impl<IN, OUT, W: Window, F> ProcessAllWindowFunction<IN, OUT, W> for FnProcessAllWindow<F>
where
    F: FnMut(&mut WindowContext<'_, (), W>, Vec<IN>, &mut Collector<'_, OUT>) -> FunctionResult
        + Send
        + 'static,
{
    fn process(
        &mut self,
        ctx: &mut WindowContext<'_, (), W>,
        elements: Vec<IN>,
        out: &mut Collector<'_, OUT>,
    ) -> FunctionResult {
        (self.0)(ctx, elements, out)
    }
}
