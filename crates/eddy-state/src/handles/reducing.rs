//! [`ReducingState`]: one value per key and namespace that every `add` reduces into.

use super::{contains_live, define_handle, fold_sources, read_single};
use crate::backend::{KeyedStateBackend, KeyedStateStore};
use crate::error::StateError;
use crate::functions::ReduceFn;
use crate::ttl::{is_expired, TtlValue};
use eddy_core::{Data, Key};

define_handle!(
    /// Handle of a reducing state (Flink's `ReducingState`): one `V` per key (and namespace
    /// `N`), combined with the descriptor's reduce function on every `add`. Obtain it with
    /// `KeyedStateBackend::get_reducing_state`.
    ReducingState<V; N>
);

impl<V: Data> ReducingState<V, ()> {
    /// The current key's reduced value (a clone).
    pub fn get<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<Option<V>, StateError> {
        self.get_in(store, &())
    }

    /// Reduces `value` into the current key's value.
    pub fn add<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        value: V,
    ) -> Result<(), StateError> {
        self.add_in(store, &(), value)
    }

    /// Removes the current key's value.
    pub fn clear<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<(), StateError> {
        self.clear_in(store, &())
    }
}

impl<V: Data, N: Key> ReducingState<V, N> {
    /// A cache hint: starts loading the value of `key` (any key of this subtask, not only the
    /// current one) in `namespace`, which is about to be read.
    pub fn prefetch_in<K: Key>(&self, backend: &KeyedStateBackend<K>, key: &K, namespace: &N) {
        backend.prefetch::<N, TtlValue<V>, ReduceFn<V>>(self.index, key, namespace);
    }

    /// The reduced value of the current key in `namespace`.
    pub fn get_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Option<V>, StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, ReduceFn<V>>(self.index)?;
        Ok(read_single(a.map, a.key, namespace, a.ttl, a.now).map(|r| r.into_owned()))
    }

    /// Whether the current key has a live value in `namespace` (no clone).
    pub fn contains_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<bool, StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, ReduceFn<V>>(self.index)?;
        Ok(contains_live(a.map, a.key, namespace, a.ttl, a.now))
    }

    /// Reduces `value` into the value of the current key in `namespace` (an expired value
    /// counts as absent).
    pub fn add_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        value: V,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, ReduceFn<V>>(self.index)?;
        let (reduce, ttl, now) = (a.func, a.ttl, a.now);
        a.map.upsert_with(a.key, namespace, |old| {
            let reduced = match old {
                Some(old) if !is_expired(ttl, old.ts, now) => reduce(old.value, value),
                _ => value,
            };
            TtlValue::new(reduced, now)
        });
        Ok(())
    }

    /// Reduces `value` into the live value of `namespace` if there is one; hands `value` back
    /// when there is none. Two lookups (the reduce function takes the old value by value), the
    /// second a cache hit.
    pub fn add_in_if_present<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        value: V,
    ) -> Result<Option<V>, StateError> {
        if self.contains_in(store, namespace)? {
            self.add_in(store, namespace, value)?;
            Ok(None)
        } else {
            Ok(Some(value))
        }
    }

    /// Removes the value of `namespace` and returns it if it was live (or expired but
    /// returnable): a read and a clear with one lookup.
    pub fn take_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Option<V>, StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, ReduceFn<V>>(self.index)?;
        let Some(stored) = a.map.remove(a.key, namespace) else {
            return Ok(None);
        };
        Ok(match a.ttl {
            Some(t) if t.expired(stored.ts, a.now) => t.return_expired.then_some(stored.value),
            _ => Some(stored.value),
        })
    }

    /// Removes the value of the current key in `namespace`.
    pub fn clear_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, ReduceFn<V>>(self.index)?;
        a.map.remove(a.key, namespace);
        Ok(())
    }

    /// Reduces the values of `sources` into `target` for the current key and removes the
    /// sources (Flink's `InternalMergingState.mergeNamespaces`).
    pub fn merge_namespaces<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        target: &N,
        sources: &[N],
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, ReduceFn<V>>(self.index)?;
        let (reduce, ttl, now) = (a.func, a.ttl, a.now);
        let Some(merged) = fold_sources(a.map, a.key, sources, ttl, now, |x, y| reduce(x, y))
        else {
            return Ok(());
        };
        a.map.upsert_with(a.key, target, |old| {
            let reduced = match old {
                Some(old) if !is_expired(ttl, old.ts, now) => reduce(old.value, merged),
                _ => merged,
            };
            TtlValue::new(reduced, now)
        });
        Ok(())
    }
}
