//! The heap storage behind every keyed state: one hash table per key group, keyed by
//! `(key, namespace)`, plus the type-erased interface the backend uses to snapshot, restore and
//! clean tables whose types it does not know.
//!
//! Tables are `hashbrown::HashTable`s hashed with a salted [`StableHasher`]: lookups take
//! `(&K, &N)` so the hot path never clones a key, and the salt matters because all keys of one
//! key group share `stable_hash(key) % max_parallelism`, i.e. the low bits a hash table uses to
//! pick a bucket.

use crate::ttl::{Ttl, TtlValue};
use eddy_core::keygroup::StableHasher;
use eddy_core::Key;
use hashbrown::hash_table::{Entry, OccupiedEntry};
use hashbrown::HashTable;
use serde::de::DeserializeOwned;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::hash::{Hash, Hasher};

/// Mixed in before the key so table hashes are independent of key-group assignment.
const TABLE_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// The salted stable hash of a borrowed composite key.
#[inline]
pub(crate) fn salted_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = StableHasher::default();
    h.write_u64(TABLE_SALT);
    value.hash(&mut h);
    h.finish()
}

/// Bits of a table hash that pick the bucket (hashbrown uses the top 7 bits as the tag).
const BUCKET_BITS: u64 = (1 << 57) - 1;

/// The table hash of `(key, namespace)`: the bucket comes from the key plus a small offset from
/// the namespace, the tag from both. The entries of one key thus sit side by side: a window
/// operator touches all windows of its key for every element (five for Nexmark q5's sliding
/// windows), and five random places in a table of millions missed the cache and the TLB five
/// times; neighbours miss once. The offset keeps them in distinct buckets, the tag tells them
/// apart without comparing keys.
#[inline]
pub(crate) fn local_hash(key_hash: u64, ns_hash: u64) -> u64 {
    let bucket = key_hash.wrapping_add(ns_hash & 7) & BUCKET_BITS;
    let tag = (key_hash ^ ns_hash.rotate_left(29)) & !BUCKET_BITS;
    bucket | tag
}

#[inline]
fn hash_kn<K: Hash, N: Hash>(key: &K, ns: &N) -> u64 {
    local_hash(salted_hash(key), salted_hash(ns))
}

/// The entries of one key group of one state: `(key, namespace) -> E`.
pub(crate) struct KeyedMap<K, N, E> {
    table: HashTable<(K, N, E)>,
}

impl<K, N, E> Default for KeyedMap<K, N, E> {
    fn default() -> Self {
        KeyedMap {
            table: HashTable::new(),
        }
    }
}

impl<K: Key, N: Key, E> KeyedMap<K, N, E> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The occupied slot of `(key, ns)`, so callers can read, update or remove with one lookup.
    #[inline]
    pub(crate) fn find_entry(&mut self, key: &K, ns: &N) -> Option<OccupiedEntry<'_, (K, N, E)>> {
        self.table
            .find_entry(hash_kn(key, ns), |e| e.0 == *key && e.1 == *ns)
            .ok()
    }

    /// Starts loading the home bucket of `(key, ns)` into the cache: a firing that knows which
    /// windows come next fetches their state ahead.
    #[inline]
    pub(crate) fn prefetch(&self, key: &K, ns: &N) {
        crate::prefetch::prefetch_home(&self.table, hash_kn(key, ns));
    }

    #[inline]
    pub(crate) fn remove(&mut self, key: &K, ns: &N) -> Option<E> {
        self.find_entry(key, ns).map(|o| o.remove().0 .2)
    }

    /// The entry of `(key, ns)`, created with `make` if absent (the only place keys are cloned).
    #[inline]
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: &K,
        ns: &N,
        make: impl FnOnce() -> E,
    ) -> &mut E {
        let entry = self.table.entry(
            hash_kn(key, ns),
            |e| e.0 == *key && e.1 == *ns,
            |e| hash_kn(&e.0, &e.1),
        );
        &mut entry
            .or_insert_with(|| (key.clone(), ns.clone(), make()))
            .into_mut()
            .2
    }

    /// Replaces the entry of `(key, ns)` by `f(old)`, moving the old value out (so reduce
    /// functions can consume it) and reusing the slot instead of hashing twice.
    #[inline]
    pub(crate) fn upsert_with(&mut self, key: &K, ns: &N, f: impl FnOnce(Option<E>) -> E) {
        self.upsert_returning(key, ns, |old| (f(old), ()))
    }

    /// [`upsert_with`](Self::upsert_with) where `f` also returns something for the caller.
    #[inline]
    pub(crate) fn upsert_returning<R>(
        &mut self,
        key: &K,
        ns: &N,
        f: impl FnOnce(Option<E>) -> (E, R),
    ) -> R {
        let hash = hash_kn(key, ns);
        match self.table.find_entry(hash, |e| e.0 == *key && e.1 == *ns) {
            Ok(occupied) => {
                let ((k, n, old), vacant) = occupied.remove();
                let (new, r) = f(Some(old));
                vacant.insert((k, n, new));
                r
            }
            Err(absent) => {
                let (new, r) = f(None);
                absent
                    .into_table()
                    .insert_unique(hash, (key.clone(), ns.clone(), new), |e| {
                        hash_kn(&e.0, &e.1)
                    });
                r
            }
        }
    }

    /// Sets the entry of `(key, ns)` with one lookup, cloning the key only if it is new.
    #[inline]
    pub(crate) fn put(&mut self, key: &K, ns: &N, value: E) {
        match self.table.entry(
            hash_kn(key, ns),
            |e| e.0 == *key && e.1 == *ns,
            |e| hash_kn(&e.0, &e.1),
        ) {
            Entry::Occupied(mut o) => o.get_mut().2 = value,
            Entry::Vacant(v) => {
                v.insert((key.clone(), ns.clone(), value));
            }
        }
    }

    /// Inserts an owned entry (restore path), replacing any previous value.
    pub(crate) fn insert_owned(&mut self, key: K, ns: N, value: E) {
        match self.table.entry(
            hash_kn(&key, &ns),
            |e| e.0 == key && e.1 == ns,
            |e| hash_kn(&e.0, &e.1),
        ) {
            Entry::Occupied(mut o) => o.get_mut().2 = value,
            Entry::Vacant(v) => {
                v.insert((key, ns, value));
            }
        }
    }

    pub(crate) fn retain(&mut self, mut f: impl FnMut(&mut E) -> bool) -> usize {
        let before = self.table.len();
        self.table.retain(|e| f(&mut e.2));
        before - self.table.len()
    }
}

/// Serializes a key group's entries as a sequence of `(key, namespace, entry)`.
struct GroupSer<'a, K, N, E>(&'a KeyedMap<K, N, E>);

impl<K: Serialize, N: Serialize, E: Serialize> Serialize for GroupSer<'_, K, N, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.table.len()))?;
        for (k, n, e) in self.0.table.iter() {
            seq.serialize_element(&(k, n, e))?;
        }
        seq.end()
    }
}

/// The user map of one `(key, namespace)` of a `MapState`: `user key -> TtlValue<user value>`.
pub(crate) struct UserMap<UK, UV> {
    table: HashTable<(UK, TtlValue<UV>)>,
}

impl<UK, UV> Default for UserMap<UK, UV> {
    fn default() -> Self {
        UserMap {
            table: HashTable::new(),
        }
    }
}

impl<UK: Key, UV> UserMap<UK, UV> {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    #[inline]
    pub(crate) fn find_entry(&mut self, key: &UK) -> Option<OccupiedEntry<'_, (UK, TtlValue<UV>)>> {
        self.table
            .find_entry(salted_hash(key), |e| e.0 == *key)
            .ok()
    }

    #[inline]
    pub(crate) fn insert(&mut self, key: UK, value: TtlValue<UV>) {
        match self
            .table
            .entry(salted_hash(&key), |e| e.0 == key, |e| salted_hash(&e.0))
        {
            Entry::Occupied(mut o) => o.get_mut().1 = value,
            Entry::Vacant(v) => {
                v.insert((key, value));
            }
        }
    }

    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(UK, TtlValue<UV>)> {
        self.table.iter()
    }

    #[inline]
    pub(crate) fn remove(&mut self, key: &UK) -> bool {
        self.find_entry(key).map(|o| o.remove()).is_some()
    }

    #[inline]
    pub(crate) fn retain(&mut self, f: impl FnMut(&mut (UK, TtlValue<UV>)) -> bool) {
        self.table.retain(f)
    }
}

impl<UK: Serialize, UV: Serialize> Serialize for UserMap<UK, UV> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.table.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, UK: Key, UV: DeserializeOwned> Deserialize<'de> for UserMap<UK, UV> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<(UK, TtlValue<UV>)>::deserialize(deserializer)?;
        let mut map = UserMap::default();
        for (k, v) in entries {
            map.insert(k, v);
        }
        Ok(map)
    }
}

/// What a table stores per `(key, namespace)`, and how TTL cleanup applies to it.
pub(crate) trait StateEntry: Serialize + DeserializeOwned + Send + 'static {
    /// Drops expired parts; returns whether anything is left.
    fn purge_expired(&mut self, ttl: Ttl, now: i64) -> bool;
}

impl<V: eddy_core::Data> StateEntry for TtlValue<V> {
    fn purge_expired(&mut self, ttl: Ttl, now: i64) -> bool {
        !ttl.expired(self.ts, now)
    }
}

impl<V: eddy_core::Data> StateEntry for Vec<TtlValue<V>> {
    fn purge_expired(&mut self, ttl: Ttl, now: i64) -> bool {
        self.retain(|e| !ttl.expired(e.ts, now));
        !self.is_empty()
    }
}

impl<UK: Key, UV: eddy_core::Data> StateEntry for UserMap<UK, UV> {
    fn purge_expired(&mut self, ttl: Ttl, now: i64) -> bool {
        self.retain(|e| !ttl.expired(e.1.ts, now));
        !self.is_empty()
    }
}

/// One registered state: its per-key-group maps, TTL and the function its kind needs (the
/// default value, reduce function or aggregate function; the latest registration's wins).
pub(crate) struct StateTable<K, N, E, F> {
    pub(crate) groups: Vec<KeyedMap<K, N, E>>,
    pub(crate) ttl: Option<Ttl>,
    pub(crate) func: F,
    pub(crate) sweep: Sweep,
}

/// Where incremental TTL cleanup stands: the next key group to sweep and the entry checks
/// earned since the last sweep.
#[derive(Default)]
pub(crate) struct Sweep {
    next_group: usize,
    budget: usize,
}

impl<K, N, E, F> StateTable<K, N, E, F> {
    pub(crate) fn new(num_groups: usize, ttl: Option<Ttl>, func: F) -> Self {
        StateTable {
            groups: (0..num_groups).map(|_| KeyedMap::default()).collect(),
            ttl,
            func,
            sweep: Sweep::default(),
        }
    }
}

impl<K: Key, N: Key, E: StateEntry, F> StateTable<K, N, E, F> {
    /// One step of incremental cleanup: earns `cleanup_size` checks and sweeps the next key
    /// group once they cover its entries. Sweeping whole key groups (instead of Flink's global
    /// iterator, which a hash table without stable positions cannot keep) checks the same
    /// number of entries on average, in bursts of at most one key group.
    #[inline]
    pub(crate) fn cleanup_step(&mut self, now: i64) {
        let Some(ttl) = self.ttl else { return };
        let Some(inc) = ttl.incremental else { return };
        let n = self.groups.len();
        if n == 0 {
            return;
        }
        let g = self.sweep.next_group % n;
        let budget = self.sweep.budget.saturating_add(inc.cleanup_size);
        let len = self.groups[g].len();
        if budget < len {
            self.sweep.budget = budget;
            return;
        }
        self.groups[g].retain(|e| e.purge_expired(ttl, now));
        self.sweep.next_group = (g + 1) % n;
        // Budget left over carries into the next group, not past a full pass (a pass over
        // empty groups must not pay for a later sweep of everything at once).
        self.sweep.budget = if self.sweep.next_group == 0 {
            0
        } else {
            budget - len
        };
    }
}

/// The backend's view of a table whose key, namespace and value types it does not know.
pub(crate) trait ErasedTable: Send {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Entries over all key groups.
    fn len(&self) -> usize;
    /// Appends the postcard bytes of key group index `group`; returns `false` (and appends
    /// nothing) if that group is empty.
    fn snapshot_group(&self, group: usize, out: &mut Vec<u8>) -> Result<bool, postcard::Error>;
    /// Adds the entries in `bytes` to key group index `group`.
    fn restore_group(&mut self, group: usize, bytes: &[u8]) -> Result<(), postcard::Error>;
    /// Removes every expired entry (or element); returns how many `(key, namespace)` entries
    /// disappeared.
    fn cleanup_expired(&mut self, now: i64) -> usize;
    /// One step of incremental cleanup, if the state's TTL enables it.
    fn cleanup_step(&mut self, now: i64);
    /// Whether the state's TTL asks for cleanup before full snapshots.
    fn cleans_before_snapshot(&self) -> bool;
    /// Whether the state's TTL asks for an incremental cleanup step on every record.
    fn cleans_on_every_record(&self) -> bool;
}

impl<K: Key, N: Key, E: StateEntry, F: Send + 'static> ErasedTable for StateTable<K, N, E, F> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn len(&self) -> usize {
        self.groups.iter().map(KeyedMap::len).sum()
    }

    fn snapshot_group(&self, group: usize, out: &mut Vec<u8>) -> Result<bool, postcard::Error> {
        let Some(map) = self.groups.get(group).filter(|m| m.len() > 0) else {
            return Ok(false);
        };
        let buf = eddy_core::codec::encode_into(&GroupSer(map), std::mem::take(out))?;
        *out = buf;
        Ok(true)
    }

    fn restore_group(&mut self, group: usize, bytes: &[u8]) -> Result<(), postcard::Error> {
        let entries: Vec<(K, N, E)> = postcard::from_bytes(bytes)?;
        // The backend only passes indices of its own key groups; a miss would be a bug there,
        // reported rather than panicking.
        let map = self
            .groups
            .get_mut(group)
            .ok_or(postcard::Error::DeserializeBadEncoding)?;
        for (k, n, e) in entries {
            map.insert_owned(k, n, e);
        }
        Ok(())
    }

    fn cleanup_expired(&mut self, now: i64) -> usize {
        let Some(ttl) = self.ttl else { return 0 };
        self.groups
            .iter_mut()
            .map(|m| m.retain(|e| e.purge_expired(ttl, now)))
            .sum()
    }

    fn cleanup_step(&mut self, now: i64) {
        StateTable::cleanup_step(self, now)
    }

    fn cleans_before_snapshot(&self) -> bool {
        self.ttl.is_some_and(|t| t.full_snapshot_cleanup)
    }

    fn cleans_on_every_record(&self) -> bool {
        self.ttl
            .and_then(|t| t.incremental)
            .is_some_and(|i| i.run_cleanup_for_every_record)
    }
}
