//! The timer service of keyed operators (Flink's `InternalTimerServiceImpl`): event-time and
//! processing-time timers per `(key, namespace, timestamp)`, fired in
//! timestamp order and snapshotted by key group.
//!
//! Each time domain is a `TimerQueue`: a hash set of live timers (deduplication and O(1)
//! deletion) plus the firing order: per timestamp, the timers in registration order, in a
//! `BTreeMap` of timestamps. Window timers align on few timestamps (every window of a slide ends
//! at the same time), so the map is short and its queues long: registering appends, firing pops
//! the front — sequential memory, no sifting through a heap of millions of entries (it was the
//! largest timer cost of Nexmark q5). A timestamp with a single timer holds it inline, so
//! distinct per-record timers cost no allocation. Deletion only removes the timer from the
//! set; its order entry turns stale and is skipped when it reaches the front, so the front is
//! always live and `next_*_timer` can take `&self`. The sequence number identifies a timer's
//! registration.

use crate::error::StateError;
use crate::snapshot::{check_max_parallelism, check_type, put_varint, TimerServiceSnapshot};
use crate::table::{local_hash, salted_hash};
use eddy_core::keygroup::{assign_to_key_group, KeyGroupRange};
use eddy_core::Key;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::any::type_name;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A timer: when `timestamp` is reached, the operator's `on_timer` runs for `key` and
/// `namespace` (Flink's `TimerHeapInternalTimer`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InternalTimer<K, N> {
    /// The key the timer was registered for; the runtime sets it as current key before firing.
    pub key: K,
    /// The namespace (e.g. the window), `()` for user timers.
    pub namespace: N,
    /// The time (ms) at which the timer fires.
    pub timestamp: i64,
}

struct Slot<K, N> {
    timer: InternalTimer<K, N>,
    seq: u64,
}

/// An order entry: `(sequence, hash of the timer)`; the hash finds the live slot.
type OrderEntry = (u64, u64);

/// The timers of one timestamp, in registration order.
enum Bucket {
    One(OrderEntry),
    Many(VecDeque<OrderEntry>),
}

impl Bucket {
    fn front(&self) -> Option<OrderEntry> {
        match self {
            Bucket::One(e) => Some(*e),
            Bucket::Many(q) => q.front().copied(),
        }
    }

    /// Removes the front entry; returns whether the bucket is now empty.
    fn pop_front(&mut self) -> bool {
        match self {
            Bucket::One(_) => true,
            Bucket::Many(q) => {
                q.pop_front();
                q.is_empty()
            }
        }
    }

    fn push(&mut self, e: OrderEntry) {
        match self {
            Bucket::One(first) => *self = Bucket::Many(VecDeque::from([*first, e])),
            Bucket::Many(q) => q.push_back(e),
        }
    }

    fn len(&self) -> usize {
        match self {
            Bucket::One(_) => 1,
            Bucket::Many(q) => q.len(),
        }
    }
}

/// Timers of one key sit side by side in the hash table, as keyed state does (see
/// [`local_hash`]): a window operator registers one per window of its key for every element.
#[inline]
fn timer_hash<K: Key, N: Key>(key: &K, namespace: &N, timestamp: i64) -> u64 {
    local_hash(salted_hash(key), salted_hash(&(namespace, timestamp)))
}

/// The timers of one time domain.
struct TimerQueue<K, N> {
    live: HashTable<Slot<K, N>>,
    order: BTreeMap<i64, Bucket>,
    /// Entries in `order`, live and stale.
    entries: usize,
    next_seq: u64,
}

impl<K: Key, N: Key> TimerQueue<K, N> {
    fn new() -> Self {
        TimerQueue {
            live: HashTable::new(),
            order: BTreeMap::new(),
            entries: 0,
            next_seq: 0,
        }
    }

    fn len(&self) -> usize {
        self.live.len()
    }

    /// Registers unless present; a borrowed key or namespace is cloned only when inserted, so
    /// re-registering an existing timer (every element of a window does) allocates nothing.
    fn register(&mut self, key: Cow<'_, K>, namespace: Cow<'_, N>, timestamp: i64) -> bool {
        let hash = timer_hash(key.as_ref(), namespace.as_ref(), timestamp);
        let entry = self.live.entry(
            hash,
            |s| {
                s.timer.timestamp == timestamp
                    && s.timer.key == *key
                    && s.timer.namespace == *namespace
            },
            |s| timer_hash(&s.timer.key, &s.timer.namespace, s.timer.timestamp),
        );
        match entry {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                vacant.insert(Slot {
                    timer: InternalTimer {
                        key: key.into_owned(),
                        namespace: namespace.into_owned(),
                        timestamp,
                    },
                    seq,
                });
                match self.order.entry(timestamp) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(Bucket::One((seq, hash)));
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        o.get_mut().push((seq, hash))
                    }
                }
                self.entries += 1;
                true
            }
        }
    }

    fn delete(&mut self, key: &K, namespace: &N, timestamp: i64) -> bool {
        let hash = timer_hash(key, namespace, timestamp);
        let found = self.live.find_entry(hash, |s| {
            s.timer.timestamp == timestamp && s.timer.key == *key && s.timer.namespace == *namespace
        });
        let Ok(slot) = found else {
            return false;
        };
        slot.remove();
        self.drop_stale_top();
        // Stale entries behind the front only cost memory; rebuild once they dominate.
        if self.entries > 2 * self.live.len() + 64 {
            let live = &self.live;
            let is_live = |&(seq, hash): &OrderEntry| live.find(hash, |s| s.seq == seq).is_some();
            let mut entries = 0;
            self.order.retain(|_, b| {
                match b {
                    Bucket::One(e) => {
                        if !is_live(e) {
                            return false;
                        }
                    }
                    Bucket::Many(q) => {
                        q.retain(is_live);
                        if q.is_empty() {
                            return false;
                        }
                    }
                }
                entries += b.len();
                true
            });
            self.entries = entries;
        }
        true
    }

    /// Drops stale entries at the front, so the first entry is a live timer.
    fn drop_stale_top(&mut self) {
        while let Some(mut first) = self.order.first_entry() {
            let Some((seq, hash)) = first.get().front() else {
                first.remove();
                continue;
            };
            if self.live.find(hash, |s| s.seq == seq).is_some() {
                break;
            }
            self.entries -= 1;
            if first.get_mut().pop_front() {
                first.remove();
            }
        }
    }

    fn peek(&self) -> Option<i64> {
        self.order
            .first_key_value()
            .map(|(timestamp, _)| *timestamp)
    }

    fn poll(&mut self, up_to: i64) -> Option<InternalTimer<K, N>> {
        let mut first = self.order.first_entry()?;
        if *first.key() > up_to {
            return None;
        }
        let (seq, hash) = first.get().front()?;
        if first.get_mut().pop_front() {
            first.remove();
        }
        self.entries -= 1;
        let slot = self
            .live
            .find_entry(hash, |s| s.seq == seq)
            .ok()
            .map(|o| o.remove().0);
        self.drop_stale_top();
        slot.map(|s| s.timer)
    }

    /// The key group of every live timer, in the hash table's memory order.
    fn key_groups(&self, max_parallelism: usize) -> Vec<u32> {
        self.live
            .iter()
            .map(|s| assign_to_key_group(&s.timer.key, max_parallelism) as u32)
            .collect()
    }

    /// Appends every live timer as `(key, namespace, timestamp, sequence)` to the buffer of its
    /// key group (`groups[key_group]`, in which the caller wrote the count).
    ///
    /// Timers are written in the hash table's memory order, not in firing order: sorting them
    /// was a third of q5's checkpoint cost, so the sequence number travels along and restore
    /// sorts instead (checkpoints come every second, restores are rare; Flink's heap timers
    /// likewise snapshot the heap array as it is).
    fn write_by_key_group(
        &self,
        key_groups: &[u32],
        groups: &mut [Vec<u8>],
    ) -> Result<(), postcard::Error> {
        for (slot, &key_group) in self.live.iter().zip(key_groups) {
            // `key_groups` came from `assign_to_key_group`, below `groups.len()`.
            let Some(buf) = groups.get_mut(key_group as usize) else {
                return Err(postcard::Error::SerializeBufferFull);
            };
            let t = &slot.timer;
            *buf = eddy_core::codec::encode_into(
                &(&t.key, &t.namespace, t.timestamp, slot.seq),
                std::mem::take(buf),
            )?;
        }
        Ok(())
    }
}

/// A snapshotted timer: `(key, namespace, timestamp, registration sequence)`.
type TimerEntry<K, N> = (K, N, i64, u64);

/// One key group's timers: event time, then processing time.
type GroupTimers<K, N> = (Vec<TimerEntry<K, N>>, Vec<TimerEntry<K, N>>);

/// Event-time and processing-time timers of one keyed operator subtask (Flink's
/// `InternalTimerService`). Timers are deduplicated per `(key, namespace, timestamp)` and time
/// domain.
pub struct InternalTimerService<K: Key, N: Key = ()> {
    key_group_range: KeyGroupRange,
    max_parallelism: usize,
    event_time: TimerQueue<K, N>,
    processing_time: TimerQueue<K, N>,
}

impl<K: Key, N: Key> std::fmt::Debug for InternalTimerService<K, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalTimerService")
            .field("key_group_range", &self.key_group_range)
            .field("event_timers", &self.event_time.len())
            .field("processing_timers", &self.processing_time.len())
            .finish()
    }
}

impl<K: Key, N: Key> InternalTimerService<K, N> {
    /// A timer service for the key groups `key_group_range` of an operator with
    /// `max_parallelism` key groups (0 is treated as 1).
    pub fn new(key_group_range: KeyGroupRange, max_parallelism: usize) -> Self {
        InternalTimerService {
            key_group_range,
            max_parallelism: max_parallelism.max(1),
            event_time: TimerQueue::new(),
            processing_time: TimerQueue::new(),
        }
    }

    /// The key groups this service owns.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.key_group_range
    }

    /// The operator's max parallelism.
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// Registers an event-time timer; returns `false` if it was already registered.
    pub fn register_event_time_timer(&mut self, key: K, namespace: N, timestamp: i64) -> bool {
        self.event_time
            .register(Cow::Owned(key), Cow::Owned(namespace), timestamp)
    }

    /// Registers a processing-time timer; returns `false` if it was already registered.
    pub fn register_processing_time_timer(&mut self, key: K, namespace: N, timestamp: i64) -> bool {
        self.processing_time
            .register(Cow::Owned(key), Cow::Owned(namespace), timestamp)
    }

    /// [`register_event_time_timer`](Self::register_event_time_timer) with borrowed key and
    /// namespace, cloned only if the timer is new: for hot paths that re-register.
    pub fn register_event_time_timer_ref(
        &mut self,
        key: &K,
        namespace: &N,
        timestamp: i64,
    ) -> bool {
        self.event_time
            .register(Cow::Borrowed(key), Cow::Borrowed(namespace), timestamp)
    }

    /// [`register_processing_time_timer`](Self::register_processing_time_timer) with borrowed
    /// key and namespace.
    pub fn register_processing_time_timer_ref(
        &mut self,
        key: &K,
        namespace: &N,
        timestamp: i64,
    ) -> bool {
        self.processing_time
            .register(Cow::Borrowed(key), Cow::Borrowed(namespace), timestamp)
    }

    /// Deletes an event-time timer; returns `false` if there was none.
    pub fn delete_event_time_timer(&mut self, key: &K, namespace: &N, timestamp: i64) -> bool {
        self.event_time.delete(key, namespace, timestamp)
    }

    /// Deletes a processing-time timer; returns `false` if there was none.
    pub fn delete_processing_time_timer(&mut self, key: &K, namespace: &N, timestamp: i64) -> bool {
        self.processing_time.delete(key, namespace, timestamp)
    }

    /// The timestamp of the earliest event-time timer.
    pub fn next_event_timer(&self) -> Option<i64> {
        self.event_time.peek()
    }

    /// The timestamp of the earliest processing-time timer (when to schedule the wake-up).
    pub fn next_processing_timer(&self) -> Option<i64> {
        self.processing_time.peek()
    }

    /// Removes and returns the earliest event-time timer with `timestamp <= watermark` (ties in
    /// registration order). Call it until `None`: timers registered meanwhile for a time
    /// `<= watermark` fire in the same advance, as in Flink.
    pub fn poll_event_timer(&mut self, watermark: i64) -> Option<InternalTimer<K, N>> {
        self.event_time.poll(watermark)
    }

    /// Removes and returns the earliest processing-time timer with `timestamp <= now`.
    pub fn poll_processing_timer(&mut self, now: i64) -> Option<InternalTimer<K, N>> {
        self.processing_time.poll(now)
    }

    /// How many event-time timers are registered.
    pub fn num_event_timers(&self) -> usize {
        self.event_time.len()
    }

    /// How many processing-time timers are registered.
    pub fn num_processing_timers(&self) -> usize {
        self.processing_time.len()
    }

    /// Snapshots all timers, split by the key group of their key.
    pub fn snapshot(&self) -> Result<TimerServiceSnapshot, StateError> {
        let max_parallelism = self.max_parallelism;
        let event = self.event_time.key_groups(max_parallelism);
        let processing = self.processing_time.key_groups(max_parallelism);
        // Counted first so each key group's bytes can start with the lengths of its two lists
        // (postcard's `(Vec, Vec)`); buffers are indexed by key group because a map lookup per
        // timer cost a sixth of the snapshot.
        let count = |key_groups: &[u32]| {
            let mut counts = vec![0usize; max_parallelism];
            for &g in key_groups {
                if let Some(c) = counts.get_mut(g as usize) {
                    *c += 1;
                }
            }
            counts
        };
        let (event_counts, processing_counts) = (count(&event), count(&processing));
        let has_timers = |g: usize| event_counts[g] > 0 || processing_counts[g] > 0;
        let mut groups: Vec<Vec<u8>> = vec![Vec::new(); max_parallelism];
        let fail = |source| StateError::Serialization {
            state: "timers".to_string(),
            source,
        };
        for (g, buf) in groups.iter_mut().enumerate() {
            if has_timers(g) {
                put_varint(buf, event_counts[g]);
            }
        }
        self.event_time
            .write_by_key_group(&event, &mut groups)
            .map_err(fail)?;
        for (g, buf) in groups.iter_mut().enumerate() {
            if has_timers(g) {
                put_varint(buf, processing_counts[g]);
            }
        }
        self.processing_time
            .write_by_key_group(&processing, &mut groups)
            .map_err(fail)?;
        let key_groups = groups
            .into_iter()
            .enumerate()
            .filter(|(g, _)| has_timers(*g))
            .collect();
        Ok(TimerServiceSnapshot {
            max_parallelism: self.max_parallelism,
            key_group_range: self.key_group_range,
            key_type: type_name::<K>().to_string(),
            namespace_type: type_name::<N>().to_string(),
            key_groups,
        })
    }

    /// Restores timers from snapshots of any number of previous subtasks, keeping those whose
    /// key group this service owns. Within a time domain, restored timers keep their firing
    /// order (equal timestamps: snapshot order).
    pub fn restore(&mut self, snapshots: &[TimerServiceSnapshot]) -> Result<(), StateError> {
        for snapshot in snapshots {
            check_max_parallelism(snapshot.max_parallelism, self.max_parallelism)?;
            check_type("key", &snapshot.key_type, type_name::<K>())?;
            check_type(
                "timer namespace",
                &snapshot.namespace_type,
                type_name::<N>(),
            )?;
        }
        if self.key_group_range.is_empty() {
            return Ok(());
        }
        let range = self.key_group_range;
        let mut seen = BTreeSet::new();
        let mut event = Vec::new();
        let mut processing = Vec::new();
        for snapshot in snapshots {
            for (&key_group, bytes) in snapshot.key_groups.range(range.start..=range.end) {
                if !seen.insert(key_group) {
                    return Err(StateError::DuplicateKeyGroup {
                        state: "timers".to_string(),
                        key_group,
                    });
                }
                let (e, p): GroupTimers<K, N> =
                    postcard::from_bytes(bytes).map_err(|source| StateError::Deserialization {
                        state: "timers".to_string(),
                        key_group: Some(key_group),
                        source,
                    })?;
                event.extend(e);
                processing.extend(p);
            }
        }
        // Snapshots are in memory order: firing order is (timestamp, registration sequence);
        // timers of different former subtasks with equal timestamps have no defined order.
        event.sort_by_key(|t| (t.2, t.3));
        processing.sort_by_key(|t| (t.2, t.3));
        for (key, namespace, timestamp, _) in event {
            self.event_time
                .register(Cow::Owned(key), Cow::Owned(namespace), timestamp);
        }
        for (key, namespace, timestamp, _) in processing {
            self.processing_time
                .register(Cow::Owned(key), Cow::Owned(namespace), timestamp);
        }
        Ok(())
    }
}
