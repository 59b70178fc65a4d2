//! [`ListState`]: a list per key and namespace; TTL applies per element, as in Flink.

use super::define_handle;
use crate::backend::KeyedStateStore;
use crate::error::StateError;
use crate::ttl::{is_expired, TtlValue};
use eddy_core::{Data, Key};

define_handle!(
    /// Handle of a list state (Flink's `ListState`): a list of `V` per key (and namespace `N`).
    /// Obtain it with `KeyedStateBackend::get_list_state`.
    ListState<V; N>
);

impl<V: Data> ListState<V, ()> {
    /// The current key's elements (clones), empty if there are none.
    pub fn get<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<Vec<V>, StateError> {
        self.get_in(store, &())
    }

    /// Appends an element.
    pub fn add<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        value: V,
    ) -> Result<(), StateError> {
        self.add_in(store, &(), value)
    }

    /// Appends elements (Flink's `addAll`).
    pub fn add_all<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        values: impl IntoIterator<Item = V>,
    ) -> Result<(), StateError> {
        self.add_all_in(store, &(), values)
    }

    /// Replaces the list (an empty list clears it).
    pub fn update<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        values: impl IntoIterator<Item = V>,
    ) -> Result<(), StateError> {
        self.update_in(store, &(), values)
    }

    /// Removes the list.
    pub fn clear<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<(), StateError> {
        self.clear_in(store, &())
    }
}

impl<V: Data, N: Key> ListState<V, N> {
    /// The elements of the current key in `namespace`. Expired elements are dropped from the
    /// state (and returned this once only with `ReturnExpiredIfNotCleanedUp`).
    pub fn get_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Vec<V>, StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, Vec<TtlValue<V>>, ()>(self.index)?;
        let Some(mut entry) = a.map.find_entry(a.key, namespace) else {
            return Ok(Vec::new());
        };
        let list = &mut entry.get_mut().2;
        let mut out = Vec::with_capacity(list.len());
        let Some(ttl) = a.ttl else {
            out.extend(list.iter().map(|e| e.value.clone()));
            return Ok(out);
        };
        let now = a.now;
        list.retain_mut(|e| {
            if ttl.expired(e.ts, now) {
                if ttl.return_expired {
                    out.push(e.value.clone());
                }
                false
            } else {
                if ttl.update_on_read {
                    e.ts = now;
                }
                out.push(e.value.clone());
                true
            }
        });
        if list.is_empty() {
            entry.remove();
        }
        Ok(out)
    }

    /// Appends an element to the list of the current key in `namespace`.
    pub fn add_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        value: V,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, Vec<TtlValue<V>>, ()>(self.index)?;
        a.map
            .get_or_insert_with(a.key, namespace, Vec::new)
            .push(TtlValue::new(value, a.now));
        Ok(())
    }

    /// Appends elements to the list of the current key in `namespace`.
    pub fn add_all_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        values: impl IntoIterator<Item = V>,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, Vec<TtlValue<V>>, ()>(self.index)?;
        let now = a.now;
        let mut values = values.into_iter().peekable();
        // Adding nothing must not create an empty entry.
        if values.peek().is_some() {
            a.map
                .get_or_insert_with(a.key, namespace, Vec::new)
                .extend(values.map(|v| TtlValue::new(v, now)));
        }
        Ok(())
    }

    /// Replaces the list of the current key in `namespace` (an empty list clears it).
    pub fn update_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        values: impl IntoIterator<Item = V>,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, Vec<TtlValue<V>>, ()>(self.index)?;
        let now = a.now;
        let list: Vec<TtlValue<V>> = values.into_iter().map(|v| TtlValue::new(v, now)).collect();
        if list.is_empty() {
            a.map.remove(a.key, namespace);
        } else {
            a.map.put(a.key, namespace, list);
        }
        Ok(())
    }

    /// Removes the list of the current key in `namespace`.
    pub fn clear_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, Vec<TtlValue<V>>, ()>(self.index)?;
        a.map.remove(a.key, namespace);
        Ok(())
    }

    /// Moves the lists of `sources` into the list of `target` for the current key (Flink's
    /// `InternalMergingState.mergeNamespaces`): target elements first, then each source's in
    /// order. Expired elements are dropped.
    pub fn merge_namespaces<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        target: &N,
        sources: &[N],
    ) -> Result<(), StateError> {
        let a = store
            .keyed_state_backend()
            .access::<N, Vec<TtlValue<V>>, ()>(self.index)?;
        let mut merged: Vec<TtlValue<V>> = Vec::new();
        for source in sources {
            if let Some(list) = a.map.remove(a.key, source) {
                merged.extend(list);
            }
        }
        let (ttl, now) = (a.ttl, a.now);
        merged.retain(|e| !is_expired(ttl, e.ts, now));
        if !merged.is_empty() {
            a.map
                .get_or_insert_with(a.key, target, Vec::new)
                .extend(merged);
        }
        Ok(())
    }
}
