//! [`AggregatingState`]: one accumulator per key and namespace, fed through an
//! [`AggregateFunction`].

use super::{contains_live, define_handle, fold_sources, read_single};
use crate::backend::{Access, KeyedStateBackend, KeyedStateStore};
use crate::error::StateError;
use crate::functions::AggregateFunction;
use crate::ttl::{is_expired, TtlValue};
use eddy_core::{Data, Key};
use std::sync::Arc;

define_handle!(
    /// Handle of an aggregating state (Flink's `AggregatingState`): an `ACC` per key (and
    /// namespace `N`) that `add` feeds `IN` values and `get` turns into an `OUT`. Obtain it with
    /// `KeyedStateBackend::get_aggregating_state`.
    AggregatingState<IN, ACC, OUT; N>
);

type AggAccess<'a, K, N, IN, ACC, OUT> =
    Access<'a, K, N, TtlValue<ACC>, Arc<dyn AggregateFunction<IN, ACC, OUT>>>;

impl<IN: 'static, ACC: Data, OUT: 'static> AggregatingState<IN, ACC, OUT, ()> {
    /// The aggregate of the current key (`get_result` of its accumulator).
    pub fn get<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
    ) -> Result<Option<OUT>, StateError> {
        self.get_in(store, &())
    }

    /// Adds `value` to the current key's accumulator.
    pub fn add<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        value: IN,
    ) -> Result<(), StateError> {
        self.add_in(store, &(), value)
    }

    /// Removes the current key's accumulator.
    pub fn clear<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<(), StateError> {
        self.clear_in(store, &())
    }
}

impl<IN: 'static, ACC: Data, OUT: 'static, N: Key> AggregatingState<IN, ACC, OUT, N> {
    #[inline]
    fn access<'s, S: KeyedStateStore + ?Sized>(
        &self,
        store: &'s mut S,
    ) -> Result<AggAccess<'s, S::Key, N, IN, ACC, OUT>, StateError> {
        store.keyed_state_backend().access(self.index)
    }

    /// The aggregate of the current key in `namespace`.
    pub fn get_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Option<OUT>, StateError> {
        let a = self.access(store)?;
        let agg = a.func;
        Ok(read_single(a.map, a.key, namespace, a.ttl, a.now)
            .map(|r| r.map(|acc| agg.get_result(acc))))
    }

    /// Whether the current key has a live accumulator in `namespace` (no clone, no result).
    pub fn contains_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<bool, StateError> {
        let a = self.access(store)?;
        Ok(contains_live(a.map, a.key, namespace, a.ttl, a.now))
    }

    /// Adds `value` to the accumulator of the current key in `namespace`, creating it (also in
    /// place of an expired one) with `create_accumulator`.
    pub fn add_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        value: IN,
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        let (agg, ttl, now) = (a.func, a.ttl, a.now);
        let stored = a.map.get_or_insert_with(a.key, namespace, || {
            TtlValue::new(agg.create_accumulator(), now)
        });
        if is_expired(ttl, stored.ts, now) {
            stored.value = agg.create_accumulator();
        }
        agg.add(value, &mut stored.value);
        stored.ts = now;
        Ok(())
    }

    /// Adds `value` to the live accumulator of `namespace` if there is one, with one lookup;
    /// hands `value` back when there is none (the caller then creates the namespace).
    pub fn add_in_if_present<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        value: IN,
    ) -> Result<Option<IN>, StateError> {
        let a = self.access(store)?;
        let (agg, ttl, now) = (a.func, a.ttl, a.now);
        match a.map.find_entry(a.key, namespace) {
            Some(mut e) if !is_expired(ttl, e.get().2.ts, now) => {
                let stored = &mut e.get_mut().2;
                agg.add(value, &mut stored.value);
                stored.ts = now;
                Ok(None)
            }
            _ => Ok(Some(value)),
        }
    }

    /// A cache hint: starts loading the accumulator of `key` (any key of this subtask, not
    /// only the current one) in `namespace`, which is about to be read.
    pub fn prefetch_in<K: Key>(&self, backend: &KeyedStateBackend<K>, key: &K, namespace: &N) {
        backend.prefetch::<N, TtlValue<ACC>, Arc<dyn AggregateFunction<IN, ACC, OUT>>>(
            self.index, key, namespace,
        );
    }

    /// Removes the accumulator of `namespace` and returns its result if it was live (or
    /// expired but returnable): a read and a clear with one lookup.
    pub fn take_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Option<OUT>, StateError> {
        let a = self.access(store)?;
        let agg = a.func;
        let Some(stored) = a.map.remove(a.key, namespace) else {
            return Ok(None);
        };
        Ok(match a.ttl {
            Some(t) if t.expired(stored.ts, a.now) => t.return_expired.then_some(stored.value),
            _ => Some(stored.value),
        }
        .map(|acc| agg.get_result(&acc)))
    }

    /// Removes the accumulator of the current key in `namespace`.
    pub fn clear_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        a.map.remove(a.key, namespace);
        Ok(())
    }

    /// Merges the accumulators of `sources` into `target` for the current key and removes the
    /// sources (Flink's `InternalMergingState.mergeNamespaces`).
    pub fn merge_namespaces<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        target: &N,
        sources: &[N],
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        let (agg, ttl, now) = (a.func, a.ttl, a.now);
        let Some(merged) = fold_sources(a.map, a.key, sources, ttl, now, |x, y| agg.merge(x, y))
        else {
            return Ok(());
        };
        a.map.upsert_with(a.key, target, |old| {
            let acc = match old {
                Some(old) if !is_expired(ttl, old.ts, now) => agg.merge(old.value, merged),
                _ => merged,
            };
            TtlValue::new(acc, now)
        });
        Ok(())
    }
}
