//! The broadcast state pattern (Flink's `BroadcastProcessFunction` and
//! `KeyedBroadcastProcessFunction`): a stream connected with a broadcast stream; elements of
//! the broadcast side reach every subtask and may write the broadcast state, elements of the
//! other side only read it. Every subtask therefore holds the same broadcast state, provided
//! the function updates it deterministically from broadcast elements — as in Flink, that is
//! the function's contract.

use super::keyed::KeyedCore;
use super::KeySelector;
use crate::chain::OperatorContext;
use crate::checkpoint::{CheckpointBarrier, CheckpointId, OperatorSubtaskState};
use crate::environment::Clock;
use crate::error::{FunctionResult, OperatorError};
use crate::functions::{FunctionSnapshotContext, KeyedContext, ProcessContext, RuntimeContext};
use crate::operator_state::{
    snapshot_function, BroadcastState, BroadcastStateDeclaration, BroadcastStates,
};
use crate::operators::co::TwoInputOperator;
use crate::output::{Collector, Output};
use eddy_core::{Data, Key, StreamRecord, Watermark};
use eddy_state::{KeyedStateBackend, KeyedStateStore, MapStateDescriptor, StateError};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// The element context a broadcast context extends (timestamp, clocks, side outputs).
macro_rules! deref_to_process_context {
    ($ctx:ident) => {
        impl<'a> Deref for $ctx<'a> {
            type Target = ProcessContext<'a>;
            fn deref(&self) -> &ProcessContext<'a> {
                &self.inner
            }
        }

        impl<'a> DerefMut for $ctx<'a> {
            fn deref_mut(&mut self) -> &mut ProcessContext<'a> {
                &mut self.inner
            }
        }
    };
}

/// What the non-broadcast side sees: the element's context and read-only broadcast state
/// (Flink's `ReadOnlyContext`).
pub struct ReadOnlyBroadcastContext<'a> {
    inner: ProcessContext<'a>,
    states: &'a BroadcastStates,
}

impl ReadOnlyBroadcastContext<'_> {
    /// The broadcast state `desc` describes (declared on the broadcast stream), read-only.
    pub fn get_broadcast_state<K: Key, V: Data>(
        &self,
        desc: &MapStateDescriptor<K, V>,
    ) -> Result<&BroadcastState<K, V>, StateError> {
        self.states.get(desc)
    }
}

deref_to_process_context!(ReadOnlyBroadcastContext);

/// What the broadcast side sees: the element's context and writable broadcast state (Flink's
/// `BroadcastProcessFunction.Context`).
pub struct BroadcastContext<'a> {
    inner: ProcessContext<'a>,
    states: &'a mut BroadcastStates,
}

impl BroadcastContext<'_> {
    /// The broadcast state `desc` describes (declared on the broadcast stream), writable.
    pub fn get_broadcast_state<K: Key, V: Data>(
        &mut self,
        desc: &MapStateDescriptor<K, V>,
    ) -> Result<&mut BroadcastState<K, V>, StateError> {
        self.states.get_mut(desc)
    }
}

deref_to_process_context!(BroadcastContext);

/// What the keyed side of a keyed broadcast function sees: the keyed context (current key,
/// keyed state, timers) plus read-only broadcast state (Flink's
/// `KeyedBroadcastProcessFunction.ReadOnlyContext`).
pub struct KeyedReadOnlyBroadcastContext<'a, 'b, K: Key> {
    inner: &'b mut KeyedContext<'a, K>,
    states: &'b BroadcastStates,
}

impl<K: Key> KeyedReadOnlyBroadcastContext<'_, '_, K> {
    /// The broadcast state `desc` describes (declared on the broadcast stream), read-only.
    pub fn get_broadcast_state<UK: Key, UV: Data>(
        &self,
        desc: &MapStateDescriptor<UK, UV>,
    ) -> Result<&BroadcastState<UK, UV>, StateError> {
        self.states.get(desc)
    }
}

impl<'a, K: Key> Deref for KeyedReadOnlyBroadcastContext<'a, '_, K> {
    type Target = KeyedContext<'a, K>;
    fn deref(&self) -> &KeyedContext<'a, K> {
        self.inner
    }
}

impl<'a, K: Key> DerefMut for KeyedReadOnlyBroadcastContext<'a, '_, K> {
    fn deref_mut(&mut self) -> &mut KeyedContext<'a, K> {
        self.inner
    }
}

impl<K: Key> KeyedStateStore for KeyedReadOnlyBroadcastContext<'_, '_, K> {
    type Key = K;
    fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<K> {
        self.inner.keyed_state_backend()
    }
}

/// Flink's `BroadcastProcessFunction`: a non-keyed stream connected with a broadcast stream.
pub trait BroadcastProcessFunction<I, B, O>: Send + 'static {
    /// Called once per subtask before any element.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// An element of the non-broadcast input; broadcast state is read-only here.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut ReadOnlyBroadcastContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// An element of the broadcast input (every subtask sees each one); broadcast state is
    /// writable here.
    fn process_broadcast_element(
        &mut self,
        value: B,
        ctx: &mut BroadcastContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// See [`crate::functions::ProcessFunction::snapshot_state`].
    fn snapshot_state(&mut self, _ctx: &mut FunctionSnapshotContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// Checkpoint `checkpoint_id` completed everywhere.
    fn notify_checkpoint_complete(&mut self, _checkpoint_id: CheckpointId) -> FunctionResult {
        Ok(())
    }
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

/// Flink's `KeyedBroadcastProcessFunction`: a keyed stream connected with a broadcast stream;
/// the keyed side has keyed state and timers.
pub trait KeyedBroadcastProcessFunction<K: Key, I, B, O>: Send + 'static {
    /// Called once per subtask before any element; register keyed state handles here.
    fn open(&mut self, _ctx: &mut RuntimeContext<'_, K>) -> FunctionResult {
        Ok(())
    }
    /// An element of the keyed input, with its key as the current key.
    fn process_element(
        &mut self,
        value: I,
        ctx: &mut KeyedReadOnlyBroadcastContext<'_, '_, K>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// An element of the broadcast input (every subtask sees each one; there is no current
    /// key); broadcast state is writable here.
    fn process_broadcast_element(
        &mut self,
        value: B,
        ctx: &mut BroadcastContext<'_>,
        out: &mut Collector<'_, O>,
    ) -> FunctionResult;
    /// A timer of the current key fired.
    fn on_timer(
        &mut self,
        _timestamp: i64,
        _ctx: &mut KeyedReadOnlyBroadcastContext<'_, '_, K>,
        _out: &mut Collector<'_, O>,
    ) -> FunctionResult {
        Ok(())
    }
    /// See [`crate::functions::ProcessFunction::snapshot_state`].
    fn snapshot_state(&mut self, _ctx: &mut FunctionSnapshotContext<'_>) -> FunctionResult {
        Ok(())
    }
    /// Checkpoint `checkpoint_id` completed everywhere.
    fn notify_checkpoint_complete(&mut self, _checkpoint_id: CheckpointId) -> FunctionResult {
        Ok(())
    }
    /// Called once at the end.
    fn close(&mut self) -> FunctionResult {
        Ok(())
    }
}

fn not_open() -> OperatorError {
    OperatorError::Internal("broadcast operator used before open".into())
}

/// Processes a batch of broadcast elements with writable broadcast state.
fn broadcast_batch<B, O: Data>(
    batch: &mut Vec<StreamRecord<B>>,
    out: &mut Output<O>,
    states: &mut BroadcastStates,
    watermark: i64,
    now: i64,
    mut f: impl FnMut(B, &mut BroadcastContext<'_>, &mut Collector<'_, O>) -> FunctionResult,
) -> Result<(), OperatorError> {
    let (mut c, side) = out.split(StreamRecord::<O>::NO_TIMESTAMP);
    let mut ctx = BroadcastContext {
        inner: ProcessContext {
            timestamp: StreamRecord::<O>::NO_TIMESTAMP,
            side,
            watermark,
            now,
        },
        states,
    };
    for r in batch.drain(..) {
        c.set_timestamp(r.timestamp);
        ctx.inner.side.set_timestamp(r.timestamp);
        ctx.inner.timestamp = r.timestamp;
        f(r.value, &mut ctx, &mut c)?;
    }
    Ok(())
}

/// `DataStream::connect_broadcast(..).process(..)`: non-keyed side plus broadcast side.
pub struct BroadcastProcessOperator<I, B, O, F> {
    f: F,
    declared: Vec<BroadcastStateDeclaration>,
    states: Option<BroadcastStates>,
    clock: Option<Arc<dyn Clock>>,
    watermark: i64,
    _t: PhantomData<fn(I, B) -> O>,
}

impl<I, B, O, F> BroadcastProcessOperator<I, B, O, F> {
    /// Wraps the function with the broadcast states declared on the broadcast stream.
    pub fn new(f: F, declared: Vec<BroadcastStateDeclaration>) -> Self {
        BroadcastProcessOperator {
            f,
            declared,
            states: None,
            clock: None,
            watermark: i64::MIN,
            _t: PhantomData,
        }
    }
}

impl<I: Data, B: Data, O: Data, F: BroadcastProcessFunction<I, B, O>> TwoInputOperator
    for BroadcastProcessOperator<I, B, O, F>
{
    type In1 = I;
    type In2 = B;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        self.clock = Some(ctx.env.clock.clone());
        self.states = Some(BroadcastStates::open(&self.declared, ctx.restored())?);
        Ok(self.f.open(&mut super::basic::plain_runtime_context(ctx))?)
    }

    fn process_batch1(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let now = super::now(&self.clock);
        let (mut c, side) = out.split(StreamRecord::<O>::NO_TIMESTAMP);
        let mut ctx = ReadOnlyBroadcastContext {
            inner: ProcessContext {
                timestamp: StreamRecord::<O>::NO_TIMESTAMP,
                side,
                watermark: self.watermark,
                now,
            },
            states: self.states.as_ref().ok_or_else(not_open)?,
        };
        for r in batch.drain(..) {
            c.set_timestamp(r.timestamp);
            ctx.inner.side.set_timestamp(r.timestamp);
            ctx.inner.timestamp = r.timestamp;
            self.f.process_element(r.value, &mut ctx, &mut c)?;
        }
        Ok(())
    }

    fn process_batch2(
        &mut self,
        batch: &mut Vec<StreamRecord<B>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let now = super::now(&self.clock);
        let states = self.states.as_mut().ok_or_else(not_open)?;
        let f = &mut self.f;
        broadcast_batch(batch, out, states, self.watermark, now, |v, ctx, c| {
            f.process_broadcast_element(v, ctx, c)
        })
    }

    fn process_watermark(&mut self, wm: Watermark, _: &mut Output<O>) -> Result<(), OperatorError> {
        self.watermark = wm.timestamp;
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        let mut state = OperatorSubtaskState::default();
        self.states
            .as_ref()
            .ok_or_else(not_open)?
            .snapshot(&mut state.operator)?;
        let f = &mut self.f;
        snapshot_function(barrier, &mut state, |c| f.snapshot_state(c))?;
        Ok(state)
    }

    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        Ok(self.f.notify_checkpoint_complete(id)?)
    }
}

/// `KeyedStream::connect_broadcast(..).process(..)`: keyed side with state and timers plus
/// broadcast side.
pub struct KeyedBroadcastProcessOperator<K: Key, I, B, O, F> {
    f: F,
    selector: Arc<dyn KeySelector<I, K>>,
    declared: Vec<BroadcastStateDeclaration>,
    states: Option<BroadcastStates>,
    core: Option<KeyedCore<K>>,
    _t: PhantomData<fn(I, B) -> O>,
}

impl<K: Key, I, B, O, F> KeyedBroadcastProcessOperator<K, I, B, O, F> {
    /// Wraps the function with the keyed side's key selector and the broadcast states declared
    /// on the broadcast stream.
    pub fn new(
        f: F,
        selector: Arc<dyn KeySelector<I, K>>,
        declared: Vec<BroadcastStateDeclaration>,
    ) -> Self {
        KeyedBroadcastProcessOperator {
            f,
            selector,
            declared,
            states: None,
            core: None,
            _t: PhantomData,
        }
    }
}

impl<K: Key, I: Data, B: Data, O: Data, F: KeyedBroadcastProcessFunction<K, I, B, O>>
    TwoInputOperator for KeyedBroadcastProcessOperator<K, I, B, O, F>
{
    type In1 = I;
    type In2 = B;
    type Out = O;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        self.states = Some(BroadcastStates::open(&self.declared, ctx.restored())?);
        let core = self.core.insert(KeyedCore::open(ctx)?);
        Ok(self.f.open(&mut core.runtime_context(ctx))?)
    }

    fn process_batch1(
        &mut self,
        batch: &mut Vec<StreamRecord<I>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let core = self.core.as_mut().ok_or_else(not_open)?;
        let states = self.states.as_ref().ok_or_else(not_open)?;
        let f = &mut self.f;
        core.process_elements(batch, self.selector.as_ref(), out, |v, inner, c| {
            let mut ctx = KeyedReadOnlyBroadcastContext { inner, states };
            Ok(f.process_element(v, &mut ctx, c)?)
        })
    }

    fn process_batch2(
        &mut self,
        batch: &mut Vec<StreamRecord<B>>,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let core = self.core.as_mut().ok_or_else(not_open)?;
        let states = self.states.as_mut().ok_or_else(not_open)?;
        let now = core.now();
        let f = &mut self.f;
        broadcast_batch(batch, out, states, core.watermark, now, |v, ctx, c| {
            f.process_broadcast_element(v, ctx, c)
        })
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<O>,
    ) -> Result<(), OperatorError> {
        let (Some(core), Some(states)) = (self.core.as_mut(), self.states.as_ref()) else {
            return Ok(());
        };
        let f = &mut self.f;
        core.fire_event_timers(wm.timestamp, out, |ts, inner, c| {
            let mut ctx = KeyedReadOnlyBroadcastContext { inner, states };
            Ok(f.on_timer(ts, &mut ctx, c)?)
        })
    }

    fn on_processing_time(&mut self, now: i64, out: &mut Output<O>) -> Result<(), OperatorError> {
        let (Some(core), Some(states)) = (self.core.as_mut(), self.states.as_ref()) else {
            return Ok(());
        };
        let f = &mut self.f;
        core.fire_processing_timers(now, out, |ts, inner, c| {
            let mut ctx = KeyedReadOnlyBroadcastContext { inner, states };
            Ok(f.on_timer(ts, &mut ctx, c)?)
        })
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.core.as_ref()?.timers.next_processing_timer()
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(self.f.close()?)
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        let mut state = self.core.as_mut().ok_or_else(not_open)?.snapshot()?;
        self.states
            .as_ref()
            .ok_or_else(not_open)?
            .snapshot(&mut state.operator)?;
        let f = &mut self.f;
        snapshot_function(barrier, &mut state, |c| f.snapshot_state(c))?;
        Ok(state)
    }

    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        Ok(self.f.notify_checkpoint_complete(id)?)
    }
}
