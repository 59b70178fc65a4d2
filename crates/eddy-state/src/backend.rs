//! The heap keyed state backend (Flink's `HeapKeyedStateBackend`): the current key and its key
//! group, the processing-time clock for TTL, the registry of named states, and snapshot/restore
//! by key group.
//!
//! States are registered by name with their kind and types; each becomes a typed
//! `StateTable` stored behind the type-erased `ErasedTable` so one backend holds states of
//! any types. Handles find their table by index and downcast it (a `TypeId` comparison) on
//! every access. Restored bytes stay raw per (state, key group) until the state is registered,
//! because only then are its types known.

use crate::descriptor::{
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor,
    StateKind, ValueStateDescriptor,
};
use crate::error::StateError;
use crate::functions::{AggregateFunction, ReduceFn};
use crate::handles::{AggregatingState, ListState, MapState, ReducingState, ValueState};
use crate::snapshot::{
    check_max_parallelism, check_type, put_varint, read_frame, KeyedStateSnapshot, StateMeta,
};
use crate::table::{ErasedTable, KeyedMap, StateEntry, StateTable, UserMap};
use crate::ttl::{StateTtlConfig, Ttl, TtlValue};
use eddy_core::keygroup::{assign_to_key_group, KeyGroupRange};
use eddy_core::{Data, Key};
use std::any::type_name;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Where handle operations find their state (Flink's `KeyedStateStore`, but passed explicitly
/// to every operation instead of captured by the handle; see the crate docs).
pub trait KeyedStateStore {
    /// The key type of the keyed stream.
    type Key: Key;
    /// The backend holding the state and the current key.
    fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<Self::Key>;
}

impl<K: Key> KeyedStateStore for KeyedStateBackend<K> {
    type Key = K;
    #[inline]
    fn keyed_state_backend(&mut self) -> &mut KeyedStateBackend<K> {
        self
    }
}

struct RegisteredState {
    meta: StateMeta,
    table: Box<dyn ErasedTable>,
}

/// A restored state that has not been registered yet: its bytes per key group.
struct PendingState {
    meta: StateMeta,
    key_groups: BTreeMap<usize, Vec<u8>>,
}

/// What a handle operation works on: the current key and the current key group's map of one
/// state, with that state's function, TTL and the clock.
pub(crate) struct Access<'a, K, N, E, F> {
    pub(crate) key: &'a K,
    pub(crate) map: &'a mut KeyedMap<K, N, E>,
    pub(crate) func: &'a F,
    pub(crate) ttl: Option<Ttl>,
    pub(crate) now: i64,
}

/// Marks "the current key's key group is not ours" in `current_group_index`, so the hot path
/// checks it with the same bounds check that indexes the group.
const OUT_OF_RANGE: usize = usize::MAX;

/// The heap keyed state backend of one operator subtask.
pub struct KeyedStateBackend<K: Key> {
    key_group_range: KeyGroupRange,
    max_parallelism: usize,
    current_key: Option<K>,
    current_key_group: usize,
    current_group_index: usize,
    now: i64,
    states: Vec<RegisteredState>,
    by_name: HashMap<String, usize>,
    /// A `BTreeMap` so snapshots list pending states in a deterministic order.
    pending: BTreeMap<String, PendingState>,
    /// States whose TTL cleans up a little on every record (key selection).
    clean_on_every_record: Vec<usize>,
}

impl<K: Key> std::fmt::Debug for KeyedStateBackend<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStateBackend")
            .field("key_group_range", &self.key_group_range)
            .field("max_parallelism", &self.max_parallelism)
            .field("current_key", &self.current_key)
            .field(
                "states",
                &self.states.iter().map(|s| &s.meta.name).collect::<Vec<_>>(),
            )
            .field("pending", &self.pending.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K: Key> KeyedStateBackend<K> {
    /// A backend owning `key_group_range` of an operator with `max_parallelism` key groups
    /// (a `max_parallelism` of 0 is treated as 1, so key-group assignment cannot divide by zero).
    pub fn new(key_group_range: KeyGroupRange, max_parallelism: usize) -> Self {
        KeyedStateBackend {
            key_group_range,
            max_parallelism: max_parallelism.max(1),
            current_key: None,
            current_key_group: 0,
            current_group_index: OUT_OF_RANGE,
            now: 0,
            states: Vec::new(),
            by_name: HashMap::new(),
            pending: BTreeMap::new(),
            clean_on_every_record: Vec::new(),
        }
    }

    /// The key groups this backend owns.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.key_group_range
    }

    /// The operator's max parallelism (number of key groups).
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// Sets the key that state operations apply to (Flink's `setCurrentKey`). A key outside
    /// this backend's key groups is accepted here and reported by the first state access.
    #[inline]
    pub fn set_current_key(&mut self, key: K) {
        self.enter_key_group_of(&key);
        self.current_key = Some(key);
        if !self.clean_on_every_record.is_empty() {
            self.cleanup_on_record();
        }
    }

    /// Flink's `runCleanupForEveryRecord`: selecting the key of a record is an access for
    /// incremental cleanup.
    #[cold]
    fn cleanup_on_record(&mut self) {
        let now = self.now;
        for &i in &self.clean_on_every_record {
            if let Some(s) = self.states.get_mut(i) {
                s.table.cleanup_step(now);
            }
        }
    }

    #[inline]
    fn enter_key_group_of(&mut self, key: &K) {
        let key_group = assign_to_key_group(key, self.max_parallelism);
        self.current_key_group = key_group;
        self.current_group_index = if self.key_group_range.contains(key_group) {
            key_group - self.key_group_range.start
        } else {
            OUT_OF_RANGE
        };
    }

    /// [`set_current_key`](Self::set_current_key) from a borrowed key, cloned into the previous
    /// current key (`clone_from` reuses its allocation, e.g. a `String`'s buffer).
    #[inline]
    pub fn set_current_key_from(&mut self, key: &K) {
        self.enter_key_group_of(key);
        match &mut self.current_key {
            Some(current) => current.clone_from(key),
            None => self.current_key = Some(key.clone()),
        }
        if !self.clean_on_every_record.is_empty() {
            self.cleanup_on_record();
        }
    }

    /// The current key, if one was set.
    pub fn current_key(&self) -> Option<&K> {
        self.current_key.as_ref()
    }

    /// The current key's key group, if a key was set.
    pub fn current_key_group(&self) -> Option<usize> {
        self.current_key.as_ref().map(|_| self.current_key_group)
    }

    /// Sets the processing time (ms) that TTL compares against and stamps on writes.
    #[inline]
    pub fn set_current_time(&mut self, now_ms: i64) {
        self.now = now_ms;
    }

    /// The processing time last set with [`Self::set_current_time`].
    pub fn current_time(&self) -> i64 {
        self.now
    }

    /// Entries (`(key, namespace)` pairs) over all registered states. Restored states that were
    /// not registered yet are not counted.
    pub fn num_keys(&self) -> usize {
        self.states.iter().map(|s| s.table.len()).sum()
    }

    /// The names of the registered states.
    pub fn registered_state_names(&self) -> impl Iterator<Item = &str> {
        self.states.iter().map(|s| s.meta.name.as_str())
    }

    /// Removes every expired entry of every state with TTL (a full scan, whatever the cleanup
    /// strategies); reads already hide and drop expired entries, the strategies bound memory
    /// for keys that are never read again. Returns how many `(key, namespace)` entries were
    /// removed.
    pub fn cleanup_expired_state(&mut self) -> usize {
        let now = self.now;
        self.states
            .iter_mut()
            .map(|s| s.table.cleanup_expired(now))
            .sum()
    }

    /// Registers (or re-opens) a [`ValueState`] (Flink's `getState`).
    pub fn get_state<V: Data>(
        &mut self,
        descriptor: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V>, StateError> {
        self.get_state_ns(descriptor)
    }

    /// Registers (or re-opens) a [`ValueState`] with namespace `N`.
    pub fn get_state_ns<V: Data, N: Key>(
        &mut self,
        descriptor: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V, N>, StateError> {
        let index = self.register::<N, TtlValue<V>, Option<V>>(
            &descriptor.name,
            StateKind::Value,
            type_name::<V>().to_string(),
            descriptor.ttl.as_ref(),
            descriptor.default.clone(),
        )?;
        Ok(ValueState::new(index))
    }

    /// Registers (or re-opens) a [`ListState`] (Flink's `getListState`).
    pub fn get_list_state<V: Data>(
        &mut self,
        descriptor: &ListStateDescriptor<V>,
    ) -> Result<ListState<V>, StateError> {
        self.get_list_state_ns(descriptor)
    }

    /// Registers (or re-opens) a [`ListState`] with namespace `N`.
    pub fn get_list_state_ns<V: Data, N: Key>(
        &mut self,
        descriptor: &ListStateDescriptor<V>,
    ) -> Result<ListState<V, N>, StateError> {
        let index = self.register::<N, Vec<TtlValue<V>>, ()>(
            &descriptor.name,
            StateKind::List,
            type_name::<V>().to_string(),
            descriptor.ttl.as_ref(),
            (),
        )?;
        Ok(ListState::new(index))
    }

    /// Registers (or re-opens) a [`MapState`] (Flink's `getMapState`).
    pub fn get_map_state<UK: Key, UV: Data>(
        &mut self,
        descriptor: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV>, StateError> {
        self.get_map_state_ns(descriptor)
    }

    /// Registers (or re-opens) a [`MapState`] with namespace `N`.
    pub fn get_map_state_ns<UK: Key, UV: Data, N: Key>(
        &mut self,
        descriptor: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV, N>, StateError> {
        let index = self.register::<N, UserMap<UK, UV>, ()>(
            &descriptor.name,
            StateKind::Map,
            format!("{} -> {}", type_name::<UK>(), type_name::<UV>()),
            descriptor.ttl.as_ref(),
            (),
        )?;
        Ok(MapState::new(index))
    }

    /// Registers (or re-opens) a [`ReducingState`] (Flink's `getReducingState`).
    pub fn get_reducing_state<V: Data>(
        &mut self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V>, StateError> {
        self.get_reducing_state_ns(descriptor)
    }

    /// Registers (or re-opens) a [`ReducingState`] with namespace `N`.
    pub fn get_reducing_state_ns<V: Data, N: Key>(
        &mut self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V, N>, StateError> {
        let index = self.register::<N, TtlValue<V>, ReduceFn<V>>(
            &descriptor.name,
            StateKind::Reducing,
            type_name::<V>().to_string(),
            descriptor.ttl.as_ref(),
            Arc::clone(&descriptor.reduce),
        )?;
        Ok(ReducingState::new(index))
    }

    /// Registers (or re-opens) an [`AggregatingState`] (Flink's `getAggregatingState`).
    pub fn get_aggregating_state<IN: 'static, ACC: Data, OUT: 'static>(
        &mut self,
        descriptor: &AggregatingStateDescriptor<IN, ACC, OUT>,
    ) -> Result<AggregatingState<IN, ACC, OUT>, StateError> {
        self.get_aggregating_state_ns(descriptor)
    }

    /// Registers (or re-opens) an [`AggregatingState`] with namespace `N`.
    pub fn get_aggregating_state_ns<IN: 'static, ACC: Data, OUT: 'static, N: Key>(
        &mut self,
        descriptor: &AggregatingStateDescriptor<IN, ACC, OUT>,
    ) -> Result<AggregatingState<IN, ACC, OUT, N>, StateError> {
        let index = self.register::<N, TtlValue<ACC>, Arc<dyn AggregateFunction<IN, ACC, OUT>>>(
            &descriptor.name,
            StateKind::Aggregating,
            type_name::<ACC>().to_string(),
            descriptor.ttl.as_ref(),
            Arc::clone(&descriptor.agg),
        )?;
        Ok(AggregatingState::new(index))
    }

    /// Registers a state or re-opens a registered one, after checking that kind and types match;
    /// the latest registration's TTL and function take effect. A restored state's bytes are
    /// deserialized here, now that its types are known.
    fn register<N: Key, E: StateEntry, F: Send + 'static>(
        &mut self,
        name: &str,
        kind: StateKind,
        value_type: String,
        ttl: Option<&StateTtlConfig>,
        func: F,
    ) -> Result<usize, StateError> {
        let meta = StateMeta {
            name: name.to_string(),
            kind,
            namespace_type: type_name::<N>().to_string(),
            value_type,
        };
        let ttl = ttl.map(Ttl::from_config);

        if let Some(&index) = self.by_name.get(name) {
            let slot = self
                .states
                .get_mut(index)
                .ok_or(StateError::UnknownHandle { index })?;
            if !slot.meta.same_layout(&meta) {
                return Err(incompatible(&slot.meta, &meta));
            }
            // Same kind and value types but another table type: only the aggregate function's
            // IN/OUT types can differ here.
            let Some(table) = slot
                .table
                .as_any_mut()
                .downcast_mut::<StateTable<K, N, E, F>>()
            else {
                return Err(StateError::IncompatibleState {
                    name: name.to_string(),
                    existing: slot.meta.describe(),
                    requested: format!("{} with other function types", meta.describe()),
                });
            };
            table.ttl = ttl;
            table.func = func;
            self.note_cleanup_on_every_record(index);
            return Ok(index);
        }

        let mut table = StateTable::<K, N, E, F>::new(self.key_group_range.len(), ttl, func);
        if let Some(pending) = self.pending.get(name) {
            if !pending.meta.same_layout(&meta) {
                return Err(incompatible(&pending.meta, &meta));
            }
            for (&key_group, bytes) in &pending.key_groups {
                let group = key_group.wrapping_sub(self.key_group_range.start);
                table.restore_group(group, bytes).map_err(|source| {
                    StateError::Deserialization {
                        state: name.to_string(),
                        key_group: Some(key_group),
                        source,
                    }
                })?;
            }
            self.pending.remove(name);
        }
        let index = self.states.len();
        self.states.push(RegisteredState {
            meta,
            table: Box::new(table),
        });
        self.by_name.insert(name.to_string(), index);
        self.note_cleanup_on_every_record(index);
        Ok(index)
    }

    fn note_cleanup_on_every_record(&mut self, index: usize) {
        let wanted = self
            .states
            .get(index)
            .is_some_and(|s| s.table.cleans_on_every_record());
        self.clean_on_every_record.retain(|&i| i != index);
        if wanted {
            self.clean_on_every_record.push(index);
        }
    }

    /// The typed table of handle `index` and the current key's map in it.
    #[inline]
    pub(crate) fn access<N: Key, E: StateEntry, F: Send + 'static>(
        &mut self,
        index: usize,
    ) -> Result<Access<'_, K, N, E, F>, StateError> {
        let slot = self
            .states
            .get_mut(index)
            .ok_or(StateError::UnknownHandle { index })?;
        let Some(key) = self.current_key.as_ref() else {
            return Err(StateError::NoCurrentKey {
                state: slot.meta.name.clone(),
            });
        };
        let Some(table) = slot
            .table
            .as_any_mut()
            .downcast_mut::<StateTable<K, N, E, F>>()
        else {
            return Err(StateError::UnknownHandle { index });
        };
        if table.ttl.is_some() {
            table.cleanup_step(self.now);
        }
        let StateTable {
            groups, ttl, func, ..
        } = table;
        let Some(map) = groups.get_mut(self.current_group_index) else {
            return Err(StateError::KeyGroupOutOfRange {
                state: slot.meta.name.clone(),
                key_group: self.current_key_group,
                range: self.key_group_range,
            });
        };
        Ok(Access {
            key,
            map,
            func,
            ttl: *ttl,
            now: self.now,
        })
    }

    /// A cache hint: starts loading the entry of `key` (not necessarily the current key) in
    /// `namespace` of state `index`. Does nothing for an unknown state or a key outside the
    /// range.
    pub(crate) fn prefetch<N: Key, E: StateEntry, F: Send + 'static>(
        &self,
        index: usize,
        key: &K,
        namespace: &N,
    ) {
        let Some(slot) = self.states.get(index) else {
            return;
        };
        let Some(table) = slot.table.as_any().downcast_ref::<StateTable<K, N, E, F>>() else {
            return;
        };
        let key_group = assign_to_key_group(key, self.max_parallelism);
        if !self.key_group_range.contains(key_group) {
            return;
        }
        if let Some(map) = table.groups.get(key_group - self.key_group_range.start) {
            map.prefetch(key, namespace);
        }
    }

    /// Snapshots every state (registered or restored-but-unregistered), split by key group.
    /// States whose TTL cleans up on full snapshots drop their expired entries first.
    pub fn snapshot(&mut self) -> Result<KeyedStateSnapshot, StateError> {
        let now = self.now;
        for s in &mut self.states {
            if s.table.cleans_before_snapshot() {
                s.table.cleanup_expired(now);
            }
        }
        let states: Vec<StateMeta> = self
            .states
            .iter()
            .map(|s| s.meta.clone())
            .chain(self.pending.values().map(|p| p.meta.clone()))
            .collect();
        let mut key_groups = BTreeMap::new();
        let mut scratch = Vec::new();
        let mut body = Vec::new();
        for (group, key_group) in self.key_group_range.iter().enumerate() {
            body.clear();
            let mut count = 0;
            for (index, state) in self.states.iter().enumerate() {
                scratch.clear();
                let written =
                    state
                        .table
                        .snapshot_group(group, &mut scratch)
                        .map_err(|source| StateError::Serialization {
                            state: state.meta.name.clone(),
                            source,
                        })?;
                if written {
                    append_chunk(&mut body, index, &scratch);
                    count += 1;
                }
            }
            for (offset, pending) in self.pending.values().enumerate() {
                if let Some(bytes) = pending.key_groups.get(&key_group) {
                    append_chunk(&mut body, self.states.len() + offset, bytes);
                    count += 1;
                }
            }
            if count > 0 {
                let mut frame = Vec::with_capacity(body.len() + 4);
                put_varint(&mut frame, count);
                frame.extend_from_slice(&body);
                key_groups.insert(key_group, frame);
            }
        }
        Ok(KeyedStateSnapshot {
            max_parallelism: self.max_parallelism,
            key_group_range: self.key_group_range,
            key_type: type_name::<K>().to_string(),
            states,
            key_groups,
        })
    }

    /// Restores snapshots of any number of previous subtasks (rescaling), keeping only the key
    /// groups this backend owns. Registered states are filled at once; the others keep their
    /// bytes until they are registered with their types.
    pub fn restore(&mut self, snapshots: &[KeyedStateSnapshot]) -> Result<(), StateError> {
        // Validate everything first so an unusable snapshot leaves the backend untouched.
        for snapshot in snapshots {
            check_max_parallelism(snapshot.max_parallelism, self.max_parallelism)?;
            check_type("key", &snapshot.key_type, type_name::<K>())?;
        }
        if self.key_group_range.is_empty() {
            return Ok(());
        }
        let range = self.key_group_range;
        for snapshot in snapshots {
            for (&key_group, frame) in snapshot.key_groups.range(range.start..=range.end) {
                for (state_index, bytes) in read_frame(frame, key_group)? {
                    let meta = snapshot.states.get(state_index).ok_or_else(|| {
                        StateError::CorruptSnapshot(format!(
                            "key group {key_group} references state #{state_index}, but the snapshot describes {} states",
                            snapshot.states.len()
                        ))
                    })?;
                    self.restore_chunk(meta, key_group, bytes)?;
                }
            }
        }
        Ok(())
    }

    fn restore_chunk(
        &mut self,
        meta: &StateMeta,
        key_group: usize,
        bytes: &[u8],
    ) -> Result<(), StateError> {
        if let Some(&index) = self.by_name.get(&meta.name) {
            let slot = self
                .states
                .get_mut(index)
                .ok_or(StateError::UnknownHandle { index })?;
            if !slot.meta.same_layout(meta) {
                return Err(incompatible(&slot.meta, meta));
            }
            let group = key_group.wrapping_sub(self.key_group_range.start);
            return slot.table.restore_group(group, bytes).map_err(|source| {
                StateError::Deserialization {
                    state: meta.name.clone(),
                    key_group: Some(key_group),
                    source,
                }
            });
        }
        let pending = self
            .pending
            .entry(meta.name.clone())
            .or_insert_with(|| PendingState {
                meta: meta.clone(),
                key_groups: BTreeMap::new(),
            });
        if !pending.meta.same_layout(meta) {
            return Err(incompatible(&pending.meta, meta));
        }
        if pending
            .key_groups
            .insert(key_group, bytes.to_vec())
            .is_some()
        {
            return Err(StateError::DuplicateKeyGroup {
                state: meta.name.clone(),
                key_group,
            });
        }
        Ok(())
    }
}

fn append_chunk(body: &mut Vec<u8>, state_index: usize, bytes: &[u8]) {
    put_varint(body, state_index);
    put_varint(body, bytes.len());
    body.extend_from_slice(bytes);
}

fn incompatible(existing: &StateMeta, requested: &StateMeta) -> StateError {
    StateError::IncompatibleState {
        name: requested.name.clone(),
        existing: existing.describe(),
        requested: requested.describe(),
    }
}
