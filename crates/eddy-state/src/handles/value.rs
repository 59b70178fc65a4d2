//! [`ValueState`]: one value per key and namespace.

use super::{define_handle, read_single};
use crate::backend::KeyedStateStore;
use crate::error::StateError;
use crate::ttl::TtlValue;
use eddy_core::{Data, Key};

define_handle!(
    /// Handle of a value state (Flink's `ValueState`): one `V` per key (and namespace `N`).
    /// Obtain it with `KeyedStateBackend::get_state`.
    ValueState<V; N>
);

impl<V: Data> ValueState<V, ()> {
    /// The current key's value (a clone), or the descriptor's default (Flink's `value()`).
    pub fn value<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
    ) -> Result<Option<V>, StateError> {
        self.value_in(store, &())
    }

    /// Sets the current key's value (Flink's `update`).
    pub fn update<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        value: V,
    ) -> Result<(), StateError> {
        self.update_in(store, &(), value)
    }

    /// Removes the current key's value.
    pub fn clear<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<(), StateError> {
        self.clear_in(store, &())
    }

    /// Replaces the current key's value by `f(old)` (`old` as `value()` would return it) in
    /// one lookup, moving the old value into `f` instead of cloning it, and returns a clone of
    /// the new value — what a rolling `reduce` needs per record.
    pub fn update_with<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        f: impl FnOnce(Option<V>) -> V,
    ) -> Result<V, StateError> {
        let a = store
            .keyed_state_backend()
            .access::<(), TtlValue<V>, Option<V>>(self.index)?;
        let (ttl, now, default) = (a.ttl, a.now, a.func);
        Ok(a.map.upsert_returning(a.key, &(), |old| {
            let old = match (old, ttl) {
                (Some(o), Some(t)) if t.expired(o.ts, now) && !t.return_expired => None,
                (Some(o), _) => Some(o.value),
                (None, _) => None,
            };
            let new = f(old.or_else(|| default.clone()));
            (TtlValue::new(new.clone(), now), new)
        }))
    }
}

impl<V: Data, N: Key> ValueState<V, N> {
    /// The value of the current key in `namespace`, or the descriptor's default.
    pub fn value_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Option<V>, StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, Option<V>>(self.index)?;
        Ok(match read_single(a.map, a.key, namespace, a.ttl, a.now) {
            Some(read) => Some(read.into_owned()),
            None => a.func.clone(),
        })
    }

    /// Sets the value of the current key in `namespace`.
    pub fn update_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        value: V,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, Option<V>>(self.index)?;
        a.map.put(a.key, namespace, TtlValue::new(value, a.now));
        Ok(())
    }

    /// Removes the value of the current key in `namespace`.
    pub fn clear_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, TtlValue<V>, Option<V>>(self.index)?;
        a.map.remove(a.key, namespace);
        Ok(())
    }
}
