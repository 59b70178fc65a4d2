//! Snapshot formats of keyed state and timers: plain serde structs whose payload is split by key
//! group, so a checkpoint taken at one parallelism can be restored at another.
//!
//! This module only produces and consumes bytes; writing them to storage is the checkpointing
//! code's job. Inside a key group, the keyed-state payload is a frame of
//! `count, (state index, length, bytes)*` (postcard varints), where `state index` points into
//! [`KeyedStateSnapshot::states`] and `bytes` are the postcard-encoded entries of that state.

use crate::descriptor::StateKind;
use crate::error::StateError;
use eddy_core::keygroup::KeyGroupRange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a snapshot records about one state, checked when the state is registered after restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMeta {
    /// The state's name.
    pub name: String,
    /// The state's kind.
    pub kind: StateKind,
    /// The namespace type (`()` for plain keyed state), as `std::any::type_name`.
    pub namespace_type: String,
    /// The stored value type(s) as `std::any::type_name`: `V`, `UK -> UV` or the accumulator.
    pub value_type: String,
}

impl StateMeta {
    /// "ValueState<i64> in namespace ()", for error messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}<{}> in namespace {}",
            self.kind, self.value_type, self.namespace_type
        )
    }

    /// Whether the other meta describes the same kind and types (the name is not compared).
    pub(crate) fn same_layout(&self, other: &StateMeta) -> bool {
        self.kind == other.kind
            && self.namespace_type == other.namespace_type
            && self.value_type == other.value_type
    }
}

/// A snapshot of a [`crate::KeyedStateBackend`].
///
/// Type names (`std::any::type_name`) are compared on restore: they are exact within one build of
/// a job, but a toolchain upgrade or moving a type to another module changes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedStateSnapshot {
    /// The max parallelism the key groups were computed with.
    pub max_parallelism: usize,
    /// The key groups of the backend that took the snapshot.
    pub key_group_range: KeyGroupRange,
    /// The key type.
    pub key_type: String,
    /// Every state, registered or restored-but-not-yet-registered.
    pub states: Vec<StateMeta>,
    /// Per non-empty key group, the framed bytes of every state.
    pub key_groups: BTreeMap<usize, Vec<u8>>,
}

/// A snapshot of an [`crate::InternalTimerService`]. Per key group: the postcard bytes of
/// `(event-time timers, processing-time timers)`, each a list of `(key, namespace, timestamp)` in
/// firing order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerServiceSnapshot {
    /// The max parallelism the key groups were computed with.
    pub max_parallelism: usize,
    /// The key groups of the service that took the snapshot.
    pub key_group_range: KeyGroupRange,
    /// The key type.
    pub key_type: String,
    /// The namespace type.
    pub namespace_type: String,
    /// Per non-empty key group, the timers' bytes.
    pub key_groups: BTreeMap<usize, Vec<u8>>,
}

macro_rules! bytes_methods {
    ($t:ty, $what:literal) => {
        impl $t {
            /// The snapshot as postcard bytes.
            pub fn to_bytes(&self) -> Result<Vec<u8>, StateError> {
                postcard::to_stdvec(self).map_err(|source| StateError::Serialization {
                    state: $what.to_string(),
                    source,
                })
            }

            /// Reads a snapshot written by `to_bytes`.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
                postcard::from_bytes(bytes).map_err(|source| StateError::Deserialization {
                    state: $what.to_string(),
                    key_group: None,
                    source,
                })
            }
        }
    };
}

bytes_methods!(KeyedStateSnapshot, "keyed state snapshot");
bytes_methods!(TimerServiceSnapshot, "timer service snapshot");

/// Checks the max parallelism of a snapshot against a backend's.
pub(crate) fn check_max_parallelism(snapshot: usize, backend: usize) -> Result<(), StateError> {
    if snapshot == backend {
        Ok(())
    } else {
        Err(StateError::MaxParallelismMismatch { snapshot, backend })
    }
}

/// Checks a type name recorded in a snapshot.
pub(crate) fn check_type(
    what: &'static str,
    snapshot: &str,
    backend: &'static str,
) -> Result<(), StateError> {
    if snapshot == backend {
        Ok(())
    } else {
        Err(StateError::TypeMismatch {
            what,
            snapshot: snapshot.to_string(),
            backend: backend.to_string(),
        })
    }
}

/// Appends `v` as a postcard (LEB128) varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a postcard varint.
pub(crate) fn take_varint(bytes: &[u8], key_group: usize) -> Result<(usize, &[u8]), StateError> {
    postcard::take_from_bytes::<usize>(bytes).map_err(|source| StateError::Deserialization {
        state: "snapshot frame".to_string(),
        key_group: Some(key_group),
        source,
    })
}

/// Splits one key group's frame into `(state index, bytes)` chunks.
pub(crate) fn read_frame(
    bytes: &[u8],
    key_group: usize,
) -> Result<Vec<(usize, &[u8])>, StateError> {
    let (count, mut rest) = take_varint(bytes, key_group)?;
    let mut chunks = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let (index, r) = take_varint(rest, key_group)?;
        let (len, r) = take_varint(r, key_group)?;
        if r.len() < len {
            return Err(StateError::CorruptSnapshot(format!(
                "key group {key_group}: chunk of state #{index} is truncated"
            )));
        }
        let (data, r) = r.split_at(len);
        chunks.push((index, data));
        rest = r;
    }
    Ok(chunks)
}
