//! State handles (Flink's `ValueState`, `ListState`, `MapState`, `ReducingState`,
//! `AggregatingState`): small `Copy + Send` typed ids, obtained once in `open()`, whose
//! operations take the [`KeyedStateStore`](crate::KeyedStateStore) explicitly.
//!
//! Each handle type lives in its own module. Operations with an `_in` suffix take a namespace
//! (windows use the window as namespace); the plain ones exist only for `N = ()`.

mod aggregating;
mod list;
mod map;
mod reducing;
mod value;

pub use aggregating::AggregatingState;
pub use list::ListState;
pub use map::MapState;
pub use reducing::ReducingState;
pub use value::ValueState;

use crate::table::KeyedMap;
use crate::ttl::{Ttl, TtlValue};
use eddy_core::Key;

/// Defines a handle struct: a state index plus phantom types. `fn() -> ..` in the phantom keeps
/// the handle `Send + Sync + Copy` whatever the state's types are.
macro_rules! define_handle {
    ($(#[$doc:meta])* $name:ident<$($t:ident),* ; $n:ident>) => {
        $(#[$doc])*
        pub struct $name<$($t,)* $n = ()> {
            index: usize,
            _types: std::marker::PhantomData<fn() -> ($($t,)* $n,)>,
        }

        impl<$($t,)* $n> $name<$($t,)* $n> {
            pub(crate) fn new(index: usize) -> Self {
                $name {
                    index,
                    _types: std::marker::PhantomData,
                }
            }
        }

        impl<$($t,)* $n> Clone for $name<$($t,)* $n> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<$($t,)* $n> Copy for $name<$($t,)* $n> {}

        impl<$($t,)* $n> std::fmt::Debug for $name<$($t,)* $n> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("index", &self.index).finish()
            }
        }

        impl<$($t,)* $n> PartialEq for $name<$($t,)* $n> {
            fn eq(&self, other: &Self) -> bool {
                self.index == other.index
            }
        }

        impl<$($t,)* $n> Eq for $name<$($t,)* $n> {}
    };
}
pub(crate) use define_handle;

/// A single value read under TTL: borrowed if live, owned if it was expired and removed but the
/// visibility still allows returning it once.
pub(crate) enum Read<'a, V> {
    Live(&'a V),
    Expired(V),
}

impl<V> Read<'_, V> {
    #[inline]
    pub(crate) fn map<R>(self, f: impl FnOnce(&V) -> R) -> R {
        match self {
            Read::Live(v) => f(v),
            Read::Expired(v) => f(&v),
        }
    }
}

impl<V: Clone> Read<'_, V> {
    #[inline]
    pub(crate) fn into_owned(self) -> V {
        match self {
            Read::Live(v) => v.clone(),
            Read::Expired(v) => v,
        }
    }
}

/// Reads the single value of `(key, ns)` with Flink's TTL read rules: expired values are
/// removed (and returned once only with `ReturnExpiredIfNotCleanedUp`); live ones get their
/// timestamp refreshed with `OnReadAndWrite`.
#[inline]
pub(crate) fn read_single<'a, K: Key, N: Key, V>(
    map: &'a mut KeyedMap<K, N, TtlValue<V>>,
    key: &K,
    ns: &N,
    ttl: Option<Ttl>,
    now: i64,
) -> Option<Read<'a, V>> {
    let entry = map.find_entry(key, ns)?;
    match ttl {
        None => Some(Read::Live(&entry.into_mut().2.value)),
        Some(t) if t.expired(entry.get().2.ts, now) => {
            let ((_, _, stale), _) = entry.remove();
            t.return_expired.then_some(Read::Expired(stale.value))
        }
        Some(t) => {
            let stored = &mut entry.into_mut().2;
            if t.update_on_read {
                stored.ts = now;
            }
            Some(Read::Live(&stored.value))
        }
    }
}

/// Whether `(key, ns)` holds a value that has not expired (no clone, no TTL refresh).
#[inline]
pub(crate) fn contains_live<K: Key, N: Key, V>(
    map: &mut KeyedMap<K, N, TtlValue<V>>,
    key: &K,
    ns: &N,
    ttl: Option<Ttl>,
    now: i64,
) -> bool {
    map.find_entry(key, ns)
        .is_some_and(|e| !crate::ttl::is_expired(ttl, e.get().2.ts, now))
}

/// Removes the live single values of `sources` and folds them with `combine`, in order (the
/// first half of Flink's `mergeNamespaces`; the caller folds the result into the target).
#[inline]
pub(crate) fn fold_sources<K: Key, N: Key, V>(
    map: &mut KeyedMap<K, N, TtlValue<V>>,
    key: &K,
    sources: &[N],
    ttl: Option<Ttl>,
    now: i64,
    mut combine: impl FnMut(V, V) -> V,
) -> Option<V> {
    let mut merged: Option<V> = None;
    for source in sources {
        let Some(entry) = map.remove(key, source) else {
            continue;
        };
        if crate::ttl::is_expired(ttl, entry.ts, now) {
            continue;
        }
        merged = Some(match merged {
            Some(acc) => combine(acc, entry.value),
            None => entry.value,
        });
    }
    merged
}
