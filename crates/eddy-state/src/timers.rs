//! The timer service of keyed operators (Flink's `InternalTimerServiceImpl`): event-time and
//! processing-time timers per `(key, namespace, timestamp)`, fired in
//! timestamp order and snapshotted by key group.
//!
//! Each time domain is a `TimerQueue`: hash sets of live timers, one per key group as in Flink's
//! `KeyGroupPartitionedPriorityQueue` (deduplication, O(1) deletion, snapshots by key group
//! without hashing a key), plus the firing order: per timestamp, the timers' entries, in a
//! `BTreeMap` of timestamps. Window timers align on few timestamps (every window of a slide ends
//! at the same time), so the map is short and its queues long: registering appends, firing pops
//! the front — sequential memory, no sifting through a heap of millions of entries (it was the
//! largest timer cost of Nexmark q5). A timestamp with a single timer holds it inline, so
//! distinct per-record timers cost no allocation. Deletion only removes the timer from the
//! set; its order entry turns stale and is skipped when it reaches the front, so the front is
//! always live and `next_*_timer` can take `&self`. The sequence number identifies a timer's
//! registration.
//!
//! Timers of one timestamp fire by key group and, within it, by slot in the hash table (sorted
//! once, when the timestamp starts firing), not in registration order: Flink's heap timers
//! promise no order among equal timestamps either, and registration order visited the timers —
//! and the window state of their keys, which keyed state lays out alike (one table per key
//! group, a key's entries side by side) — at random: a cache miss per timer, twice (Nexmark q5
//! fires millions at once).

use crate::error::StateError;
use crate::prefetch::{bucket_mask, prefetch_home};
use crate::snapshot::{check_max_parallelism, check_type, TimerServiceSnapshot};
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

/// An order entry: `(sequence, index of its key group's table << 48 | 48 bits of its hash)`;
/// they find the live slot.
type OrderEntry = (u64, u64);

/// Bits of an order entry's second half holding the timer's hash; the key group's table index
/// is above them (16 bytes per entry instead of 24: q11 keeps a `BTreeMap` of them busy).
const HASH_BITS: u32 = 48;
const HASH_MASK: u64 = (1 << HASH_BITS) - 1;
/// Table indices that fit above the hash; later key groups share the overflow table.
const MAX_TABLES: usize = (1 << (64 - HASH_BITS)) - 1;

#[inline]
fn pack(hash48: u64, group: usize) -> u64 {
    ((group as u64) << HASH_BITS) | hash48
}

/// `(hash in the live table, table index)` of an order entry's second half.
#[inline]
fn unpack(packed: u64) -> (u64, usize) {
    (
        table_hash(packed & HASH_MASK),
        (packed >> HASH_BITS) as usize,
    )
}

/// The live tables' hash of a timer from the 48 bits its order entry keeps: those bits pick the
/// bucket (with [`local_hash`]'s locality), a multiplicative mix of them the tag.
#[inline]
fn table_hash(hash48: u64) -> u64 {
    hash48 | (hash48.wrapping_mul(0x9e37_79b9_7f4a_7c15) & !HASH_MASK)
}

/// The timers of one timestamp. A `Many` bucket is put into firing order once, when it starts
/// firing (`sorted`); timers registered later are appended.
enum Bucket {
    One(OrderEntry),
    Many {
        queue: VecDeque<OrderEntry>,
        sorted: bool,
    },
}

impl Bucket {
    fn front(&self) -> Option<OrderEntry> {
        match self {
            Bucket::One(e) => Some(*e),
            Bucket::Many { queue, .. } => queue.front().copied(),
        }
    }

    /// Whether the bucket still has to be put into firing order.
    fn unsorted(&self) -> bool {
        matches!(self, Bucket::Many { sorted: false, .. })
    }

    /// Sorts a bucket about to fire by key group, then slot (`hash & bucket mask of the
    /// group's table`).
    fn sort_for_firing<T>(&mut self, live: &[HashTable<T>]) {
        if let Bucket::Many { queue, sorted } = self {
            *sorted = true;
            let key = |mask: u64, packed: u64| (packed & !HASH_MASK) | (packed & HASH_MASK & mask);
            let mask_of = |group: usize| live.get(group).map_or(u64::MAX, bucket_mask);
            let queue = queue.make_contiguous();
            if queue.len() >= live.len() {
                // Masks once per table, not once per comparison.
                let masks: Vec<u64> = live.iter().map(bucket_mask).collect();
                queue.sort_unstable_by_key(|&(seq, packed)| {
                    let group = (packed >> HASH_BITS) as usize;
                    (
                        key(masks.get(group).copied().unwrap_or(u64::MAX), packed),
                        seq,
                    )
                });
            } else {
                queue.sort_unstable_by_key(|&(seq, packed)| {
                    (key(mask_of((packed >> HASH_BITS) as usize), packed), seq)
                });
            }
        }
    }

    /// Removes the front entry; returns whether the bucket is now empty.
    fn pop_front(&mut self) -> bool {
        match self {
            Bucket::One(_) => true,
            Bucket::Many { queue, .. } => {
                queue.pop_front();
                queue.is_empty()
            }
        }
    }

    fn push(&mut self, e: OrderEntry) {
        match self {
            Bucket::One(first) => {
                *self = Bucket::Many {
                    queue: VecDeque::from([*first, e]),
                    sorted: false,
                }
            }
            Bucket::Many { queue, .. } => queue.push_back(e),
        }
    }

    fn len(&self) -> usize {
        match self {
            Bucket::One(_) => 1,
            Bucket::Many { queue, .. } => queue.len(),
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
    range: KeyGroupRange,
    max_parallelism: usize,
    /// Live timers per key group of `range` (index: key group - `range.start`), then one table
    /// for keys of other key groups (none should reach this subtask; kept, not lost) and, past
    /// `MAX_TABLES`, for the key groups an order entry cannot name.
    live: Vec<HashTable<Slot<K, N>>>,
    /// Timers in `live`.
    live_count: usize,
    /// The last key [`group_of`](Self::group_of) saw, with its table index.
    last_key: Option<(K, usize)>,
    order: BTreeMap<i64, Bucket>,
    /// Entries in `order`, live and stale.
    entries: usize,
    next_seq: u64,
}

impl<K: Key, N: Key> TimerQueue<K, N> {
    fn new(range: KeyGroupRange, max_parallelism: usize) -> Self {
        TimerQueue {
            range,
            max_parallelism,
            live: (0..=range.len().min(MAX_TABLES - 1))
                .map(|_| HashTable::new())
                .collect(),
            live_count: 0,
            last_key: None,
            order: BTreeMap::new(),
            entries: 0,
            next_seq: 0,
        }
    }

    fn len(&self) -> usize {
        self.live_count
    }

    /// The index of `key`'s table in `live`. The last key's is remembered: operators register
    /// and delete timers of one key in a row (a window operator several per element), and
    /// computing the key group (a hash and a division) cost q11 5 %.
    #[inline]
    fn group_of(&mut self, key: &K) -> usize {
        if let Some((last, group)) = &self.last_key {
            if last == key {
                return *group;
            }
        }
        let key_group = assign_to_key_group(key, self.max_parallelism);
        let overflow = self.live.len() - 1;
        let group = if self.range.contains(key_group) {
            (key_group - self.range.start).min(overflow)
        } else {
            overflow
        };
        match &mut self.last_key {
            Some((last, g)) => {
                last.clone_from(key);
                *g = group;
            }
            None => self.last_key = Some((key.clone(), group)),
        }
        group
    }

    /// Whether the order entry's timer is still registered.
    #[inline]
    fn is_live(&self, (seq, packed): OrderEntry) -> bool {
        let (hash, group) = unpack(packed);
        self.live
            .get(group)
            .is_some_and(|t| t.find(hash, |s| s.seq == seq).is_some())
    }

    /// Registers unless present; a borrowed key or namespace is cloned only when inserted, so
    /// re-registering an existing timer (every element of a window does) allocates nothing.
    fn register(&mut self, key: Cow<'_, K>, namespace: Cow<'_, N>, timestamp: i64) -> bool {
        let hash48 = timer_hash(key.as_ref(), namespace.as_ref(), timestamp) & HASH_MASK;
        let hash = table_hash(hash48);
        let group = self.group_of(key.as_ref());
        let Some(live) = self.live.get_mut(group) else {
            return false;
        };
        let entry = live.entry(
            hash,
            |s| {
                s.timer.timestamp == timestamp
                    && s.timer.key == *key
                    && s.timer.namespace == *namespace
            },
            |s| {
                table_hash(
                    timer_hash(&s.timer.key, &s.timer.namespace, s.timer.timestamp) & HASH_MASK,
                )
            },
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
                        v.insert(Bucket::One((seq, pack(hash48, group))));
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        o.get_mut().push((seq, pack(hash48, group)))
                    }
                }
                self.live_count += 1;
                self.entries += 1;
                true
            }
        }
    }

    fn delete(&mut self, key: &K, namespace: &N, timestamp: i64) -> bool {
        let hash = table_hash(timer_hash(key, namespace, timestamp) & HASH_MASK);
        let group = self.group_of(key);
        let Some(live) = self.live.get_mut(group) else {
            return false;
        };
        let found = live.find_entry(hash, |s| {
            s.timer.timestamp == timestamp && s.timer.key == *key && s.timer.namespace == *namespace
        });
        let Ok(slot) = found else {
            return false;
        };
        slot.remove();
        self.live_count -= 1;
        self.drop_stale_top();
        // Stale entries behind the front only cost memory; rebuild once they dominate.
        if self.entries > 2 * self.live_count + 64 {
            let mut order = std::mem::take(&mut self.order);
            let mut entries = 0;
            order.retain(|_, b| {
                match b {
                    Bucket::One(e) => {
                        if !self.is_live(*e) {
                            return false;
                        }
                    }
                    Bucket::Many { queue, .. } => {
                        queue.retain(|e| self.is_live(*e));
                        if queue.is_empty() {
                            return false;
                        }
                    }
                }
                entries += b.len();
                true
            });
            self.order = order;
            self.entries = entries;
        }
        true
    }

    /// Drops stale entries at the front, so the first entry is a live timer.
    fn drop_stale_top(&mut self) {
        while let Some((_, bucket)) = self.order.first_key_value() {
            match bucket.front() {
                Some(front) if self.is_live(front) => break,
                Some(_) => {
                    self.entries -= 1;
                    if let Some(mut first) = self.order.first_entry() {
                        if first.get_mut().pop_front() {
                            first.remove();
                        }
                    }
                }
                None => {
                    self.order.pop_first();
                }
            }
        }
    }

    fn peek(&self) -> Option<i64> {
        self.order
            .first_key_value()
            .map(|(timestamp, _)| *timestamp)
    }

    /// The timer `n` places after the front of a firing timestamp (one already sorted), if it
    /// is live.
    fn peek_ahead(&self, n: usize) -> Option<(&K, &N)> {
        let (_, bucket) = self.order.first_key_value()?;
        let Bucket::Many {
            queue,
            sorted: true,
        } = bucket
        else {
            return None;
        };
        let (seq, packed) = *queue.get(n)?;
        let (hash, group) = unpack(packed);
        let slot = self.live.get(group)?.find(hash, |s| s.seq == seq)?;
        Some((&slot.timer.key, &slot.timer.namespace))
    }

    fn poll(&mut self, up_to: i64) -> Option<InternalTimer<K, N>> {
        let live = &self.live;
        let mut first = self.order.first_entry()?;
        if *first.key() > up_to {
            return None;
        }
        if first.get().unsorted() {
            first.get_mut().sort_for_firing(live);
            // The new front may be stale: restore the invariant, then look again.
            self.drop_stale_top();
            first = self.order.first_entry()?;
            if *first.key() > up_to {
                return None;
            }
        }
        let (seq, packed) = first.get().front()?;
        let (hash, group) = unpack(packed);
        if let Bucket::Many { queue, .. } = first.get() {
            prefetch_slot(&self.live, queue.get(PREFETCH_AHEAD).copied());
        }
        if first.get_mut().pop_front() {
            first.remove();
        }
        self.entries -= 1;
        let slot = self
            .live
            .get_mut(group)
            .and_then(|t| t.find_entry(hash, |s| s.seq == seq).ok())
            .map(|o| o.remove().0);
        if slot.is_some() {
            self.live_count -= 1;
        }
        self.drop_stale_top();
        slot.map(|s| s.timer)
    }

    /// The live timers of key group `key_group`, from its own table or (for a key group
    /// outside the range) picked from the overflow table.
    fn slots_of(&self, key_group: usize) -> Vec<&Slot<K, N>> {
        let overflow = self.live.len() - 1;
        let index = if self.range.contains(key_group) {
            (key_group - self.range.start).min(overflow)
        } else {
            overflow
        };
        let Some(table) = self.live.get(index) else {
            return Vec::new();
        };
        if index < overflow {
            return table.iter().collect();
        }
        table
            .iter()
            .filter(|s| assign_to_key_group(&s.timer.key, self.max_parallelism) == key_group)
            .collect()
    }

    /// The key groups of timers kept although outside the range.
    fn other_key_groups(&self) -> BTreeSet<usize> {
        if self.range.is_empty() {
            return BTreeSet::new();
        }
        self.live
            .last()
            .map(|t| {
                t.iter()
                    .map(|s| assign_to_key_group(&s.timer.key, self.max_parallelism))
                    .filter(|g| !self.range.contains(*g))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How many timers ahead of the one firing `poll` fetches the live slot of: a bucket fires in
/// slot order, but with millions of timers each slot is a cache miss, and the firing of a
/// dozen timers covers the memory latency.
const PREFETCH_AHEAD: usize = 12;

/// Starts loading the live slot an order entry points to into the cache.
#[inline]
fn prefetch_slot<T>(live: &[HashTable<T>], entry: Option<OrderEntry>) {
    let Some((_, packed)) = entry else { return };
    let (hash, group) = unpack(packed);
    if let Some(table) = live.get(group) {
        prefetch_home(table, hash);
    }
}

/// Serializes live slots as the `Vec<(K, N, i64)>` restore reads, in the hash table's memory
/// order: within a timestamp, firing order is the table's anyway, and sorting by timestamp was
/// a third of q5's checkpoint cost (Flink's heap timers likewise snapshot the heap as it is).
struct SlotsSer<'a, K, N>(&'a [&'a Slot<K, N>]);

impl<K: Key, N: Key> serde::Serialize for SlotsSer<'_, K, N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for slot in self.0 {
            let t = &slot.timer;
            seq.serialize_element(&(&t.key, &t.namespace, t.timestamp))?;
        }
        seq.end()
    }
}

/// A snapshotted timer: `(key, namespace, timestamp)`.
type TimerEntry<K, N> = (K, N, i64);

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
            event_time: TimerQueue::new(key_group_range, max_parallelism.max(1)),
            processing_time: TimerQueue::new(key_group_range, max_parallelism.max(1)),
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

    /// Removes and returns the earliest event-time timer with `timestamp <= watermark` (ties by
    /// key group, in no particular order within it, as in Flink). Call it until `None`: timers
    /// registered meanwhile for a time `<= watermark` fire in the same advance, as in Flink.
    pub fn poll_event_timer(&mut self, watermark: i64) -> Option<InternalTimer<K, N>> {
        self.event_time.poll(watermark)
    }

    /// The key and namespace of the event-time timer `n` places after the next to fire, when
    /// the earliest timestamp is firing (a firing loop fetches their state ahead).
    pub fn peek_event_timer_ahead(&self, n: usize) -> Option<(&K, &N)> {
        self.event_time.peek_ahead(n)
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
        let mut key_groups = BTreeMap::new();
        let others = self.event_time.other_key_groups();
        let others = others
            .union(&self.processing_time.other_key_groups())
            .copied()
            .collect::<Vec<_>>();
        for key_group in self.key_group_range.iter().chain(others) {
            let (event, processing) = (
                self.event_time.slots_of(key_group),
                self.processing_time.slots_of(key_group),
            );
            if event.is_empty() && processing.is_empty() {
                continue;
            }
            // Same bytes as `(Vec<(K, N, i64)>, Vec<(K, N, i64)>)`.
            let bytes = eddy_core::codec::encode(&(SlotsSer(&event), SlotsSer(&processing)))
                .map_err(|source| StateError::Serialization {
                    state: "timers".to_string(),
                    source,
                })?;
            key_groups.insert(key_group, bytes);
        }
        Ok(TimerServiceSnapshot {
            max_parallelism: self.max_parallelism,
            key_group_range: self.key_group_range,
            key_type: type_name::<K>().to_string(),
            namespace_type: type_name::<N>().to_string(),
            key_groups,
        })
    }

    /// Restores timers from snapshots of any number of previous subtasks, keeping those whose
    /// key group this service owns.
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
        // Registering files each timer under its timestamp: no sort needed.
        for (key, namespace, timestamp) in event {
            self.event_time
                .register(Cow::Owned(key), Cow::Owned(namespace), timestamp);
        }
        for (key, namespace, timestamp) in processing {
            self.processing_time
                .register(Cow::Owned(key), Cow::Owned(namespace), timestamp);
        }
        Ok(())
    }
}
