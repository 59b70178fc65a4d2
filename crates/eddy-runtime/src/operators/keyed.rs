//! Keyed one-input operators: `KeyedProcessFunction` with state and timers, and the rolling
//! `reduce` (which also carries `sum`/`min`/`max`/`min_by`/`max_by`).

use super::KeySelector;
use crate::chain::{OneInputOperator, OperatorContext};
use crate::checkpoint::{CheckpointBarrier, OperatorSubtaskState};
use crate::environment::Clock;
use crate::error::OperatorError;
use crate::functions::{KeyedContext, KeyedProcessFunction, RuntimeContext, TimeDomain};
use crate::output::{Output, SideOutputs};
use eddy_core::{Data, Key, StreamRecord, Watermark};
use eddy_state::{InternalTimerService, KeyedStateBackend, ValueState, ValueStateDescriptor};
use std::marker::PhantomData;
use std::sync::Arc;

/// The keyed-operator plumbing shared by one- and two-input keyed operators: state backend,
/// timer service, clock and watermark.
pub struct KeyedCore<K: Key> {
    /// Keyed state of this subtask's key groups.
    pub backend: KeyedStateBackend<K>,
    /// Event- and processing-time timers.
    pub timers: InternalTimerService<K>,
    /// Processing-time clock (set in `open`).
    pub clock: Option<Arc<dyn Clock>>,
    /// Current event-time watermark.
    pub watermark: i64,
}

/// Name of a keyed operator's timer service in its snapshots.
pub const TIMER_SERVICE: &str = "timers";

/// Restores keyed state and timers of a keyed operator, if the job was restored.
pub fn restore_keyed<K: Key, N: Key>(
    ctx: &OperatorContext<'_>,
    backend: &mut KeyedStateBackend<K>,
    timers: Option<&mut InternalTimerService<K, N>>,
) -> Result<(), OperatorError> {
    if let Some(r) = ctx.restored() {
        backend.restore(&r.keyed)?;
        if let (Some(t), Some(snaps)) = (timers, r.timers.get(TIMER_SERVICE)) {
            t.restore(snaps)?;
        }
    }
    Ok(())
}

/// Snapshots keyed state (by key group) and timers of a keyed operator.
pub fn snapshot_keyed<K: Key, N: Key>(
    backend: &mut KeyedStateBackend<K>,
    timers: Option<&InternalTimerService<K, N>>,
) -> Result<OperatorSubtaskState, OperatorError> {
    let timers = match timers {
        Some(t) => vec![(TIMER_SERVICE.to_string(), t.snapshot()?)],
        None => Vec::new(),
    };
    Ok(OperatorSubtaskState {
        keyed: Some(backend.snapshot()?),
        timers,
        operator: Vec::new(),
    })
}

impl<K: Key> KeyedCore<K> {
    /// Creates the backend for this subtask's key groups, restored if the job was.
    pub fn open(ctx: &OperatorContext<'_>) -> Result<Self, OperatorError> {
        let mut core = KeyedCore {
            backend: KeyedStateBackend::new(ctx.key_group_range, ctx.max_parallelism),
            timers: InternalTimerService::new(ctx.key_group_range, ctx.max_parallelism),
            clock: Some(ctx.env.clock.clone()),
            watermark: i64::MIN,
        };
        restore_keyed(ctx, &mut core.backend, Some(&mut core.timers))?;
        Ok(core)
    }

    /// Snapshots state and timers.
    pub fn snapshot(&mut self) -> Result<OperatorSubtaskState, OperatorError> {
        snapshot_keyed(&mut self.backend, Some(&self.timers))
    }

    /// A runtime context with keyed state for the function's `open`.
    pub fn runtime_context<'a>(
        &'a mut self,
        ctx: &'a OperatorContext<'_>,
    ) -> RuntimeContext<'a, K> {
        RuntimeContext {
            env: ctx.env,
            operator_name: &ctx.label.name,
            max_parallelism: ctx.max_parallelism,
            backend: Some(&mut self.backend),
            restored: ctx.restored(),
        }
    }

    /// The context of keyed functions over this core's state and timers, for elements
    /// (`time_domain: None`) or firing timers.
    fn context<'a>(
        &'a mut self,
        side: SideOutputs<'a>,
        now: i64,
        time_domain: Option<TimeDomain>,
    ) -> KeyedContext<'a, K> {
        KeyedContext {
            timestamp: StreamRecord::<()>::NO_TIMESTAMP,
            backend: &mut self.backend,
            timers: &mut self.timers,
            side,
            watermark: self.watermark,
            now,
            time_domain,
        }
    }

    /// Reads the clock and gives it to TTL.
    pub fn now(&mut self) -> i64 {
        let now = super::now(&self.clock);
        self.backend.set_current_time(now);
        now
    }

    /// The per-record loop of keyed functions (process, co-process, broadcast process): sets
    /// each record's key (borrowed where the selector can) and timestamp, then hands the value
    /// to `process`.
    pub fn process_elements<I: Data, O: Data>(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        selector: &dyn KeySelector<I, K>,
        out: &mut Output<O>,
        mut process: impl FnMut(
            I,
            &mut KeyedContext<'_, K>,
            &mut crate::output::Collector<'_, O>,
        ) -> Result<(), OperatorError>,
    ) -> Result<(), OperatorError> {
        let now = self.now();
        let (mut c, side) = out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = self.context(side, now, None);
        for r in batch.drain(..) {
            selector.set_current_key(&r.value, ctx.backend);
            ctx.timestamp = r.timestamp;
            ctx.side.set_timestamp(r.timestamp);
            c.set_timestamp(r.timestamp);
            process(r.value, &mut ctx, &mut c)?;
        }
        Ok(())
    }

    /// Fires every event-time timer at or before `wm` (timers registered meanwhile included),
    /// each with its key as the current key.
    pub fn fire_event_timers<O: Data>(
        &mut self,
        wm: i64,
        out: &mut Output<O>,
        mut on_timer: impl FnMut(
            i64,
            &mut KeyedContext<'_, K>,
            &mut crate::output::Collector<'_, O>,
        ) -> Result<(), OperatorError>,
    ) -> Result<(), OperatorError> {
        self.watermark = wm;
        if self.timers.next_event_timer().is_none_or(|t| t > wm) {
            return Ok(());
        }
        let now = self.now();
        let (mut c, side) = out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = self.context(side, now, Some(TimeDomain::EventTime));
        while let Some(t) = ctx.timers.poll_event_timer(wm) {
            ctx.backend.set_current_key(t.key);
            ctx.timestamp = t.timestamp;
            ctx.side.set_timestamp(t.timestamp);
            c.set_timestamp(t.timestamp);
            on_timer(t.timestamp, &mut ctx, &mut c)?;
        }
        Ok(())
    }

    /// Fires every processing-time timer at or before `now`; their output has no timestamp.
    pub fn fire_processing_timers<O: Data>(
        &mut self,
        now: i64,
        out: &mut Output<O>,
        mut on_timer: impl FnMut(
            i64,
            &mut KeyedContext<'_, K>,
            &mut crate::output::Collector<'_, O>,
        ) -> Result<(), OperatorError>,
    ) -> Result<(), OperatorError> {
        self.backend.set_current_time(now);
        let (mut c, side) = out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = self.context(side, now, Some(TimeDomain::ProcessingTime));
        while let Some(t) = ctx.timers.poll_processing_timer(now) {
            ctx.backend.set_current_key(t.key);
            on_timer(t.timestamp, &mut ctx, &mut c)?;
        }
        Ok(())
    }
}

/// `KeyedStream::process`.
pub struct KeyedProcessOperator<K: Key, I, O, F> {
    f: F,
    selector: Arc<dyn KeySelector<I, K>>,
    core: Option<KeyedCore<K>>,
    _t: PhantomData<fn(I) -> O>,
}

impl<K: Key, I, O, F> KeyedProcessOperator<K, I, O, F> {
    /// Wraps the function with the stream's key selector.
    pub fn new(f: F, selector: Arc<dyn KeySelector<I, K>>) -> Self {
        KeyedProcessOperator {
            f,
            selector,
            core: None,
            _t: PhantomData,
        }
    }
}

fn not_open() -> OperatorError {
    OperatorError::Internal("keyed operator used before open".into())
}

impl<K: Key, I: Data, O: Data, F: KeyedProcessFunction<K, I, O>> OneInputOperator
    for KeyedProcessOperator<K, I, O, F>
{
    type In = I;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        let core = self.core.insert(KeyedCore::open(ctx)?);
        Ok(self.f.open(&mut core.runtime_context(ctx))?)
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        let mut state = self.core.as_mut().ok_or_else(not_open)?.snapshot()?;
        let f = &mut self.f;
        crate::operator_state::snapshot_function(barrier, &mut state, |c| f.snapshot_state(c))?;
        Ok(state)
    }

    fn notify_checkpoint_complete(
        &mut self,
        id: crate::checkpoint::CheckpointId,
    ) -> Result<(), OperatorError> {
        Ok(self.f.notify_checkpoint_complete(id)?)
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let core = self.core.as_mut().ok_or_else(not_open)?;
        let f = &mut self.f;
        core.process_elements(batch, self.selector.as_ref(), out, |v, ctx, c| {
            Ok(f.process_element(v, ctx, c)?)
        })
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<O>,
    ) -> Result<Option<Watermark>, OperatorError> {
        let core = self.core.as_mut().ok_or_else(not_open)?;
        let f = &mut self.f;
        core.fire_event_timers(wm.timestamp, out, |ts, ctx, c| Ok(f.on_timer(ts, ctx, c)?))?;
        Ok(Some(wm))
    }

    fn on_processing_time(
        &mut self,
        now: i64,
        out: &mut Output<O>,
    ) -> Result<Option<Watermark>, OperatorError> {
        let core = self.core.as_mut().ok_or_else(not_open)?;
        let f = &mut self.f;
        core.fire_processing_timers(now, out, |ts, ctx, c| Ok(f.on_timer(ts, ctx, c)?))?;
        Ok(None)
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.core.as_ref()?.timers.next_processing_timer()
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }
}

/// Rolling `reduce` on a keyed stream: emits the new aggregate after every element.
pub struct GroupedReduceOperator<K: Key, T, F> {
    f: F,
    selector: Arc<dyn KeySelector<T, K>>,
    backend: Option<KeyedStateBackend<K>>,
    state: Option<ValueState<T>>,
}

impl<K: Key, T, F> GroupedReduceOperator<K, T, F> {
    /// Wraps the reduce function with the stream's key selector.
    pub fn new(f: F, selector: Arc<dyn KeySelector<T, K>>) -> Self {
        GroupedReduceOperator {
            f,
            selector,
            backend: None,
            state: None,
        }
    }
}

impl<K: Key, T: Data, F: FnMut(T, T) -> T + Send + 'static> OneInputOperator
    for GroupedReduceOperator<K, T, F>
{
    type In = T;
    type Out = T;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        let backend = self.backend.insert(KeyedStateBackend::new(
            ctx.key_group_range,
            ctx.max_parallelism,
        ));
        restore_keyed::<K, ()>(ctx, backend, None)?;
        self.state = Some(backend.get_state(&ValueStateDescriptor::<T>::new("_reduce_state"))?);
        Ok(())
    }

    fn snapshot_state(
        &mut self,
        _barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        snapshot_keyed::<K, ()>(self.backend.as_mut().ok_or_else(not_open)?, None)
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<T>,
    ) -> Result<(), OperatorError> {
        let backend = self.backend.as_mut().ok_or_else(not_open)?;
        let state = self.state.ok_or_else(not_open)?;
        for r in batch.drain(..) {
            self.selector.set_current_key(&r.value, backend);
            let f = &mut self.f;
            let v = r.value;
            let next = state.update_with(backend, |acc| match acc {
                Some(acc) => f(acc, v),
                None => v,
            })?;
            out.push(StreamRecord {
                value: next,
                timestamp: r.timestamp,
            });
        }
        Ok(())
    }
}
