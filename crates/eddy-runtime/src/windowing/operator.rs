//! The window operator (Flink's `WindowOperator` / `EvictingWindowOperator`): assigns each
//! element of a keyed stream to windows, keeps their contents in keyed state namespaced by
//! window, asks the trigger when to fire and purge, cleans windows up once the watermark passes
//! their end plus the allowed lateness, and routes elements that arrive too late to a side
//! output (or drops and counts them).

use super::assigner::WindowAssigner;
use super::contents::WindowContents;
use super::evictor::EvictorContext;
use super::function::{ProcessWindowFunction, WindowContext};
use super::merging::{mapping_state, MergingWindowSet};
use super::trigger::{Trigger, TriggerContext};
use super::window::Window;
use crate::chain::{OneInputOperator, OperatorContext};
use crate::environment::Clock;
use crate::error::OperatorError;
use crate::functions::RuntimeContext;
use crate::operators::KeySelector;
use crate::output::{Output, OutputTag};
use eddy_core::{Data, Key, StreamRecord, Watermark};
use eddy_state::{InternalTimerService, KeyedStateBackend, ValueState};
use std::marker::PhantomData;
use std::sync::Arc;

/// How many timers ahead of the firing one the window operator prefetches window state: far
/// enough to cover a cache miss, near enough that the timer's own slot (prefetched further
/// ahead by the timer queue) is in the cache.
const STATE_PREFETCH_AHEAD: usize = 6;

/// Settings of a window operator besides its functions.
pub struct WindowSettings<T> {
    /// How long after a window's end late elements still update it (event time only).
    pub allowed_lateness: i64,
    /// Where elements too late for every window go; dropped (and counted) without it.
    pub late_data: Option<OutputTag<T>>,
}

impl<T> Clone for WindowSettings<T> {
    fn clone(&self) -> Self {
        WindowSettings {
            allowed_lateness: self.allowed_lateness,
            late_data: self.late_data.clone(),
        }
    }
}

/// The current key, borrowed from the backend alone so the timers can be borrowed next to it.
fn key_of<K: Key>(backend: &KeyedStateBackend<K>) -> Result<&K, OperatorError> {
    backend
        .current_key()
        .ok_or_else(|| OperatorError::Internal("window operator without current key".into()))
}

/// The per-subtask runtime parts: keyed state, timers namespaced by window, clocks.
struct Runtime<K: Key, W: Window> {
    backend: KeyedStateBackend<K>,
    timers: InternalTimerService<K, W>,
    clock: Arc<dyn Clock>,
    watermark: i64,
    now: i64,
    event_time: bool,
    allowed_lateness: i64,
    merging: Option<ValueState<Vec<(W, W)>>>,
}

impl<K: Key, W: Window> Runtime<K, W> {
    fn trigger_ctx<'a>(&'a mut self, window: &W, merged: &'a [W]) -> TriggerContext<'a, K, W> {
        TriggerContext {
            backend: &mut self.backend,
            timers: &mut self.timers,
            window: window.clone(),
            watermark: self.watermark,
            now: self.now,
            merged_windows: merged,
        }
    }

    fn evictor_ctx(&self) -> EvictorContext {
        EvictorContext {
            current_processing_time: self.now,
            current_watermark: self.watermark,
        }
    }

    /// When the window's state goes: end plus lateness in event time, the end in processing
    /// time; `i64::MAX` (never) on overflow and for the global window.
    fn cleanup_time(&self, w: &W) -> i64 {
        if self.event_time {
            w.max_timestamp().saturating_add(self.allowed_lateness)
        } else {
            w.max_timestamp()
        }
    }

    fn is_window_late(&self, w: &W) -> bool {
        self.event_time && self.cleanup_time(w) <= self.watermark
    }

    fn is_element_late(&self, timestamp: i64) -> bool {
        self.event_time && timestamp.saturating_add(self.allowed_lateness) <= self.watermark
    }

    fn current_key(&self) -> Result<&K, OperatorError> {
        key_of(&self.backend)
    }

    fn register_cleanup_timer(&mut self, w: &W) -> Result<(), OperatorError> {
        let t = self.cleanup_time(w);
        if t == i64::MAX {
            return Ok(());
        }
        let key = key_of(&self.backend)?;
        // Usually the trigger's own timer for the same (key, window, time): a lookup, no clone.
        if self.event_time {
            self.timers.register_event_time_timer_ref(key, w, t);
        } else {
            self.timers.register_processing_time_timer_ref(key, w, t);
        }
        Ok(())
    }

    fn delete_cleanup_timer(&mut self, w: &W) -> Result<(), OperatorError> {
        let t = self.cleanup_time(w);
        if t == i64::MAX {
            return Ok(());
        }
        let key = key_of(&self.backend)?;
        if self.event_time {
            self.timers.delete_event_time_timer(key, w, t);
        } else {
            self.timers.delete_processing_time_timer(key, w, t);
        }
        Ok(())
    }
}

/// A keyed window operator: assigner `A`, contents `C`, window function `F`.
pub struct WindowOperator<K: Key, T, O, A: WindowAssigner<T>, C, F> {
    assigner: A,
    trigger: Box<dyn Trigger<K, T, A::W>>,
    contents: C,
    function: F,
    selector: Arc<dyn KeySelector<T, K>>,
    settings: WindowSettings<T>,
    rt: Option<Runtime<K, A::W>>,
    windows: Vec<A::W>,
    late_records_dropped: u64,
    _t: PhantomData<fn(T) -> O>,
}

impl<K, T, O, A, C, F> WindowOperator<K, T, O, A, C, F>
where
    K: Key,
    T: Data,
    O: Data,
    A: WindowAssigner<T>,
    C: WindowContents<K, T, A::W>,
    F: ProcessWindowFunction<C::Out, O, K, A::W>,
{
    /// A window operator; `trigger` replaces the assigner's default trigger.
    pub fn new(
        assigner: A,
        trigger: Option<Box<dyn Trigger<K, T, A::W>>>,
        contents: C,
        function: F,
        selector: Arc<dyn KeySelector<T, K>>,
        settings: WindowSettings<T>,
    ) -> Self {
        let trigger = trigger.unwrap_or_else(|| assigner.default_trigger::<K>());
        WindowOperator {
            assigner,
            trigger,
            contents,
            function,
            selector,
            settings,
            rt: None,
            windows: Vec::new(),
            late_records_dropped: 0,
            _t: PhantomData,
        }
    }

    /// Elements dropped because they were late for every window and no late-data side output
    /// was set (Flink's `numLateRecordsDropped`).
    pub fn late_records_dropped(&self) -> u64 {
        self.late_records_dropped
    }
}

fn not_open() -> OperatorError {
    OperatorError::Internal("window operator used before open".into())
}

impl<K, T, O, A, C, F> WindowOperator<K, T, O, A, C, F>
where
    K: Key,
    T: Data,
    O: Data,
    A: WindowAssigner<T>,
    C: WindowContents<K, T, A::W>,
    F: ProcessWindowFunction<C::Out, O, K, A::W>,
{
    /// Fires (if the contents are not empty) and/or purges one window.
    fn apply_result(
        rt: &mut Runtime<K, A::W>,
        contents: &mut C,
        function: &mut F,
        out: &mut Output<O>,
        result: super::trigger::TriggerResult,
        (window, state_window): (&A::W, &A::W),
        cleared_after: bool,
    ) -> Result<bool, OperatorError> {
        // Contents that are cleared right after this firing (purge, or the window's cleanup
        // time) are taken out instead of read and removed: one state lookup.
        let take = cleared_after || result.is_purge();
        if result.is_fire() {
            let ectx = rt.evictor_ctx();
            let values = if take {
                contents.take(&mut rt.backend, state_window, window, &ectx)?
            } else {
                contents.get(&mut rt.backend, state_window, window, &ectx)?
            };
            if let Some(values) = values {
                let key = rt.current_key()?.clone();
                {
                    // Results carry the window's max timestamp, as in Flink.
                    let (mut c, side) = out.split(window.max_timestamp());
                    let mut ctx = WindowContext {
                        window: window.clone(),
                        backend: &mut rt.backend,
                        side,
                        watermark: rt.watermark,
                        now: rt.now,
                    };
                    function.process(&key, &mut ctx, values, &mut c)?;
                }
                if !take {
                    contents.after_fire(&mut rt.backend, state_window, window, &ectx)?;
                }
            }
            // Taken contents are gone; report it so they are not cleared again.
            return Ok(take);
        }
        if result.is_purge() {
            contents.clear(&mut rt.backend, state_window)?;
        }
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    /// Drops everything of a window whose time is up: contents, trigger state, the window
    /// function's per-window state and its place in the merging set.
    fn clear_all_state(
        rt: &mut Runtime<K, A::W>,
        trigger: &mut Box<dyn Trigger<K, T, A::W>>,
        contents: &mut C,
        function: &mut F,
        out: &mut Output<O>,
        (window, state_window): (&A::W, &A::W),
        merging: Option<&mut MergingWindowSet<A::W>>,
        contents_cleared: bool,
    ) -> Result<(), OperatorError> {
        if !contents_cleared {
            contents.clear(&mut rt.backend, state_window)?;
        }
        trigger.clear(window, &mut rt.trigger_ctx(window, &[]))?;
        {
            let (_, side) = out.split(window.max_timestamp());
            let mut ctx = WindowContext {
                window: window.clone(),
                backend: &mut rt.backend,
                side,
                watermark: rt.watermark,
                now: rt.now,
            };
            function.clear(&mut ctx)?;
        }
        if let Some(set) = merging {
            set.retire_window(window)?;
        }
        Ok(())
    }

    fn process_element(
        &mut self,
        value: T,
        timestamp: i64,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let rt = self.rt.as_mut().ok_or_else(not_open)?;
        self.windows.clear();
        self.assigner
            .assign_windows(&value, timestamp, rt.now, &mut self.windows)?;
        let mut skipped = true;
        let (trigger, contents, function) =
            (&mut self.trigger, &mut self.contents, &mut self.function);
        if let Some(mstate) = rt.merging {
            let mut set = MergingWindowSet::load(&mut rt.backend, mstate)?;
            let assigner = &self.assigner;
            for window in self.windows.drain(..) {
                let actual = set.add_window(
                    window,
                    |ws, m| assigner.merge_windows(ws, m),
                    |result, merged, state_result, merged_states| {
                        if rt.event_time
                            && result.max_timestamp().saturating_add(rt.allowed_lateness)
                                <= rt.watermark
                        {
                            return Err(OperatorError::Internal(format!(
                                "the end of an event-time window cannot become earlier than \
                                 the current watermark by merging (watermark {}, window {:?})",
                                rt.watermark, result
                            )));
                        }
                        if !rt.event_time && result.max_timestamp() <= rt.now {
                            return Err(OperatorError::Internal(format!(
                                "the end of a processing-time window cannot become earlier \
                                 than the current processing time by merging (now {}, window \
                                 {:?})",
                                rt.now, result
                            )));
                        }
                        trigger.on_merge(result, &mut rt.trigger_ctx(result, merged))?;
                        for m in merged {
                            trigger.clear(m, &mut rt.trigger_ctx(m, &[]))?;
                            rt.delete_cleanup_timer(m)?;
                        }
                        contents.merge(&mut rt.backend, state_result, merged_states)?;
                        Ok(())
                    },
                )?;
                if rt.is_window_late(&actual) {
                    set.retire_window(&actual)?;
                    continue;
                }
                skipped = false;
                let state_window = set.state_window(&actual).ok_or_else(|| {
                    OperatorError::Internal(format!("window {actual:?} is not in flight"))
                })?;
                let result = trigger.on_element(
                    &value,
                    timestamp,
                    &actual,
                    &mut rt.trigger_ctx(&actual, &[]),
                )?;
                contents.add(&mut rt.backend, &state_window, value.clone(), timestamp)?;
                Self::apply_result(
                    rt,
                    contents,
                    function,
                    out,
                    result,
                    (&actual, &state_window),
                    false,
                )?;
                rt.register_cleanup_timer(&actual)?;
            }
            set.persist(&mut rt.backend, mstate)?;
        } else {
            let n = self.windows.len();
            let mut value = Some(value);
            for (i, window) in self.windows.drain(..).enumerate() {
                if rt.is_window_late(&window) {
                    continue;
                }
                skipped = false;
                let last = i + 1 == n;
                // A window that already holds elements has its trigger timer and cleanup timer
                // (both are registered with its first element and live as long as it does), so
                // a trigger that would only re-register them is not asked, and the element goes
                // into the window with one state lookup.
                if let Some(r) = trigger.on_element_again(&window, rt.watermark) {
                    let v = if last {
                        value.take().ok_or_else(not_open)?
                    } else {
                        value.as_ref().ok_or_else(not_open)?.clone()
                    };
                    match contents.add_if_present(&mut rt.backend, &window, v, timestamp)? {
                        None => {
                            Self::apply_result(
                                rt,
                                contents,
                                function,
                                out,
                                r,
                                (&window, &window),
                                false,
                            )?;
                            continue;
                        }
                        Some(back) if last => value = Some(back),
                        Some(_) => {}
                    }
                }
                // A new window. Triggers never read the contents, so asking first lets the last
                // window take the element without a clone.
                let v = value.as_ref().ok_or_else(not_open)?;
                let result =
                    trigger.on_element(v, timestamp, &window, &mut rt.trigger_ctx(&window, &[]))?;
                let v = if last {
                    value.take().ok_or_else(not_open)?
                } else {
                    v.clone()
                };
                contents.add(&mut rt.backend, &window, v, timestamp)?;
                Self::apply_result(
                    rt,
                    contents,
                    function,
                    out,
                    result,
                    (&window, &window),
                    false,
                )?;
                rt.register_cleanup_timer(&window)?;
            }
            if skipped {
                if let Some(v) = value {
                    return self.late(v, timestamp, out);
                }
            }
            return Ok(());
        }
        if skipped {
            return self.late(value, timestamp, out);
        }
        Ok(())
    }

    fn late(&mut self, value: T, timestamp: i64, out: &mut Output<O>) -> Result<(), OperatorError> {
        let rt = self.rt.as_ref().ok_or_else(not_open)?;
        if !rt.is_element_late(timestamp) {
            return Ok(());
        }
        match &self.settings.late_data {
            Some(tag) => {
                let (_, mut side) = out.split(timestamp);
                side.output(tag, value);
            }
            None => self.late_records_dropped += 1,
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        time: i64,
        key: K,
        window: A::W,
        event_time_timer: bool,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let rt = self.rt.as_mut().ok_or_else(not_open)?;
        rt.backend.set_current_key(key);
        let (trigger, contents, function) =
            (&mut self.trigger, &mut self.contents, &mut self.function);
        let mut set = match rt.merging {
            Some(m) => Some(MergingWindowSet::load(&mut rt.backend, m)?),
            None => None,
        };
        let state_window = match &set {
            Some(s) => match s.state_window(&window) {
                Some(sw) => sw,
                // A timer of a window that merged away: its trigger state is already gone.
                None => return Ok(()),
            },
            None => window.clone(),
        };
        let result = {
            let mut ctx = rt.trigger_ctx(&window, &[]);
            if event_time_timer {
                trigger.on_event_time(time, &window, &mut ctx)?
            } else {
                trigger.on_processing_time(time, &window, &mut ctx)?
            }
        };
        let cleanup = rt.event_time == event_time_timer && time == rt.cleanup_time(&window);
        let cleared = Self::apply_result(
            rt,
            contents,
            function,
            out,
            result,
            (&window, &state_window),
            cleanup,
        )?;
        if cleanup {
            Self::clear_all_state(
                rt,
                trigger,
                contents,
                function,
                out,
                (&window, &state_window),
                set.as_mut(),
                cleared,
            )?;
        }
        if let (Some(s), Some(m)) = (&set, rt.merging) {
            s.persist(&mut rt.backend, m)?;
        }
        Ok(())
    }
}

impl<K, T, O, A, C, F> OneInputOperator for WindowOperator<K, T, O, A, C, F>
where
    K: Key,
    T: Data,
    O: Data,
    A: WindowAssigner<T>,
    C: WindowContents<K, T, A::W>,
    F: ProcessWindowFunction<C::Out, O, K, A::W>,
{
    type In = T;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        // Checked when the program is built too; here once more for operators built by hand,
        // so `assign_windows` need not check per element (a zero size would divide by zero).
        self.assigner
            .validate()
            .map_err(|e| OperatorError::User(e.into()))?;
        if self.assigner.is_merging() && !self.trigger.can_merge() {
            return Err(OperatorError::User(
                format!(
                    "the trigger cannot be used with merging windows ({})",
                    self.assigner.name()
                )
                .into(),
            ));
        }
        let mut backend = KeyedStateBackend::new(ctx.key_group_range, ctx.max_parallelism);
        let mut timers = InternalTimerService::new(ctx.key_group_range, ctx.max_parallelism);
        crate::operators::keyed::restore_keyed(ctx, &mut backend, Some(&mut timers))?;
        self.contents.open(&mut backend)?;
        let merging = if self.assigner.is_merging() {
            Some(mapping_state(&mut backend)?)
        } else {
            None
        };
        self.function.open(&mut RuntimeContext {
            env: ctx.env,
            operator_name: &ctx.label.name,
            max_parallelism: ctx.max_parallelism,
            backend: Some(&mut backend),
            restored: ctx.restored(),
        })?;
        let now = ctx.env.clock.now_ms();
        self.rt = Some(Runtime {
            backend,
            timers,
            clock: ctx.env.clock.clone(),
            watermark: i64::MIN,
            now,
            event_time: self.assigner.is_event_time(),
            allowed_lateness: self.settings.allowed_lateness,
            merging,
        });
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let rt = self.rt.as_mut().ok_or_else(not_open)?;
        rt.now = rt.clock.now_ms();
        rt.backend.set_current_time(rt.now);
        let mut result = Ok(());
        for r in batch.drain(..) {
            if let Some(rt) = self.rt.as_mut() {
                self.selector.set_current_key(&r.value, &mut rt.backend);
            }
            result = self.process_element(r.value, r.timestamp, out);
            if result.is_err() {
                break;
            }
        }
        result
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<O>,
    ) -> Result<Option<Watermark>, OperatorError> {
        let rt = self.rt.as_mut().ok_or_else(not_open)?;
        rt.watermark = wm.timestamp;
        rt.now = rt.clock.now_ms();
        loop {
            let rt = self.rt.as_mut().ok_or_else(not_open)?;
            let Some(t) = rt.timers.poll_event_timer(wm.timestamp) else {
                break;
            };
            // Millions of windows may fire at once, each state read a cache miss: start
            // loading the state of a window a few timers ahead.
            // (Merging windows keep state under another window than the timer's: no hint.)
            if rt.merging.is_none() {
                if let Some((key, window)) = rt.timers.peek_event_timer_ahead(STATE_PREFETCH_AHEAD)
                {
                    self.contents.prefetch(&rt.backend, key, window);
                }
            }
            self.on_timer(t.timestamp, t.key, t.namespace, true, out)?;
        }
        Ok(Some(wm))
    }

    fn on_processing_time(
        &mut self,
        now: i64,
        out: &mut Output<O>,
    ) -> Result<Option<Watermark>, OperatorError> {
        let rt = self.rt.as_mut().ok_or_else(not_open)?;
        rt.now = now;
        loop {
            let rt = self.rt.as_mut().ok_or_else(not_open)?;
            let Some(t) = rt.timers.poll_processing_timer(now) else {
                break;
            };
            self.on_timer(t.timestamp, t.key, t.namespace, false, out)?;
        }
        Ok(None)
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.rt.as_ref()?.timers.next_processing_timer()
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        if self.late_records_dropped > 0 {
            tracing::info!(
                dropped = self.late_records_dropped,
                "window operator dropped late records"
            );
        }
        Ok(self.function.close()?)
    }

    fn snapshot_state(
        &mut self,
        _barrier: &crate::checkpoint::CheckpointBarrier,
    ) -> Result<crate::checkpoint::OperatorSubtaskState, OperatorError> {
        let rt = self
            .rt
            .as_mut()
            .ok_or_else(|| OperatorError::Internal("window operator used before open".into()))?;
        crate::operators::keyed::snapshot_keyed(&mut rt.backend, Some(&rt.timers))
    }
}
