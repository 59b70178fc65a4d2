//! Triggers decide when a window's contents are emitted and when they are purged (Flink's
//! `Trigger`): the [`Trigger`] trait, the [`TriggerContext`] a trigger sees (timers and state
//! scoped to one key and window), and the built-in triggers.

use super::window::Window;
use crate::error::FunctionResult;
use eddy_core::{Data, Key};
use eddy_state::{
    InternalTimerService, KeyedStateBackend, KeyedStateStore, ReducingState,
    ReducingStateDescriptor, StateError, ValueState, ValueStateDescriptor,
};

/// What a trigger tells the window operator to do with the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing.
    Continue,
    /// Emit the window's contents, keep them.
    Fire,
    /// Drop the window's contents without emitting.
    Purge,
    /// Emit the window's contents, then drop them.
    FireAndPurge,
}

impl TriggerResult {
    /// Whether the window is emitted.
    pub fn is_fire(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }
    /// Whether the window's contents are dropped.
    pub fn is_purge(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// A trigger's view of one key and one window: timers, per-window state and both clocks.
pub struct TriggerContext<'a, K: Key, W: Window> {
    pub(crate) backend: &'a mut KeyedStateBackend<K>,
    pub(crate) timers: &'a mut InternalTimerService<K, W>,
    pub(crate) window: W,
    pub(crate) watermark: i64,
    pub(crate) now: i64,
    pub(crate) merged_windows: &'a [W],
}

/// The key timers are registered for; borrowed from the backend alone so the timer service can
/// be borrowed mutably next to it.
fn timer_key<K: Key>(backend: &KeyedStateBackend<K>) -> Result<&K, StateError> {
    backend
        .current_key()
        .ok_or_else(|| StateError::NoCurrentKey {
            state: "window timers".into(),
        })
}

impl<K: Key, W: Window> TriggerContext<'_, K, W> {
    /// The window this call is about.
    pub fn window(&self) -> &W {
        &self.window
    }
    /// The operator's current event-time watermark.
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }
    /// Processing time now, in ms.
    pub fn current_processing_time(&self) -> i64 {
        self.now
    }

    /// Calls `on_event_time` for this key and window when the watermark passes `time`.
    pub fn register_event_time_timer(&mut self, time: i64) -> FunctionResult {
        let key = timer_key(self.backend)?;
        self.timers
            .register_event_time_timer_ref(key, &self.window, time);
        Ok(())
    }
    /// Calls `on_processing_time` for this key and window when the clock passes `time`.
    pub fn register_processing_time_timer(&mut self, time: i64) -> FunctionResult {
        let key = timer_key(self.backend)?;
        self.timers
            .register_processing_time_timer_ref(key, &self.window, time);
        Ok(())
    }
    /// Removes an event-time timer of this key and window.
    pub fn delete_event_time_timer(&mut self, time: i64) -> FunctionResult {
        let key = timer_key(self.backend)?;
        self.timers.delete_event_time_timer(key, &self.window, time);
        Ok(())
    }
    /// Removes a processing-time timer of this key and window.
    pub fn delete_processing_time_timer(&mut self, time: i64) -> FunctionResult {
        let key = timer_key(self.backend)?;
        self.timers
            .delete_processing_time_timer(key, &self.window, time);
        Ok(())
    }

    /// A value state scoped to key and window (Flink's `getPartitionedState`); read and write
    /// it with the `_in` methods, passing this context and [`window`](Self::window).
    pub fn get_value_state<V: Data>(
        &mut self,
        d: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V, W>, StateError> {
        self.backend.get_state_ns(d)
    }
    /// A reducing state scoped to key and window.
    pub fn get_reducing_state<V: Data>(
        &mut self,
        d: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V, W>, StateError> {
        self.backend.get_reducing_state_ns(d)
    }
    /// In `on_merge`: folds the state of the merged windows into this window (Flink's
    /// `mergePartitionedState`).
    pub fn merge_partitioned_state<V: Data>(
        &mut self,
        d: &ReducingStateDescriptor<V>,
    ) -> Result<(), StateError> {
        let state = self.backend.get_reducing_state_ns::<V, W>(d)?;
        state.merge_namespaces(self.backend, &self.window, self.merged_windows)
    }
    /// In `on_merge`: the windows merged into this one.
    pub fn merged_windows(&self) -> &[W] {
        self.merged_windows
    }
}

impl<K: Key, W: Window> KeyedStateStore for TriggerContext<'_, K, W> {
    type Key = K;
    fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<K> {
        self.backend
    }
}

/// Decides when windows fire (Flink's `Trigger`). One instance per operator subtask, called
/// with the key's state current; keep per-window data in [`TriggerContext`] state, not in
/// fields.
pub trait Trigger<K: Key, T, W: Window>: Send + 'static {
    /// An element was added to `window`.
    fn on_element(
        &mut self,
        element: &T,
        timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult>;
    /// For an element of a window that already holds elements: what `on_element` would return,
    /// if all it does beyond that is re-register the timers it registered for the window's
    /// first element (`None`: call `on_element`). Lets the operator skip a timer lookup per
    /// element and window.
    fn on_element_again(&self, _window: &W, _watermark: i64) -> Option<TriggerResult> {
        None
    }
    /// A processing-time timer of this window fired. The default continues: a trigger that
    /// registers no processing-time timer never sees one.
    fn on_processing_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        let _ = (time, window, ctx);
        Ok(TriggerResult::Continue)
    }
    /// An event-time timer of this window fired. The default continues, likewise.
    fn on_event_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        let _ = (time, window, ctx);
        Ok(TriggerResult::Continue)
    }
    /// Whether the trigger supports merging windows (session windows).
    fn can_merge(&self) -> bool {
        false
    }
    /// Windows were merged into `window`; `ctx.merged_windows()` lists them.
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        let _ = (window, ctx);
        Err("this trigger does not support merging windows".into())
    }
    /// The window is gone: delete its timers and state.
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult;
}

/// Fires once the watermark passes the end of the window (Flink's `EventTimeTrigger`), and
/// again for every late element while the window is kept for allowed lateness.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventTimeTrigger;

impl EventTimeTrigger {
    /// The trigger.
    pub fn create() -> Self {
        EventTimeTrigger
    }
}

impl<K: Key, T, W: Window> Trigger<K, T, W> for EventTimeTrigger {
    fn on_element_again(&self, window: &W, watermark: i64) -> Option<TriggerResult> {
        // `on_element` without re-registering the end-of-window timer.
        Some(if window.max_timestamp() <= watermark {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        })
    }
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        if window.max_timestamp() <= ctx.current_watermark() {
            // Already past the end: a late element within allowed lateness fires at once.
            Ok(TriggerResult::Fire)
        } else {
            ctx.register_event_time_timer(window.max_timestamp())?;
            Ok(TriggerResult::Continue)
        }
    }
    fn on_event_time(
        &mut self,
        time: i64,
        window: &W,
        _ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        Ok(if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        })
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        // Only while the merged window is still ahead of the watermark; otherwise the
        // cleanup timer (or the next element) takes care of it.
        if window.max_timestamp() > ctx.current_watermark() {
            ctx.register_event_time_timer(window.max_timestamp())?;
        }
        Ok(())
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        ctx.delete_event_time_timer(window.max_timestamp())
    }
}

/// Fires when the wall clock passes the end of the window (Flink's `ProcessingTimeTrigger`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessingTimeTrigger;

impl ProcessingTimeTrigger {
    /// The trigger.
    pub fn create() -> Self {
        ProcessingTimeTrigger
    }
}

impl<K: Key, T, W: Window> Trigger<K, T, W> for ProcessingTimeTrigger {
    fn on_element_again(&self, _window: &W, _watermark: i64) -> Option<TriggerResult> {
        // `on_element` without re-registering the end-of-window timer.
        Some(TriggerResult::Continue)
    }
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        ctx.register_processing_time_timer(window.max_timestamp())?;
        Ok(TriggerResult::Continue)
    }
    fn on_processing_time(
        &mut self,
        _time: i64,
        _window: &W,
        _ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        Ok(TriggerResult::Fire)
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        if window.max_timestamp() > ctx.current_processing_time() {
            ctx.register_processing_time_timer(window.max_timestamp())?;
        }
        Ok(())
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        ctx.delete_processing_time_timer(window.max_timestamp())
    }
}

/// Never fires: the default of [`GlobalWindows`](super::GlobalWindows), which needs an explicit
/// trigger.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverTrigger;

impl<K: Key, T, W: Window> Trigger<K, T, W> for NeverTrigger {
    fn on_element(
        &mut self,
        _: &T,
        _: i64,
        _: &W,
        _: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        Ok(TriggerResult::Continue)
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, _: &W, _: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        Ok(())
    }
    fn clear(&mut self, _: &W, _: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        Ok(())
    }
}

fn sum_u64() -> ReducingStateDescriptor<u64> {
    ReducingStateDescriptor::new("count", |a: u64, b: u64| a + b)
}

/// Fires every `max_count` elements of a window (Flink's `CountTrigger`).
#[derive(Clone, Copy, Debug)]
pub struct CountTrigger {
    max_count: u64,
}

impl CountTrigger {
    /// Fires when the window holds `max_count` elements since the last firing.
    pub fn of(max_count: u64) -> Self {
        CountTrigger {
            max_count: max_count.max(1),
        }
    }
}

impl<K: Key, T, W: Window> Trigger<K, T, W> for CountTrigger {
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        let count = ctx.get_reducing_state(&sum_u64())?;
        count.add_in(ctx, window, 1)?;
        if count.get_in(ctx, window)?.unwrap_or(0) >= self.max_count {
            count.clear_in(ctx, window)?;
            return Ok(TriggerResult::Fire);
        }
        Ok(TriggerResult::Continue)
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, _window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        Ok(ctx.merge_partitioned_state(&sum_u64())?)
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        let count = ctx.get_reducing_state(&sum_u64())?;
        Ok(count.clear_in(ctx, window)?)
    }
}

fn min_fire_time() -> ReducingStateDescriptor<i64> {
    ReducingStateDescriptor::new("fire-time", |a: i64, b: i64| a.min(b))
}

/// Fires every `interval` of event time while the window is open, and at its end (Flink's
/// `ContinuousEventTimeTrigger`): early results for long windows.
#[derive(Clone, Copy, Debug)]
pub struct ContinuousEventTimeTrigger {
    interval: i64,
}

impl ContinuousEventTimeTrigger {
    /// Fires every `interval` of event time.
    pub fn of(interval: std::time::Duration) -> Self {
        ContinuousEventTimeTrigger {
            interval: (interval.as_millis() as i64).max(1),
        }
    }

    fn register_next<K: Key, W: Window>(
        &self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult {
        let next = time
            .saturating_add(self.interval)
            .min(window.max_timestamp());
        let state = ctx.get_reducing_state(&min_fire_time())?;
        state.add_in(ctx, window, next)?;
        ctx.register_event_time_timer(next)
    }
}

impl<K: Key, T, W: Window> Trigger<K, T, W> for ContinuousEventTimeTrigger {
    fn on_element(
        &mut self,
        _element: &T,
        timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        if window.max_timestamp() <= ctx.current_watermark() {
            return Ok(TriggerResult::Fire);
        }
        ctx.register_event_time_timer(window.max_timestamp())?;
        let state = ctx.get_reducing_state(&min_fire_time())?;
        if state.get_in(ctx, window)?.is_none() {
            self.register_next(timestamp - timestamp % self.interval, window, ctx)?;
        }
        Ok(TriggerResult::Continue)
    }
    fn on_event_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        if time == window.max_timestamp() {
            return Ok(TriggerResult::Fire);
        }
        let state = ctx.get_reducing_state(&min_fire_time())?;
        if state.get_in(ctx, window)? == Some(time) {
            state.clear_in(ctx, window)?;
            self.register_next(time, window, ctx)?;
            return Ok(TriggerResult::Fire);
        }
        Ok(TriggerResult::Continue)
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        ctx.merge_partitioned_state(&min_fire_time())?;
        let state = ctx.get_reducing_state(&min_fire_time())?;
        if let Some(next) = state.get_in(ctx, window)? {
            ctx.register_event_time_timer(next)?;
        }
        Ok(())
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        let state = ctx.get_reducing_state(&min_fire_time())?;
        if let Some(t) = state.get_in(ctx, window)? {
            ctx.delete_event_time_timer(t)?;
            state.clear_in(ctx, window)?;
        }
        Ok(())
    }
}

/// Turns every `Fire` of the inner trigger into `FireAndPurge` (Flink's `PurgingTrigger`).
#[derive(Clone, Copy, Debug)]
pub struct PurgingTrigger<Tr> {
    inner: Tr,
}

impl<Tr> PurgingTrigger<Tr> {
    /// Purging version of `inner`.
    pub fn of(inner: Tr) -> Self {
        PurgingTrigger { inner }
    }
}

fn purging(r: TriggerResult) -> TriggerResult {
    if r.is_fire() {
        TriggerResult::FireAndPurge
    } else {
        r
    }
}

impl<K: Key, T, W: Window, Tr: Trigger<K, T, W>> Trigger<K, T, W> for PurgingTrigger<Tr> {
    fn on_element_again(&self, window: &W, watermark: i64) -> Option<TriggerResult> {
        self.inner.on_element_again(window, watermark).map(purging)
    }
    fn on_element(
        &mut self,
        element: &T,
        timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        Ok(purging(
            self.inner.on_element(element, timestamp, window, ctx)?,
        ))
    }
    fn on_processing_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        Ok(purging(self.inner.on_processing_time(time, window, ctx)?))
    }
    fn on_event_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        Ok(purging(self.inner.on_event_time(time, window, ctx)?))
    }
    fn can_merge(&self) -> bool {
        self.inner.can_merge()
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        self.inner.on_merge(window, ctx)
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        self.inner.clear(window, ctx)
    }
}

/// Boxed triggers are triggers, so the operator can hold any of them.
impl<K: Key, T: 'static, W: Window> Trigger<K, T, W> for Box<dyn Trigger<K, T, W>> {
    fn on_element_again(&self, window: &W, watermark: i64) -> Option<TriggerResult> {
        (**self).on_element_again(window, watermark)
    }
    fn on_element(
        &mut self,
        element: &T,
        timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        (**self).on_element(element, timestamp, window, ctx)
    }
    fn on_processing_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        (**self).on_processing_time(time, window, ctx)
    }
    fn on_event_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, K, W>,
    ) -> FunctionResult<TriggerResult> {
        (**self).on_event_time(time, window, ctx)
    }
    fn can_merge(&self) -> bool {
        (**self).can_merge()
    }
    fn on_merge(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        (**self).on_merge(window, ctx)
    }
    fn clear(&mut self, window: &W, ctx: &mut TriggerContext<'_, K, W>) -> FunctionResult {
        (**self).clear(window, ctx)
    }
}
