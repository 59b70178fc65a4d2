//! Window contents in keyed state, namespaced by window: one accumulator per window for
//! `reduce`/`aggregate` (never the elements), the element list for `process`, or timestamped
//! elements when an evictor needs them. [`WindowContents`] is what the window operator adds
//! to, reads on firing, clears on purge and merges for session windows.

use super::evictor::{Evictor, EvictorContext};
use super::window::{TimestampedValue, Window};
use crate::error::OperatorError;
use eddy_core::{Data, Key};
use eddy_state::{
    AggregateFunction, AggregatingState, AggregatingStateDescriptor, KeyedStateBackend, ListState,
    ListStateDescriptor, ReduceFn, ReducingState, ReducingStateDescriptor, StateError,
};
use std::sync::Arc;

/// Name of the window contents state, as in Flink.
const WINDOW_CONTENTS: &str = "window-contents";

/// How a window keeps what it has seen. `Out` is what the window function receives.
pub trait WindowContents<K: Key, T, W: Window>: Send + 'static {
    /// What the window function receives per firing.
    type Out;
    /// Registers the state.
    fn open(&mut self, backend: &mut KeyedStateBackend<K>) -> Result<(), StateError>;
    /// Adds an element to the window `ns` of the current key.
    fn add(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        value: T,
        timestamp: i64,
    ) -> Result<(), OperatorError>;
    /// Adds an element to the window `ns` of the current key if the window already holds
    /// something (one state lookup for aggregates); hands the element back otherwise, and where the
    /// contents cannot tell cheaply (the operator then takes its general path).
    fn add_if_present(
        &mut self,
        _backend: &mut KeyedStateBackend<K>,
        _ns: &W,
        value: T,
        _timestamp: i64,
    ) -> Result<Option<T>, OperatorError> {
        Ok(Some(value))
    }
    /// The contents for a firing of `window` (kept under `ns`), `None` if it holds nothing.
    fn get(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        window: &W,
        ctx: &EvictorContext,
    ) -> Result<Option<Vec<Self::Out>>, OperatorError>;
    /// The contents for a firing of `window` that is followed by clearing them (the window's
    /// cleanup time has come): `get` then `clear`, which single-value contents do with one
    /// state lookup.
    fn take(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        window: &W,
        ctx: &EvictorContext,
    ) -> Result<Option<Vec<Self::Out>>, OperatorError> {
        let v = self.get(backend, ns, window, ctx)?;
        self.clear(backend, ns)?;
        Ok(v)
    }
    /// After the window function ran on what `get` returned.
    fn after_fire(
        &mut self,
        _backend: &mut KeyedStateBackend<K>,
        _ns: &W,
        _window: &W,
        _ctx: &EvictorContext,
    ) -> Result<(), OperatorError> {
        Ok(())
    }
    /// A cache hint: the contents of `key` (any key of the subtask) in `ns` are read soon.
    fn prefetch(&self, backend: &KeyedStateBackend<K>, key: &K, ns: &W) {
        let _ = (backend, key, ns);
    }
    /// Drops the contents of `ns`.
    fn clear(&mut self, backend: &mut KeyedStateBackend<K>, ns: &W) -> Result<(), StateError>;
    /// Folds the contents of `sources` into `target` (merging windows).
    fn merge(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        target: &W,
        sources: &[W],
    ) -> Result<(), StateError>;
}

fn not_open() -> OperatorError {
    OperatorError::Internal("window contents used before open".into())
}

/// The methods of contents holding one state value per window (reduced or aggregated): the
/// same calls on a `ReducingState` or an `AggregatingState` handle in `self.state`.
macro_rules! single_value_contents {
    () => {
        fn prefetch(&self, backend: &KeyedStateBackend<K>, key: &K, ns: &W) {
            if let Some(s) = self.state {
                s.prefetch_in(backend, key, ns);
            }
        }
        fn add(
            &mut self,
            backend: &mut KeyedStateBackend<K>,
            ns: &W,
            value: T,
            _timestamp: i64,
        ) -> Result<(), OperatorError> {
            let s = self.state.ok_or_else(not_open)?;
            Ok(s.add_in(backend, ns, value)?)
        }
        fn add_if_present(
            &mut self,
            backend: &mut KeyedStateBackend<K>,
            ns: &W,
            value: T,
            _timestamp: i64,
        ) -> Result<Option<T>, OperatorError> {
            let s = self.state.ok_or_else(not_open)?;
            Ok(s.add_in_if_present(backend, ns, value)?)
        }
        fn get(
            &mut self,
            backend: &mut KeyedStateBackend<K>,
            ns: &W,
            _window: &W,
            _ctx: &EvictorContext,
        ) -> Result<Option<Vec<Self::Out>>, OperatorError> {
            let s = self.state.ok_or_else(not_open)?;
            Ok(s.get_in(backend, ns)?.map(|v| vec![v]))
        }
        fn take(
            &mut self,
            backend: &mut KeyedStateBackend<K>,
            ns: &W,
            _window: &W,
            _ctx: &EvictorContext,
        ) -> Result<Option<Vec<Self::Out>>, OperatorError> {
            let s = self.state.ok_or_else(not_open)?;
            Ok(s.take_in(backend, ns)?.map(|v| vec![v]))
        }
        fn clear(&mut self, backend: &mut KeyedStateBackend<K>, ns: &W) -> Result<(), StateError> {
            match self.state {
                Some(s) => s.clear_in(backend, ns),
                None => Ok(()),
            }
        }
        fn merge(
            &mut self,
            backend: &mut KeyedStateBackend<K>,
            target: &W,
            sources: &[W],
        ) -> Result<(), StateError> {
            match self.state {
                Some(s) => s.merge_namespaces(backend, target, sources),
                None => Ok(()),
            }
        }
    };
}

/// One reduced value per window (`reduce`).
pub struct ReduceContents<T, W> {
    f: ReduceFn<T>,
    state: Option<ReducingState<T, W>>,
}

impl<T, W> ReduceContents<T, W> {
    /// Contents reduced with `f`.
    pub fn new(f: ReduceFn<T>) -> Self {
        ReduceContents { f, state: None }
    }
}

impl<K: Key, T: Data, W: Window> WindowContents<K, T, W> for ReduceContents<T, W> {
    type Out = T;
    fn open(&mut self, backend: &mut KeyedStateBackend<K>) -> Result<(), StateError> {
        let f = self.f.clone();
        let d = ReducingStateDescriptor::new(WINDOW_CONTENTS, move |a, b| f(a, b));
        self.state = Some(backend.get_reducing_state_ns(&d)?);
        Ok(())
    }
    single_value_contents!();
}

/// One accumulator per window (`aggregate`).
pub struct AggregateContents<T, ACC, O, W> {
    agg: Arc<dyn AggregateFunction<T, ACC, O>>,
    state: Option<AggregatingState<T, ACC, O, W>>,
}

impl<T, ACC, O, W> AggregateContents<T, ACC, O, W> {
    /// Contents aggregated with `agg`.
    pub fn new(agg: Arc<dyn AggregateFunction<T, ACC, O>>) -> Self {
        AggregateContents { agg, state: None }
    }
}

impl<K: Key, T: Send + 'static, ACC: Data, O: Send + 'static, W: Window> WindowContents<K, T, W>
    for AggregateContents<T, ACC, O, W>
{
    type Out = O;
    fn open(&mut self, backend: &mut KeyedStateBackend<K>) -> Result<(), StateError> {
        let d = AggregatingStateDescriptor::new(WINDOW_CONTENTS, self.agg.clone());
        self.state = Some(backend.get_aggregating_state_ns(&d)?);
        Ok(())
    }
    single_value_contents!();
}

/// Every element of the window (`process`/`apply` without pre-aggregation).
pub struct ListContents<T, W> {
    state: Option<ListState<T, W>>,
}

impl<T, W> Default for ListContents<T, W> {
    fn default() -> Self {
        ListContents { state: None }
    }
}

impl<K: Key, T: Data, W: Window> WindowContents<K, T, W> for ListContents<T, W> {
    type Out = T;
    fn open(&mut self, backend: &mut KeyedStateBackend<K>) -> Result<(), StateError> {
        self.state = Some(backend.get_list_state_ns(&ListStateDescriptor::new(WINDOW_CONTENTS))?);
        Ok(())
    }
    fn add(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        value: T,
        _timestamp: i64,
    ) -> Result<(), OperatorError> {
        let s = self.state.ok_or_else(not_open)?;
        Ok(s.add_in(backend, ns, value)?)
    }
    fn get(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        _window: &W,
        _ctx: &EvictorContext,
    ) -> Result<Option<Vec<T>>, OperatorError> {
        let s = self.state.ok_or_else(not_open)?;
        let v = s.get_in(backend, ns)?;
        Ok((!v.is_empty()).then_some(v))
    }
    fn clear(&mut self, backend: &mut KeyedStateBackend<K>, ns: &W) -> Result<(), StateError> {
        match self.state {
            Some(s) => s.clear_in(backend, ns),
            None => Ok(()),
        }
    }
    fn merge(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        target: &W,
        sources: &[W],
    ) -> Result<(), StateError> {
        match self.state {
            Some(s) => s.merge_namespaces(backend, target, sources),
            None => Ok(()),
        }
    }
}

/// Turns the elements left after eviction into what the window function receives: the
/// elements themselves, or their reduction/aggregate (Flink applies `reduce`/`aggregate` at
/// firing time when an evictor is set).
pub type Fold<T, O> = Box<dyn FnMut(Vec<T>) -> Vec<O> + Send>;

/// Timestamped elements, evicted before and after the window function (Flink's
/// `EvictingWindowOperator`).
pub struct EvictingContents<T, W: Window, O> {
    evictor: Box<dyn Evictor<T, W>>,
    fold: Fold<T, O>,
    state: Option<ListState<TimestampedValue<T>, W>>,
    remaining: Vec<TimestampedValue<T>>,
}

impl<T, W: Window, O> EvictingContents<T, W, O> {
    /// Contents evicted by `evictor`, folded by `fold`.
    pub fn new(evictor: Box<dyn Evictor<T, W>>, fold: Fold<T, O>) -> Self {
        EvictingContents {
            evictor,
            fold,
            state: None,
            remaining: Vec::new(),
        }
    }
}

impl<K: Key, T: Data, W: Window, O: Send + 'static> WindowContents<K, T, W>
    for EvictingContents<T, W, O>
{
    type Out = O;
    fn open(&mut self, backend: &mut KeyedStateBackend<K>) -> Result<(), StateError> {
        self.state = Some(backend.get_list_state_ns(&ListStateDescriptor::new(WINDOW_CONTENTS))?);
        Ok(())
    }
    fn add(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        value: T,
        timestamp: i64,
    ) -> Result<(), OperatorError> {
        let s = self.state.ok_or_else(not_open)?;
        Ok(s.add_in(backend, ns, TimestampedValue { value, timestamp })?)
    }
    fn get(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        window: &W,
        ctx: &EvictorContext,
    ) -> Result<Option<Vec<O>>, OperatorError> {
        let s = self.state.ok_or_else(not_open)?;
        let mut elements = s.get_in(backend, ns)?;
        if elements.is_empty() {
            return Ok(None);
        }
        self.evictor.evict_before(&mut elements, window, ctx);
        let values = elements.iter().map(|e| e.value.clone()).collect();
        self.remaining = elements;
        Ok(Some((self.fold)(values)))
    }
    fn after_fire(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        ns: &W,
        window: &W,
        ctx: &EvictorContext,
    ) -> Result<(), OperatorError> {
        let s = self.state.ok_or_else(not_open)?;
        let mut elements = std::mem::take(&mut self.remaining);
        self.evictor.evict_after(&mut elements, window, ctx);
        // The list is rewritten so evicted elements are gone from state too (FLINK-4369).
        Ok(s.update_in(backend, ns, elements)?)
    }
    fn clear(&mut self, backend: &mut KeyedStateBackend<K>, ns: &W) -> Result<(), StateError> {
        match self.state {
            Some(s) => s.clear_in(backend, ns),
            None => Ok(()),
        }
    }
    fn merge(
        &mut self,
        backend: &mut KeyedStateBackend<K>,
        target: &W,
        sources: &[W],
    ) -> Result<(), StateError> {
        match self.state {
            Some(s) => s.merge_namespaces(backend, target, sources),
            None => Ok(()),
        }
    }
}
