//! [`MapState`]: a map per key and namespace; TTL applies per map entry, as in Flink.

use super::define_handle;
use crate::backend::{Access, KeyedStateStore};
use crate::error::StateError;
use crate::table::UserMap;
use crate::ttl::TtlValue;
use eddy_core::{Data, Key};

define_handle!(
    /// Handle of a map state (Flink's `MapState`): a map `UK -> UV` per key (and namespace
    /// `N`). Obtain it with `KeyedStateBackend::get_map_state`.
    MapState<UK, UV; N>
);

type MapAccess<'a, K, N, UK, UV> = Access<'a, K, N, UserMap<UK, UV>, ()>;

impl<UK: Key, UV: Data> MapState<UK, UV, ()> {
    /// The value of `user_key` for the current key (a clone).
    pub fn get<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        user_key: &UK,
    ) -> Result<Option<UV>, StateError> {
        self.get_in(store, &(), user_key)
    }

    /// Sets the value of `user_key`.
    pub fn put<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        user_key: UK,
        value: UV,
    ) -> Result<(), StateError> {
        self.put_in(store, &(), user_key, value)
    }

    /// Sets several values (Flink's `putAll`).
    pub fn put_all<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        entries: impl IntoIterator<Item = (UK, UV)>,
    ) -> Result<(), StateError> {
        self.put_all_in(store, &(), entries)
    }

    /// Removes `user_key`.
    pub fn remove<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        user_key: &UK,
    ) -> Result<(), StateError> {
        self.remove_in(store, &(), user_key)
    }

    /// Whether `user_key` has a (live) value.
    pub fn contains<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        user_key: &UK,
    ) -> Result<bool, StateError> {
        self.contains_in(store, &(), user_key)
    }

    /// All entries (clones), in unspecified order.
    pub fn entries<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
    ) -> Result<Vec<(UK, UV)>, StateError> {
        self.entries_in(store, &())
    }

    /// All user keys (clones).
    pub fn keys<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<Vec<UK>, StateError> {
        self.keys_in(store, &())
    }

    /// All values (clones).
    pub fn values<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
    ) -> Result<Vec<UV>, StateError> {
        self.values_in(store, &())
    }

    /// Whether the current key's map has no (live) entries.
    pub fn is_empty<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<bool, StateError> {
        self.is_empty_in(store, &())
    }

    /// Removes the current key's map.
    pub fn clear<S: KeyedStateStore + ?Sized>(&self, store: &mut S) -> Result<(), StateError> {
        self.clear_in(store, &())
    }
}

impl<UK: Key, UV: Data, N: Key> MapState<UK, UV, N> {
    #[inline]
    fn access<'s, S: KeyedStateStore + ?Sized>(
        &self,
        store: &'s mut S,
    ) -> Result<MapAccess<'s, S::Key, N, UK, UV>, StateError> {
        store.keyed_state_backend().access(self.index)
    }

    /// Applies Flink's TTL read rules to one user entry and hands its value to `f`.
    fn read_one<S: KeyedStateStore + ?Sized, R>(
        &self,
        store: &mut S,
        namespace: &N,
        user_key: &UK,
        f: impl FnOnce(&UV) -> R,
    ) -> Result<Option<R>, StateError> {
        let a = self.access(store)?;
        let Some(mut outer) = a.map.find_entry(a.key, namespace) else {
            return Ok(None);
        };
        let user_map = &mut outer.get_mut().2;
        let Some(inner) = user_map.find_entry(user_key) else {
            return Ok(None);
        };
        let result = match a.ttl {
            None => Some(f(&inner.get().1.value)),
            Some(t) if t.expired(inner.get().1.ts, a.now) => {
                let ((_, stale), _) = inner.remove();
                t.return_expired.then(|| f(&stale.value))
            }
            Some(t) => {
                let stored = &mut inner.into_mut().1;
                if t.update_on_read {
                    stored.ts = a.now;
                }
                Some(f(&stored.value))
            }
        };
        if user_map.is_empty() {
            outer.remove();
        }
        Ok(result)
    }

    /// Hands every visible user entry to `f`, applying TTL read rules (expired entries are
    /// removed; the map itself too once empty).
    fn visit<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        mut f: impl FnMut(&UK, &UV),
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        let Some(mut outer) = a.map.find_entry(a.key, namespace) else {
            return Ok(());
        };
        let user_map = &mut outer.get_mut().2;
        let Some(ttl) = a.ttl else {
            for (k, v) in user_map.iter() {
                f(k, &v.value);
            }
            return Ok(());
        };
        let now = a.now;
        user_map.retain(|(k, v)| {
            if ttl.expired(v.ts, now) {
                if ttl.return_expired {
                    f(k, &v.value);
                }
                false
            } else {
                if ttl.update_on_read {
                    v.ts = now;
                }
                f(k, &v.value);
                true
            }
        });
        if user_map.is_empty() {
            outer.remove();
        }
        Ok(())
    }

    /// The value of `user_key` for the current key in `namespace`.
    pub fn get_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        user_key: &UK,
    ) -> Result<Option<UV>, StateError> {
        self.read_one(store, namespace, user_key, UV::clone)
    }

    /// Sets the value of `user_key` for the current key in `namespace`.
    pub fn put_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        user_key: UK,
        value: UV,
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        a.map
            .get_or_insert_with(a.key, namespace, UserMap::default)
            .insert(user_key, TtlValue::new(value, a.now));
        Ok(())
    }

    /// Sets several values for the current key in `namespace`.
    pub fn put_all_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        entries: impl IntoIterator<Item = (UK, UV)>,
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        let now = a.now;
        let mut entries = entries.into_iter().peekable();
        // Putting nothing must not create an empty map.
        if entries.peek().is_some() {
            let user_map = a.map.get_or_insert_with(a.key, namespace, UserMap::default);
            for (k, v) in entries {
                user_map.insert(k, TtlValue::new(v, now));
            }
        }
        Ok(())
    }

    /// Removes `user_key` for the current key in `namespace`.
    pub fn remove_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        user_key: &UK,
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        if let Some(mut outer) = a.map.find_entry(a.key, namespace) {
            let user_map = &mut outer.get_mut().2;
            if user_map.remove(user_key) && user_map.is_empty() {
                outer.remove();
            }
        }
        Ok(())
    }

    /// Whether `user_key` has a visible value for the current key in `namespace`.
    pub fn contains_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
        user_key: &UK,
    ) -> Result<bool, StateError> {
        Ok(self.read_one(store, namespace, user_key, |_| ())?.is_some())
    }

    /// All entries of the current key in `namespace` (clones).
    pub fn entries_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Vec<(UK, UV)>, StateError> {
        let mut out = Vec::new();
        self.visit(store, namespace, |k, v| out.push((k.clone(), v.clone())))?;
        Ok(out)
    }

    /// All user keys of the current key in `namespace` (clones).
    pub fn keys_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Vec<UK>, StateError> {
        let mut out = Vec::new();
        self.visit(store, namespace, |k, _| out.push(k.clone()))?;
        Ok(out)
    }

    /// All values of the current key in `namespace` (clones).
    pub fn values_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<Vec<UV>, StateError> {
        let mut out = Vec::new();
        self.visit(store, namespace, |_, v| out.push(v.clone()))?;
        Ok(out)
    }

    /// Whether the map of the current key in `namespace` has no visible entries.
    pub fn is_empty_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<bool, StateError> {
        let mut empty = true;
        self.visit(store, namespace, |_, _| empty = false)?;
        Ok(empty)
    }

    /// Removes the map of the current key in `namespace`.
    pub fn clear_in<S: KeyedStateStore + ?Sized>(
        &self,
        store: &mut S,
        namespace: &N,
    ) -> Result<(), StateError> {
        let a = self.access(store)?;
        a.map.remove(a.key, namespace);
        Ok(())
    }
}
