//! Operator (non-keyed) state of user functions — Flink's `CheckpointedFunction` and broadcast
//! state.
//!
//! A function keeps its operator state in its own fields: in `open` it reads what the job was
//! restored with ([`crate::functions::RuntimeContext::get_operator_list_state`] and
//! `get_union_list_state`), and at every checkpoint barrier its `snapshot_state` writes the
//! current contents through a [`FunctionSnapshotContext`]. Plain fields instead of live handles
//! keep the per-record path free of any state bookkeeping; the cost is paid once per checkpoint.
//!
//! Redistribution on restore follows Flink: list state is split among the new subtasks, union
//! list state goes whole to every one. Broadcast state ([`BroadcastState`]) is a map every
//! subtask of a broadcast-connected operator holds identically; it is declared on the
//! broadcast stream with a `MapStateDescriptor`, written only by the broadcast side, and each
//! new subtask gets one copy on restore.

use crate::checkpoint::state::RestoredOperatorState;
use crate::checkpoint::{
    CheckpointBarrier, CheckpointId, ListStateSnapshot, OperatorStateMode, OperatorSubtaskState,
};
use crate::error::{FunctionResult, OperatorError};
use eddy_core::{Data, Key};
use eddy_state::{MapStateDescriptor, StateError};
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

fn mode_name(mode: OperatorStateMode) -> &'static str {
    match mode {
        OperatorStateMode::Split => "operator list state",
        OperatorStateMode::Union => "union list state",
        OperatorStateMode::Broadcast => "broadcast state",
    }
}

/// This subtask's restored items of operator state `name`, decoded; empty when the job was not
/// restored or the state did not exist.
pub(crate) fn restored_items<T: Data>(
    restored: Option<&RestoredOperatorState>,
    name: &str,
    mode: OperatorStateMode,
) -> Result<Vec<T>, StateError> {
    let Some((found, items)) = restored.and_then(|r| r.operator.get(name)) else {
        return Ok(Vec::new());
    };
    if *found != mode {
        return Err(StateError::IncompatibleState {
            name: name.to_string(),
            existing: mode_name(*found).to_string(),
            requested: mode_name(mode).to_string(),
        });
    }
    items
        .iter()
        .map(|b| {
            postcard::from_bytes(b).map_err(|source| StateError::Deserialization {
                state: name.to_string(),
                key_group: None,
                source,
            })
        })
        .collect()
}

fn encode_items<'b, T: Data>(
    name: &str,
    items: impl IntoIterator<Item = &'b T>,
) -> Result<Vec<Vec<u8>>, StateError> {
    items
        .into_iter()
        .map(|v| {
            postcard::to_stdvec(v).map_err(|source| StateError::Serialization {
                state: name.to_string(),
                source,
            })
        })
        .collect()
}

/// What a function's `snapshot_state` writes its operator state into (Flink's
/// `FunctionSnapshotContext` plus the operator state store's list states).
pub struct FunctionSnapshotContext<'a> {
    pub(crate) checkpoint_id: CheckpointId,
    pub(crate) timestamp: i64,
    pub(crate) states: &'a mut Vec<ListStateSnapshot>,
}

impl FunctionSnapshotContext<'_> {
    /// The checkpoint (or savepoint) being taken.
    pub fn checkpoint_id(&self) -> CheckpointId {
        self.checkpoint_id
    }

    /// When the checkpoint was triggered, in ms since the epoch.
    pub fn checkpoint_timestamp(&self) -> i64 {
        self.timestamp
    }

    fn put(
        &mut self,
        name: &str,
        mode: OperatorStateMode,
        items: Vec<Vec<u8>>,
    ) -> Result<(), StateError> {
        if let Some(l) = self.states.iter().find(|l| l.name == name) {
            return Err(StateError::IncompatibleState {
                name: name.to_string(),
                existing: format!("already written in this snapshot as {}", mode_name(l.mode)),
                requested: mode_name(mode).to_string(),
            });
        }
        self.states.push(ListStateSnapshot {
            name: name.to_string(),
            mode,
            items,
        });
        Ok(())
    }

    /// Writes list state `name` (Flink's `getListState(..).update(items)`): on restore at
    /// another parallelism the items of all subtasks are split among the new subtasks.
    pub fn update_list_state<'b, T: Data>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = &'b T>,
    ) -> Result<(), StateError> {
        let items = encode_items(name, items)?;
        self.put(name, OperatorStateMode::Split, items)
    }

    /// Writes union list state `name` (Flink's `getUnionListState`): on restore every subtask
    /// gets the items of all subtasks.
    pub fn update_union_list_state<'b, T: Data>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = &'b T>,
    ) -> Result<(), StateError> {
        let items = encode_items(name, items)?;
        self.put(name, OperatorStateMode::Union, items)
    }
}

/// Runs a function's `snapshot_state` for checkpoint `barrier`, appending what it wrote to
/// `state`.
pub(crate) fn snapshot_function(
    barrier: &CheckpointBarrier,
    state: &mut OperatorSubtaskState,
    f: impl FnOnce(&mut FunctionSnapshotContext<'_>) -> FunctionResult,
) -> Result<(), OperatorError> {
    let mut ctx = FunctionSnapshotContext {
        checkpoint_id: barrier.id,
        timestamp: barrier.timestamp,
        states: &mut state.operator,
    };
    Ok(f(&mut ctx)?)
}

/// One broadcast state: a map from `K` to `V` that every subtask of the operator holds
/// identically (Flink's `BroadcastState`). Mutable only while processing a broadcast element.
#[derive(Debug)]
pub struct BroadcastState<K, V> {
    map: HashMap<K, V>,
}

impl<K: Key, V: Data> BroadcastState<K, V> {
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
    /// Whether `key` has a value.
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
    /// Sets the value of `key`, returning the previous one.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }
    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }
    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear()
    }
    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A broadcast state with its types erased, so one operator can hold several.
trait ErasedBroadcastState: Send {
    fn snapshot(&self, name: &str) -> Result<Vec<Vec<u8>>, StateError>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<K: Key, V: Data> ErasedBroadcastState for BroadcastState<K, V> {
    fn snapshot(&self, name: &str) -> Result<Vec<Vec<u8>>, StateError> {
        // Sorted by encoded bytes so equal states give equal snapshots on every subtask.
        let mut items = self
            .map
            .iter()
            .map(|kv| {
                postcard::to_stdvec(&kv).map_err(|source| StateError::Serialization {
                    state: name.to_string(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_unstable();
        Ok(items)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

type CreateBroadcastState =
    dyn Fn(&str, &[Vec<u8>]) -> Result<Box<dyn ErasedBroadcastState>, StateError> + Send + Sync;

/// A broadcast state declared on a broadcast stream (from a `MapStateDescriptor`): its name
/// and how to build it, restored or empty.
#[derive(Clone)]
pub struct BroadcastStateDeclaration {
    name: String,
    types: &'static str,
    create: Arc<CreateBroadcastState>,
}

impl std::fmt::Debug for BroadcastStateDeclaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BroadcastStateDeclaration({}: {})",
            self.name, self.types
        )
    }
}

impl BroadcastStateDeclaration {
    /// Declares the broadcast state described by `desc`.
    pub fn of<K: Key, V: Data>(desc: &MapStateDescriptor<K, V>) -> Self {
        BroadcastStateDeclaration {
            name: desc.name().to_string(),
            types: std::any::type_name::<(K, V)>(),
            create: Arc::new(|name, items| {
                let mut map = HashMap::with_capacity(items.len());
                for b in items {
                    let (k, v): (K, V) =
                        postcard::from_bytes(b).map_err(|source| StateError::Deserialization {
                            state: name.to_string(),
                            key_group: None,
                            source,
                        })?;
                    map.insert(k, v);
                }
                Ok(Box::new(BroadcastState { map }))
            }),
        }
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The broadcast states of one operator subtask.
pub struct BroadcastStates {
    states: Vec<(String, &'static str, Box<dyn ErasedBroadcastState>)>,
}

impl BroadcastStates {
    /// Builds the declared states, restored from `restored` where it holds them.
    pub(crate) fn open(
        declared: &[BroadcastStateDeclaration],
        restored: Option<&RestoredOperatorState>,
    ) -> Result<Self, StateError> {
        let mut states = Vec::with_capacity(declared.len());
        for d in declared {
            let items = match restored.and_then(|r| r.operator.get(&d.name)) {
                None => &[][..],
                Some((OperatorStateMode::Broadcast, items)) => &items[..],
                Some((mode, _)) => {
                    return Err(StateError::IncompatibleState {
                        name: d.name.clone(),
                        existing: mode_name(*mode).to_string(),
                        requested: mode_name(OperatorStateMode::Broadcast).to_string(),
                    })
                }
            };
            states.push((d.name.clone(), d.types, (d.create)(&d.name, items)?));
        }
        Ok(BroadcastStates { states })
    }

    fn find(&self, name: &str) -> Result<usize, StateError> {
        self.states
            .iter()
            .position(|(n, _, _)| n == name)
            .ok_or_else(|| StateError::IncompatibleState {
                name: name.to_string(),
                existing: format!(
                    "not declared on the broadcast stream (declared: {:?})",
                    self.states.iter().map(|(n, _, _)| n).collect::<Vec<_>>()
                ),
                requested: "broadcast state".to_string(),
            })
    }

    fn mismatch<K, V>(&self, i: usize) -> StateError {
        StateError::IncompatibleState {
            name: self.states[i].0.clone(),
            existing: format!("broadcast state of {}", self.states[i].1),
            requested: format!("broadcast state of {}", std::any::type_name::<(K, V)>()),
        }
    }

    /// Read access to the state `desc` describes.
    pub fn get<K: Key, V: Data>(
        &self,
        desc: &MapStateDescriptor<K, V>,
    ) -> Result<&BroadcastState<K, V>, StateError> {
        let i = self.find(desc.name())?;
        self.states[i]
            .2
            .as_any()
            .downcast_ref()
            .ok_or_else(|| self.mismatch::<K, V>(i))
    }

    /// Write access to the state `desc` describes.
    pub fn get_mut<K: Key, V: Data>(
        &mut self,
        desc: &MapStateDescriptor<K, V>,
    ) -> Result<&mut BroadcastState<K, V>, StateError> {
        let i = self.find(desc.name())?;
        let err = self.mismatch::<K, V>(i);
        self.states[i].2.as_any_mut().downcast_mut().ok_or(err)
    }

    /// Appends every state to `out`.
    pub(crate) fn snapshot(&self, out: &mut Vec<ListStateSnapshot>) -> Result<(), StateError> {
        for (name, _, s) in &self.states {
            out.push(ListStateSnapshot {
                name: name.clone(),
                mode: OperatorStateMode::Broadcast,
                items: s.snapshot(name)?,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::keygroup::KeyGroupRange;

    fn barrier() -> CheckpointBarrier {
        CheckpointBarrier {
            id: 3,
            timestamp: 7,
            kind: crate::checkpoint::SnapshotKind::Checkpoint,
            savepoint_dir: None,
            final_checkpoint: false,
        }
    }

    #[test]
    fn list_and_union_state_round_trip_through_a_rescale() {
        let snap = |items: &[u32]| {
            let mut s = OperatorSubtaskState::default();
            snapshot_function(&barrier(), &mut s, |ctx| {
                assert_eq!((ctx.checkpoint_id(), ctx.checkpoint_timestamp()), (3, 7));
                ctx.update_list_state("buffer", items)?;
                ctx.update_union_list_state("offsets", items)?;
                Ok(())
            })
            .unwrap();
            Some(s)
        };
        let old = vec![snap(&[1, 2, 3]), snap(&[4])];
        let mut split = Vec::new();
        for i in 0..3 {
            let r = RestoredOperatorState::assign(&old, i, 3, KeyGroupRange::new(0, 0));
            split.extend(
                restored_items::<u32>(Some(&r), "buffer", OperatorStateMode::Split).unwrap(),
            );
            let union =
                restored_items::<u32>(Some(&r), "offsets", OperatorStateMode::Union).unwrap();
            assert_eq!(union, vec![1, 2, 3, 4]);
            let err = restored_items::<u32>(Some(&r), "offsets", OperatorStateMode::Split)
                .unwrap_err()
                .to_string();
            assert!(err.contains("'offsets' is union list state"), "{err}");
        }
        assert_eq!(split, vec![1, 2, 3, 4]);
        assert!(
            restored_items::<u32>(None, "buffer", OperatorStateMode::Split)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn writing_one_name_twice_in_a_snapshot_is_an_error() {
        let mut s = OperatorSubtaskState::default();
        let err = snapshot_function(&barrier(), &mut s, |ctx| {
            ctx.update_list_state("a", &[1u8])?;
            ctx.update_union_list_state("a", &[1u8])?;
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("'a'"), "{err}");
    }

    #[test]
    fn broadcast_state_is_typed_snapshotted_and_restored() {
        let rules = MapStateDescriptor::<String, u32>::new("rules");
        let decl = [BroadcastStateDeclaration::of(&rules)];
        let mut states = BroadcastStates::open(&decl, None).unwrap();
        states.get_mut(&rules).unwrap().put("a".into(), 1);
        states.get_mut(&rules).unwrap().put("b".into(), 2);
        let mut s = OperatorSubtaskState::default();
        states.snapshot(&mut s.operator).unwrap();
        let old = vec![Some(s.clone()), Some(s)];
        let r = RestoredOperatorState::assign(&old, 2, 3, KeyGroupRange::new(0, 0));
        let restored = BroadcastStates::open(&decl, Some(&r)).unwrap();
        let st = restored.get(&rules).unwrap();
        assert_eq!((st.len(), st.get(&"b".to_string())), (2, Some(&2)));

        let wrong = MapStateDescriptor::<u32, u32>::new("rules");
        let err = restored.get(&wrong).unwrap_err().to_string();
        assert!(err.contains("'rules'"), "{err}");
        let undeclared = MapStateDescriptor::<String, u32>::new("other");
        let err = restored.get(&undeclared).unwrap_err().to_string();
        assert!(err.contains("not declared"), "{err}");
    }
}
